"""Files for download and slides (no streamlit): the data behind a figure as CSV.

CSV cells that a spreadsheet would run as a formula (starting with = + - @, tab or carriage
return) are prefixed with an apostrophe (OWASP "CSV injection" advice); numbers are untouched.
"""

from __future__ import annotations

import polars as pl

__all__ = ["csv_bytes", "escape_formulas"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells starting with a formula character get a leading apostrophe."""
    text_cols = [c for c, t in frame.schema.items() if t == pl.String]
    pattern = "^[=+\\-@\t\r]"
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(pattern)).then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c)).alias(c) for c in text_cols)


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """Formula-safe UTF-8 CSV of `frame` (nested columns are written as text)."""
    flat = frame.with_columns(
        pl.col(c).cast(pl.String) for c, t in frame.schema.items()
        if isinstance(t, (pl.List, pl.Struct, pl.Array, pl.Object)))
    return escape_formulas(flat).write_csv().encode("utf-8")
