"""The Cytometry view: gated populations, gate plots, one gate over a patient's timepoints and
FlowSOM metaclusters, as recipes (no streamlit) that pages/cytometry.py calls.

Populations come from the study's gate files applied to its FCS files at load time
(data_loaders/flow.py, FlowKit); gate plots read the one sample's file again (FlowKit gates it
in well under a second); FlowSOM runs on a per-sample subsample of asinh-transformed events
(analysis/flow.py). Each recipe takes the Study, the cohort and its frozen Params and returns
one FigureSpec or TableSpec; the gate plots of one sample and the three FlowSOM records share
one computation (views.shared). The option lists the page offers (populations, gated samples,
patients, gates to follow over time) are here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from analysis import composition as comp
from analysis import flow as fl
from analysis.cohort import Cohort, apply_cohort, response_groups
from components.figures import cytometry as figs
from components.figures.landscape import composition_bars, composition_by_window_figure
from data_loaders.flow import population_events, sample_gate_views, study_jobs
from data_loaders.formats.fcs import FLOW_COFACTOR, flow_events, flow_samples
from jobs.tasks import regate  # the page's "Gate all files again": the job `cli.py gate` runs
from views import common
from views.shared import shared
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["CytometryStatus", "status", "regate", "population_names", "gated_samples",
           "gated_patients", "timeline_gates", "PopulationParams", "populations",
           "population_trend", "GatePlotParams", "gate_names", "gate_plot", "GateTimeParams",
           "gate_over_time", "FlowSomViewParams", "FlowSomSetup", "flowsom_setup",
           "flowsom_events", "flowsom_medians", "flowsom_abundance", "flowsom_by_group",
           "NO_FCS", "EVENTS_PER_SAMPLE", "AS_CONFIGURED", "ALL_EVENTS", "reference_choices",
           "within_choices", "chosen_population"]

NO_FCS = ("This study has no flow cytometry files: rows of the samples table with assay "
          "`flow_fcs` and a `file` column naming .fcs files (see docs/formats.md, Flow "
          "cytometry).")
EVENTS_PER_SAMPLE = (500, 1000, 2000, 5000)


@dataclass(frozen=True)
class CytometryStatus:
    n_fcs: int
    n_gated_files: int
    n_with_gates: int
    gate_files: tuple[str, ...]
    problems: tuple[str, ...]
    sample_ids: tuple[str, ...]      # gated samples, in samples-table order

    @property
    def gating_note(self) -> str:
        """What the gating of the study's files came to, or how to give it a gate file."""
        if not self.n_with_gates:
            return (f"{self.n_fcs} FCS file(s) but no gate file: name a FlowJo workspace "
                    "(.wsp) or a Gating-ML 2.0 file in study.toml `[flow] gating = \"...\"` "
                    "or in a `gating` column of samples.csv. FlowSOM clustering works without "
                    "gates.")
        return (f"{self.n_gated_files} of {self.n_with_gates} FCS file(s) gated with "
                f"{', '.join(self.gate_files)}.")

    @property
    def no_populations(self) -> str:
        """Why the Populations tab has nothing to show for a cohort."""
        return "No gated populations" + (" for the patients and days in the sidebar filter."
                                         if self.n_gated_files else ".")


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


AS_CONFIGURED = "(as study.toml)"   # the reference population study.toml names
ALL_EVENTS = "all events"           # FlowSOM over every event, gated or not


def reference_choices(names: Sequence[str]) -> list[str]:
    """The reference populations offered: the study's own, then each gated population."""
    return [AS_CONFIGURED, *names]


def within_choices(names: Sequence[str]) -> list[str]:
    """The events FlowSOM may cluster: all of them, or those of one gated population."""
    return [ALL_EVENTS, *names]


def chosen_population(choice: str) -> str:
    """A population choice as Params hold it: "" for the study's reference or all events."""
    return "" if choice in (AS_CONFIGURED, ALL_EVENTS) else choice


def _cohort(cohort: Cohort | None) -> Cohort:
    return cohort if cohort is not None else Cohort()


def _pops(study: Study, cohort: Cohort | None) -> pl.DataFrame:
    return apply_cohort(study.populations, _cohort(cohort), groups=response_groups(study))


def population_names(study: Study, *, cohort: Cohort | None = None) -> list[str]:
    """The gated populations of the cohort's samples, in gate order."""
    pops = _pops(study, cohort)
    return pops.get_column("population").unique(maintain_order=True).to_list() \
        if pops.height else []


def gated_samples(study: Study, *, cohort: Cohort | None = None) -> list[str]:
    """The cohort's gated samples, in samples-table order."""
    pops = _pops(study, cohort)
    have = set(pops.get_column("sample_id").to_list()) if pops.height else set()
    return [s for s in status(study).sample_ids if s in have]


def gated_patients(study: Study, *, cohort: Cohort | None = None) -> list[str]:
    """The cohort's patients with a gated sample, sorted."""
    pops = _pops(study, cohort)
    return sorted(set(pops.get_column("subject_id").to_list())) if pops.height else []


def timeline_gates(study: Study, *, cohort: Cohort | None = None) -> list[str]:
    """Gates that can be drawn on each timepoint (boolean gates have no axes)."""
    pops = _pops(study, cohort)
    return pops.filter(pl.col("gate_type") != "boolean").get_column("population").unique(
        maintain_order=True).to_list() if pops.height else []


def _axis(name: str, transform: str) -> str:
    return f"{name} ({transform})" if transform else name


# ---- populations --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PopulationParams:
    """The reference population of the "% of reference" column ("": study.toml [flow]
    reference) and the population drawn over time ("": the last gate)."""

    reference: str = ""
    population: str = ""


@recipe
def populations(study: Study, *, cohort: Cohort | None = None,
                params: PopulationParams = PopulationParams(),
                focus: Focus | None = None) -> TableSpec:
    """One row per sample and gate of the cohort: count and percentages."""
    table = fl.populations_table(study, reference=params.reference)
    shown = apply_cohort(table, _cohort(cohort), groups=response_groups(study))
    return TableSpec("cy-populations", "Gated populations", shown, params,
                     "One row per sample and gate: count, % of parent, % of all events and % "
                     "of the reference population.")


@recipe
def population_trend(study: Study, *, cohort: Cohort | None = None,
                     params: PopulationParams = PopulationParams(), focus: Focus | None = None
                     ) -> FigureSpec:
    """One population's % of parent per patient over time."""
    names = population_names(study, cohort=cohort)
    population = params.population or (names[-1] if names else "")
    trend = fl.gate_over_time(_pops(study, cohort), population=population)
    fig = figs.population_lines(trend, colors=common.colors(study, cohort),
                                title=f"{population}: % of parent")
    return FigureSpec("cy-trend", f"{population} over time", fig, trend, params)


# ---- gate plots of one sample ---------------------------------------------------------------------
@dataclass(frozen=True)
class GatePlotParams:
    """One gate (`population`; "": the first) of one sample, drawn on its parent's events."""

    sample_id: str
    population: str = ""
    max_points: int = 5000
    seed: int = 0


@shared
def _gate_views(study: Study, sample_id: str, max_points: int, seed: int) -> list[Any]:
    return sample_gate_views(study, sample_id, max_points=max_points, seed=seed)


def gate_names(study: Study, *, sample_id: str) -> list[str]:
    """The gates of a sample, in gate order (reads its FCS file once for all its plots)."""
    defaults = GatePlotParams(sample_id)
    return [v.population for v in _gate_views(study, sample_id, defaults.max_points,
                                              defaults.seed)]


@recipe
def gate_plot(study: Study, *, cohort: Cohort | None = None, params: GatePlotParams,
              focus: Focus | None = None) -> FigureSpec | TableSpec:
    """The gate on its parent's events (a TableSpec for a boolean gate: it has no axes).
    Raises KeyError for a sample without a gate file or a gate it does not have."""
    views = _gate_views(study, params.sample_id, params.max_points, params.seed)
    names = [v.population for v in views]
    population = params.population or (names[0] if names else "")
    if population not in names:
        raise KeyError(f"sample {params.sample_id!r} has no gate {population!r}")
    i = names.index(population)
    view = views[i]
    if view.gate_type == "boolean":
        return TableSpec(f"cy-gate-{i}", view.population, pl.DataFrame(
            {"population": [view.population], "count": [view.count],
             "parent_count": [view.parent_count],
             "pct_parent": [100 * view.count / max(view.parent_count, 1)]}), params,
            "boolean gate")
    pts = fl.gate_points(view)
    fig = figs.gate_plot(pts, y="y" if view.y else None, shape=view.shape, count=view.count,
                         parent_count=view.parent_count, title=view.population,
                         labels={"x": _axis(view.x_label, view.x_transform),
                                 "y": _axis(view.y_label, view.y_transform)})
    return FigureSpec(f"cy-gate-{i}", view.population, fig, pts, params)


# ---- one gate over a patient's timepoints -------------------------------------------------------
@dataclass(frozen=True)
class GateTimeParams:
    """One gate on each of one patient's gated samples."""

    subject_id: str
    population: str
    max_points: int = 3000
    seed: int = 0


@recipe
def gate_over_time(study: Study, *, cohort: Cohort | None = None, params: GateTimeParams,
                   focus: Focus | None = None) -> FigureSpec:
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
    """FlowSOM on `markers` (a 10 x 10 map, then `n_metaclusters` consensus metaclusters) of
    `per_sample` events per file, of every event or only a gated `population`'s."""

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


@dataclass(frozen=True)
class FlowSomSetup:
    """What FlowSOM can cluster at these settings: the markers and the files' problems."""

    markers: tuple[str, ...]
    errors: tuple[str, ...]


def flowsom_setup(study: Study, *, per_sample: int, population: str = "") -> FlowSomSetup:
    events = flowsom_events(study, per_sample=per_sample, population=population)
    return FlowSomSetup(tuple(events.markers), tuple(events.errors))


@shared
def _flowsom(study: Study, cohort: Cohort, params: FlowSomViewParams
             ) -> tuple[FigureSpec, FigureSpec, FigureSpec]:
    groups = response_groups(study)
    events = flowsom_events(study, per_sample=params.per_sample, cofactor=params.cofactor,
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
    return (FigureSpec("cy-som-heat", "FlowSOM metacluster medians", heat, som.medians, params),
            FigureSpec("cy-som-bars", "FlowSOM abundance per sample", bars, abundance, params),
            FigureSpec("cy-som-groups", "FlowSOM abundance by response group", box, by_win,
                       params))


@recipe
def flowsom_medians(study: Study, *, cohort: Cohort | None = None, params: FlowSomViewParams,
                    focus: Focus | None = None) -> FigureSpec:
    """FlowSOM metacluster medians per marker (heatmap)."""
    return _flowsom(study, _cohort(cohort), params)[0]


@recipe
def flowsom_abundance(study: Study, *, cohort: Cohort | None = None,
                      params: FlowSomViewParams, focus: Focus | None = None) -> FigureSpec:
    """Metacluster abundance per sample (stacked bars)."""
    return _flowsom(study, _cohort(cohort), params)[1]


@recipe
def flowsom_by_group(study: Study, *, cohort: Cohort | None = None,
                     params: FlowSomViewParams, focus: Focus | None = None) -> FigureSpec:
    """Metacluster abundance by response group and day window (one point per patient)."""
    return _flowsom(study, _cohort(cohort), params)[2]
