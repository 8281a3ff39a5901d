"""A study's gated flow cytometry: which FCS file is gated with which gate file, the
population table, and the measurements it gives (DESIGN.md section 2, panel immunophenotype).

One job: gating a study's FCS files with their gate files and turning the populations into
measurements.

study.toml:

    [flow]
    gating = "flow/panel.wsp"        # FlowJo 10 workspace or Gating-ML 2.0 file, for every
                                     # flow_fcs sample (a `gating` column in samples overrides)
    compensation = ""                # "" = as the gate file says; "fcs" = the file's own
                                     # spillover keyword; or a matrix file ("flow/comp.csv")
    group = "All Samples"            # workspace group gating the files it does not hold
    reference = "CD3+"               # pct_reference in the populations table
    workers = 2                      # processes for gating (default: CPU cores, at most 8)
    beads = ".../Beads"              # counting-bead gate (absolute counts, with beads_per_test
    beads_per_test = 50000           #   and volume_ul, or samples columns of those names)
    volume_ul = 50

    [flow.analytes]                  # gate path -> canonical analyte ("..." = any ancestors)
    ".../CD3+/CAR+" = { analyte = "CAR_PCT", of = "CD3+" }
    ".../CD3+/CD7-" = "CD7NEG_T_PCT"                       # % of parent
    ".../NK" = { analyte = "NK_ABS", count = "ALC", of = "Lymphocytes" }

The value an analyte gets follows its unit: "%" gives the percentage of `of` (default the
parent population; "all" = every event), "cells/uL" an absolute count: from counting beads
(`count = "beads"`), or from the patient's ALC or WBC measured on the sample's day
(`count = "ALC"`: cells/uL = count / count(of) x ALC x 1000, ALC in 10^9/L).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from data_loaders.errors import ValidationReport
from data_loaders.formats.gate_plots import GateView, gate_views
from data_loaders.formats.gating import GateJob, GateResult, gate_files

if TYPE_CHECKING:
    from data_loaders.study import Study

__all__ = ["FlowConfig", "AnalyteMap", "flow_config", "gating_jobs", "gate_study",
           "populations_frame", "population_measurements", "match_population",
           "cache_folder", "POPULATION_SCHEMA", "default_workers", "study_jobs",
           "sample_gate_views", "regate_study", "population_events"]

POPULATION_SCHEMA = {
    "sample_id": pl.String, "subject_id": pl.String, "day": pl.Int64, "timepoint": pl.String,
    "tissue": pl.String, "population": pl.String, "gate": pl.String, "parent": pl.String,
    "gate_type": pl.String, "count": pl.Int64, "parent_count": pl.Int64,
    "pct_parent": pl.Float64, "pct_total": pl.Float64, "pct_reference": pl.Float64,
    "n_events": pl.Int64, "gate_file": pl.String,
}
_ABS_FROM = ("ALC", "WBC")


@dataclass(frozen=True)
class AnalyteMap:
    pattern: str
    analyte: str
    of: str = "parent"
    count: str = ""


@dataclass(frozen=True)
class FlowConfig:
    gating: str = ""
    compensation: str = ""
    group: str = "All Samples"
    reference: str = ""
    workers: int = 0
    beads: str = ""
    beads_per_test: float | None = None
    volume_ul: float | None = None
    analytes: tuple[AnalyteMap, ...] = ()

    @property
    def configured(self) -> bool:
        return bool(self.gating)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def flow_config(config: Mapping[str, Any]) -> FlowConfig:
    """The study.toml [flow] table (missing keys take their defaults)."""
    raw = config.get("flow", {}) if isinstance(config, Mapping) else {}
    cfg = dict(raw) if isinstance(raw, Mapping) else {}
    maps = []
    table = cfg.get("analytes", {})
    for pattern, spec in (table.items() if isinstance(table, Mapping) else ()):
        if isinstance(spec, str):
            maps.append(AnalyteMap(str(pattern), spec))
        elif isinstance(spec, Mapping) and spec.get("analyte"):
            maps.append(AnalyteMap(str(pattern), str(spec["analyte"]),
                                   str(spec.get("of", "parent") or "parent"),
                                   str(spec.get("count", "") or "")))
    return FlowConfig(str(cfg.get("gating", "") or ""), str(cfg.get("compensation", "") or ""),
                      str(cfg.get("group", "All Samples")), str(cfg.get("reference", "") or ""),
                      int(_num(cfg.get("workers")) or 0), str(cfg.get("beads", "") or ""),
                      _num(cfg.get("beads_per_test")), _num(cfg.get("volume_ul")), tuple(maps))


def cache_folder(root: Path) -> Path:
    """`<study>/.cache/gating` when writable, else a per-user cache folder."""
    import hashlib

    own = Path(root).resolve() / ".cache" / "gating"
    try:
        own.mkdir(parents=True, exist_ok=True)
        if os.access(own, os.W_OK):
            return own
    except OSError:
        pass
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cart-explorer"
    folder = base / hashlib.blake2b(str(Path(root).resolve()).encode(),
                                    digest_size=8).hexdigest() / "gating"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def gating_jobs(root: Path, config: Mapping[str, Any], samples: pl.DataFrame,
                report: ValidationReport) -> tuple[pl.DataFrame, list[GateJob]]:
    """The flow_fcs samples that have a gate file (their rows, in order) and their jobs."""
    cfg = flow_config(config)
    if samples.height == 0 or "file" not in samples.columns or "assay" not in samples.columns:
        return samples.clear(), []
    rows = samples.filter((pl.col("assay").str.to_lowercase() == "flow_fcs")
                          & pl.col("file").is_not_null())
    if "gating" not in rows.columns:
        rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias("gating"))
    rows = rows.with_columns(pl.coalesce(pl.col("gating"), pl.lit(cfg.gating or None))
                             .alias("gating")).filter(pl.col("gating").is_not_null())
    root = Path(root).resolve()
    comp = cfg.compensation
    if comp and comp.lower() != "fcs":
        comp_path = (root / comp).resolve()
        if not comp_path.is_file() or not comp_path.is_relative_to(root):
            report.add("error", "flow", comp, "compensation matrix file not found inside the "
                       "study folder", fix="correct [flow] compensation in study.toml (a CSV "
                       "with detector names as its header), or use \"fcs\"")
            return rows.clear(), []
        comp = str(comp_path)
    keep, jobs = [], []
    bad_gates: set[str] = set()
    for i, rec in enumerate(rows.iter_rows(named=True)):
        fcs = (root / rec["file"]).resolve()
        gates = (root / rec["gating"]).resolve()
        if not fcs.is_relative_to(root):
            report.add("error", "flow", rec["file"], "lies outside the study folder; not gated",
                       fix="keep FCS files inside the study folder")
            continue
        if not gates.is_file() or not gates.is_relative_to(root):
            if rec["gating"] not in bad_gates:
                report.add("error", "flow", rec["gating"], "gate file not found inside the "
                           "study folder; its samples are not gated",
                           fix="correct [flow] gating in study.toml or the samples gating "
                           "column (a .wsp or Gating-ML .xml path relative to the study)")
                bad_gates.add(rec["gating"])
            continue
        keep.append(i)
        jobs.append(GateJob(str(fcs), str(gates), label=rec["file"],
                            sample_name=Path(rec["file"]).name, compensation=comp,
                            group=cfg.group))
    return rows[keep], jobs


def gate_study(root: Path, config: Mapping[str, Any], samples: pl.DataFrame,
               report: ValidationReport, *, workers: int | None = None,
               progress: Callable[[int, int, str], None] | None = None,
               force: bool = False, executor: Executor | None = None) -> pl.DataFrame:
    """Gate every gated sample of the study (cached, in parallel: `executor`, a Dask
    cluster's from jobs.parallel, else `workers` processes); errors and notes go to
    `report` naming the file; returns the populations table (POPULATION_SCHEMA)."""
    rows, jobs = gating_jobs(root, config, samples, report)
    if not jobs:
        return pl.DataFrame(schema=POPULATION_SCHEMA)
    cfg = flow_config(config)
    try:
        cache: Path | None = cache_folder(root)
    except OSError:
        cache = None
    n = workers if workers is not None else (cfg.workers or default_workers())
    results = gate_files(jobs, workers=n, cache_dir=cache, progress=progress, force=force,
                         executor=executor)
    for job, res in zip(jobs, results, strict=True):
        if res.error:
            report.add("error", "flow", job.label, res.error.removeprefix(f"{job.label}: "),
                       column=res.channel or None,
                       fix="the other files are gated; correct or re-export this one")
        for note in res.notes:
            report.add("note", "flow", job.label, note)
    pops = populations_frame(rows, jobs, results, reference=cfg.reference, root=root)
    failed = sum(1 for r in results if r.error)
    report.add("note", "flow", cfg.gating or "samples gating column",
               f"gated {len(jobs) - failed} of {len(jobs)} FCS file(s) "
               f"({sum(r.cached for r in results)} from the cache): "
               f"{pops.get_column('population').n_unique() if pops.height else 0} populations")
    return pops


def populations_frame(rows: pl.DataFrame, jobs: list[GateJob], results: list[GateResult], *,
                      reference: str = "", root: Path | None = None) -> pl.DataFrame:
    """One row per sample and population: counts and percentages of parent, of all events
    and of the reference population (None when it is not in the tree or is empty)."""
    recs = []
    for rec, job, res in zip(rows.iter_rows(named=True), jobs, results, strict=True):
        if res.error or not res.populations:
            continue
        counts = {p.path: p.count for p in res.populations}
        ref = match_population(reference, list(counts)) if reference else None
        ref_n = counts.get(ref) if ref else None
        gate_file = str(Path(job.gates).relative_to(root)) if root else Path(job.gates).name
        for p in res.populations:
            parent_n = counts.get(p.parent, res.n_events) if p.parent else res.n_events
            recs.append({
                "sample_id": rec["sample_id"], "subject_id": rec["subject_id"],
                "day": rec["day"], "timepoint": rec.get("timepoint"),
                "tissue": rec.get("tissue"), "population": p.path, "gate": p.gate,
                "parent": p.parent or "/", "gate_type": p.gate_type, "count": p.count,
                "parent_count": parent_n,
                "pct_parent": 100.0 * p.count / parent_n if parent_n else None,
                "pct_total": 100.0 * p.count / res.n_events if res.n_events else None,
                "pct_reference": 100.0 * p.count / ref_n
                if ref_n and (p.path == ref or p.path.startswith(f"{ref}/")) else None,
                "n_events": res.n_events, "gate_file": gate_file})
    return pl.DataFrame(recs, schema=POPULATION_SCHEMA) if recs else \
        pl.DataFrame(schema=POPULATION_SCHEMA)


def match_population(pattern: str, paths: list[str]) -> str | None:
    """The population `pattern` names: an exact path ("/Lymphocytes/CD3+"), a path tail after
    "..." (".../CD3+/CAR+") or a gate name ("CD3+"). None when nothing or more than one
    population matches."""
    pattern = pattern.strip()
    if pattern in paths:
        return pattern
    tail = pattern[3:] if pattern.startswith("...") else pattern
    tail = "/" + tail.lstrip("/")
    hits = [p for p in paths if p.endswith(tail)]
    return hits[0] if len(hits) == 1 else None


def population_measurements(pops: pl.DataFrame, cfg: FlowConfig, *, units: Mapping[str, str],
                            counts: pl.DataFrame, samples: pl.DataFrame,
                            report: ValidationReport) -> pl.DataFrame:
    """Measurement rows (subject_id, day, analyte, value, unit, panel, tissue, sample_id) for
    the [flow.analytes] mapping. `units` gives each analyte's canonical unit; `counts` holds the
    study's ALC/WBC measurements (10^9/L) for absolute counts."""
    out: list[dict[str, Any]] = []
    if pops.height == 0 or not cfg.analytes:
        return pl.DataFrame(schema=_MEAS_SCHEMA)
    bead_cols = {c for c in ("beads_per_test", "volume_ul") if c in samples.columns}
    extra = samples.select("sample_id", *bead_cols) if bead_cols else None
    lacking: dict[str, list[str]] = {}
    for (sample_id,), grp in pops.group_by(["sample_id"], maintain_order=True):
        paths = grp.get_column("population").to_list()
        by_path = {r["population"]: r for r in grp.iter_rows(named=True)}
        first = grp.row(0, named=True)
        for m in cfg.analytes:
            path = match_population(m.pattern, paths)
            if path is None:
                lacking.setdefault(f"{m.pattern} -> {m.analyte}", []).append(str(sample_id))
                continue
            row = by_path[path]
            unit = units.get(m.analyte, "%")
            value: float | None
            if unit == "%":
                value = _percent(row, m.of, by_path, paths)
            elif unit == "events":
                value = float(row["count"])
            else:
                value = _absolute(row, m, cfg, by_path, paths, counts, extra)
            if value is None:
                lacking.setdefault(f"{m.pattern} -> {m.analyte}", []).append(str(sample_id))
                continue
            out.append({"subject_id": first["subject_id"], "day": first["day"],
                        "analyte": m.analyte, "value": value, "unit": unit,
                        "panel": "immunophenotype", "tissue": first["tissue"],
                        "sample_id": str(sample_id)})
    for what, ids in lacking.items():
        report.add("warning", "flow", cfg.gating or "study.toml",
                   f"[flow.analytes] {what}: no value for {len(ids)} sample(s) "
                   f"({', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''})",
                   fix="check the gate path (a population must match exactly one gate), the "
                   "'of' population, and for absolute counts the ALC/WBC on the sample's day "
                   "or the bead settings")
    return pl.DataFrame(out, schema=_MEAS_SCHEMA) if out else pl.DataFrame(schema=_MEAS_SCHEMA)


_MEAS_SCHEMA = {"subject_id": pl.String, "day": pl.Int64, "analyte": pl.String,
                "value": pl.Float64, "unit": pl.String, "panel": pl.String,
                "tissue": pl.String, "sample_id": pl.String}


def _denominator(of: str, row: dict, by_path: dict, paths: list[str]) -> float | None:
    of = (of or "parent").strip()
    if of.lower() == "parent":
        return float(row["parent_count"])
    if of.lower() in ("all", "total", "/"):
        return float(row["n_events"])
    ref = match_population(of, paths)
    return float(by_path[ref]["count"]) if ref else None


def _percent(row: dict, of: str, by_path: dict, paths: list[str]) -> float | None:
    den = _denominator(of, row, by_path, paths)
    return 100.0 * row["count"] / den if den else None


def _absolute(row: dict, m: AnalyteMap, cfg: FlowConfig, by_path: dict, paths: list[str],
              counts: pl.DataFrame, extra: pl.DataFrame | None) -> float | None:
    """cells/uL from counting beads or from the ALC/WBC measured the same day."""
    how = (m.count or ("beads" if cfg.beads else "")).strip()
    if how.lower() == "beads":
        bead = match_population(cfg.beads, paths) if cfg.beads else None
        per_test, volume = cfg.beads_per_test, cfg.volume_ul
        if extra is not None:
            hit = extra.filter(pl.col("sample_id") == row["sample_id"])
            if hit.height:
                r = hit.row(0, named=True)
                per_test = _num(r.get("beads_per_test")) or per_test
                volume = _num(r.get("volume_ul")) or volume
        n_beads = by_path[bead]["count"] if bead else 0
        if not (n_beads and per_test and volume):
            return None
        return row["count"] / n_beads * per_test / volume
    if how.upper() in _ABS_FROM:
        den = _denominator(m.of, row, by_path, paths)
        hit = counts.filter((pl.col("subject_id") == row["subject_id"])
                            & (pl.col("day") == row["day"])
                            & (pl.col("analyte") == how.upper()))
        if not den or hit.height == 0:
            return None
        per_ul = float(hit.get_column("value").mean()) * 1000.0   # 10^9/L -> cells/uL
        return row["count"] / den * per_ul
    return None


def _num(v: Any) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


# ---- a loaded study ----------------------------------------------------------------------------
def study_jobs(study: Study) -> tuple[pl.DataFrame, list[GateJob]]:
    """The gated samples of a loaded study (rows of its samples table) and their jobs."""
    return gating_jobs(Path(study.path), study.config, study.samples, ValidationReport())


def sample_gate_views(study: Study, sample_id: str, *, populations: list[str] | None = None,
                      max_points: int = 20000, seed: int = 0) -> list[GateView]:
    """Gate plot data of one sample (every population by default); reads its FCS file."""
    rows, jobs = study_jobs(study)
    ids = rows.get_column("sample_id").to_list() if rows.height else []
    if sample_id not in ids:
        raise KeyError(f"sample {sample_id!r} has no FCS file with a gate file")
    return gate_views(jobs[ids.index(sample_id)], populations, max_points=max_points,
                      seed=seed)


def regate_study(study: Study, *, progress: Callable[[int, int, str], None] | None = None,
                 workers: int | None = None, force: bool = False,
                 executor: Executor | None = None) -> tuple[pl.DataFrame, ValidationReport]:
    """Gate a loaded study's files again (a job with progress; the results land in the cache
    the next load reads). Returns the populations and the findings of this run."""
    report = ValidationReport()
    pops = gate_study(Path(study.path), study.config, study.samples, report, workers=workers,
                      progress=progress, force=force, executor=executor)
    return pops, report


def population_events(study: Study, *, population: str, per_file: int = 1000,
                      cofactor: float = 150.0, seed: int = 0) -> Any:
    """Events of one gated population of every gated sample, subsampled per file (seeded) and
    asinh-transformed, in the shape of `formats.fcs.flow_events` (for FlowSOM within a gate,
    e.g. on CD3+ T cells). A file that cannot be gated is named in `errors`."""
    import hashlib

    import numpy as np

    from data_loaders.errors import StudyError
    from data_loaders.formats.fcs import FlowEvents, arcsinh, common_markers, read_fcs
    from data_loaders.formats.gate_plots import gate_membership

    rows, jobs = study_jobs(study)
    errors: list[str] = []
    parts = []
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{population}|{per_file}|{cofactor}|{seed}".encode())
    n_total = 0
    for i, (rec, job) in enumerate(zip(rows.iter_rows(named=True), jobs, strict=True)):
        try:
            fcs = read_fcs(job.fcs, name=job.label)
            mask = gate_membership(job, population)
        except (StudyError, KeyError) as err:
            errors.append(f"{job.label}: {err}")
            continue
        except Exception as err:  # noqa: BLE001 - one file's failure never stops the rest
            errors.append(f"{job.label}: cannot be gated ({str(err)[:200]})")
            continue
        st = Path(job.fcs).stat()
        h.update(f"{job.label}|{st.st_size}|{st.st_mtime_ns}".encode())
        idx = np.flatnonzero(mask)
        n_total += idx.size
        rng = np.random.default_rng([seed, i])
        take = np.sort(rng.choice(idx, size=min(per_file, idx.size), replace=False))
        parts.append((rec, fcs, take))
    schema = {"sample_id": pl.String, "subject_id": pl.String, "day": pl.Int64,
              "timepoint": pl.String, "event": pl.Int64}
    if not parts:
        return FlowEvents(pl.DataFrame(schema=schema), (), 0, cofactor, (), tuple(errors),
                          h.hexdigest())
    markers = common_markers([p[1] for p in parts])
    frames = []
    for rec, fcs, take in parts:
        labels = list(fcs.labels)
        cols = {m: arcsinh(fcs.events[take, labels.index(m)], cofactor=cofactor)
                for m in markers}
        n = len(take)
        frames.append(pl.DataFrame({"sample_id": [rec["sample_id"]] * n,
                                    "subject_id": [rec["subject_id"]] * n,
                                    "day": [rec["day"]] * n, "timepoint": [rec["timepoint"]] * n,
                                    "event": take.astype(np.int64), **cols},
                                   schema_overrides={"day": pl.Int64, "timepoint": pl.String}))
    return FlowEvents(pl.concat(frames), tuple(markers), n_total, cofactor,
                      (f"events of {population} only",), tuple(errors), h.hexdigest())
