"""Cytokines across the cohort: one panel per cytokine with every patient's curve on a common
time axis (days from infusion or from CRS onset), or the median and interquartile range per
response group with the number of patients at each time point.

Frames in, `go.Figure` out (views.safety prepares them). Log10 y axes by default: cytokine
levels span orders of magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from components.figures.marks import add_day_marks
from components.theme import GROUP_COLORS, PATIENT_PALETTE, label_decades

__all__ = ["cohort_cytokine_panels", "group_cytokine_panels"]


def _grid(facets: Sequence[str], cols: int, titles: Mapping[str, str] | None) -> go.Figure:
    cols = max(1, min(cols, len(facets)))
    rows = math.ceil(len(facets) / cols)
    return make_subplots(rows=rows, cols=cols, shared_xaxes=True, horizontal_spacing=0.06,
                         vertical_spacing=0.1 if rows > 1 else 0.0,
                         subplot_titles=[(titles or {}).get(f, f) for f in facets])


def _finish(fig: go.Figure, n: int, cols: int, *, log_y: bool, x_title: str,
            title: str | None, range_x: tuple[float, float] | None,
            marks: Sequence[tuple[float, float, str]] = ()) -> go.Figure:
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    if log_y:
        fig.update_yaxes(type="log")
    for c in range(1, cols + 1):
        fig.update_xaxes(title_text=x_title, row=rows, col=c)
    if range_x is not None:
        fig.update_xaxes(range=list(range_x))
    fig.add_vline(x=0, line={"color": "#0072B2", "width": 1, "dash": "dot"})
    add_day_marks(fig, marks, range_x=range_x)
    fig.update_layout(template="cart", title={"text": title or ""}, height=260 * rows + 120,
                      hovermode="closest", margin={"t": 110 if title else 60})
    return label_decades(fig)


def cohort_cytokine_panels(df: pl.DataFrame, *, x: str = "day", y: str = "value",
                           color: str = "subject_id", facet: str = "analyte",
                           facet_order: Sequence[str] | None = None,
                           titles: Mapping[str, str] | None = None,
                           colors: Mapping[str, str] | None = None, log_y: bool = True,
                           cols: int = 3, x_title: str = "Day from CAR-T infusion",
                           title: str | None = None,
                           range_x: tuple[float, float] | None = None,
                           marks: Sequence[tuple[float, float, str]] = ()) -> go.Figure:
    """Every patient's curve (one colour per `color` value, the same in every panel), one panel
    per `facet` value; points carry the `color` value (the patient) in `customdata`. `marks`
    (HSCT days on the figure's axis) are drawn as dash-dot lines across the panels."""
    facets = list(facet_order or df.get_column(facet).unique(maintain_order=True).to_list())
    fig = _grid(facets, cols, titles)
    ncol = max(1, min(cols, len(facets)))
    keys = df.get_column(color).unique(maintain_order=True).to_list() if df.height else []
    cmap = dict(colors or {})
    for i, k in enumerate(k for k in keys if k not in cmap):
        cmap[k] = PATIENT_PALETTE[i % len(PATIENT_PALETTE)]
    data = df.filter(pl.col(y) > 0) if log_y else df
    for i, f in enumerate(facets):
        r, c = i // ncol + 1, i % ncol + 1
        sub = data.filter(pl.col(facet) == f)
        for k in keys:
            g = sub.filter(pl.col(color) == k).sort(x)
            if not g.height:
                continue
            fig.add_trace(go.Scatter(
                x=g.get_column(x).to_list(), y=g.get_column(y).to_list(), mode="lines+markers",
                line={"color": cmap[k], "width": 1.3}, marker={"size": 4, "color": cmap[k]},
                name=str(k), legendgroup=str(k), showlegend=i == 0,
                customdata=[[str(k)]] * g.height,
                hovertemplate=f"{k}<br>{f}<br>day %{{x}}: %{{y:.4g}}<extra></extra>"),
                row=r, col=c)
    return _finish(fig, len(facets), cols, log_y=log_y, x_title=x_title, title=title,
                   range_x=range_x, marks=marks)


def group_cytokine_panels(summary: pl.DataFrame, *, x: str = "day", facet: str = "analyte",
                          group: str = "response_group",
                          facet_order: Sequence[str] | None = None,
                          titles: Mapping[str, str] | None = None,
                          colors: Mapping[str, str] | None = None, log_y: bool = True,
                          cols: int = 3, x_title: str = "Day from CAR-T infusion",
                          title: str | None = None,
                          range_x: tuple[float, float] | None = None,
                          marks: Sequence[tuple[float, float, str]] = ()) -> go.Figure:
    """Median (line) and interquartile range (band) per `group`, from a summary frame with
    columns x, facet, group, n, median, q1, q3; n is printed at each time point and shown on
    hover. `marks` as in cohort_cytokine_panels."""
    facets = list(facet_order or summary.get_column(facet).unique(maintain_order=True)
                  .to_list())
    fig = _grid(facets, cols, titles)
    ncol = max(1, min(cols, len(facets)))
    cmap = {**GROUP_COLORS, **(colors or {})}
    groups = summary.get_column(group).unique(maintain_order=True).to_list() \
        if summary.height else []
    for i, f in enumerate(facets):
        r, c = i // ncol + 1, i % ncol + 1
        sub = summary.filter(pl.col(facet) == f)
        for gname in groups:
            g = sub.filter(pl.col(group) == gname).sort(x)
            if log_y:
                g = g.filter(pl.col("median") > 0)
            if not g.height:
                continue
            color = cmap.get(gname, "#777777")
            xs = g.get_column(x).to_list()
            lo = g.get_column("q1").to_list()
            hi = g.get_column("q3").to_list()
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=hi + lo[::-1], fill="toself",
                                     fillcolor=color, opacity=0.18, line={"width": 0},
                                     hoverinfo="skip", showlegend=False, legendgroup=gname),
                          row=r, col=c)
            fig.add_trace(go.Scatter(
                x=xs, y=g.get_column("median").to_list(), mode="lines+markers+text",
                text=[f"{n}" for n in g.get_column("n").to_list()], textposition="top center",
                textfont={"size": 9, "color": color},
                line={"color": color, "width": 2}, marker={"size": 5, "color": color},
                name=str(gname), legendgroup=str(gname), showlegend=i == 0,
                customdata=list(zip(g.get_column("n").to_list(), lo, hi, strict=True)),
                hovertemplate=f"{gname}<br>{f}, day %{{x}}: median %{{y:.4g}}"
                              "<br>IQR %{customdata[1]:.4g}-%{customdata[2]:.4g}"
                              "<br>n = %{customdata[0]} patients<extra></extra>"),
                row=r, col=c)
    return _finish(fig, len(facets), cols, log_y=log_y, x_title=x_title, title=title,
                   range_x=range_x, marks=marks)
