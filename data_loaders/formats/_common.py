"""Helpers shared by the format readers: reading delimited text, finding columns by any of their
spellings, checking numbers with source row numbers, and naming a file in findings.

Rows keep their source line number in `_row` (header = row 1) so that findings name the line a
user can open, even after a reader has filtered or reordered records.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from data_loaders import guard
from data_loaders.errors import StudyError, ValidationReport
from data_loaders.readers import decode_text

__all__ = ["read_delimited", "find_column", "require_columns", "numeric_or_report",
           "file_label", "text_frame", "NA_TOKENS"]

# Cells that mean "no value" in exports from R, Excel and instrument software.
NA_TOKENS = ("", "NA", "N/A", "NaN", "nan", "None", "NULL", "null", ".")
_DELIM_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def file_label(path: Path, base: Path, label: str | None) -> str:
    """How a file is named in findings: relative to the study folder when the source path is
    known (`label` is the path as written in study.toml), else its name."""
    if label is None:
        return path.name
    if path == base:
        return label
    return f"{label.rstrip('/')}/{path.relative_to(base)}"


def read_delimited(path: Path, *, name: str, what: str, separators: Sequence[str] = (",", ";", "\t"),
                   comment: str | None = None) -> tuple[pl.DataFrame, str, str]:
    """Read a (possibly gzip-compressed) delimited text file with every column as text.

    Returns (frame with `_row`, encoding, delimiter). Raises `StudyError` naming the file for an
    empty, binary, truncated or unparsable file. `what` names the format in messages.
    """
    guard.note_reading(name)
    try:
        guard.check_file_size(path, name)
        raw = None if path.suffix.lower() == ".gz" else path.read_bytes()
    except OSError as exc:
        raise StudyError(f"could not be read: {exc.strerror or exc}", file=name) from None
    if raw is None:
        try:
            # unpacked in pieces, stopping at the limit (data_loaders/guard.py)
            raw = guard.read_gzip(path, name)
        except (OSError, EOFError, zlib.error) as exc:
            raise StudyError(f"is not a complete gzip file ({_short(exc)}); it looks truncated",
                             file=name, fix="copy or download the file again") from None
    guard.check_text_shape(None, name, data=raw)
    text, encoding = decode_text(raw, name)
    lines = text.splitlines(keepends=True)
    skipped = 0
    if comment:
        while skipped < len(lines) and (lines[skipped].startswith(comment)
                                        or not lines[skipped].strip()):
            skipped += 1
    body = "".join(lines[skipped:])
    if not body.strip():
        raise StudyError(f"is empty (no {what} header and no rows)", file=name,
                         fix=f"give the {what} file as exported, header line first")
    header = lines[skipped]
    counts = {d: header.count(d) for d in separators}
    sep = max(counts, key=lambda d: counts[d])
    if counts[sep] == 0:
        sep = separators[0]
    n_fields = header.count(sep) + 1
    last = body.rstrip("\r\n").rsplit("\n", 1)[-1]
    if not body.endswith(("\n", "\r")) and body.count("\n") >= 1 and \
            last.count(sep) + 1 < n_fields:
        n_line = skipped + body.rstrip("\r\n").count("\n") + 1
        raise StudyError(f"ends in the middle of a row (row {n_line} has {last.count(sep) + 1} "
                         f"of {n_fields} fields); the file looks truncated", file=name,
                         fix="copy or export the complete file again")
    try:
        frame = pl.read_csv(io.StringIO(body), separator=sep, infer_schema=False,
                            truncate_ragged_lines=False, quote_char='"')
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise StudyError(f"could not be parsed as a {_DELIM_NAMES.get(sep, repr(sep))}-separated "
                         f"{what} table: {_short(exc)}", file=name,
                         fix="check for rows with more fields than the header and for "
                         "unbalanced quotes") from None
    frame = frame.with_columns(pl.col(pl.String).str.strip_chars().replace("", None))
    frame = frame.with_row_index("_row", offset=skipped + 2).with_columns(
        pl.col("_row").cast(pl.Int64))
    return frame, encoding, sep


def text_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as trimmed text with empty cells as null (what `RawTable` expects)."""
    out = frame.with_columns(pl.exclude("_row").cast(pl.String))
    return out.with_columns(pl.exclude("_row").str.strip_chars().replace("", None))


def _fold(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", name).lower()


def find_column(frame: pl.DataFrame, names: Iterable[str]) -> str | None:
    """The frame's column matching any of `names` (case, spaces, dashes, dots ignored)."""
    folded = {_fold(c): c for c in frame.columns}
    for n in names:
        if _fold(n) in folded:
            return folded[_fold(n)]
    return None


def require_columns(frame: pl.DataFrame, wanted: dict[str, Sequence[str]], *, name: str,
                    what: str, delimiter: str | None = None) -> dict[str, str]:
    """Map each key of `wanted` to the frame column holding it, or raise naming what is missing.

    `wanted` maps a role to accepted spellings, e.g. {"sample": ("SampleID", "Sample_ID")}.
    A file read with the wrong delimiter shows up as one wide column, which the message says.
    """
    found: dict[str, str] = {}
    missing = []
    for role, names in wanted.items():
        col = find_column(frame, names)
        if col is None:
            missing.append(names[0])
        else:
            found[role] = col
    if missing:
        cols = [c for c in frame.columns if c != "_row"]
        shown = ", ".join(cols[:20]) + (" ..." if len(cols) > 20 else "")
        hint = ""
        if len(cols) == 1 and any(d in cols[0] for d in (",", ";", "\t", "|")):
            hint = " (the header was read as a single column: the delimiter is not the one " \
                   "this format uses)"
        raise StudyError(f"is not a {what} file: required column(s) "
                         f"{', '.join(repr(m) for m in missing)} missing{hint}; found: {shown}",
                         file=name, fix=f"export the {what} file with its standard columns"
                         + (f" ({_DELIM_NAMES.get(delimiter, delimiter)}-separated)"
                            if delimiter else ""))
    return found


def numeric_or_report(frame: pl.DataFrame, column: str, *, report: ValidationReport, table: str,
                      file: str, what: str | None = None, fix: str = "") -> pl.DataFrame:
    """Check that `column` holds numbers (NA tokens count as empty). Rows with other text are
    reported as one error (source rows listed) and left out; the column becomes Float64 text-free.
    """
    src = pl.col(column).cast(pl.String)
    blank = src.is_null() | src.is_in(list(NA_TOKENS))
    num = src.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
    frame = frame.with_columns(pl.when(blank).then(None).otherwise(num).alias("_num"),
                               blank.alias("_blank"))
    bad = frame.filter(~pl.col("_blank") & (pl.col("_num").is_null() | ~pl.col("_num").is_finite()))
    if bad.height:
        examples = ", ".join(repr(v) for v in bad.get_column(column).unique(maintain_order=True)
                             .head(3).to_list())
        report.add("error", table, file, f"{what or column} is not a number ({examples}); "
                   f"{bad.height:,} row(s) left out", column=column,
                   rows=bad.get_column("_row").to_list(),
                   fix=fix or "give plain numbers (e.g. 0.45) in this column")
        frame = frame.filter(~pl.col("_row").is_in(bad.get_column("_row").implode()))
    return frame.with_columns(pl.col("_num").alias(column)).drop("_num", "_blank")


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
