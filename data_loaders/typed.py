"""Typing one raw table: required and extra columns, text cut to length, cells that look like
spreadsheet formulas, each column cast to its kind (number, whole number, date, true/false)
with a finding per bad cell, study days derived from dates, subject and sample ids checked
against the patients and samples tables. Bad rows are collected and left out at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from data_loaders.analytes import Analyte
from data_loaders.discovery import standardise_columns
from data_loaders.errors import ValidationReport
from data_loaders.raw import RawTable
from data_loaders.schema import TableSpec

__all__ = ["Context", "Rows", "TableCheck", "validate_raw", "derive_days", "check_subjects",
           "check_samples"]

_MAX_TEXT = 2000          # longer free text is cut (ids that long are errors anyway)
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass
class Context:
    """What the checks of one study share: the report, the analyte catalogue, the earliest
    plausible day, and the patients and samples tables once they are validated."""

    report: ValidationReport
    catalogue: dict[str, Analyte]
    min_day: int
    patients: pl.DataFrame | None = None
    samples: pl.DataFrame | None = None


class Rows:
    """Collects row errors of one raw frame; bad rows are left out at the end."""

    def __init__(self, raw: RawTable, ctx: Context) -> None:
        self.raw, self.ctx = raw, ctx
        self.bad: set[int] = set()

    def flag(self, df: pl.DataFrame, mask: pl.Expr, problem: str, *, column: str | None,
             fix: str, severity: str = "error") -> None:
        hit = df.filter(mask)
        if hit.height == 0:
            return
        rows = hit.get_column("_row").to_list()
        self.ctx.report.add(severity, self.raw.table, self.raw.file, problem, fix=fix,
                            column=column, rows=rows)
        if severity == "error":
            self.bad.update(rows)


# a table's own rules (data_loaders.table_rules): frame, rows, context -> checked frame
TableCheck = Callable[[pl.DataFrame, "Rows", Context], pl.DataFrame]


def validate_raw(raw: RawTable, spec: TableSpec, ctx: Context, *,
                 table_check: TableCheck | None = None) -> pl.DataFrame | None:
    """`raw` typed as `spec`, with `table_check` (the table's own rules) run on the typed
    frame; rows with errors are left out and counted. None when a required column is
    missing (the whole file is unusable as that table)."""
    # A format reader that filters or reorders records keeps their source row numbers in _row.
    df = (raw.frame if "_row" in raw.frame.columns
          else raw.frame.with_row_index("_row", offset=raw.row_offset)).with_columns(
        pl.col("_row").cast(pl.Int64))
    rep = ctx.report
    rows = Rows(raw, ctx)

    # required columns (day may come from a date column)
    missing = [c for c in spec.required if c not in df.columns
               and not (c == "day" and "date" in df.columns)]
    if missing:
        found = ", ".join(c for c in raw.frame.columns[:30])
        header = _header_row_below(raw, spec)
        rep.add("error", raw.table, raw.file,
                f"required column(s) {', '.join(repr(m) for m in missing)} missing "
                f"(found: {found})" + (f"; the header looks like it is on row {header}, "
                                       "below title or merged rows" if header else ""),
                fix=(f"delete the rows above row {header} so the header is row 1; "
                     if header else "") + f"add or rename the column(s); {raw.table} needs "
                f"{', '.join(spec.required)} (rename in study.toml [tables.{raw.table}] rename)")
        return None
    extra = [c for c in df.columns if c not in spec.columns and c not in ("_row", "date",
                                                                          "end_date")]
    if extra:
        rep.add("note", raw.table, raw.file,
                f"extra column(s) kept as they are: {', '.join(extra[:12])}"
                + (" ..." if len(extra) > 12 else ""),
                fix="nothing to do; rename them in study.toml [tables."
                f"{raw.table}] rename if they hold a known column")

    df = _cut_long_text(df, spec, rows)
    _flag_formulas(df, spec, rows)
    for col, kind in spec.columns.items():
        if col not in df.columns:
            continue
        df = _cast(df, col, kind, rows)
    for col in ("date", "end_date"):
        if col in df.columns:
            df = _cast(df, col, "date", rows)
    schema = spec.polars_schema()
    df = df.with_columns([pl.lit(None, dtype=schema[c]).alias(c) for c in spec.optional
                          if c not in df.columns])

    if spec.by_subject and raw.table != "patients":
        df = derive_days(df, rows, ctx)
        df = check_subjects(df, rows, ctx)
    if not spec.by_subject:
        df = check_samples(df, rows, ctx)

    if table_check is not None:
        df = table_check(df, rows, ctx)

    if rows.bad:
        df = df.filter(~pl.col("_row").is_in(list(rows.bad)))
        rep.add("warning", raw.table, raw.file,
                f"{len(rows.bad):,} row(s) with errors left out; {df.height:,} row(s) passed "
                "the checks",
                fix="correct the rows listed in the errors above and reload")
    keep = [c for c in spec.columns if c in df.columns]
    keep += [c for c in df.columns if c not in spec.columns and c not in ("_row",)]
    df = df.with_columns(pl.lit(raw.file).alias("_file"))
    return df.select([*spec.columns, *[c for c in keep if c not in spec.columns], "_row",
                      "_file"])


def _cut_long_text(df: pl.DataFrame, spec: TableSpec, rows: Rows) -> pl.DataFrame:
    schema = df.schema
    text_cols = [c for c in df.columns if c != "_row" and schema[c] == pl.String]
    # one pass over every column finds the few with long cells (a table may have 10^4
    # columns: per-column filters would make this quadratic)
    for c in _columns_where(df, text_cols, lambda v: v.str.len_chars() > _MAX_TEXT):
        too_long = pl.col(c).str.len_chars() > _MAX_TEXT
        if spec.columns.get(c) == "str" and c in spec.required:
            rows.flag(df, too_long, f"value longer than {_MAX_TEXT} characters", column=c,
                      fix="an identifier this long is a corrupted cell; correct it")
        else:
            rows.flag(df, too_long, f"text longer than {_MAX_TEXT} characters was cut",
                      column=c, fix="shorten the text", severity="warning")
            df = df.with_columns(pl.col(c).str.slice(0, _MAX_TEXT))
    return df


def _columns_where(df: pl.DataFrame, columns: list[str],
                   mask: Callable[[pl.Series], pl.Series]) -> list[str]:
    """The columns in which `mask(series)` holds for at least one row. Walks the frame's
    series once (lookups by name, or one query of 10^4 expressions, grow faster than the
    number of columns)."""
    wanted = set(columns)
    return [col.name for col in df.get_columns() if col.name in wanted and mask(col).any()]


def _header_row_below(raw: RawTable, spec: TableSpec) -> int | None:
    """Spreadsheet row of a header hidden below title rows (merged Excel cells), if any."""
    need = set(spec.required) - {"day"}
    for i, values in enumerate(raw.frame.head(10).iter_rows()):
        cells = {standardise_columns(pl.DataFrame({str(v): []}), {}).columns[0]
                 for v in values if v is not None}
        if need <= cells:
            return raw.row_offset + i
    return None


# A text cell that a spreadsheet would run as a formula: "=...", "@...", "+cmd", "-cmd|...".
_FORMULA = r"^(?:[=@]|[+\-][^\d.\s])"


def _flag_formulas(df: pl.DataFrame, spec: TableSpec, rows: Rows) -> None:
    """Warn about text cells (not numbers or dates about to be parsed) that look like formulas."""
    schema = df.schema
    text = [c for c in df.columns if schema[c] == pl.String and c not in (
        "_row", "date", "end_date") and spec.columns.get(c, "str") == "str"]
    for c in _columns_where(df, text, lambda v: v.str.contains(_FORMULA)):
        rows.flag(df, pl.col(c).str.contains(_FORMULA), "text starts like a spreadsheet formula "
                  "(kept as plain text)", column=c, severity="warning",
                  fix="remove the leading =, +, - or @ unless it is meant; CSV downloads "
                  "prefix such cells with ' so spreadsheets do not run them")


def _cast(df: pl.DataFrame, col: str, kind: str, rows: Rows) -> pl.DataFrame:
    src = pl.col(col)
    present = src.is_not_null()
    if kind == "str":
        return df
    if kind in ("float", "int"):
        text = src.str.replace_all(",", ".") if df.schema[col] == pl.String else src
        num = text.cast(pl.Float64, strict=False)
        df = df.with_columns(num.alias("_num"))
        rows.flag(df, present & pl.col("_num").is_null(), "value is not a number", column=col,
                  fix="write a whole number (study day 0 = infusion, e.g. 7 not D7)"
                  if kind == "int" else
                  "use plain numbers (e.g. 0.45) with the unit in its own column")
        rows.flag(df, pl.col("_num").is_nan() | pl.col("_num").is_infinite(),
                  "value is not finite (NaN or infinity)", column=col,
                  fix="leave the cell empty or give a real value")
        if kind == "int":
            rows.flag(df, pl.col("_num").is_finite() & (pl.col("_num") != pl.col("_num").round()),
                      "value must be a whole number", column=col,
                      fix="study days and grades are integers (day 0 = infusion)")
            df = df.with_columns(
                pl.when(pl.col("_num").is_finite() & (pl.col("_num").abs() < 1e12))
                .then(pl.col("_num").round().cast(pl.Int64)).otherwise(None).alias(col))
        else:
            df = df.with_columns(
                pl.when(pl.col("_num").is_finite()).then(pl.col("_num")).otherwise(None)
                .alias(col))
        return df.drop("_num")
    if kind == "date":
        text = src.cast(pl.String).str.slice(0, 10)
        parsed = pl.coalesce(text.str.strptime(pl.Date, "%Y-%m-%d", strict=False),
                             src.cast(pl.String).str.strptime(pl.Date, "%d%b%Y", strict=False))
        df = df.with_columns(parsed.alias("_date"))
        rows.flag(df, present & pl.col("_date").is_null(), "value is not a date", column=col,
                  fix="write dates as YYYY-MM-DD (ISO 8601)")
        return df.with_columns(pl.col("_date").alias(col)).drop("_date")
    if kind == "bool":
        low = src.cast(pl.String).str.to_lowercase()
        df = df.with_columns(
            pl.when(low.is_in(list(_TRUE))).then(True)
            .when(low.is_in(list(_FALSE))).then(False).otherwise(None).alias("_b"))
        rows.flag(df, present & pl.col("_b").is_null(), "value is not true/false", column=col,
                  fix="use true or false")
        return df.with_columns(pl.col("_b").alias(col)).drop("_b")
    raise ValueError(kind)


def derive_days(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    if "day" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.Int64).alias("day"))
    for day_col, date_col in (("day", "date"), ("end_day", "end_date")):
        if date_col not in df.columns:
            continue
        if day_col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.Int64).alias(day_col))
        inf = (ctx.patients.select("subject_id", "infusion_date")
               if ctx.patients is not None and "infusion_date" in ctx.patients.columns
               else pl.DataFrame(schema={"subject_id": pl.String, "infusion_date": pl.Date}))
        df = df.join(inf, on="subject_id", how="left")
        need = pl.col(day_col).is_null() & pl.col(date_col).is_not_null()
        rows.flag(df, need & pl.col("infusion_date").is_null(),
                  f"{day_col} cannot be derived from {date_col}: the patient has no "
                  "infusion_date", column=date_col,
                  fix="give infusion_date in patients or a study day column")
        df = df.with_columns(
            pl.when(need).then((pl.col(date_col) - pl.col("infusion_date")).dt.total_days())
            .otherwise(pl.col(day_col)).cast(pl.Int64).alias(day_col)).drop("infusion_date")
    rows.flag(df, pl.col("day").is_null() & ~pl.col("_row").is_in(list(rows.bad)),
              "day is missing", column="day",
              fix="give the study day (day 0 = infusion) or a date plus patients.infusion_date")
    rows.flag(df, pl.col("day") < ctx.min_day,
              f"day is earlier than {ctx.min_day} (before any plausible screening)",
              column="day", fix="check the sign and the reference date (day 0 = infusion)")
    if ctx.patients is not None and "death_day" in ctx.patients.columns:
        df = df.join(ctx.patients.select("subject_id", pl.col("death_day").alias("_death")),
                     on="subject_id", how="left")
        rows.flag(df, pl.col("_death").is_not_null() & (pl.col("day") > pl.col("_death")),
                  "day is after the patient's death_day", column="day",
                  fix="check the day or the patient's death_day")
        df = df.drop("_death")
    return df


def check_subjects(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    if ctx.patients is None or ctx.patients.height == 0:
        rows.flag(df, pl.lit(True), "no patients table to check subject_id against",
                  column="subject_id", fix="add patients.csv with one row per subject_id")
        return df
    rows.flag(df, pl.col("subject_id").is_null(), "subject_id is empty", column="subject_id",
              fix="every row needs the patient's subject_id")
    _flag_unknown_ids(df, rows, "subject_id", ctx.patients.get_column("subject_id"),
                      "is not in the patients table",
                      "add the patient to patients or correct the id")
    return df


def _flag_unknown_ids(df: pl.DataFrame, rows: Rows, column: str, known: pl.Series,
                      problem: str, fix: str) -> None:
    """One finding per unknown id (the first 20), then one for all the others."""
    unknown = pl.col(column).is_not_null() & ~pl.col(column).is_in(known.implode())
    ids = df.filter(unknown).get_column(column).unique().sort().to_list()
    for value in ids[:20]:
        rows.flag(df, pl.col(column) == value, f"{column} {value[:60]!r} {problem}",
                  column=column, fix=fix)
    if len(ids) > 20:
        rows.flag(df, pl.col(column).is_in(ids[20:]),
                  f"{len(ids) - 20:,} more {column} values {problem}", column=column, fix=fix)


def check_samples(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    if ctx.samples is None or ctx.samples.height == 0:
        rows.flag(df, pl.lit(True), "no samples table links sample_id to patient and day",
                  column="sample_id",
                  fix="add samples.csv with sample_id, subject_id and day")
        return df
    rows.flag(df, pl.col("sample_id").is_null(), "sample_id is empty", column="sample_id",
              fix="every row needs the sample_id of its specimen")
    _flag_unknown_ids(df, rows, "sample_id", ctx.samples.get_column("sample_id"),
                      "is not in the samples table",
                      "add the sample to samples (sample_id, subject_id, day) or correct it")
    return df
