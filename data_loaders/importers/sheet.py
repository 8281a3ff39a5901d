"""Lab sheets as hospitals export them -> canonical tables (the `sheet` source format).

One job: the `sheet` source format (grids, headers, units rows, dates and visits, wide and
long sheets).

A `[[sources]]` entry with `format = "sheet"` names one worksheet (or one CSV file) and the
choices an import made for it; the loader applies them on every load, so a new export of the
same sheet gives the same study:

    [[sources]]
    format = "sheet"
    path = "sources/labs.xlsx"
    [sources.options]
    sheet = "血常规"                 # worksheet (absent for CSV)
    table = "measurements"          # canonical table the sheet feeds
    layout = "wide"                 # wide: one column per analyte; long: one row per value
    header_row = 1                  # spreadsheet row of the header (1 = first row)
    units_row = 2                   # a row of units under the header (0 = none)
    day_from = "date"               # study day from "date" (with infusion_date), "visit", "day"
    day_first = true                # only when slash dates are ambiguous
    columns = { subject_id = "住院号", date = "采样日期" }       # canonical role -> header
    analytes = { "WBC (10^9/L)" = "WBC", "NEUT%" = "NEUT_PCT" } # header -> analyte (wide)
    units = { "WBC (10^9/L)" = "10^9/L", "NEUT%" = "%" }       # header -> unit (wide)
    timepoints = { "Screening" = -14, "D28" = 28 }             # visit label -> study day
    tissue = "blood"                # tissue of every value (optional)

Each cell that is not a number (other than `<0.5`, `>1000` and flag marks such as `↑`, `H`)
is reported with its row and column and left out alone; the other values of its row load.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from data_loaders.errors import StudyError, ValidationReport
from data_loaders.importers.dates import inspect_dates, parse_date
from data_loaders.importers.headers import resolve_analyte
from data_loaders.readers import excel_sheet_text, read_table
from data_loaders.schema import TABLES
from data_loaders.timepoints import label_day

__all__ = ["read_grids", "find_header", "find_units_row", "frame_from_grid", "read_sheet_source",
           "clean_values", "DATE_ROLES"]

DATE_ROLES = ("date", "end_date", "infusion_date")
_NUMBER = r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$"
_FLAGS = r"\s*(?:[↑↓▲▼*]+|\(?[HhLl]\)?|\(?[Hh][Ii]\)?|\(?[Ll][Oo]\)?)$"


def read_grids(path: Path, *, name: str, only: str | None = None) -> dict[str, pl.DataFrame]:
    """Sheet name -> all-text grid (columns column_0.., the sheet's first row first). A CSV or
    TSV file is one grid named "". `only` reads that worksheet alone (absent: no entry)."""
    from data_loaders import guard

    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        import fastexcel

        guard.check_file_size(path, name)      # the study's limits, before anything is read
        guard.check_xlsx(path, name)
        try:
            reader = fastexcel.read_excel(path)
            out = {}
            leads = _leading_empty_rows(path)
            for sheet in reader.sheet_names:
                if only is not None and sheet != only:
                    continue
                grid = excel_sheet_text(reader, sheet, header_row=None)
                grid = grid.rename({c: f"column_{i}" for i, c in enumerate(grid.columns)})
                grid = grid.with_columns(pl.all().cast(pl.String).str.strip_chars()
                                         .replace("", None))
                lead = leads.get(sheet, 0) if grid.height else 0
                if lead:   # the engine starts at the first used row: keep spreadsheet rows
                    grid = pl.concat([pl.DataFrame({c: [None] * lead for c in grid.columns},
                                                   schema=grid.schema), grid])
                out[sheet] = grid
            return out
        except Exception as exc:  # noqa: BLE001 - the Excel engine raises its own error types
            raise StudyError(f"could not be read as an Excel workbook: {str(exc)[:200]}",
                             file=name, fix="re-export the workbook (.xlsx) and try again"
                             ) from None
    if suffix == ".parquet" or (suffix == ".gz" and Path(path.stem).suffix.lower() == ".parquet"):
        res = read_table(path, name=name)
        header = pl.DataFrame([res.frame.columns], schema=[f"column_{i}" for i in
                                                           range(res.frame.width)], orient="row")
        body = res.frame.rename(dict(zip(res.frame.columns, header.columns, strict=True)))
        return {"": pl.concat([header, body.cast(pl.String)])}
    return {"": _text_grid(path, name)}


def decode_export(raw: bytes, name: str) -> tuple[str, str]:
    """Text of a delimited export: UTF-16 / UTF-8 (with or without BOM), then GB18030 (what
    Chinese Windows and hospital systems write) when the bytes read as Chinese, else latin-1.

    GB18030 is taken only when at least 90% of its two-byte characters are in the GB2312 range
    (both bytes 0xA1 or above): latin-1 text with accents (`Müller`) pairs a high byte with an
    ASCII letter and stays latin-1."""
    import re

    from data_loaders.readers import decode_text

    if raw.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return decode_text(raw, name)
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    pairs = re.findall(rb"[\x81-\xfe][\x40-\xfe]", raw[:1 << 20])
    if pairs and sum(p[1] >= 0xA1 for p in pairs) >= 0.9 * len(pairs):
        try:
            return raw.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            pass
    return decode_text(raw, name)


def _text_grid(path: Path, name: str) -> pl.DataFrame:
    """A CSV/TSV/TXT export as a grid: every line a row (title lines above the header too),
    padded to the widest line."""
    import csv
    import io

    from data_loaders import guard

    guard.check_file_size(path, name)
    raw = guard.read_gzip(path, name) if path.suffix.lower() == ".gz" else path.read_bytes()
    if not raw.strip():
        raise StudyError("is empty", file=name, fix="export the table again")
    text, _ = decode_export(raw, name)
    head = "\n".join(text.splitlines()[:20])
    counts = {d: head.count(d) for d in (",", ";", "\t", "|")}
    sep = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else max(counts, key=counts.get)
    if counts.get(sep, 0) == 0:
        sep = ","
    rows = list(csv.reader(io.StringIO(text), delimiter=sep))
    width = max((len(r) for r in rows), default=0)
    if width == 0:
        raise StudyError("has no rows", file=name, fix="export the table again")
    columns = [f"column_{i}" for i in range(width)]
    grid = pl.DataFrame([r + [""] * (width - len(r)) for r in rows], schema=columns,
                        orient="row")
    return grid.with_columns(pl.all().str.strip_chars().replace("", None))


def _attr(tag: str, name: str) -> str | None:
    import re

    m = re.search(rf'(?:^|\s){re.escape(name)}="([^"]*)"', tag)
    return m.group(1) if m else None


def _leading_empty_rows(path: Path) -> dict[str, int]:
    """Sheet -> empty rows above its first used row, from the `<dimension ref="A3:...">` each
    worksheet stores (read from the zip directly: no full parse of the workbook)."""
    import html
    import re
    import zipfile

    if path.suffix.lower() == ".xls":
        return {}
    out: dict[str, int] = {}
    try:
        with zipfile.ZipFile(path) as z:
            book = z.read("xl/workbook.xml").decode("utf-8", "replace")
            rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
            target = {_attr(t, "Id"): _attr(t, "Target")
                      for t in re.findall(r"<Relationship\b[^>]*>", rels)}
            for tag in re.findall(r"<(?:\w+:)?sheet\b[^>]*>", book):
                name, rid = _attr(tag, "name"), _attr(tag, "r:id")
                part = target.get(rid)
                if name is None or not part:
                    continue
                part = part.lstrip("/") if part.startswith("/") else f"xl/{part}"
                with z.open(part) as fh:
                    head = fh.read(4096).decode("utf-8", "replace")
                m = re.search(r'<(?:\w+:)?dimension\s+ref="[A-Z]+(\d+)', head)
                out[html.unescape(name)] = max(0, int(m.group(1)) - 1) if m else 0
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}
    return out


def _is_number(value: str | None) -> bool:
    import re

    return value is not None and re.match(_NUMBER, value.strip()) is not None


def find_header(grid: pl.DataFrame, *, scan: int = 15) -> int:
    """0-based index of the header row: the first of the top rows that fills at least half of
    the widest row's cells with text that is not a number (title rows above it are skipped)."""
    rows = grid.head(scan).rows()
    width = max((sum(v is not None for v in r) for r in rows), default=0)
    for i, r in enumerate(rows):
        cells = [v for v in r if v is not None]
        if len(cells) >= max(2, width / 2) and sum(_is_number(v) for v in cells) <= len(cells) / 4:
            return i
    return 0


def find_units_row(grid: pl.DataFrame, header: int) -> bool:
    """True when the row under the header holds units (most of its cells are units, none a
    number)."""
    from data_loaders.importers.headers import is_unit

    if header + 1 >= grid.height:
        return False
    cells = [v for v in grid.row(header + 1) if v is not None]
    if not cells or any(_is_number(v) for v in cells):
        return False
    return sum(is_unit(v) for v in cells) >= max(1, len(cells) * 0.6)


def frame_from_grid(grid: pl.DataFrame, header: int, units_row: bool
                    ) -> tuple[pl.DataFrame, dict[str, str]]:
    """(frame with the header's names and `_row` = spreadsheet row, header -> unit from the
    units row). Empty or repeated headers get `column_N` / `name (2)`."""
    names: list[str] = []
    for i, v in enumerate(grid.row(header)):
        name = str(v).strip() if v is not None and str(v).strip() else f"column_{i + 1}"
        base, k = name, 2
        while name in names:
            name, k = f"{base} ({k})", k + 1
        names.append(name)
    units: dict[str, str] = {}
    start = header + 1
    if units_row:
        units = {n: str(u).strip() for n, u in zip(names, grid.row(header + 1), strict=True)
                 if u is not None and str(u).strip()}
        start += 1
    body = grid.slice(start).rename(dict(zip(grid.columns, names, strict=True)))
    body = body.with_row_index("_row", offset=start + 1).with_columns(pl.col("_row").cast(pl.Int64))
    keep = pl.any_horizontal(pl.exclude("_row").is_not_null()) if body.width > 1 else pl.lit(True)
    return body.filter(keep), units


def clean_values(column: str) -> list[pl.Expr]:
    """Expressions for `_value` (Float64), `_lloq` (a `<x` cell: value 0 below LLOQ x),
    `_censored` (`>x`) and `_bad` (text that is no number) from a text column."""
    raw = pl.col(column).str.strip_chars()
    text = (raw.str.replace_all("，", ",").str.replace_all("．", ".")
            .str.replace(_FLAGS, "").str.strip_chars())
    below = text.str.contains(r"^(<|＜|≤|<=)")
    above = text.str.contains(r"^(>|＞|≥|>=)")
    bare = text.str.replace(r"^(<=|>=|<|>|＜|＞|≤|≥)\s*", "")
    num = (pl.when(bare.str.contains(_NUMBER)).then(bare.str.replace(",", ".", literal=True))
           .cast(pl.Float64, strict=False))
    return [
        pl.when(below).then(pl.lit(0.0)).otherwise(num).alias("_value"),
        pl.when(below).then(num).otherwise(None).alias("_lloq"),
        (above & num.is_not_null()).alias("_censored"),
        (raw.is_not_null() & num.is_null()).alias("_bad"),
    ]


def _dates(frame: pl.DataFrame, col: str, day_first: bool | None, report: ValidationReport,
           table: str, file: str) -> pl.DataFrame:
    values = frame.get_column(col).to_list()
    info = inspect_dates(values)
    if info.ambiguous and day_first is None:
        example = next(v for v in values if v)
        report.add("error", table, file,
                   f"dates in column {col!r} are ambiguous (e.g. {example!r} could be day-first "
                   "or month-first); they were not read", column=col,
                   fix="say which: --day-first or --month-first (study.toml day_first = "
                   "true/false in this source's options)")
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    if info.conflict:
        report.add("error", table, file, f"dates in column {col!r} mix day-first and "
                   f"month-first ({info.evidence}); they were not read", column=col,
                   fix="export the dates in one form (ISO YYYY-MM-DD is safest)")
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    order = day_first if info.day_first is None else info.day_first
    mapping: dict[str, str | None] = {}
    for v in dict.fromkeys(x for x in values if x is not None):
        d = parse_date(v, day_first=order)
        mapping[v] = d.isoformat() if isinstance(d, date) else None
    parsed = frame.get_column(col).replace_strict(mapping, default=None, return_dtype=pl.String)
    bad = frame.filter(pl.col(col).is_not_null() & parsed.is_null())
    if bad.height:
        examples = ", ".join(repr(v) for v in bad.get_column(col).unique().head(3).to_list())
        report.add("error", table, file, f"value is not a date ({examples})", column=col,
                   rows=bad.get_column("_row").to_list(),
                   fix="write dates as YYYY-MM-DD, YYYY/MM/DD, DD.MM.YYYY or DD/MM/YYYY")
    return frame.with_columns(parsed.alias(col))


def _days_from_visits(frame: pl.DataFrame, col: str, timepoints: dict[str, int],
                      report: ValidationReport, table: str, file: str) -> pl.Series:
    labels = frame.get_column(col).unique().drop_nulls().to_list()
    days = {lab: label_day(lab, overrides=timepoints) for lab in labels}
    unknown = sorted(lab for lab, d in days.items() if d is None)
    if unknown:
        rows = frame.filter(pl.col(col).is_in(unknown)).get_column("_row").to_list()
        report.add("error", table, file, "visit label(s) name no study day: "
                   + ", ".join(repr(u) for u in unknown[:8]), column=col, rows=rows,
                   fix="give their days: --timepoint " + f'"{unknown[0]}=DAY"'
                   + " (study.toml timepoints in this source's options)")
    return frame.get_column(col).replace_strict(
        {k: str(v) for k, v in days.items() if v is not None}, default=None,
        return_dtype=pl.String)


def _grid_for(path: Path, options: dict[str, Any], name: str) -> pl.DataFrame:
    sheet = options.get("sheet")
    grids = read_grids(path, name=name, only=sheet)
    if sheet is None:
        return next(iter(grids.values()))
    if sheet not in grids:
        import fastexcel

        names = fastexcel.read_excel(path).sheet_names
        raise StudyError(f"has no worksheet {sheet!r} (sheets: {', '.join(names)})", file=name,
                         fix="correct the sheet name in study.toml or re-run the import")
    return grids[sheet]


def read_sheet_source(path: Path, options: dict[str, Any], report: ValidationReport, *,
                      label: str | None = None, catalogue: dict | None = None) -> list[Any]:
    """The `sheet` reader: one worksheet or CSV -> one RawTable in canonical columns."""
    from data_loaders.raw import RawTable

    name = label or path.name
    sheet = options.get("sheet")
    file = f"{name} [{sheet}]" if sheet else name
    table = str(options.get("table", "measurements"))
    if table not in TABLES:
        raise StudyError(f"source table {table!r} is not a canonical table", file=name,
                         fix=f"use one of {', '.join(TABLES)}")
    grid = _grid_for(path, options, name)
    header = int(options.get("header_row", 1)) - 1
    units_row = int(options.get("units_row", 0) or 0) == header + 2
    frame, _ = frame_from_grid(grid, header, units_row)
    columns: dict[str, str] = dict(options.get("columns", {}) or {})
    missing = [h for h in columns.values() if h not in frame.columns]
    if missing:
        raise StudyError(f"column(s) {', '.join(repr(m) for m in missing)} named in study.toml "
                         f"are not in the sheet (found: {', '.join(frame.columns[1:20])})",
                         file=file, fix="re-run the import on this export, or correct the "
                         "column names in study.toml")
    day_first = options.get("day_first")
    for role in DATE_ROLES:
        if role in columns:
            frame = _dates(frame, columns[role], day_first, report, table, file)
    timepoints = {str(k): int(v) for k, v in (options.get("timepoints", {}) or {}).items()}
    day_from = str(options.get("day_from", "date" if "date" in columns else
                               "visit" if "visit" in columns else "day"))
    if options.get("layout", "long") == "wide":
        out = _wide(frame, options, columns, report, file=file, catalogue=catalogue,
                    day_from=day_from, timepoints=timepoints)
    else:
        out = _long(frame, table, columns, report, file=file, catalogue=catalogue,
                    day_from=day_from, timepoints=timepoints)
    return [RawTable(table, file, out, "sheet")]


def _base(frame: pl.DataFrame, columns: dict[str, str], report: ValidationReport, *, table: str,
          file: str, day_from: str, timepoints: dict[str, int]) -> pl.DataFrame:
    """The canonical key columns of each row (subject_id, day/date, visit, ...), as text."""
    exprs = [pl.col("_row")]
    for role, header in columns.items():
        if role in ("analyte", "value", "unit"):
            continue
        exprs.append(pl.col(header).alias(role))
    out = frame.select(exprs)
    if "day" in columns:     # a day column may hold labels too ("D7", "Day 28")
        out = out.with_columns(_days_from_visits(frame, columns["day"], timepoints, report,
                                                 table, file).alias("day"))
    if "visit" in columns and (day_from == "visit" or "date" not in columns):
        days = _days_from_visits(frame, columns["visit"], timepoints, report, table, file)
        out = out.with_columns(days.alias("day") if "day" not in columns else
                               pl.coalesce(pl.col("day"), days).alias("day"))
    if day_from == "date" and "date" in columns and "day" in out.columns and "day" not in columns:
        out = out.drop("day")        # dates decide; the visit label stays as `visit`
    return out


def _wide(frame: pl.DataFrame, options: dict[str, Any], columns: dict[str, str],
          report: ValidationReport, *, file: str, catalogue: dict | None, day_from: str,
          timepoints: dict[str, int]) -> pl.DataFrame:
    analytes: dict[str, str] = dict(options.get("analytes", {}) or {})
    units: dict[str, str] = dict(options.get("units", {}) or {})
    absent = [h for h in analytes if h not in frame.columns]
    if absent:
        report.add("warning", "measurements", file, "analyte column(s) named in study.toml are "
                   f"not in this export: {', '.join(absent[:10])}",
                   fix="nothing to do if the lab stopped reporting them; else re-run the import")
    present = [h for h in analytes if h in frame.columns]
    base = _base(frame, columns, report, table="measurements", file=file, day_from=day_from,
                 timepoints=timepoints)
    parts = []
    for h in present:
        parts.append(frame.select(
            "_row", pl.lit(analytes[h]).alias("analyte"),
            pl.lit(units.get(h), dtype=pl.String).alias("unit"),
            pl.lit(h).alias("_column"), pl.col(h).alias("_cell")))
    if not parts:
        raise StudyError("no analyte columns to import", file=file,
                         fix="name the analyte columns in study.toml analytes")
    long = pl.concat(parts).filter(pl.col("_cell").is_not_null())
    # plain numbers (the common case) skip the text clean-up of flags, <x and decimal commas
    fast = long.with_columns(pl.col("_cell").str.strip_chars().cast(pl.Float64, strict=False)
                             .alias("_value"))
    plain = fast.filter(pl.col("_value").is_not_null() & pl.col("_value").is_finite())
    rest = fast.filter(pl.col("_value").is_null() | ~pl.col("_value").is_finite()) \
        .drop("_value").with_columns(clean_values("_cell"))
    long = pl.concat([plain.with_columns(pl.lit(None, dtype=pl.Float64).alias("_lloq"),
                                         pl.lit(False).alias("_censored"),
                                         pl.lit(False).alias("_bad")),
                      rest.select(plain.columns + ["_lloq", "_censored", "_bad"])])
    _report_cells(long, report, file)
    long = long.filter(~pl.col("_bad"))
    out = long.join(base, on="_row", how="left")
    if options.get("tissue") and "tissue" not in out.columns:
        out = out.with_columns(pl.lit(str(options["tissue"])).alias("tissue"))
    out = _drop_conflicts(out, report, file)
    return out.select(
        "_row", *[c for c in base.columns if c != "_row"], "analyte",
        pl.col("_value").cast(pl.String).alias("value"), "unit",
        pl.col("_lloq").cast(pl.String).alias("lloq")).sort("_row", maintain_order=True)


def _report_cells(long: pl.DataFrame, report: ValidationReport, file: str) -> None:
    for (col,), grp in long.filter(pl.col("_bad")).group_by(["_column"], maintain_order=True):
        examples = ", ".join(repr(v) for v in grp.get_column("_cell").unique().head(3).to_list())
        report.add("error", "measurements", file, f"value is not a number ({examples}); "
                   f"{grp.height} cell(s) left out, the other values of these rows kept",
                   column=col, rows=grp.get_column("_row").to_list(),
                   fix="give plain numbers; <x (below the limit) and >x are read")
    neg = long.filter(pl.col("_value") < 0)
    for (col,), grp in neg.group_by(["_column"], maintain_order=True):
        report.add("error", "measurements", file, f"negative value; {grp.height} cell(s) "
                   "left out", column=col, rows=grp.get_column("_row").to_list(),
                   fix="counts and concentrations cannot be negative; correct the sign")
    below = long.filter(pl.col("_lloq").is_not_null())
    if below.height:
        report.add("note", "measurements", file, f"{below.height} value(s) given as <x were "
                   "read as below the limit (value 0, lloq x)", column=None,
                   rows=below.get_column("_row").to_list()[:50])
    above = long.filter(pl.col("_censored"))
    if above.height:
        report.add("warning", "measurements", file, f"{above.height} value(s) given as >x were "
                   "read as x (censored above the measuring range)",
                   rows=above.get_column("_row").to_list()[:50],
                   fix="nothing to do unless the exact value is known")


def _drop_conflicts(out: pl.DataFrame, report: ValidationReport, file: str) -> pl.DataFrame:
    """Two different values of one analyte for one patient at one time: both cells left out
    (reported), so the loader's duplicate check does not drop the other analytes of the rows."""
    out = out.filter(~(pl.col("_value") < 0))
    when = [c for c in ("subject_id", "date", "day", "time", "tissue") if c in out.columns]
    key = [*when, "analyte"]
    repeated = out.filter(pl.struct(key).is_duplicated())     # cheap: usually empty
    clash = repeated.filter(pl.col("_value").n_unique().over(key) > 1)
    if clash.height:
        for (analyte,), grp in clash.group_by(["analyte"], maintain_order=True):
            report.add("error", "measurements", file, f"{analyte}: different values for the "
                       f"same patient and time ({grp.height} cells); left out",
                       column=str(grp.get_column("_column")[0]),
                       rows=grp.get_column("_row").to_list(),
                       fix="keep one value per patient, day and analyte (or add a time column)")
        out = out.join(clash.select("_row", "analyte"), on=["_row", "analyte"], how="anti")
    if repeated.height:
        out = out.unique(subset=[*key, "_value"], keep="first", maintain_order=True)
    return out


def _long(frame: pl.DataFrame, table: str, columns: dict[str, str], report: ValidationReport, *,
          file: str, catalogue: dict | None, day_from: str, timepoints: dict[str, int]
          ) -> pl.DataFrame:
    from data_loaders.discovery import standardise_columns

    base = _base(frame, columns, report, table=table, file=file, day_from=day_from,
                 timepoints=timepoints)
    mapped = {h for r, h in columns.items()}
    rest = frame.select([c for c in frame.columns if c not in mapped and c != "_row"])
    rest = standardise_columns(rest, {}, canonical=TABLES[table].columns)
    rest = rest.select([c for c in rest.columns if c not in base.columns])
    out = pl.concat([base, rest], how="horizontal")
    for role in ("analyte", "value", "unit"):
        if role in columns:
            out = out.with_columns(frame.get_column(columns[role]).alias(role))
    if table == "measurements" and "analyte" in out.columns:
        if "unit" not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.String).alias("unit"))
        pairs = out.select("analyte", "unit").unique().drop_nulls("analyte")
        fixed = [(a, u, resolve_analyte(a, u, catalogue)[0]) for a, u in pairs.rows()]
        mapping = pl.DataFrame([f for f in fixed if f[2] is not None],
                               schema={"analyte": pl.String, "unit": pl.String,
                                       "_canon": pl.String}, orient="row")
        out = out.join(mapping, on=["analyte", "unit"], how="left", nulls_equal=True) \
            .with_columns(pl.coalesce("_canon", "analyte").alias("analyte")).drop("_canon")
    if table == "samples" and "visit" in out.columns and "timepoint" not in out.columns:
        out = out.rename({"visit": "timepoint"})
    if table == "patients" and "sex" in out.columns:
        out = out.with_columns(pl.col("sex").replace({"男": "M", "女": "F"}))
    return out
