"""The Cytometry view: gated populations, gate plots, one gate over a patient's timepoints and
FlowSOM metaclusters, as recipes (no streamlit) that pages/cytometry.py calls.

Populations come from the study's gate files applied to its FCS files at load time
(data_loaders/flow.py, FlowKit); gate plots read the one sample's file again (FlowKit gates it
in well under a second); FlowSOM runs on a per-sample subsample of asinh-transformed events
(analysis/flow.py). Each recipe takes the Study, the cohort and its frozen Params.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from analysis import composition as comp
from analysis import flow as fl
from analysis.cohort import Cohort, apply_cohort, response_groups
from components.figures import cytometry as figs
from components.figures.landscape import composition_bars, composition_by_window_figure
from data_loaders.flow import population_events, regate_study, sample_gate_views, study_jobs
from data_loaders.formats.fcs import FLOW_COFACTOR, flow_events, flow_samples
from views.spec import FigureSpec, TableSpec

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CytometryStatus", "status", "regate", "PopulationParams", "populations",
           "population_trend", "GatePlotParams", "gate_plots", "GateTimeParams",
           "gate_over_time", "FlowSomViewParams", "flowsom_events", "flowsom"]


@dataclass(frozen=True)
class CytometryStatus:
    n_fcs: int
    n_gated_files: int
    n_with_gates: int
    gate_files: tuple[str, ...]
    problems: tuple[str, ...]
    sample_ids: tuple[str, ...]      # gated samples, in samples-table order


def status(study: Study) -> CytometryStatus:
    rows, jobs = study_jobs(study)
    pops = study.populations
    gated = set(pops.get_column("sample_id").to_list()) if pops.height else set()
    ids = tuple(s for s in (rows.get_column("sample_id").to_list() if rows.height else [])
                if s in gated)
    problems = tuple(f"{f.file}: {f.problem}" for f in study.report.findings
                     if f.table == "flow" and f.severity != "note")
    return CytometryStatus(flow_samples(study).height, len(gated), len(jobs),
                           tuple(sorted({j.gates.rsplit("/", 1)[-1] for j in jobs})),
                           problems, ids)


def regate(study: Study, *, progress: Callable[[int, int, str], None] | None = None) -> int:
    """Gate every file again (a job; results land in the cache the next load reads)."""
    pops, _ = regate_study(study, progress=progress, force=True)
    return pops.get_column("sample_id").n_unique() if pops.height else 0


def _groups(study: Study, groups: pl.DataFrame | None) -> pl.DataFrame:
    return groups if groups is not None else response_groups(study)


def _axis(name: str, transform: str) -> str:
    return f"{name} ({transform})" if transform else name


# ---- populations --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PopulationParams:
    reference: str = ""              # "" = [flow] reference of study.toml
    population: str = ""             # the population drawn over time


def populations(study: Study, *, cohort: Cohort, params: PopulationParams, focus: Any = None,
                groups: pl.DataFrame | None = None) -> TableSpec:
    table = fl.populations_table(study, reference=params.reference)
    shown = apply_cohort(table, cohort, groups=_groups(study, groups))
    return TableSpec("cy-populations", "Gated populations", shown, params,
                     "One row per sample and gate: count, % of parent, % of all events and % "
                     "of the reference population.")


def population_trend(study: Study, *, cohort: Cohort, params: PopulationParams,
                     focus: Any = None, groups: pl.DataFrame | None = None,
                     colors: dict[str, str] | None = None) -> FigureSpec:
    pops = apply_cohort(study.populations, cohort, groups=_groups(study, groups))
    trend = fl.gate_over_time(pops, population=params.population)
    fig = figs.population_lines(trend, colors=colors, title=f"{params.population}: % of parent")
    return FigureSpec("cy-trend", f"{params.population} over time", fig, trend, params)


# ---- gate plots of one sample ---------------------------------------------------------------------
@dataclass(frozen=True)
class GatePlotParams:
    sample_id: str
    max_points: int = 5000
    seed: int = 0


def gate_plots(study: Study, *, cohort: Cohort, params: GatePlotParams, focus: Any = None
               ) -> list[FigureSpec | TableSpec]:
    """Every gate of the sample on its parent (a TableSpec for a boolean gate: no axes)."""
    out: list[FigureSpec | TableSpec] = []
    views = sample_gate_views(study, params.sample_id, max_points=params.max_points,
                              seed=params.seed)
    for i, view in enumerate(views):
        if view.gate_type == "boolean":
            out.append(TableSpec(f"cy-gate-{i}", view.population, pl.DataFrame(
                {"population": [view.population], "count": [view.count],
                 "parent_count": [view.parent_count],
                 "pct_parent": [100 * view.count / max(view.parent_count, 1)]}), params,
                "boolean gate"))
            continue
        pts = fl.gate_points(view)
        fig = figs.gate_plot(pts, y="y" if view.y else None, shape=view.shape, count=view.count,
                             parent_count=view.parent_count, title=view.population,
                             labels={"x": _axis(view.x_label, view.x_transform),
                                     "y": _axis(view.y_label, view.y_transform)})
        out.append(FigureSpec(f"cy-gate-{i}", view.population, fig, pts, params))
    return out


# ---- one gate over a patient's timepoints -------------------------------------------------------
@dataclass(frozen=True)
class GateTimeParams:
    subject_id: str
    population: str
    max_points: int = 3000
    seed: int = 0


def gate_over_time(study: Study, *, cohort: Cohort, params: GateTimeParams, focus: Any = None
                   ) -> FigureSpec:
    """Small multiples: the gate on each of the patient's gated samples, in day order."""
    mine = study.populations.filter(pl.col("subject_id") == params.subject_id).sort("day")
    by_panel = {}
    for r in mine.unique("sample_id", maintain_order=True).iter_rows(named=True):
        label = f"{r['timepoint'] or ''} (day {r['day']})".strip()
        by_panel[label] = sample_gate_views(study, r["sample_id"], populations=[
            params.population], max_points=params.max_points, seed=params.seed)[0]
    if not by_panel:
        raise KeyError(f"patient {params.subject_id!r} has no gated sample")
    points, shapes, stats = fl.gate_panels(by_panel)
    v0 = next(iter(by_panel.values()))
    fig = figs.gate_small_multiples(
        points, y="y" if v0.y else None, facet_col="panel", shapes=shapes, stats=stats,
        labels={"x": _axis(v0.x_label, v0.x_transform), "y": _axis(v0.y_label, v0.y_transform)},
        title=f"{params.subject_id}: {params.population}")
    return FigureSpec("cy-multiples", f"{params.subject_id} {params.population}", fig,
                      points, params)


# ---- FlowSOM --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlowSomViewParams:
    markers: tuple[str, ...]
    n_metaclusters: int = 10
    per_sample: int = 1000
    cofactor: float = FLOW_COFACTOR
    seed: int = 0
    population: str = ""             # cluster only this gated population ("" = all events)


def flowsom_events(study: Study, *, per_sample: int, cofactor: float = FLOW_COFACTOR,
                   population: str = "") -> Any:
    """The events FlowSOM may use (asinh, subsampled per file; only a gated population's when
    `population` is given) and the markers on offer."""
    if population:
        return population_events(study, population=population, per_file=per_sample,
                                 cofactor=cofactor)
    return flow_events(study, per_file=per_sample, cofactor=cofactor)


def flowsom(study: Study, *, cohort: Cohort, params: FlowSomViewParams, focus: Any = None,
            groups: pl.DataFrame | None = None, events: Any = None) -> list[FigureSpec]:
    """Metacluster medians (heatmap), abundance per sample, and abundance by response group
    (one point per patient per day window)."""
    groups = _groups(study, groups)
    events = events if events is not None else flowsom_events(
        study, per_sample=params.per_sample, cofactor=params.cofactor,
        population=params.population)
    frame = apply_cohort(events.frame, cohort, groups=groups)
    som = fl.flowsom_clusters(frame, params=fl.FlowSomParams(
        params.markers, n_metaclusters=params.n_metaclusters, per_sample=params.per_sample,
        seed=params.seed))
    within = f" ({params.population})" if params.population else ""
    heat = figs.cluster_heatmap(som.medians, markers=list(params.markers),
                                title=f"Metacluster medians{within}")
    abundance = fl.metacluster_composition(som)
    bars = composition_bars(abundance, title=f"Metacluster abundance per sample{within}")
    by_win = comp.composition_by_window(abundance, groups=groups)
    box = composition_by_window_figure(
        by_win, window_order=[w.label for w in comp.DEFAULT_WINDOWS],
        title="Metacluster abundance by response group (one point per patient)")
    return [FigureSpec("cy-som-heat", "FlowSOM metacluster medians", heat, som.medians, params),
            FigureSpec("cy-som-bars", "FlowSOM abundance per sample", bars, abundance, params),
            FigureSpec("cy-som-groups", "FlowSOM abundance by response group", box, by_win,
                       params)]
