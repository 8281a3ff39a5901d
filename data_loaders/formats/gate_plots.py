"""One FCS file gated for plots: each gate's parent events in the gate's own (compensated,
transformed) dimensions, which of them fall in the gate, and the gate's shape, as plain arrays
(`GateView`); and the membership of one population (for clustering within a gate).

The gating itself is FlowKit's, through the same gate file, compensation and tree as
`gating.gate_file`, so a plot's counts are the populations table's counts.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data_loaders.formats.gating import (
    GateJob,
    compensation_matrix,
    gate_tree,
    load_strategy,
    read_sample,
    with_compensation,
)

__all__ = ["GateView", "gate_geometry", "gate_view", "gate_views", "gate_membership"]


@dataclass(frozen=True)
class GateView:
    """What a gate plot draws: the parent's events in the gate's dimensions (as the gate file
    transforms them), which of them fall in the gate, and the gate's shape."""

    population: str
    gate: str
    parent: str
    gate_type: str
    x: str
    y: str | None
    x_values: np.ndarray
    y_values: np.ndarray | None
    inside: np.ndarray
    count: int
    parent_count: int
    shape: dict[str, Any] = field(default_factory=dict)
    x_transform: str = ""
    y_transform: str = ""
    x_label: str = ""            # channel and marker, e.g. "FITC-A CD3"
    y_label: str = ""


def gate_geometry(gate: Any) -> dict[str, Any]:
    """The shape of a FlowKit gate in its (transformed) dimensions, as plain numbers."""
    kind = type(gate).__name__
    if kind == "PolygonGate":
        v = np.asarray(gate.vertices, dtype=float)
        return {"kind": "polygon", "x": v[:, 0].tolist(), "y": v[:, 1].tolist()}
    if kind == "RectangleGate":
        return {"kind": "rectangle", "min": [d.min for d in gate.dimensions],
                "max": [d.max for d in gate.dimensions]}
    if kind == "EllipsoidGate":
        return {"kind": "ellipse", "center": [float(c) for c in gate.coordinates],
                "covariance": np.asarray(gate.covariance_matrix, float).tolist(),
                "distance_square": float(gate.distance_square)}
    if kind == "QuadrantGate":
        return {"kind": "quadrant", "dividers": [list(d.values) for d in gate.dimensions]}
    return {"kind": kind.replace("Gate", "").lower()}


def _dim_name(dim: Any) -> str:
    return getattr(dim, "dimension_ref", None) or getattr(dim, "ratio_ref", None) or dim.id


def gate_view(job: GateJob, population: str, *, max_points: int = 20000, seed: int = 0
              ) -> GateView:
    """The plot data of one population of one file (see `GateView`)."""
    return gate_views(job, [population], max_points=max_points, seed=seed)[0]


def _gated(job: GateJob) -> tuple[Any, Any, dict[str, tuple[str, str]],
                                   Callable[[str], np.ndarray]]:
    """The sample, its strategy, the population tree and a membership lookup of one file."""
    sample, _ = read_sample(job.fcs, sample_id=job.sample_name or Path(job.fcs).name)
    strategy, _ = load_strategy(job.gates, sample_name=sample.id, group=job.group)
    if job.compensation:
        strategy = with_compensation(strategy, compensation_matrix(sample, job.compensation)[0],
                                      sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = strategy.gate_sample(sample, cache_events=True)
        finally:
            strategy.clear_cache()
    tree = {full: (gate_id, parent) for full, gate_id, parent in gate_tree(strategy)}
    memo: dict[str, np.ndarray] = {}

    def members(pop: str) -> np.ndarray:
        if not pop:
            return np.ones(sample.event_count, dtype=bool)
        if pop not in memo:
            p = [q for q in pop.split("/") if q]
            path = ("root", *p[:-1])
            try:
                memo[pop] = np.asarray(res.get_gate_membership(p[-1], gate_path=path))
            except (KeyError, ValueError):
                # a quadrant is looked up without its quadrant gate in the path
                memo[pop] = np.asarray(res.get_gate_membership(p[-1], gate_path=path[:-1]))
        return memo[pop]

    return sample, strategy, tree, members


def gate_membership(job: GateJob, population: str) -> np.ndarray:
    """Which events of the file are in `population` (a boolean per event, in file order)."""
    _, _, tree, members = _gated(job)
    if population not in tree:
        raise KeyError(f"population {population!r} is not in the gate file")
    return members(population)


def gate_views(job: GateJob, populations: Sequence[str] | None = None, *,
               max_points: int = 20000, seed: int = 0) -> list[GateView]:
    """Plot data of `populations` (default: every population, in tree order) of one file,
    reading and gating it once. Events are subsampled to `max_points` per parent (seeded);
    counts are over all events. Boolean gates have no dimensions: their view has no values."""
    from flowkit.exceptions import QuadrantReferenceError

    sample, strategy, tree, members = _gated(job)
    wanted = list(tree) if populations is None else list(populations)
    missing = [p for p in wanted if p not in tree]
    if missing:
        raise KeyError(f"population {missing[0]!r} is not in the gate file")
    out = []
    rng = np.random.default_rng(seed)
    for population in wanted:
        gate_id, parent = tree[population]
        parts = [p for p in population.split("/") if p]
        in_parent, inside = members(parent), members(population)
        quadrant = None
        try:
            shape_gate = strategy.get_gate(parts[-1], tuple(["root", *parts[:-1]]))
        except QuadrantReferenceError:
            shape_gate = strategy.get_gate(parts[-2], tuple(["root", *parts[:-2]]))
            quadrant = parts[-1]
        kind = type(shape_gate).__name__
        if kind == "BooleanGate":
            out.append(GateView(population, gate_id, parent, "boolean", "", None, np.empty(0),
                                None, np.empty(0, bool), int(inside.sum()),
                                int(in_parent.sum()), {"kind": "boolean"}))
            continue
        idx = np.flatnonzero(in_parent)
        if idx.size > max_points:
            idx = np.sort(rng.choice(idx, size=max_points, replace=False))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            events = strategy._preprocess_sample_events(sample, shape_gate)  # noqa: SLF001
        dims = [_dim_name(d) for d in shape_gate.dimensions]
        xforms = [getattr(d, "transformation_ref", None) or "" for d in shape_gate.dimensions]
        cols = list(events.columns)
        xv = events[cols[0]].to_numpy()[idx]
        yv = events[cols[1]].to_numpy()[idx] if len(cols) > 1 else None
        shape = gate_geometry(shape_gate)
        if quadrant:
            shape["quadrant"] = quadrant
        names = [_with_marker(sample, d) for d in dims]
        out.append(GateView(population, gate_id, parent, kind.replace("Gate", "").lower(),
                            dims[0], dims[1] if len(dims) > 1 else None, xv, yv, inside[idx],
                            int(inside.sum()), int(in_parent.sum()), shape,
                            _xform_label(strategy, xforms[0]),
                            _xform_label(strategy, xforms[1]) if len(xforms) > 1 else "",
                            names[0], names[1] if len(names) > 1 else ""))
    return out


def _with_marker(sample: Any, dim: str) -> str:
    labels = list(sample.pnn_labels)
    if dim in labels:
        marker = sample.pns_labels[labels.index(dim)]
        return f"{dim} {marker}" if marker and marker != dim else dim
    return dim


def _xform_label(strategy: Any, ref: str) -> str:
    if not ref:
        return ""
    try:
        xf = strategy.get_transform(ref)
    except Exception:  # noqa: BLE001
        return ref
    name = type(xf).__name__.replace("Transform", "").replace("WSP", "").lower()
    return name or ref
