"""Shared-server recipe: templates, their renderer and a loopback runner (deploy/README.md)."""
