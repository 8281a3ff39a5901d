"""`load_study(path)`: a study folder -> validated, canonical, read-only `Study`.

Every file is read as text, mapped to canonical column names, typed and checked row by row.
Problems go to the `ValidationReport` with file, spreadsheet row (header = row 1), column and
what to do. Rows with errors are left out and counted; the rest of that table and every other
table still load. Only a missing or unreadable study folder raises `StudyError`.

The steps live in their own modules: `discovery` (finding and reading the files), `typed`
(typing each table's cells row by row), `table_rules` (each table's own rules, combining the
files of a table); this module runs them in order, gates FCS files once samples are known and
opens the single-cell store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from data_loaders import guard
from data_loaders.analytes import catalogue_with
from data_loaders.discovery import (
    collect_sources,
    inside_folder,
    read_config,
    relative_name,
    standardise_columns,
)
from data_loaders.errors import StudyError, ValidationReport
from data_loaders.raw import RawTable
from data_loaders.study import SourceInfo, Study, empty_table, fingerprint
from data_loaders.table_rules import combine_files, validate_rna, validate_table
from data_loaders.typed import Context

__all__ = ["load_study", "RawTable", "standardise_columns"]

_DEFAULT_MIN_DAY = -365   # a day earlier than a year before infusion is taken as a typo


def load_study(path: str | Path) -> Study:
    """Load a study folder. Raises `StudyError` only when the folder itself cannot be used."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise StudyError("is not a study folder (it does not exist or is not a directory)",
                         file=str(root), fix="give the path of a folder with patients.csv "
                         "and the other study tables")
    report = ValidationReport()
    config = read_config(root, report)
    try:
        limits = guard.limits_for(root, config)
    except StudyError as err:
        report.add_error(err, table="study", file="study.toml")
        limits = guard.limits_for(root, {})
    with guard.using(limits):
        return _load(root, config, report)


def _load(root: Path, config: dict[str, Any], report: ValidationReport) -> Study:
    catalogue = catalogue_with(config.get("analytes", {}) or {})
    raws, single_cell_file = collect_sources(root, config, report)

    ctx = Context(report=report, catalogue=catalogue,
                   min_day=int(config.get("validation", {}).get("min_day", _DEFAULT_MIN_DAY)))
    tables: dict[str, pl.DataFrame] = {}
    sources: list[SourceInfo] = []
    populations: pl.DataFrame | None = None
    for name in ("patients", "samples", "measurements", "events", "responses", "proteomics",
                 "mutations", "tcr"):
        frames = []
        for raw in [r for r in raws if r.table == name]:
            typed = validate_table(raw, ctx)
            n_loaded = typed.height if typed is not None else 0
            sources.append(SourceInfo(name, raw.file, raw.format, raw.frame.height, n_loaded,
                                      raw.encoding, raw.delimiter))
            if typed is not None:
                frames.append(typed)
        if name == "measurements":
            populations, flow_rows = _gated_flow(root, config, frames, ctx)
            if flow_rows is not None:
                typed = validate_table(flow_rows, ctx)
                sources.append(SourceInfo(name, flow_rows.file, "gating", flow_rows.frame.height,
                                          typed.height if typed is not None else 0))
                if typed is not None:
                    frames = [_without_gated(f, typed, ctx) for f in frames] + [typed]
        table = combine_files(name, frames, ctx)
        tables[name] = table
        if name == "patients":
            ctx.patients = table
        if name == "samples":
            ctx.samples = table
    rna_raws = [r for r in raws if r.table == "rna_counts"]
    for raw in rna_raws:
        rna = validate_rna(raw, ctx)
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
    sc_store = str((sc_config.get("single_cell") or {}).get("store") or "")
    if single_cell_file is None and "://" in sc_store:
        store = _open_remote_store(root, sc_store, sc_config, ctx, sources, tables)
        single_cell_file = store.path if store is not None else None
    elif single_cell_file is not None:
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


def _gated_flow(root: Path, config: dict[str, Any], frames: list[pl.DataFrame], ctx: Context
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


def _without_gated(frame: pl.DataFrame, gated: pl.DataFrame, ctx: Context) -> pl.DataFrame:
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


def _open_remote_store(root: Path, url: str, config: dict[str, Any], ctx: Context,
                       sources: list[SourceInfo], tables: dict[str, pl.DataFrame]) -> Any:
    """`[single_cell] store = "<fsspec URL>"` without a local file: the converted store read
    from the URL (shared by several app hosts)."""
    from data_loaders.single_cell.check import open_single_cell

    known = set(tables["patients"].get_column("subject_id").to_list()) \
        if tables["patients"].height else None
    store = open_single_cell(url, config, rel=url, known_subjects=known, report=ctx.report,
                             cache_root=root)
    if store is not None:
        sources.append(SourceInfo("single_cell", url, store.format, store.n_obs, store.n_obs))
    return store


def _check_single_cell(root: Path, path: Path, config: dict[str, Any], ctx: Context,
                       sources: list[SourceInfo], tables: dict[str, pl.DataFrame]) -> Any:
    """Open the single-cell store and report on it. A study without a patients table takes
    its patients from the cells (reported), so a folder holding only a single-cell file
    opens."""
    from data_loaders.single_cell.check import open_single_cell

    rel = relative_name(root, path)
    if not path.exists() or not inside_folder(root, path):
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
    store = open_single_cell(path, config, rel=rel, known_subjects=known, report=ctx.report,
                             cache_root=root)
    if store is None:
        return None
    if no_patients:
        subjects = store.canonical("subject_id")
        ids = sorted(subjects.drop_nulls().unique().to_list()) if subjects is not None \
            else []
        tables["patients"] = pl.concat([empty_table("patients"), pl.DataFrame(
            {"subject_id": ids}, schema={"subject_id": pl.String})], how="diagonal_relaxed")
        ctx.patients = tables["patients"]
        ctx.report.add("note", "patients", rel, f"no patients table: {len(ids)} patient(s) "
                       "taken from the single-cell file", fix="add patients.csv for ages, "
                       "infusion dates and outcomes")
    sources.append(SourceInfo("single_cell", rel, store.format, store.n_obs, store.n_obs))
    return store
