"""Flow cytometry readouts: gated populations per sample, one gate over a patient's timepoints,
and unsupervised populations (FlowSOM) whose abundances per sample are a composition.

Populations come from the gate files the study names (data_loaders/flow.py, FlowKit); this
module only reshapes them. FlowSOM (Van Gassen et al., Cytometry A 2015; the `flowsom` Python
package, Couckuyt et al., Bioinformatics 2024) clusters events on a self-organising map and
merges the map's nodes into metaclusters by consensus hierarchical clustering. It runs on a
per-sample subsample of asinh-transformed events so that every sample weighs the same; the
metacluster abundances per sample have the shape of analysis/composition.py, so response-group
comparisons stay patient-level (one value per patient per day window), as for single cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from analysis.composition import composition_of
from analysis.registry import Option, derived_table

if TYPE_CHECKING:
    from data_loaders import Study
    from data_loaders.formats.gate_plots import GateView

__all__ = ["POPULATION_COLUMNS", "populations_table", "with_reference", "population_names",
           "gate_over_time",
           "FlowSomParams", "FlowSomResult", "flowsom_clusters", "metacluster_composition",
           "metacluster_names", "gate_points", "gate_panels"]

POPULATION_COLUMNS = ("sample_id", "subject_id", "day", "population", "parent", "count",
                      "pct_parent")


@derived_table("populations", "gated flow cytometry: one row per sample and gate (count, % of "
               "parent, % of the reference population)",
               options={"reference": Option(str, "", "population for pct_reference (gate "
                                             "name or path); default [flow] reference")})
def populations_table(study: Study, *, reference: str = "") -> pl.DataFrame:
    """The study's populations, leading with sample_id, subject_id, day, population, parent,
    count, pct_parent; `reference` recomputes pct_reference against another population."""
    pops = study.populations
    if reference and pops.height:
        pops = with_reference(pops, reference=reference)
    rest = [c for c in pops.columns if c not in POPULATION_COLUMNS]
    return pops.select(*POPULATION_COLUMNS, *rest).sort("subject_id", "day", "sample_id",
                                                        maintain_order=True)


def with_reference(pops: pl.DataFrame, *, reference: str) -> pl.DataFrame:
    """pct_reference = count / count of `reference` in the same sample, for the reference and
    the populations under it (None elsewhere and where the reference is not unique)."""
    from data_loaders.flow import match_population

    out = []
    for _, grp in pops.group_by("sample_id", maintain_order=True):
        paths = grp.get_column("population").to_list()
        ref = match_population(reference, paths)
        ref_n = grp.filter(pl.col("population") == ref).get_column("count")[0] if ref else None
        under = pl.col("population").eq(ref) | pl.col("population").str.starts_with(f"{ref}/") \
            if ref else pl.lit(False)
        out.append(grp.with_columns(
            pl.when(under & pl.lit(bool(ref_n))).then(100.0 * pl.col("count") / (ref_n or 1))
            .otherwise(None).alias("pct_reference")))
    return pl.concat(out)


def population_names(pops: pl.DataFrame) -> list[str]:
    """Population paths in tree order (parents before children, as first seen)."""
    if pops.height == 0:
        return []
    return pops.get_column("population").unique(maintain_order=True).to_list()


def gate_over_time(pops: pl.DataFrame, *, population: str, subject_id: str | None = None
                   ) -> pl.DataFrame:
    """One population across samples (a patient's timepoints when `subject_id` is given),
    ordered by day: sample_id, subject_id, day, timepoint, count, parent_count, pct_parent."""
    df = pops.filter(pl.col("population") == population)
    if subject_id is not None:
        df = df.filter(pl.col("subject_id") == subject_id)
    return df.select("sample_id", "subject_id", "day", "timepoint", "count", "parent_count",
                     "pct_parent").sort("subject_id", "day", "sample_id")


# ---- FlowSOM -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlowSomParams:
    """FlowSOM settings (defaults of the FlowSOM paper: a 10 x 10 map, 10 metaclusters)."""

    markers: tuple[str, ...]
    n_metaclusters: int = 10
    xdim: int = 10
    ydim: int = 10
    per_sample: int = 2000
    seed: int = 0


@dataclass(frozen=True)
class FlowSomResult:
    """Per event: `labels` (metacluster, 1-based) and `nodes` (SOM node); `medians`: one row
    per metacluster with n_events, the median of every marker and a name; `events` the
    clustered events' sample_id, subject_id, day, metacluster."""

    labels: np.ndarray
    nodes: np.ndarray
    medians: pl.DataFrame
    events: pl.DataFrame
    params: FlowSomParams


def flowsom_clusters(events: pl.DataFrame, *, params: FlowSomParams) -> FlowSomResult:
    """FlowSOM on `events` (one row per event: sample_id, subject_id, day and one column per
    marker, already transformed), subsampled to `params.per_sample` events per sample."""
    markers = [m for m in params.markers if m in events.columns]
    if len(markers) < 2:
        raise ValueError("FlowSOM needs at least two markers present in the events")
    if events.height == 0:
        raise ValueError("no events to cluster")
    rng = np.random.default_rng(params.seed)
    keep: list[np.ndarray] = []
    idx = events.with_row_index("_i").group_by("sample_id", maintain_order=True).agg("_i")
    for rows in idx.get_column("_i").to_list():
        rows = np.asarray(rows)
        keep.append(np.sort(rng.choice(rows, size=min(params.per_sample, rows.size),
                                       replace=False)))
    take = np.sort(np.concatenate(keep))
    sub = events[take]
    x = sub.select(markers).to_numpy().astype(np.float32)
    n_meta = max(2, min(params.n_metaclusters, params.xdim * params.ydim))
    from flowsom.models import FlowSOMEstimator

    model = FlowSOMEstimator(xdim=params.xdim, ydim=params.ydim, n_clusters=n_meta,
                             seed=params.seed)
    labels = np.asarray(model.fit_predict(x)).astype(np.int64) + 1
    nodes = np.asarray(model.cluster_labels).astype(np.int64)
    med = _medians(x, labels, markers)
    out_events = sub.select("sample_id", "subject_id", "day").with_columns(
        pl.Series("metacluster", labels))
    return FlowSomResult(labels, nodes, med, out_events, params)


def _medians(x: np.ndarray, labels: np.ndarray, markers: list[str]) -> pl.DataFrame:
    rows = []
    lo, hi = np.percentile(x, 2, axis=0), np.percentile(x, 98, axis=0)
    for mc in np.unique(labels):
        sel = x[labels == mc]
        med = np.median(sel, axis=0)
        rows.append({"metacluster": int(mc), "n_events": int(sel.shape[0]),
                     **{m: float(v) for m, v in zip(markers, med, strict=True)},
                     "name": metacluster_names(med, markers=markers, lo=lo, hi=hi,
                                               number=int(mc))})
    return pl.DataFrame(rows)


def metacluster_names(medians: np.ndarray, *, markers: Sequence[str], lo: np.ndarray,
                      hi: np.ndarray, number: int) -> str:
    """"MC3 CD3+ CD7- CAR+": markers whose median lies in the top (+) or bottom (-) third
    of the marker's 2nd-98th percentile range over all clustered events."""
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    pos = (medians - lo) / span
    tags = [f"{m}+" if p >= 2 / 3 else f"{m}-" for m, p in zip(markers, pos, strict=True)
            if p >= 2 / 3 or p <= 1 / 3]
    return f"MC{number} " + " ".join(tags) if tags else f"MC{number}"


def metacluster_composition(result: FlowSomResult) -> pl.DataFrame:
    """Metacluster abundances per sample in the composition shape (sample_id, subject_id,
    day, cell_type = the metacluster's name, n_cells, fraction), for composition_by_window."""
    names = dict(zip(result.medians.get_column("metacluster").to_list(),
                     result.medians.get_column("name").to_list(), strict=True))
    cells = result.events.with_columns(pl.col("metacluster").replace_strict(
        names, return_dtype=pl.String).alias("cell_type"))
    return composition_of(cells).with_columns(
        pl.format("d{}", pl.col("day")).alias("sample_label"))


# ---- gate plot data ----------------------------------------------------------------------------
def gate_points(view: GateView) -> pl.DataFrame:
    """The drawn events of a gate view: x, y (None for a histogram), inside."""
    cols = {"x": view.x_values, "inside": view.inside}
    if view.y_values is not None:
        cols["y"] = view.y_values
    return pl.DataFrame(cols)


def gate_panels(views: dict) -> tuple[pl.DataFrame, dict, pl.DataFrame]:
    """Small-multiple data from {panel label: GateView of one gate}: the points with a
    `panel` column, the gate shape per panel and count / parent_count per panel."""
    frames, shapes, stats = [], {}, []
    for label, view in views.items():
        frames.append(gate_points(view).with_columns(pl.lit(label).alias("panel")))
        shapes[label] = view.shape
        stats.append({"panel": label, "count": view.count, "parent_count": view.parent_count})
    points = pl.concat(frames, how="diagonal") if frames else pl.DataFrame(
        schema={"x": pl.Float64, "inside": pl.Boolean, "panel": pl.String})
    return points, shapes, pl.DataFrame(stats, schema={"panel": pl.String, "count": pl.Int64,
                                                        "parent_count": pl.Int64})
