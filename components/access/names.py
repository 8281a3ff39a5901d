"""Study names under `STUDIES_ROOT`: only the folders listed directly below the root; a name
from a URL is matched against that list, never joined onto a path (`..`, absolute paths,
separators, URL-encoded and double-encoded traversal, symlinks leaving the root are refused
with a message that says why; OWASP "Path Traversal")."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

__all__ = ["AccessError", "list_studies", "resolve_study"]


class AccessError(ValueError):
    """A study name or folder that this server refuses to open; the message says why."""


# ---- study names under the root -----------------------------------------------------------------
def list_studies(root: str | Path) -> dict[str, Path]:
    """Name -> resolved folder of every study directly below `root` (hidden folders skipped;
    a symlinked folder is listed only when it resolves inside the root)."""
    base = Path(root).resolve()
    if not base.is_dir():
        return {}
    out: dict[str, Path] = {}
    for p in sorted(base.iterdir()):
        if p.name.startswith(".") or not p.is_dir():
            continue
        real = p.resolve()
        if real.is_relative_to(base) and real != base:
            out[p.name] = real
    return out


def resolve_study(name: str, root: str | Path) -> Path:
    """The folder of study `name` under `root`, or `AccessError` saying why not."""
    shown = repr(name)[:80]
    if not name or not name.strip():
        raise AccessError("no study name given")
    decoded = _fully_unquoted(name)
    if "\x00" in decoded:
        raise AccessError(f"study name {shown} contains a NUL character")
    if decoded != name and _looks_like_path(decoded):
        raise AccessError(f"study name {shown} is URL-encoded path traversal; "
                          "give a study's folder name")
    if Path(decoded).is_absolute() or decoded.startswith(("/", "\\")) or \
            re.match(r"^[A-Za-z]:[\\/]", decoded):
        raise AccessError(f"study name {shown} is an absolute path; "
                          "give a study's folder name")
    if _looks_like_path(decoded):
        raise AccessError(f"study name {shown} is a path, not a study name "
                          "('..' and separators are not allowed)")
    base = Path(root).resolve()
    candidate = base / name
    if candidate.is_symlink() and not candidate.resolve().is_relative_to(base):
        raise AccessError(f"study {shown} is a link to a folder outside the studies root")
    studies = list_studies(base)
    if name not in studies:
        raise AccessError(f"no study named {shown} on this server")
    folder = studies[name]
    if not folder.is_relative_to(base):  # re-checked: the listing is the only source of paths
        raise AccessError(f"study {shown} resolves outside the studies root")
    return folder


def _fully_unquoted(text: str) -> str:
    # undo repeated percent-encoding ("%252e%252e" -> "%2e%2e" -> "..") a few times at most
    for _ in range(4):
        nxt = unquote(text)
        if nxt == text:
            break
        text = nxt
    return text


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text in (".", "..") or ".." in text.split("/")
