"""Read one tabular file (CSV, TSV, Parquet, Excel) into an all-text polars frame.

Everything is read as text first so that validation can name the exact row and column of a
value that is not a number or a date. Text encodings are tried in order UTF-8, UTF-8 with BOM,
latin-1, and the one used is reported; the delimiter is sniffed from the header line.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from data_loaders import guard
from data_loaders.errors import StudyError

__all__ = ["ReadResult", "read_table", "decode_text", "excel_sheet_text"]

# What a damaged or foreign file makes the readers raise (programming errors still surface).
_READ_ERRORS = (pl.exceptions.PolarsError, OSError, ValueError, EOFError, KeyError,
                IndexError, UnicodeError, zlib.error)


def _excel_errors() -> tuple[type[BaseException], ...]:
    """What the Excel engine (fastexcel/calamine) raises on a damaged workbook."""
    try:
        import fastexcel
    except ImportError:
        return ()
    return (fastexcel.FastExcelError,)


def excel_sheet_text(reader: object, sheet: str | int, *, header_row: int | None
                     ) -> pl.DataFrame:
    """One worksheet as all-text columns, numbers written in full.

    The Excel engine's own text form of a number keeps nine decimals (6.1e-05 becomes
    "0.000061035", 1.2e-10 becomes "0"), so numeric cells are read a second time as numbers and
    their shortest exact text replaces the engine's where the two differ. Integers, dates and
    text cells keep the engine's text (an id 1001 stays "1001")."""
    text = reader.load_sheet(sheet, header_row=header_row, dtypes="string").to_polars()
    if not text.width or not text.height:
        return text.with_columns(pl.all().cast(pl.String))
    nums = reader.load_sheet(sheet, header_row=header_row, dtypes="float").to_polars()
    out = []
    for name, num in zip(text.columns, nums.columns, strict=True):
        t = text.get_column(name).cast(pl.String)
        v = nums.get_column(num).cast(pl.Float64, strict=False)
        exact = v.cast(pl.String)
        lossy = v.is_not_null() & (t.cast(pl.Float64, strict=False) != v).fill_null(False)
        out.append(pl.select(pl.when(lossy).then(exact).otherwise(t).alias(name)).to_series())
    return pl.DataFrame(out)


@dataclass(frozen=True)
class ReadResult:
    frame: pl.DataFrame
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    sheets: tuple[str, ...] = ()    # Excel: every worksheet name; the first one was read


def decode_text(raw: bytes, name: str) -> tuple[str, str]:
    """Decode bytes as UTF-16 (with BOM), UTF-8, UTF-8 with BOM or latin-1; refuse binary
    content. A stray NUL in a cell stays in the text (that cell is then reported, not the file)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):   # Excel "Unicode text" is UTF-16 with BOM
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    if _looks_binary(raw[:65536]):
        raise StudyError("is not a text file (it contains NUL bytes)", file=name,
                         fix="export the table as CSV (UTF-8) or Parquet")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


# Control bytes that text tables do not contain (tab, newline and carriage return excluded).
_CONTROL = bytes([*range(0, 9), 11, 12, *range(14, 32), 127])


def _looks_binary(sample: bytes) -> bool:
    """More than 1% control bytes (at least 2): a binary file, not text with a stray NUL."""
    n_control = len(sample) - len(sample.translate(None, _CONTROL))
    return n_control > max(1, len(sample) // 100)


def _sniff_delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def read_table(path: Path, *, name: str | None = None) -> ReadResult:
    """Read `path` with every column as text. Raises `StudyError` naming the file.

    The limits in force (`data_loaders.guard`) are checked first, from what the file declares
    (size, unpacked size, header columns, line count, Parquet footer, Excel sheet dimension);
    a plain UTF-8 file is then parsed by polars straight from disk, without a copy in Python."""
    name = name or path.name
    guard.note_reading(name)
    try:
        guard.check_file_size(path, name)
    except OSError as exc:
        raise StudyError(f"could not be read: {exc.strerror or exc}", file=name) from None
    suffix = path.suffix.lower()
    if suffix == ".gz":
        suffix = Path(path.stem).suffix.lower()
    try:
        if suffix == ".parquet":
            guard.check_parquet(path, name)
            frame = pl.read_parquet(path)
            frame = frame.with_columns(pl.all().cast(pl.String))
            return ReadResult(frame, "parquet")
        if suffix in (".xlsx", ".xls"):
            import fastexcel

            guard.check_xlsx(path, name)
            reader = fastexcel.read_excel(path)
            sheets = tuple(reader.sheet_names)
            frame = excel_sheet_text(reader, 0, header_row=0)
            return ReadResult(frame, "excel", sheets=sheets)
    except (*_READ_ERRORS, *_excel_errors(), *_arrow_errors()) as exc:
        raise StudyError(f"could not be read as {suffix[1:]}: {_short(exc)}", file=name,
                         fix="check that the file is complete and not truncated; re-export it"
                         ) from None
    raw: bytes | None = None
    if path.suffix.lower() == ".gz":
        try:
            raw = guard.read_gzip(path, name)
        except (OSError, EOFError, zlib.error) as exc:
            raise StudyError(f"is not a valid gzip file: {_short(exc)}", file=name,
                             fix="re-compress the file or store it uncompressed") from None
        sample = raw[:65536]
    else:
        with path.open("rb") as fh:
            sample = fh.read(65536)
    if not sample or (sample.isspace() and (raw is not None or len(sample) < 65536)):
        raise StudyError("is empty", file=name, fix="add a header row and data rows, or remove "
                         "the file")
    guard.check_text_shape(path, name, data=raw)
    source: io.BytesIO | io.StringIO | Path
    if sample.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or _looks_binary(sample):
        raw = raw if raw is not None else path.read_bytes()
        text, encoding = decode_text(raw, name)
        source = io.StringIO(text)
    else:
        # Plain UTF-8 (the common case) goes to polars as bytes or as the file itself: no
        # decoded copy in Python; polars refuses invalid UTF-8 and the text is then decoded
        # as latin-1 below.
        text, encoding = sample.split(b"\n", 1)[0].decode("utf-8", "replace"), "utf-8"
        source = io.BytesIO(raw) if raw is not None else path
    delimiter = _sniff_delimiter(text, suffix)
    try:
        try:
            frame = pl.read_csv(source, separator=delimiter, infer_schema=False,
                                truncate_ragged_lines=False, quote_char='"')
        except pl.exceptions.ComputeError as exc:
            if encoding != "utf-8" or "utf-8" not in str(exc):
                raise
            raw = raw if raw is not None else path.read_bytes()
            text, encoding = decode_text(raw, name)
            frame = pl.read_csv(io.StringIO(text), separator=delimiter, infer_schema=False,
                                truncate_ragged_lines=False, quote_char='"')
    except _READ_ERRORS as exc:
        raise StudyError(f"could not be parsed as a {_delim_name(delimiter)}-separated table: "
                         f"{_short(exc)}", file=name,
                         fix="check for rows with more fields than the header and for "
                         "unbalanced quotes") from None
    frame = frame.with_columns(pl.col(pl.String).str.strip_chars().replace("", None))
    fmt = "tsv" if delimiter == "\t" else "csv"
    return ReadResult(frame, fmt, encoding, delimiter)


def _arrow_errors() -> tuple[type[BaseException], ...]:
    """What pyarrow raises on a damaged Parquet footer."""
    try:
        import pyarrow
    except ImportError:
        return ()
    return (pyarrow.ArrowException,)


def _delim_name(d: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(d, repr(d))


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
