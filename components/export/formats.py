"""The file formats a figure or table is exported to, their MIME types and the slide size."""

from __future__ import annotations

__all__ = ["FIGURE_FORMATS", "MIME", "SLIDE_SIZE"]

FIGURE_FORMATS = ("png", "svg", "pdf")
MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf",
        "csv": "text/csv", "zip": "application/zip",
        "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation"}
SLIDE_SIZE = (1280, 720)  # 16:9; PNG at scale 2 is 2560 x 1440
