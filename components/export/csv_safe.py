"""Formula-safe CSV: cells that a spreadsheet would run as a formula (starting with = + - @, tab
or carriage return) are prefixed with an apostrophe (OWASP "CSV injection" advice); numbers are
untouched; nested columns are written as text."""

from __future__ import annotations

import polars as pl

__all__ = ["escape_formulas", "csv_bytes"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells starting with a formula character get a leading apostrophe."""
    text_cols = [c for c, t in frame.schema.items() if t == pl.String]
    pattern = "^[=+\\-@\t\r]"
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(pattern)).then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c)).alias(c) for c in text_cols)


def csv_bytes(frame: pl.DataFrame) -> bytes:
    """Formula-safe UTF-8 CSV of `frame`; nested columns are written as text (lists joined
    with "; ", structs as JSON)."""
    flat = frame.with_columns(_as_text(c, t) for c, t in frame.schema.items()
                              if isinstance(t, (pl.List, pl.Array, pl.Struct, pl.Object)))
    return escape_formulas(flat).write_csv().encode("utf-8")


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if isinstance(dtype, pl.Struct):
        return col.struct.json_encode()
    if isinstance(dtype, (pl.List, pl.Array)):
        listed = col.arr.to_list() if isinstance(dtype, pl.Array) else col
        return listed.list.eval(pl.element().cast(pl.String)).list.join("; ")
    return col.map_elements(str, return_dtype=pl.String)
