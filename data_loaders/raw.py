"""`RawTable`: an all-text frame read from a file and destined for one canonical table, with
where it came from. The neutral record the format readers hand to the loader."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["RawTable"]


@dataclass
class RawTable:
    """An all-text frame destined for one canonical table, with where it came from."""

    table: str
    file: str
    frame: pl.DataFrame
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    row_offset: int = 2   # spreadsheet row of the frame's first row (header is row 1)
