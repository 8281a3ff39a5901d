"""Cytometry figures: a gate on its parent population (bivariate or histogram, the gate drawn,
count and % of parent shown, axes in the gate file's transformed scale), one gate over a
patient's timepoints as small multiples, population frequencies over time, and the FlowSOM
metacluster-median heatmap. Plotly-express manner: frame first, column names as keywords."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from components.theme import patient_colors

__all__ = ["gate_plot", "gate_small_multiples", "population_lines", "cluster_heatmap",
           "gate_outline"]

_IN, _OUT, _GATE = "#0072B2", "#BBBBBB", "#D55E00"


def gate_outline(shape: Mapping[str, Any], *, x_range: tuple[float, float],
                 y_range: tuple[float, float] | None = None) -> list[tuple[list, list]]:
    """The gate as line segments (x list, y list) in data coordinates; open rectangle sides
    run to the edge of the plotted range."""
    kind = shape.get("kind")
    if kind == "polygon":
        xs, ys = list(shape["x"]), list(shape["y"])
        return [(xs + xs[:1], ys + ys[:1])]
    if kind == "rectangle":
        lo, hi = list(shape["min"]), list(shape["max"])
        x0 = lo[0] if lo[0] is not None else x_range[0]
        x1 = hi[0] if hi[0] is not None else x_range[1]
        if len(lo) == 1 or y_range is None:   # a range gate: a line at each given bound
            return [([v, v], [None, None]) for v in (lo[0], hi[0]) if v is not None]
        y0 = lo[1] if lo[1] is not None else y_range[0]
        y1 = hi[1] if hi[1] is not None else y_range[1]
        return [([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0])]
    if kind == "ellipse":
        c = np.asarray(shape["center"], float)[:2]
        cov = np.asarray(shape["covariance"], float)[:2, :2]
        vals, vecs = np.linalg.eigh(cov)
        t = np.linspace(0, 2 * np.pi, 121)
        circle = np.stack([np.cos(t), np.sin(t)])
        pts = (vecs @ np.diag(np.sqrt(np.maximum(vals, 0) * shape["distance_square"]))
               @ circle).T + c
        return [(pts[:, 0].tolist(), pts[:, 1].tolist())]
    if kind == "quadrant":
        dx = shape["dividers"][0] if shape["dividers"] else []
        dy = shape["dividers"][1] if len(shape["dividers"]) > 1 else []
        segs = [([v, v], list(y_range or (0, 1))) for v in dx]
        segs += [(list(x_range), [v, v]) for v in dy]
        return segs
    return []


def _ranges(x: np.ndarray, y: np.ndarray | None, shape: Mapping[str, Any]
            ) -> tuple[tuple[float, float], tuple[float, float] | None]:
    def span(v: np.ndarray, extra: list[float]) -> tuple[float, float]:
        finite = v[np.isfinite(v)]
        if finite.size > 20:
            lo, hi = (float(q) for q in np.percentile(finite, [0.5, 99.5]))
        elif finite.size:
            lo, hi = float(finite.min()), float(finite.max())
        else:
            lo, hi = 0.0, 1.0
        if extra:
            lo, hi = min(lo, *extra), max(hi, *extra)
        pad = (hi - lo) * 0.05 or 1.0
        return lo - pad, hi + pad

    xs, ys = [], []
    if shape.get("kind") == "polygon":
        xs, ys = list(shape["x"]), list(shape["y"])
    elif shape.get("kind") == "rectangle":
        xs = [v for v in (shape["min"][0], shape["max"][0]) if v is not None]
        if len(shape["min"]) > 1:
            ys = [v for v in (shape["min"][1], shape["max"][1]) if v is not None]
    elif shape.get("kind") == "quadrant":
        xs = list(shape["dividers"][0]) if shape["dividers"] else []
        ys = list(shape["dividers"][1]) if len(shape["dividers"]) > 1 else []
    return span(x, xs), (span(y, ys) if y is not None else None)


def _axis_title(name: str, transform: str) -> str:
    return f"{name} ({transform})" if transform else name


def _add_gate(fig: go.Figure, df: pl.DataFrame, *, x: str, y: str | None, inside: str,
              shape: Mapping[str, Any], row: int | None = None, col: int | None = None,
              show_legend: bool = True, bins: int = 128) -> tuple[tuple, tuple | None]:
    xv = df.get_column(x).to_numpy().astype(float)
    yv = df.get_column(y).to_numpy().astype(float) if y else None
    mask = df.get_column(inside).to_numpy().astype(bool)
    xr, yr = _ranges(xv, yv, shape)
    kw = {"row": row, "col": col} if row else {}
    if yv is None:
        edges = np.linspace(*xr, bins + 1)
        for sel, name, colr in ((~mask, "outside", _OUT), (mask, "in gate", _IN)):
            h, _ = np.histogram(xv[sel], bins=edges)
            fig.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=h, name=name,
                                 marker_color=colr, width=float(edges[1] - edges[0]),
                                 legendgroup=name, showlegend=show_legend), **kw)
        ymax = 1.0
        for tr in fig.data:
            if tr.type == "bar" and len(tr.y):
                ymax = max(ymax, float(np.max(tr.y)))
        for xs, _ in gate_outline(shape, x_range=xr):
            fig.add_trace(go.Scatter(x=xs, y=[0, ymax * 1.05], mode="lines", name="gate",
                                     line={"color": _GATE, "width": 2}, legendgroup="gate",
                                     showlegend=False, hoverinfo="skip"), **kw)
        return xr, None
    for sel, name, colr, size in ((~mask, "outside", _OUT, 3), (mask, "in gate", _IN, 3)):
        fig.add_trace(go.Scattergl(x=xv[sel], y=yv[sel], mode="markers", name=name,
                                   marker={"color": colr, "size": size, "opacity": 0.6},
                                   legendgroup=name, showlegend=show_legend,
                                   hoverinfo="skip"), **kw)
    first = True
    for xs, ys in gate_outline(shape, x_range=xr, y_range=yr):
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="gate",
                                 line={"color": _GATE, "width": 2}, legendgroup="gate",
                                 showlegend=show_legend and first, hoverinfo="skip"), **kw)
        first = False
    return xr, yr


def gate_plot(df: pl.DataFrame, *, x: str = "x", y: str | None = "y", inside: str = "inside",
              shape: Mapping[str, Any], count: int, parent_count: int,
              labels: Mapping[str, str] | None = None, title: str | None = None
              ) -> go.Figure:
    """One gate on its parent's events: a bivariate scatter (in-gate events coloured) or a
    histogram for a one-dimensional gate, with the gate outline and its count and % of
    parent. `df` holds the drawn (subsampled) events; counts are over all events."""
    labels = dict(labels or {})
    fig = go.Figure()
    y = y if y and y in df.columns else None
    xr, yr = _add_gate(fig, df, x=x, y=y, inside=inside, shape=shape)
    pct = 100.0 * count / parent_count if parent_count else float("nan")
    fig.add_annotation(text=f"{count:,} events, {pct:.2f}% of parent ({parent_count:,})",
                       xref="paper", yref="paper", x=0.01, y=0.99, showarrow=False,
                       xanchor="left", yanchor="top", bgcolor="rgba(255,255,255,0.8)")
    fig.update_layout(template="cart", title=title, height=440, bargap=0, barmode="overlay",
                      xaxis={"title": labels.get(x, x), "range": list(xr)},
                      yaxis={"title": labels.get(y, y) if y else "events",
                             **({"range": list(yr)} if yr else {})},
                      legend={"orientation": "h", "y": -0.3, "yanchor": "top"},
                      margin={"b": 110})
    return fig


def gate_small_multiples(df: pl.DataFrame, *, x: str = "x", y: str | None = "y",
                         inside: str = "inside", facet_col: str = "timepoint",
                         shapes: Mapping[str, Mapping[str, Any]],
                         stats: pl.DataFrame, facet_order: Sequence[str] = (), cols: int = 4,
                         labels: Mapping[str, str] | None = None,
                         title: str | None = None) -> go.Figure:
    """One gate across samples (a patient's timepoints), a panel per `facet_col` value with
    that sample's gate and its count and % of parent. `stats` has facet_col, count,
    parent_count."""
    labels = dict(labels or {})
    panels = list(facet_order) or df.get_column(facet_col).unique(maintain_order=True).to_list()
    info = {r[facet_col]: r for r in stats.iter_rows(named=True)}

    def subtitle(p: str) -> str:
        r = info.get(p)
        if not r or not r["parent_count"]:
            return str(p)
        return f"{p}: {100 * r['count'] / r['parent_count']:.2f}% ({r['count']:,})"

    ncol = max(1, min(cols, len(panels)))
    nrow = max(1, math.ceil(len(panels) / ncol))
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=[subtitle(p) for p in panels],
                        horizontal_spacing=0.06, vertical_spacing=0.14)
    y = y if y and y in df.columns else None
    spans = []
    for i, p in enumerate(panels):
        r, c = i // ncol + 1, i % ncol + 1
        sub = df.filter(pl.col(facet_col) == p)
        spans.append(_add_gate(fig, sub, x=x, y=y, inside=inside, shape=shapes.get(p, {}),
                               row=r, col=c, show_legend=i == 0))
    # one scale for every panel, so that timepoints compare at a glance
    xr = (min(s[0][0] for s in spans), max(s[0][1] for s in spans)) if spans else (0, 1)
    ys = [s[1] for s in spans if s[1]]
    yr = (min(v[0] for v in ys), max(v[1] for v in ys)) if ys else None
    for i in range(len(panels)):
        r, c = i // ncol + 1, i % ncol + 1
        fig.update_xaxes(range=list(xr), title_text=labels.get(x, x) if r == nrow else None,
                         row=r, col=c)
        if yr:
            fig.update_yaxes(range=list(yr), row=r, col=c,
                             title_text=labels.get(y, y) if c == 1 else None)
    fig.update_layout(template="cart", title=title, height=300 * nrow + 90, bargap=0,
                      barmode="overlay", legend={"orientation": "h", "y": -0.08})
    return fig


def population_lines(df: pl.DataFrame, *, x: str = "day", y: str = "pct_parent",
                     color: str = "subject_id", colors: Mapping[str, str] | None = None,
                     labels: Mapping[str, str] | None = None, title: str | None = None
                     ) -> go.Figure:
    """A population's frequency over study days, one line per patient."""
    labels = dict(labels or {})
    ids = df.get_column(color).unique().sort().to_list() if df.height else []
    colors = dict(colors or patient_colors(ids))
    fig = go.Figure()
    for sid in ids:
        sub = df.filter(pl.col(color) == sid).sort(x)
        fig.add_trace(go.Scatter(x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(),
                                 mode="lines+markers", name=str(sid),
                                 line={"color": colors.get(sid)},
                                 hovertemplate=f"{sid} day %{{x}}: %{{y:.2f}}<extra></extra>"))
    fig.update_layout(template="cart", title=title, height=380,
                      xaxis={"title": labels.get(x, "study day")},
                      yaxis={"title": labels.get(y, "% of parent"), "rangemode": "tozero"},
                      legend={"title": {"text": "patient"}})
    return fig


def cluster_heatmap(df: pl.DataFrame, *, markers: Sequence[str], name: str = "name",
                    size: str = "n_events", title: str | None = None) -> go.Figure:
    """Median marker intensity per metacluster, each marker scaled 0-1 over the clusters
    (hover shows the median itself); the row label carries the metacluster's share."""
    z = df.select(markers).to_numpy().astype(float)
    lo, hi = z.min(axis=0), z.max(axis=0)
    scaled = (z - lo) / np.where(hi - lo > 0, hi - lo, 1.0)
    total = float(df.get_column(size).sum()) or 1.0
    rows = [f"{n} ({100 * s / total:.1f}%)" for n, s in
            zip(df.get_column(name).to_list(), df.get_column(size).to_list(), strict=True)]
    fig = go.Figure(go.Heatmap(z=scaled, x=list(markers), y=rows, customdata=z,
                               colorscale="Viridis", zmin=0, zmax=1,
                               colorbar={"title": {"text": "scaled median"}},
                               hovertemplate="%{y}<br>%{x}: median %{customdata:.2f}"
                               "<extra></extra>"))
    fig.update_layout(template="cart", title=title, height=max(320, 28 * len(rows) + 140),
                      xaxis={"title": "marker", "showgrid": False},
                      yaxis={"autorange": "reversed", "showgrid": False, "automargin": True,
                             "tickfont": {"size": 11}})
    return fig
