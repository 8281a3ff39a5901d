"""Click targets on heatmaps, so a click on a patient's cell opens the Patient page.

A plotly heatmap cannot be selected (plotly.js gives its trace no `selectPoints`), so
a chart shown with `on_select="rerun"` reports nothing when a cell is clicked. For a
per-patient heatmap (one row or column per patient), `clickable_cells` adds to the drawn figure
one transparent marker at the centre of each patient's cell, carrying the patient's subject_id
first in `customdata` (what `components.session.clicked_patient` reads) and the cell's own
hover text, so hovering looks as before and a click selects the marker. Only the figure the
page draws gets the markers; downloads and the view's record keep the heatmap alone.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

import plotly.graph_objects as go

__all__ = ["clickable_cells", "fill_hovertemplate"]

_FIELD = re.compile(r"%\{([A-Za-z_]+)((?:\[\d+\])*)(?::([^}]*))?\}")
_EXTRA = re.compile(r"<extra>(.*?)</extra>", re.DOTALL)


def _grid(values: Any, ny: int, nx: int) -> list[list[Any]]:
    """A per-cell attribute as ny rows of nx cells (a scalar or a missing one repeats)."""
    if values is None or isinstance(values, str | int | float):
        return [[values] * nx for _ in range(ny)]
    rows = [list(r) if hasattr(r, "__len__") and not isinstance(r, str) else [r] * nx
            for r in values]
    rows = (rows + [[None] * nx] * ny)[:ny]
    return [(r + [None] * nx)[:nx] for r in rows]


def _format(value: Any, spec: str | None) -> str:
    if value is None:
        return ""
    if spec:
        try:
            return format(value, spec)
        except (TypeError, ValueError):
            pass
    return str(value)


def fill_hovertemplate(template: str, cell: dict[str, Any]) -> str:
    """`template` (plotly's `%{x}`, `%{z:.2f}`, `%{customdata[1]}`, ...) with one cell's
    values; a field the cell lacks is left empty."""
    def one(m: re.Match[str]) -> str:
        value = cell.get(m.group(1))
        for index in re.findall(r"\[(\d+)\]", m.group(2) or ""):
            try:
                value = value[int(index)]
            except (TypeError, IndexError, KeyError):
                value = None
        return _format(value, m.group(3))
    return _FIELD.sub(one, template)


def _hover(trace: go.Heatmap, cell: dict[str, Any]) -> tuple[str, str]:
    """The cell's hover text as the heatmap shows it: (label, the label's side box)."""
    template = trace.hovertemplate
    if isinstance(template, str) and template:
        extra = _EXTRA.search(template)
        main = _EXTRA.sub("", template)
        return (fill_hovertemplate(main, cell),
                fill_hovertemplate(extra.group(1), cell) if extra else trace.name or "")
    info = trace.hoverinfo or "all"
    flags = {"x", "y", "z", "text", "name"} if info == "all" else set(info.split("+"))
    parts = [f"{k}: {_format(cell.get(k), None)}" for k in ("x", "y", "z") if k in flags]
    if "text" in flags and (cell.get("hovertext") or cell.get("text")):
        parts.append(_format(cell.get("hovertext") or cell.get("text"), None))
    return "<br>".join(parts), (trace.name or "") if "name" in flags else ""


def _targets(trace: go.Heatmap, subjects: Collection[str]) -> go.Scatter | None:
    if trace.z is None or trace.transpose:
        return None
    z = [list(r) for r in trace.z]
    ny = len(z)
    nx = max((len(r) for r in z), default=0)
    xs = list(trace.x) if trace.x is not None else list(range(nx))
    ys = list(trace.y) if trace.y is not None else list(range(ny))
    z = _grid(z, ny, nx)
    text, hovertext = _grid(trace.text, ny, nx), _grid(trace.hovertext, ny, nx)
    custom = _grid(trace.customdata, ny, nx)
    px, py, labels, data = [], [], [], []
    for i in range(min(ny, len(ys))):
        for j in range(min(nx, len(xs))):
            patient = ys[i] if ys[i] in subjects else xs[j] if xs[j] in subjects else None
            if patient is None:
                continue
            cell = {"x": xs[j], "y": ys[i], "z": z[i][j], "text": text[i][j],
                    "hovertext": hovertext[i][j], "customdata": custom[i][j]}
            label, extra = _hover(trace, cell)
            px.append(xs[j])
            py.append(ys[i])
            labels.append(label)
            data.append([patient, extra])
    if not px:
        return None
    clear = "rgba(0,0,0,0)"
    return go.Scatter(
        x=px, y=py, mode="markers", hovertext=labels, customdata=data,
        hovertemplate="%{hovertext}<extra>%{customdata[1]}</extra>", showlegend=False,
        marker={"size": 12, "color": clear}, selected={"marker": {"opacity": 0}},
        unselected={"marker": {"opacity": 0}}, name="", xaxis=trace.xaxis or "x",
        yaxis=trace.yaxis or "y")


def clickable_cells(fig: go.Figure, *, subjects: Collection[str]) -> go.Figure:
    """`fig` with a transparent, clickable marker on each heatmap cell whose row or column is
    one of `subjects` (see the module docstring); `fig` itself when it has no such cell. In a
    figure of heatmaps only, the nearest marker takes the hover anywhere in the plot
    (`hoverdistance=-1`), so a click anywhere in a cell opens its patient."""
    heatmaps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    targets = [s for s in (_targets(t, subjects) for t in heatmaps) if s is not None]
    if not targets:
        return fig
    out = go.Figure(fig)
    for scatter in targets:
        out.add_trace(scatter)
    if len(heatmaps) == len(fig.data):
        out.update_layout(hoverdistance=-1)
    return out
