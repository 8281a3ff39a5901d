"""`load_study(path)`: a study folder -> validated, canonical, read-only `Study`.

Every file is read as text, mapped to canonical column names, typed and checked row by row.
Problems go to the `ValidationReport` with file, spreadsheet row (header = row 1), column and
what to do. Rows with errors are left out and counted; the rest of that table and every other
table still load. Only a missing or unreadable study folder raises `StudyError`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from analysis.vocab import fold_tissue_expr
from data_loaders import guard
from data_loaders.analytes import Analyte, canonical_analyte, catalogue_with
from data_loaders.errors import StudyError, ValidationReport
from data_loaders.readers import read_table
from data_loaders.schema import (
    COLUMN_ALIASES,
    EVENT_CATEGORIES,
    MEDICATION_CLASSES,
    RESPONSES,
    TABLES,
    TABULAR_SUFFIXES,
    TableSpec,
    medication_class_expr,
)
from data_loaders.study import SourceInfo, Study, empty_table, fingerprint
from data_loaders.units import convert_units, known_units_for

__all__ = ["load_study", "RawTable", "standardise_columns"]

_MAX_TEXT = 2000          # longer free text is cut (ids that long are errors anyway)
_DEFAULT_MIN_DAY = -365   # a day earlier than a year before infusion is taken as a typo
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_RESPONSE_WORDS = {"COMPLETE RESPONSE": "CR", "PARTIAL RESPONSE": "PR", "NO RESPONSE": "NR",
                   "NON-RESPONSE": "NR", "NONRESPONSE": "NR", "NOT EVALUABLE": "NE"}
# Medication classes as people write them -> MEDICATION_CLASSES.
_MEDICATION_WORDS = {"steroid": "corticosteroid", "steroids": "corticosteroid",
                     "corticosteroids": "corticosteroid", "glucocorticoid": "corticosteroid",
                     "cyclosporine": "ciclosporin", "cyclosporin": "ciclosporin",
                     "csa": "ciclosporin", "tpo": "tpo_ra", "tpo_receptor_agonist": "tpo_ra",
                     "gcsf": "g_csf", "g_csf": "g_csf", "growth_factor": "g_csf",
                     "antiinfective": "anti_infective", "anti_infectives": "anti_infective",
                     "antibiotic": "anti_infective", "antiviral": "anti_infective",
                     "antifungal": "anti_infective", "il6_blocker": "tocilizumab"}
_PRODUCTS = {"RBC": "RBC", "PRBC": "RBC", "RED CELLS": "RBC", "RED BLOOD CELLS": "RBC",
             "PACKED RED CELLS": "RBC", "ERYTHROCYTES": "RBC", "PLT": "PLT",
             "PLATELETS": "PLT", "PLATELET": "PLT"}


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


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------
def load_study(path: str | Path) -> Study:
    """Load a study folder. Raises `StudyError` only when the folder itself cannot be used."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise StudyError("is not a study folder (it does not exist or is not a directory)",
                         file=str(root), fix="give the path of a folder with patients.csv "
                         "and the other study tables")
    report = ValidationReport()
    config = _read_config(root, report)
    try:
        limits = guard.limits_for(root, config)
    except StudyError as err:
        report.add_error(err, table="study", file="study.toml")
        limits = guard.limits_for(root, {})
    with guard.using(limits):
        return _load(root, config, report)


def _load(root: Path, config: dict[str, Any], report: ValidationReport) -> Study:
    catalogue = catalogue_with(config.get("analytes", {}) or {})
    raws, single_cell_file = _collect_sources(root, config, report)

    ctx = _Context(report=report, catalogue=catalogue,
                   min_day=int(config.get("validation", {}).get("min_day", _DEFAULT_MIN_DAY)))
    tables: dict[str, pl.DataFrame] = {}
    sources: list[SourceInfo] = []
    populations: pl.DataFrame | None = None
    for name in ("patients", "samples", "measurements", "events", "responses", "proteomics",
                 "mutations", "tcr"):
        frames = []
        for raw in [r for r in raws if r.table == name]:
            typed = _validate(raw, TABLES[name], ctx)
            n_loaded = typed.height if typed is not None else 0
            sources.append(SourceInfo(name, raw.file, raw.format, raw.frame.height, n_loaded,
                                      raw.encoding, raw.delimiter))
            if typed is not None:
                frames.append(typed)
        if name == "measurements":
            populations, flow_rows = _gated_flow(root, config, frames, ctx)
            if flow_rows is not None:
                typed = _validate(flow_rows, TABLES[name], ctx)
                sources.append(SourceInfo(name, flow_rows.file, "gating", flow_rows.frame.height,
                                          typed.height if typed is not None else 0))
                if typed is not None:
                    frames = [_without_gated(f, typed, ctx) for f in frames] + [typed]
        table = _combine(name, frames, ctx)
        tables[name] = table
        if name == "patients":
            ctx.patients = table
        if name == "samples":
            ctx.samples = table
    rna_raws = [r for r in raws if r.table == "rna_counts"]
    for raw in rna_raws:
        rna = _validate_rna(raw, ctx)
        sources.append(SourceInfo("rna_counts", raw.file, raw.format, raw.frame.height,
                                  rna.height, raw.encoding, raw.delimiter))
        if rna.height:
            tables["rna_counts"] = rna
            break
    if single_cell_file is None and any(str(s.get("format", "")).lower() == "10x"
                                        for s in config.get("sources", []) or []):
        from data_loaders.formats.tenx import single_cell_from_sources

        single_cell_file = single_cell_from_sources(root, config, tables["samples"], report)
    sc_config = config
    if str((config.get("single_cell") or {}).get("format", "")).lower() == "10x":
        from data_loaders.single_cell.check import single_cell_from_10x

        single_cell_file = single_cell_from_10x(root, config["single_cell"], tables["samples"],
                                                report)
        sc_config = {**config, "single_cell": {}}   # the converted file uses canonical names
    store = None
    if single_cell_file is not None:
        store = _check_single_cell(root, single_cell_file, sc_config, ctx, sources, tables)
        single_cell_file = store.path if store is not None else None

    study_cfg = config.get("study", {}) or {}
    if populations is not None:
        tables["populations"] = populations
    return Study(
        path=root.resolve(),
        study_id=str(study_cfg.get("id", root.name)),
        title=str(study_cfg.get("title", root.name)),
        config=config,
        catalogue=catalogue,
        report=report,
        fingerprint=fingerprint(root),
        sources=tuple(sources),
        single_cell_file=single_cell_file,
        single_cell=store,
        **tables,
    )


@dataclass
class _Context:
    report: ValidationReport
    catalogue: dict[str, Analyte]
    min_day: int
    patients: pl.DataFrame | None = None
    samples: pl.DataFrame | None = None


def _gated_flow(root: Path, config: dict[str, Any], frames: list[pl.DataFrame], ctx: _Context
                ) -> tuple[pl.DataFrame | None, RawTable | None]:
    """Gate the study's FCS files (data_loaders/flow.py) once samples are known; the
    [flow.analytes] mapping gives measurement rows, validated like any other file's."""
    from data_loaders import flow

    if "flow" in config and not isinstance(config["flow"], dict):
        ctx.report.add("error", "flow", "study.toml", "[flow] must be a table",
                       fix='write it as a section: [flow] then gating = "flow/panel.wsp"')
    samples = ctx.samples if ctx.samples is not None else empty_table("samples")
    has_column = "gating" in samples.columns and samples.get_column("gating").is_not_null().any()
    if not (flow.flow_config(config).configured or has_column):
        return None, None
    pops = flow.gate_study(root, config, samples, ctx.report)
    cfg = flow.flow_config(config)
    units = {m.analyte: (ctx.catalogue[m.analyte].unit if m.analyte in ctx.catalogue else "")
             for m in cfg.analytes}
    for m in cfg.analytes:
        if m.analyte not in ctx.catalogue:
            ctx.report.add("error", "flow", "study.toml", f"[flow.analytes] maps "
                           f"{m.pattern!r} to {m.analyte!r}, which is not a known analyte",
                           fix="use a canonical analyte (CAR_PCT, CD7NEG_T_PCT, NK_ABS, ...) or "
                           "declare it under [analytes.NAME] with panel and unit")
    known = [f.select("subject_id", "day", "analyte", "value") for f in frames
             if {"subject_id", "day", "analyte", "value"} <= set(f.columns)]
    counts = (pl.concat(known).filter(pl.col("analyte").is_in(["ALC", "WBC"])) if known else
              pl.DataFrame(schema={"subject_id": pl.String, "day": pl.Int64,
                                   "analyte": pl.String, "value": pl.Float64}))
    rows = flow.population_measurements(pops, cfg, units=units, counts=counts,
                                        samples=samples, report=ctx.report)
    if rows.height == 0:
        return pops, None
    text = rows.with_columns(pl.all().cast(pl.String))
    return pops, RawTable("measurements", cfg.gating or "gating", text, "gating")


def _without_gated(frame: pl.DataFrame, gated: pl.DataFrame, ctx: _Context) -> pl.DataFrame:
    """A file's measurements minus those the gated FCS files give anew (same patient, day,
    analyte, tissue): the values computed from the events and gates are kept."""
    key = ["subject_id", "day", "analyte", "tissue"]
    hit = frame.join(gated.select(key).unique(), on=key, how="semi", nulls_equal=True)
    if hit.height == 0:
        return frame
    for (file,), grp in hit.group_by(["_file"], maintain_order=True):
        ctx.report.add("warning", "measurements", str(file),
                       f"{grp.height} value(s) replaced by the populations gated from the FCS "
                       f"files ({', '.join(sorted(set(grp.get_column('analyte').to_list())))})",
                       column="value", rows=grp.get_column("_row").to_list(),
                       fix="nothing to do if the gated values are the ones to use; else remove "
                       "the analyte from [flow.analytes] in study.toml")
    return frame.join(gated.select(key).unique(), on=key, how="anti", nulls_equal=True)


# --------------------------------------------------------------------------------------------
# finding files
# --------------------------------------------------------------------------------------------
def _read_config(root: Path, report: ValidationReport) -> dict[str, Any]:
    cfg_path = root / "study.toml"
    if not cfg_path.exists():
        return {}
    try:
        return tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        report.add("error", "study", "study.toml", f"is not valid TOML: {exc}",
                   fix="fix the syntax (see docs/data-format.md); files are found by their "
                   "conventional names meanwhile")
        return {}


def _conventional(root: Path, table: str) -> list[Path]:
    out = []
    for suffix in TABULAR_SUFFIXES + (".csv.gz", ".tsv.gz"):
        p = root / f"{table}{suffix}"
        if p.is_file():
            out.append(p)
    return out


def _collect_sources(root: Path, config: dict[str, Any], report: ValidationReport
                     ) -> tuple[list[RawTable], Path | None]:
    from data_loaders.formats import read_source

    raws: list[RawTable] = []
    table_cfg = config.get("tables", {}) or {}
    for table in list(TABLES) + ["rna_counts"]:
        cfg = table_cfg.get(table, {}) or {}
        names = cfg.get("files") or ([cfg["file"]] if cfg.get("file") else None)
        paths = [root / n for n in names] if names else _conventional(root, table)
        for p in paths:
            rel = _rel(root, p)
            if not _inside(root, p):
                report.add("error", table, rel, "lies outside the study folder",
                           fix="keep every study file inside the study folder")
                continue
            if not p.is_file():
                report.add("error", table, rel, "is named in study.toml but does not exist",
                           fix="correct the file name in study.toml [tables."
                           f"{table}] or add the file")
                continue
            try:
                res = read_table(p, name=rel)
            except StudyError as err:
                report.add_error(err, table=table, file=rel)
                continue
            if res.frame.height == 0:
                report.add("error", table, rel, "has a header but no data rows",
                           fix="add data rows or remove the file")
                continue
            frame = standardise_columns(
                res.frame, cfg.get("rename", {}) or {}, wide=table == "rna_counts",
                canonical=TABLES[table].columns if table in TABLES else ())
            raws.append(RawTable(table, rel, frame, res.format, res.encoding, res.delimiter))
            if res.encoding and res.encoding != "utf-8":
                report.add("note", table, rel, f"read with encoding {res.encoding}",
                           fix="save as UTF-8 to avoid mis-read accents")
            if res.delimiter and res.delimiter not in (",", "\t"):
                report.add("note", table, rel, f"read with delimiter {res.delimiter!r}",
                           fix="nothing to do; a comma-separated UTF-8 file is the most "
                           "portable")
            if res.sheets:
                others = list(res.sheets[1:])
                report.add("note", table, rel,
                           f"read the first worksheet {res.sheets[0]!r} of an Excel workbook"
                           + (f"; other sheets not read: {', '.join(others[:6])}" if others
                              else ""),
                           fix="keep one table per workbook on its first sheet, or save each "
                           "sheet as its own CSV file")
    catalogue = catalogue_with(config.get("analytes", {}) or {})
    for source in config.get("sources", []) or []:
        if str(source.get("format", "")).lower() == "10x":
            continue  # single-cell counts become AnnData once the samples table is validated
        raws.extend(read_source(root, source, report, catalogue=catalogue))

    from data_loaders.single_cell.check import find_single_cell_file

    single_cell = find_single_cell_file(root, config)
    return raws, single_cell


def _rel(root: Path, p: Path) -> str:
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)


def _inside(root: Path, p: Path) -> bool:
    try:
        p.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def standardise_columns(frame: pl.DataFrame, rename: dict[str, str], *, wide: bool = False,
                        canonical: Iterable[str] = ()) -> pl.DataFrame:
    """Apply study.toml renames, then fold names (case, spaces) and known aliases. A name that
    is already one of the table's `canonical` columns is never re-mapped by an alias."""
    frame = frame.rename({k: v for k, v in rename.items() if k in frame.columns})
    if wide:
        # A counts matrix: the first column holds the gene symbols whatever its header says.
        return frame if "gene" in frame.columns else frame.rename({frame.columns[0]: "gene"})
    mapping: dict[str, str] = {}
    taken = set()
    folded = {c: c.strip().lower().replace(" ", "_").replace("-", "_") for c in frame.columns}
    # the first header to fold to a name takes it; later ones keep their name as written.
    # (One set lookup per column: a counts matrix has one column per sample.)
    for c, f in folded.items():
        if f in taken:
            continue
        mapping[c] = f
        taken.add(f)
    own = set(canonical)
    for c, f in list(mapping.items()):
        alias = COLUMN_ALIASES.get(f)
        if alias and alias not in taken and f not in own:
            mapping[c] = alias
            taken.add(alias)
    return frame.rename(mapping)


# --------------------------------------------------------------------------------------------
# generic validation of one raw frame
# --------------------------------------------------------------------------------------------
class _Rows:
    """Collects row errors of one raw frame; bad rows are left out at the end."""

    def __init__(self, raw: RawTable, ctx: _Context) -> None:
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


def _validate(raw: RawTable, spec: TableSpec, ctx: _Context) -> pl.DataFrame | None:
    # A format reader that filters or reorders records keeps their source row numbers in _row.
    df = (raw.frame if "_row" in raw.frame.columns
          else raw.frame.with_row_index("_row", offset=raw.row_offset)).with_columns(
        pl.col("_row").cast(pl.Int64))
    rep = ctx.report
    rows = _Rows(raw, ctx)

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
        df = _derive_days(df, rows, ctx)
        df = _check_subjects(df, rows, ctx)
    if not spec.by_subject:
        df = _check_samples(df, rows, ctx)

    checker = _TABLE_CHECKS.get(raw.table)
    if checker is not None:
        df = checker(df, rows, ctx)

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


def _cut_long_text(df: pl.DataFrame, spec: TableSpec, rows: _Rows) -> pl.DataFrame:
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


def _flag_formulas(df: pl.DataFrame, spec: TableSpec, rows: _Rows) -> None:
    """Warn about text cells (not numbers or dates about to be parsed) that look like formulas."""
    schema = df.schema
    text = [c for c in df.columns if schema[c] == pl.String and c not in (
        "_row", "date", "end_date") and spec.columns.get(c, "str") == "str"]
    for c in _columns_where(df, text, lambda v: v.str.contains(_FORMULA)):
        rows.flag(df, pl.col(c).str.contains(_FORMULA), "text starts like a spreadsheet formula "
                  "(kept as plain text)", column=c, severity="warning",
                  fix="remove the leading =, +, - or @ unless it is meant; CSV downloads "
                  "prefix such cells with ' so spreadsheets do not run them")


def _cast(df: pl.DataFrame, col: str, kind: str, rows: _Rows) -> pl.DataFrame:
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


def _derive_days(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
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


def _check_subjects(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
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


def _flag_unknown_ids(df: pl.DataFrame, rows: _Rows, column: str, known: pl.Series,
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


def _check_samples(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
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


# --------------------------------------------------------------------------------------------
# table-specific checks
# --------------------------------------------------------------------------------------------
def _check_patients(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
    rows.flag(df, pl.col("subject_id").is_null(), "subject_id is empty", column="subject_id",
              fix="every patient needs a subject_id")
    dup = pl.col("subject_id").is_duplicated() & pl.col("subject_id").is_not_null()
    rows.flag(df, dup, "duplicate patient: subject_id appears more than once",
              column="subject_id", fix="keep one row per patient")
    if "age" in df.columns:
        rows.flag(df, (pl.col("age") < 0) | (pl.col("age") > 120), "age outside 0-120",
                  column="age", fix="give age in years")
    if "sex" in df.columns:
        df = df.with_columns(pl.col("sex").str.to_uppercase().replace(
            {"MALE": "M", "FEMALE": "F"}))
    return df


def _check_measurements(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
    cat = ctx.catalogue
    df = _fold_tissue(df, rows, ctx)
    names = df.get_column("analyte").drop_nulls().unique().to_list()
    mapping = {n: canonical_analyte(n, cat) for n in names}
    unknown = sorted(n for n, c in mapping.items() if c is None)
    for n in unknown[:30]:
        rows.flag(df, pl.col("analyte") == n, f"analyte {n[:60]!r} is not known",
                  column="analyte",
                  fix="use a canonical name (e.g. ANC, PLT, HGB, IL6, CAR_QPCR) or declare it "
                  "in study.toml under [analytes.NAME] with panel and unit")
    if len(unknown) > 30:
        rows.flag(df, pl.col("analyte").is_in(unknown[30:]),
                  f"{len(unknown) - 30} more unknown analytes", column="analyte",
                  fix="declare them in study.toml [analytes]")
    rows.flag(df, pl.col("analyte").is_null(), "analyte is empty", column="analyte",
              fix="name the test in every row")
    df = df.with_columns(pl.col("analyte").replace_strict(
        {k: v for k, v in mapping.items() if v is not None}, default=None,
        return_dtype=pl.String))
    panel_of = {a.name: a.panel for a in cat.values()}
    df = df.with_columns(pl.coalesce(pl.col("panel"),
                                     pl.col("analyte").replace_strict(panel_of, default=None,
                                                                      return_dtype=pl.String))
                         .alias("panel"))
    rows.flag(df, pl.col("value").is_null() & pl.col("analyte").is_not_null()
              & ~pl.col("_row").is_in(list(rows.bad)),
              "value is empty", column="value",
              fix="give the result, or leave the row out if the test was not done",
              severity="warning")
    rows.flag(df, pl.col("value") < 0, "negative value", column="value",
              fix="counts, concentrations and copies cannot be negative; correct the sign")
    conv = convert_units(df.filter(pl.col("analyte").is_not_null()), cat)
    bad_units = conv.filter(~pl.col("unit_known"))
    for (analyte, unit), grp in bad_units.group_by(["analyte", "unit"], maintain_order=True):
        canon = cat[analyte].unit
        ok = ", ".join(known_units_for(analyte, canon)[:6]) or canon
        rows.flag(df, pl.col("_row").is_in(grp.get_column("_row").implode()),
                  f"unit {unit!r} for {analyte} is not known" if unit else
                  f"unit is empty for {analyte}", column="unit",
                  fix=f"use {ok}" + ("" if analyte != "RETIC" or unit != "%" else
                                     " (absolute reticulocytes, not %)"))
    conv = conv.filter(pl.col("unit_known"))
    converted = conv.filter(pl.col("unit") != pl.col("unit_canonical"))
    if converted.height:
        pairs = converted.group_by("analyte", "unit").len().sort("analyte", "unit")
        text = "; ".join(f"{r['analyte']} {r['unit']} -> {cat[r['analyte']].unit} "
                         f"({r['len']} rows)" for r in pairs.head(10).iter_rows(named=True))
        ctx.report.add("note", rows.raw.table, rows.raw.file, f"units converted: {text}")
    # Rows without a known analyte or unit are already flagged as errors and left out.
    return conv.with_columns(
        pl.col("value_canonical").alias("value"),
        pl.col("unit_canonical").alias("unit"),
    ).drop("value_canonical", "unit_canonical", "unit_known")


def _check_events(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
    df = df.with_columns(pl.col("category").str.to_lowercase().str.replace_all(r"[\s-]+", "_"))
    df = df.with_columns(pl.col("category").replace(
        {"ae": "adverse_event", "cytokine_release_syndrome": "crs", "car_t_infusion": "infusion",
         "infusion_car_t": "infusion", "g_csf": "growth_factor", "transplant": "hsct",
         "allo_hsct": "hsct"}))
    rows.flag(df, ~pl.col("category").is_in(list(EVENT_CATEGORIES)) |
              pl.col("category").is_null(), "event category is not known", column="category",
              fix=f"use one of {', '.join(EVENT_CATEGORIES)}")
    if "grade" in df.columns:
        rows.flag(df, (pl.col("grade") < 0) | (pl.col("grade") > 5), "grade outside 0-5",
                  column="grade", fix="grades follow ASTCT (CRS/ICANS) or CTCAE v5 (1-5)")
    if "end_day" in df.columns:
        rows.flag(df, pl.col("end_day") < pl.col("day"), "end_day is before day",
                  column="end_day", fix="check start and end of the event")
    if "units" in df.columns:
        rows.flag(df, pl.col("units") < 0, "negative number of units", column="units",
                  fix="give the number of transfused units (0 or more)")
    if "product" in df.columns:
        med = pl.col("category") == "medication"
        df = df.with_columns(pl.when(med).then(pl.col("product"))
                             .otherwise(pl.col("product").str.to_uppercase().replace(_PRODUCTS))
                             .alias("product"))
        rows.flag(df, (pl.col("category") == "transfusion") &
                  ~pl.col("product").is_in(["RBC", "PLT"]).fill_null(False),
                  "transfusion without product RBC or PLT", column="product",
                  fix="give product RBC or PLT so transfusion independence can be judged",
                  severity="warning")
    return _medication_classes(df, rows)


def _medication_classes(df: pl.DataFrame, rows: _Rows) -> pl.DataFrame:
    """Medication rows get their drug class in `product` (lower case, one of
    MEDICATION_CLASSES), derived from `term` when `product` is empty."""
    med = pl.col("category") == "medication"
    if not df.filter(med).height:
        return df
    term = pl.col("term") if "term" in df.columns else pl.lit(None, pl.String)
    given = (pl.col("product").str.strip_chars().str.to_lowercase()
             .str.replace_all(r"[\s-]+", "_").replace(_MEDICATION_WORDS)
             if "product" in df.columns else pl.lit(None, pl.String))
    df = df.with_columns(pl.when(med).then(pl.coalesce(given.replace("", None),
                                                       medication_class_expr(term)))
                         .otherwise(pl.col("product") if "product" in df.columns
                                    else pl.lit(None, pl.String)).alias("product"))
    rows.flag(df, med & ~pl.col("product").is_in(list(MEDICATION_CLASSES)),
              "medication class (product) is not known", column="product",
              fix=f"use one of {', '.join(MEDICATION_CLASSES)}, or leave product empty to "
                  "derive the class from the term", severity="warning")
    rows.flag(df, med & term.is_null(), "medication without a term (the drug)",
              column="term", fix="give the drug as recorded, e.g. \"dexamethasone 10 mg\"",
              severity="warning")
    return df


def _check_responses(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
    up = pl.col("response").str.to_uppercase().str.strip_chars()
    df = df.with_columns(up.replace(_RESPONSE_WORDS).alias("response"))
    rows.flag(df, ~pl.col("response").is_in(list(RESPONSES)) | pl.col("response").is_null(),
              "response is not CR, PR, NR or NE", column="response",
              fix="record the response category as CR, PR, NR or NE")
    if "criteria" in df.columns:
        df = df.with_columns(pl.col("criteria").str.to_uppercase())
    return df


def _fold_tissue(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
    """Tissue folded once for every analysis (analysis.vocab): "Blood", "PB", "serum" and
    "plasma" are blood, "BM" and "bone marrow" marrow. Where folding changed a name the
    recorded one stays in `specimen`, and a note says what was folded."""
    if "tissue" not in df.columns:
        return df
    recorded = pl.col("tissue").str.strip_chars().str.to_lowercase()
    folded = df.with_columns(fold_tissue_expr("tissue"), recorded.alias("_recorded"))
    changed = folded.filter(pl.col("_recorded").is_not_null()
                            & (pl.col("_recorded") != pl.col("tissue")))
    if changed.height == 0:
        return folded.drop("_recorded")
    pairs = changed.group_by("_recorded", "tissue").len().sort("_recorded")
    text = "; ".join(f"{r['_recorded']} -> {r['tissue']} ({r['len']} rows)"
                     for r in pairs.head(10).iter_rows(named=True))
    ctx.report.add("note", rows.raw.table, rows.raw.file,
                   f"tissue names folded: {text}; the recorded name is kept in column specimen",
                   fix="nothing to do (docs/rules.md, Vocabulary)")
    if "specimen" in folded.columns:
        return folded.drop("_recorded")
    return folded.with_columns(
        pl.when(pl.col("_recorded") != pl.col("tissue")).then(pl.col("_recorded"))
        .otherwise(None).alias("specimen")).drop("_recorded")


def _check_samples_table(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
    df = _fold_tissue(df, rows, ctx)
    rows.flag(df, pl.col("sample_id").is_null(), "sample_id is empty", column="sample_id",
              fix="every sample needs an id")
    rows.flag(df, pl.col("sample_id").is_duplicated() & pl.col("sample_id").is_not_null(),
              "duplicate sample_id", column="sample_id", fix="sample ids must be unique")
    return df


def _check_proteomics(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
    rows.flag(df, pl.col("feature").is_null(), "feature (protein) is empty", column="feature",
              fix="name the protein in every row")
    rows.flag(df, pl.col("value").is_null() & ~pl.col("_row").is_in(list(rows.bad)),
              "value is empty", column="value", fix="give the NPX value or leave the row out")
    return df


def _check_mutations(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
    rows.flag(df, (pl.col("vaf") > 1) & (pl.col("vaf") <= 100),
              "VAF above 1 (looks like a percentage)", column="vaf",
              fix="give the variant allele fraction between 0 and 1 (e.g. 0.35 for 35%)")
    rows.flag(df, (pl.col("vaf") < 0) | (pl.col("vaf") > 100), "VAF outside 0-1",
              column="vaf", fix="give the variant allele fraction between 0 and 1")
    rows.flag(df, pl.col("gene").is_null(), "gene is empty", column="gene",
              fix="name the gene in every row")
    if "depth" in df.columns:
        rows.flag(df, pl.col("depth") < 0, "negative read depth", column="depth",
                  fix="give the number of reads covering the variant (0 or more)")
    return df


def _check_tcr(df: pl.DataFrame, rows: _Rows, ctx: _Context) -> pl.DataFrame:
    rows.flag(df, pl.col("count") <= 0, "clone count must be positive", column="count",
              fix="give the number of cells or reads of the clonotype")
    rows.flag(df, pl.col("junction_aa").is_null(), "junction_aa is empty",
              column="junction_aa", fix="give the CDR3 amino-acid sequence")
    return df


_TABLE_CHECKS: dict[str, Callable[[pl.DataFrame, _Rows, _Context], pl.DataFrame]] = {
    "patients": _check_patients,
    "measurements": _check_measurements,
    "events": _check_events,
    "responses": _check_responses,
    "samples": _check_samples_table,
    "proteomics": _check_proteomics,
    "mutations": _check_mutations,
    "tcr": _check_tcr,
}


# --------------------------------------------------------------------------------------------
# combining files of one table, duplicates
# --------------------------------------------------------------------------------------------
def _combine(name: str, frames: list[pl.DataFrame], ctx: _Context) -> pl.DataFrame:
    spec = TABLES[name]
    if not frames:
        return empty_table(name)
    df = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    data_cols = [c for c in df.columns if c not in ("_row", "_file")]
    key = [c for c in spec.key if c in df.columns]
    # identical rows: keep one, say so. Rows that share no key with another row cannot be
    # identical, so a table with a key is only searched where the key repeats (cheap when
    # there are no duplicates, the common case).
    key_dup = df.select(pl.struct(key).is_duplicated()).to_series() if key else None
    if key_dup is not None and not key_dup.any():
        dup = key_dup
    elif key_dup is not None:
        dup = key_dup & df.select(pl.struct(data_cols).is_duplicated()).to_series()
    else:
        dup = df.select(data_cols).is_duplicated()
    if dup.any():
        first = df.with_columns(_dup=dup).filter(pl.col("_dup"))
        unique = df.unique(subset=data_cols, keep="first", maintain_order=True)
        n_extra = df.height - unique.height
        for f, grp in first.group_by("_file", maintain_order=True):
            ctx.report.add("warning", name, f[0], f"{n_extra:,} identical duplicate row(s) "
                           "dropped", fix="remove repeated rows from the file",
                           rows=grp.get_column("_row").to_list())
        df = unique
    # patients and samples are checked within each file; this catches a key in two files
    if key_dup is not None and key_dup.any():
        conflict = df.select(pl.struct(key).is_duplicated()).to_series()
        if conflict.any():
            bad = df.filter(conflict)
            for f, grp in bad.group_by("_file", maintain_order=True):
                ctx.report.add(
                    "error", name, f[0],
                    ("duplicate patient: " if name == "patients" else "")
                    + f"conflicting duplicates: same {', '.join(k for k in key)} with different "
                    "values", fix="keep one value per key (or add a time/tissue column to tell "
                    "them apart)", rows=grp.get_column("_row").to_list())
            df = df.filter(~conflict)
    return df.drop("_row", "_file")


# --------------------------------------------------------------------------------------------
# bulk RNA counts (wide) and single cell
# --------------------------------------------------------------------------------------------
def _validate_rna(raw: RawTable, ctx: _Context) -> pl.DataFrame:
    rep = ctx.report
    df = raw.frame
    if "gene" not in df.columns or df.width < 2:
        rep.add("error", "rna_counts", raw.file, "needs a gene column and at least one sample "
                "column", fix="first column gene symbols, then one column of raw counts per "
                "sample_id")
        return empty_table("rna_counts")
    known = set(ctx.samples.get_column("sample_id").to_list()) if ctx.samples is not None else set()
    sample_cols = [c for c in df.columns if c != "gene"]
    unknown = [c for c in sample_cols if c not in known]
    if unknown:
        rep.add("error", "rna_counts", raw.file,
                f"{len(unknown)} sample column(s) not in the samples table: "
                f"{', '.join(unknown[:8])}" + (" ..." if len(unknown) > 8 else ""),
                column=unknown[0], fix="add these samples to samples (sample_id, subject_id, "
                "day) or rename the columns; they are left out")
    cols = [c for c in sample_cols if c in known]
    index = df.select("gene").with_row_index("_row", offset=raw.row_offset)
    # one pass over the frame's series (a matrix may have one column per sample, 10^4 and
    # more: per-column frame operations or lookups by name would make this quadratic)
    wanted = set(cols)
    good: list[pl.Series] = []
    for col in df.get_columns():
        if col.name not in wanted:
            continue
        num = col.cast(pl.Float64, strict=False)
        bad = (num.is_null() & col.is_not_null()) | (num < 0) | (num != num.round()) | \
            num.is_nan()
        if bad.any():
            rows_bad = index.filter(bad.fill_null(False)).get_column("_row").to_list()
            rep.add("error", "rna_counts", raw.file,
                    "counts must be non-negative whole numbers (raw counts, not normalised)",
                    column=col.name, rows=rows_bad, fix="give raw integer counts; the sample "
                    "column is left out")
            continue
        good.append(num.fill_null(0).cast(pl.Int64))
    out = pl.DataFrame([df.get_column("gene"), *good])
    out = out.filter(pl.col("gene").is_not_null())
    if out.get_column("gene").is_duplicated().any():
        n = out.get_column("gene").is_duplicated().sum()
        rep.add("warning", "rna_counts", raw.file,
                f"{n} rows share a gene symbol with another row; their counts were summed",
                column="gene", fix="collapse duplicated symbols or use unique gene ids")
        out = out.group_by("gene", maintain_order=True).sum()
    return out if out.width > 1 else empty_table("rna_counts")


def _check_single_cell(root: Path, path: Path, config: dict[str, Any], ctx: _Context,
                       sources: list[SourceInfo], tables: dict[str, pl.DataFrame]) -> Any:
    """Open the single-cell store and report on it. A study without a patients table takes
    its patients from the cells (reported), so a folder holding only a single-cell file
    opens."""
    from data_loaders.single_cell.check import open_single_cell

    rel = _rel(root, path)
    if not path.exists() or not _inside(root, path):
        ctx.report.add("error", "single_cell", rel, "file not found inside the study folder",
                       fix="correct [single_cell] file in study.toml")
        return None
    try:
        # shapes and sizes against the limits before the store reads any column
        guard.note_reading(rel)
        guard.check_single_cell(path, rel)
    except StudyError as err:
        ctx.report.add_error(err, table="single_cell", file=rel)
        return None
    no_patients = not any(s.table == "patients" for s in sources)
    known = None if no_patients else set(tables["patients"].get_column("subject_id").to_list())
    store = open_single_cell(path, config, rel=rel, known_subjects=known, report=ctx.report)
    if store is None:
        return None
    if no_patients:
        subjects = store.canonical("subject_id")
        ids = sorted(set(subjects.drop_nulls().to_list())) if subjects is not None else []
        tables["patients"] = pl.concat([empty_table("patients"), pl.DataFrame(
            {"subject_id": ids}, schema={"subject_id": pl.String})], how="diagonal_relaxed")
        ctx.patients = tables["patients"]
        ctx.report.add("note", "patients", rel, f"no patients table: {len(ids)} patient(s) "
                       "taken from the single-cell file", fix="add patients.csv for ages, "
                       "infusion dates and outcomes")
    sources.append(SourceInfo("single_cell", rel, store.format, store.n_obs, store.n_obs))
    return store
