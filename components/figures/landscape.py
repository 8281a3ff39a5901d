"""Immune landscape figures: the cell embedding (WebGL, float32 arrays sent as binary), the
cell-type composition per sample and per response group, CD7+ T/NK change and CAR+ T cells next
to the qPCR curve. Plotly-express manner: frame first, column names as keywords."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from components.theme import GROUP_COLORS, OKABE_ITO, TOL_MUTED, patient_colors

__all__ = ["embedding_scatter", "embedding_label_positions", "volcano_figure",
           "violin_figure", "dot_plot", "point_style", "category_colors", "composition_bars",
           "composition_by_window_figure", "cd7_change_figure", "car_vs_qpcr_figure"]

_PALETTE = OKABE_ITO[:7] + TOL_MUTED + ["#777777"]


def point_style(n: int) -> tuple[float, float]:
    """Marker size and opacity for n points: large and opaque for hundreds, small and
    translucent for a hundred thousand (over-plotting otherwise hides density)."""
    lg = math.log10(max(n, 1))
    return float(np.clip(9 - 1.3 * lg, 2.0, 7.0)), float(np.clip(1.2 - 0.16 * lg, 0.3, 0.9))


def category_colors(values: Sequence[str]) -> dict[str, str]:
    """A stable colour per category (sorted), colour-blind-safe palette."""
    cats = sorted({str(v) for v in values})
    return {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(cats)}


def embedding_scatter(df: pl.DataFrame, *, x: str = "x", y: str = "y", color: str = "cell_type",
                      continuous: bool = False, colors: Mapping[str, str] | None = None,
                      facet: str | None = None, facet_order: Sequence[str] | None = None,
                      cell: str = "cell", basis: str = "UMAP",
                      colorbar_title: str | None = None, labels: str | None = None,
                      title: str | None = None) -> go.Figure:
    """Scattergl of cells. `cell` (row number in the full data) goes into customdata so a
    box/lasso selection maps back to cells. Categorical colour: one trace per category;
    continuous: one trace per facet with a colour scale titled `colorbar_title` (say the
    units), points sorted by value so expressing cells draw on top of the others (NaN
    first). `labels` names a column (cell type, cluster) whose categories are written at the
    median position of their cells. `facet` draws panels side by side. Hover shows only the
    colour value: per-point text would double the payload."""
    facets = list(facet_order) if facet and facet_order else \
        (sorted(df.get_column(facet).unique().drop_nulls().to_list()) if facet else [None])
    n = df.height
    size, opacity = point_style(n)
    fig = make_subplots(rows=1, cols=len(facets), shared_xaxes=True, shared_yaxes=True,
                        subplot_titles=[str(f) for f in facets] if facet else None,
                        horizontal_spacing=0.03)
    cats: list[Any] = []
    if not continuous:
        cats = sorted(df.get_column(color).cast(pl.String).fill_null("NA").unique().to_list())
        colors = dict(colors or {})
        extra = category_colors([c for c in cats if c not in colors])
        colors = {**extra, **colors}
    for k, fval in enumerate(facets, start=1):
        part = df if fval is None else df.filter(pl.col(facet) == fval)
        if continuous:
            part = part.sort(pl.col(color).cast(pl.Float64).fill_nan(None), nulls_last=False,
                             maintain_order=True)
            vals = part.get_column(color).to_numpy().astype(np.float32)
            fig.add_trace(go.Scattergl(
                x=part.get_column(x).to_numpy().astype(np.float32),
                y=part.get_column(y).to_numpy().astype(np.float32),
                customdata=part.get_column(cell).to_numpy().astype(np.int32),
                mode="markers", name=color, showlegend=False,
                marker={"size": size, "opacity": opacity, "color": vals,
                        "colorscale": "Viridis", "showscale": k == 1,
                        "cmin": float(np.nanmin(vals)) if vals.size else 0.0,
                        "cmax": float(np.nanmax(vals)) if vals.size and np.nanmax(vals) > 0
                        else 1.0, "colorbar": {"title": {"text": colorbar_title or color,
                                                         "side": "right"},
                                               "thickness": 12}},
                hovertemplate=f"{color}: %{{marker.color:.2f}}<extra></extra>"), row=1, col=k)
            continue
        key = part.get_column(color).cast(pl.String).fill_null("NA")
        for c in cats:
            sub = part.filter(key == c)
            if sub.height == 0:
                continue
            fig.add_trace(go.Scattergl(
                x=sub.get_column(x).to_numpy().astype(np.float32),
                y=sub.get_column(y).to_numpy().astype(np.float32),
                customdata=sub.get_column(cell).to_numpy().astype(np.int32),
                mode="markers", name=str(c), legendgroup=str(c), showlegend=k == 1,
                marker={"size": size, "opacity": opacity, "color": colors[c]},
                hovertemplate=f"{c}<extra></extra>"), row=1, col=k)
    if labels is not None and labels in df.columns:
        for k, fval in enumerate(facets, start=1):
            part = df if fval is None else df.filter(pl.col(facet) == fval)
            for row in embedding_label_positions(part, x=x, y=y, by=labels).iter_rows(
                    named=True):
                fig.add_annotation(x=row[x], y=row[y], text=str(row[labels]), showarrow=False,
                                   font={"size": 11, "color": "#222222"},
                                   bgcolor="rgba(255,255,255,0.6)", row=1, col=k)
    fig.update_xaxes(title_text=f"{basis} 1", showgrid=False, zeroline=False,
                     showticklabels=False)
    fig.update_yaxes(title_text=f"{basis} 2", showgrid=False, zeroline=False,
                     showticklabels=False, row=1, col=1)
    fig.update_layout(template="cart", title=title, height=560, uirevision="landscape",
                      legend={"itemsizing": "constant", "title": {"text": color}},
                      dragmode="zoom", hovermode="closest")
    return fig


def embedding_label_positions(df: pl.DataFrame, *, x: str = "x", y: str = "y",
                              by: str = "cell_type") -> pl.DataFrame:
    """Median x and y of the cells of each category of `by` (where its label is written)."""
    return (df.filter(pl.col(by).is_not_null()).group_by(by)
            .agg(pl.col(x).median(), pl.col(y).median()).sort(by))


def volcano_figure(df: pl.DataFrame, *, x: str = "log2fc", y: str = "p_value",
                   q: str = "q_value", label: str = "gene", q_threshold: float = 0.1,
                   top_labels: int = 15, title: str | None = None,
                   labels: Mapping[str, str] | None = None) -> go.Figure:
    """Volcano plot: effect (`x`) against -log10 `y`; genes with `q` below `q_threshold` in
    colour (up and down apart), the `top_labels` smallest p named."""
    labels = dict(labels or {})
    d = df.filter(pl.col(y).is_not_null() & pl.col(x).is_not_null()).with_columns(
        (-pl.col(y).clip(lower_bound=1e-300).log10()).alias("_nlp"),
        pl.when((pl.col(q) < q_threshold) & (pl.col(x) > 0)).then(pl.lit("up"))
        .when((pl.col(q) < q_threshold) & (pl.col(x) < 0)).then(pl.lit("down"))
        .otherwise(pl.lit("not significant")).alias("_cls"))
    fig = go.Figure()
    style = {"not significant": "#BBBBBB", "up": "#D55E00", "down": "#0072B2"}
    for cls, colour in style.items():
        sub = d.filter(pl.col("_cls") == cls)
        name = cls if cls == "not significant" else f"{cls} (q < {q_threshold:g})"
        fig.add_trace(go.Scattergl(
            x=sub.get_column(x).to_list(), y=sub.get_column("_nlp").to_list(), mode="markers",
            name=f"{name}: {sub.height}", text=sub.get_column(label).to_list(),
            marker={"color": colour, "size": 6, "opacity": 0.8},
            hovertemplate="%{text}: log2FC %{x:.2f}, -log10 p %{y:.1f}<extra></extra>"))
    for row in d.sort(y).head(top_labels).iter_rows(named=True):
        fig.add_annotation(x=row[x], y=row["_nlp"], text=str(row[label]), showarrow=False,
                           yshift=9, font={"size": 10})
    fig.update_layout(template="cart", title=title, height=480,
                      xaxis={"title": labels.get(x, "log2 fold change")},
                      yaxis={"title": labels.get(y, "-log10 p")},
                      legend={"title": {"text": "genes"}})
    return fig


def violin_figure(df: pl.DataFrame, *, x: str = "cell_type", y: str = "value",
                  color: str | None = "response_group", facet_col: str | None = None,
                  colors: Mapping[str, str] | None = None,
                  category_orders: Mapping[str, Sequence[str]] | None = None,
                  labels: Mapping[str, str] | None = None,
                  title: str | None = None) -> go.Figure:
    """Violins of `y` (a gene or a score per cell) by `x`, split by `color` (response group or
    timepoint) side by side; one panel per `facet_col` value (e.g. gene)."""
    labels = dict(labels or {})
    orders = dict(category_orders or {})
    panels = list(orders.get(facet_col, [])) if facet_col else [None]
    if facet_col and not panels:
        panels = sorted(df.get_column(facet_col).unique().drop_nulls().to_list())
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True,
                        subplot_titles=[str(p) for p in panels] if facet_col else None,
                        vertical_spacing=0.08)
    groups = [None]
    if color:
        groups = list(orders.get(color, [])) or sorted(
            df.get_column(color).cast(pl.String).unique().drop_nulls().to_list())
        palette = dict(colors or {})
        palette = {**category_colors([g for g in groups if g not in palette]), **palette}
    for r, p in enumerate(panels, start=1):
        part = df if p is None else df.filter(pl.col(facet_col) == p)
        for g in groups:
            sub = part if g is None else part.filter(pl.col(color).cast(pl.String) == g)
            if sub.height == 0:
                continue
            fig.add_trace(go.Violin(
                x=sub.get_column(x).cast(pl.String).to_list(), y=sub.get_column(y).to_list(),
                name=str(g) if g is not None else str(y), legendgroup=str(g),
                showlegend=r == 1, offsetgroup=str(g), scalegroup=str(p),
                line={"color": palette[g] if g is not None else "#555555", "width": 1},
                points=False, spanmode="hard", meanline={"visible": True}), row=r, col=1)
    fig.update_xaxes(categoryorder="array", categoryarray=list(orders.get(x, [])) or None)
    fig.update_yaxes(title_text=labels.get(y, y))
    fig.update_layout(template="cart", violinmode="group", title=title,
                      height=max(320, 260 * len(panels) + 80),
                      legend={"title": {"text": labels.get(color or "", color or "")}})
    return fig


def dot_plot(df: pl.DataFrame, *, x: str = "feature", y: str = "group",
             size: str = "fraction", color: str = "mean",
             category_orders: Mapping[str, Sequence[str]] | None = None,
             colorbar_title: str | None = None, title: str | None = None) -> go.Figure:
    """scanpy-style dot plot: one dot per feature (`x`) and group (`y`), area by the fraction
    of cells expressing (`size`, 0-1), colour by the mean (`color`, units in
    `colorbar_title`)."""
    orders = dict(category_orders or {})
    sizes = df.get_column(size).fill_null(0).to_numpy().astype(float)
    fig = go.Figure(go.Scatter(
        x=df.get_column(x).to_list(), y=df.get_column(y).cast(pl.String).to_list(),
        mode="markers", customdata=np.c_[sizes * 100],
        marker={"size": 4 + 20 * np.sqrt(np.clip(sizes, 0, 1)), "sizemode": "diameter",
                "color": df.get_column(color).to_list(), "colorscale": "Reds",
                "line": {"color": "#888888", "width": 0.5}, "showscale": True,
                "colorbar": {"title": {"text": colorbar_title or color, "side": "right"},
                             "thickness": 12}},
        hovertemplate="%{x} in %{y}: mean %{marker.color:.2f}, %{customdata[0]:.0f}% of "
                      "cells<extra></extra>", showlegend=False))
    for pct in (0.25, 0.5, 1.0):   # size key
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{pct:.0%} of cells",
                                 marker={"size": 4 + 20 * np.sqrt(pct), "color": "#999999"}))
    fig.update_xaxes(categoryorder="array", categoryarray=list(orders.get(x, [])) or None,
                     tickangle=-45)
    fig.update_yaxes(categoryorder="array", categoryarray=list(orders.get(y, [])) or None,
                     autorange="reversed")
    n_y = df.get_column(y).n_unique()
    fig.update_layout(template="cart", title=title, height=max(300, 28 * n_y + 160),
                      legend={"title": {"text": "fraction expressing"}})
    return fig


def composition_bars(comp: pl.DataFrame, *, x: str = "sample_label", y: str = "fraction",
                     color: str = "cell_type", patient: str = "subject_id",
                     colors: Mapping[str, str] | None = None,
                     title: str | None = None) -> go.Figure:
    """Stacked bars of cell-type fractions per sample, grouped by patient in time order.

    Each bar is labelled with its patient and sample label ("SAA-001<br>Screening"; one line,
    turned upright, when there are many samples), thin lines separate the patients, and the
    legend sits right of the plot with room for every category (no scroll box): a two-level
    plotly axis clipped the patient level, and a fixed height hid legend entries."""
    df = comp.sort(patient, "day", x)
    keys = df.select(patient, x).unique(maintain_order=True)
    many = keys.height > 40
    sep = " " if many else "<br>"
    label = pl.format("{}" + sep + "{}", pl.col(patient), pl.col(x))
    df = df.with_columns(label.alias("_bar"))
    order = keys.select(label.alias("_bar")).get_column("_bar").to_list()
    colors = dict(colors or category_colors(df.get_column(color).unique().to_list()))
    types = sorted(df.get_column(color).unique().to_list())
    fig = go.Figure()
    for ct in types:
        sub = df.filter(pl.col(color) == ct)
        fig.add_trace(go.Bar(
            x=sub.get_column("_bar").to_list(),
            y=sub.get_column(y).to_list(), name=str(ct), marker_color=colors.get(ct),
            customdata=sub.select("n_cells").to_numpy(),
            hovertemplate=f"%{{x}}<br>{ct}: %{{y:.1%}} (%{{customdata[0]}} cells)"
                          "<extra></extra>"))
    pats = keys.get_column(patient).to_list()
    for i in range(1, len(pats)):
        if pats[i] != pats[i - 1]:
            fig.add_vline(x=i - 0.5, line={"color": "#444444", "width": 1})
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order,
                     tickangle=-90 if many else 0, tickfont={"size": 9 if many else 11},
                     automargin=True)
    fig.update_layout(template="cart", barmode="stack", bargap=0.15, title=title,
                      height=max(430, 21 * len(types) + 190),
                      yaxis={"title": "fraction of cells", "tickformat": ".0%",
                             "range": [0, 1]},
                      legend={"title": {"text": "cell type"}, "x": 1.01, "xanchor": "left",
                              "y": 1.0, "yanchor": "top", "orientation": "v"},
                      margin={"r": 190, "b": 140 if many else 80})
    return fig


def composition_by_window_figure(df: pl.DataFrame, *, x: str = "window", y: str = "fraction",
                                 group: str = "response_group", facet: str = "cell_type",
                                 window_order: Sequence[str] = (),
                                 colors: Mapping[str, str] | None = None, cols: int = 4,
                                 title: str | None = None) -> go.Figure:
    """One point per patient (never per cell) per day window, boxes per response group,
    one panel per cell type."""
    colors = dict(colors or GROUP_COLORS)
    panels = sorted(df.get_column(facet).unique().to_list())
    rows = max(1, math.ceil(len(panels) / cols))
    fig = make_subplots(rows=rows, cols=min(cols, max(len(panels), 1)),
                        subplot_titles=panels, vertical_spacing=0.12, horizontal_spacing=0.06)
    groups = [g for g in colors if g in set(df.get_column(group).to_list())]
    for i, p in enumerate(panels):
        r, c = i // cols + 1, i % cols + 1
        for g in groups:
            sub = df.filter((pl.col(facet) == p) & (pl.col(group) == g))
            fig.add_trace(go.Box(
                x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(), name=g,
                legendgroup=g, showlegend=i == 0, marker_color=colors[g], boxpoints="all",
                pointpos=0, jitter=0.4, offsetgroup=g, text=sub.get_column("subject_id")
                .to_list(), hovertemplate="%{text}: %{y:.1%}<extra></extra>"), row=r, col=c)
    fig.update_xaxes(categoryorder="array", categoryarray=list(window_order))
    fig.update_yaxes(tickformat=".0%")
    fig.update_layout(template="cart", boxmode="group", title=title, height=260 * rows + 80,
                      legend={"title": {"text": "response group"}})
    return fig


def cd7_change_figure(df: pl.DataFrame, *, population: str = "population",
                      group: str = "response_group", colors: Mapping[str, str] | None = None,
                      title: str | None = None) -> go.Figure:
    """Before/after infusion fraction of CD7+ T and CD7+ NK cells: one line per patient,
    coloured by response group."""
    colors = dict(colors or GROUP_COLORS)
    pops = sorted(df.get_column(population).unique().to_list(), reverse=True)
    fig = make_subplots(rows=1, cols=max(len(pops), 1), subplot_titles=pops)
    groups = [g for g in colors if g in set(df.get_column(group).to_list())]
    for k, p in enumerate(pops, start=1):
        for g in groups:   # one trace per group; patients separated by gaps (fast at 1000s)
            sub = df.filter((pl.col(population) == p) & (pl.col(group) == g))
            xs, ys, names = [], [], []
            for row in sub.iter_rows(named=True):
                xs += ["Pre-infusion", "Post-infusion", None]
                ys += [row["pre"], row["post"], None]
                names += [row["subject_id"]] * 2 + [None]
            fig.add_trace(go.Scatter(x=xs, y=ys, text=names, mode="lines+markers", name=g,
                                     legendgroup=g, showlegend=k == 1,
                                     line={"color": colors.get(g, "#777777")},
                                     hovertemplate="%{text}: %{y:.1%}<extra></extra>"),
                          row=1, col=k)
    fig.update_yaxes(tickformat=".0%", title_text="fraction of all cells", row=1, col=1)
    fig.update_layout(template="cart", title=title, height=380,
                      legend={"title": {"text": "response group"}})
    return fig


def car_vs_qpcr_figure(car: pl.DataFrame, qpcr: pl.DataFrame, *,
                       colors: Mapping[str, str] | None = None, y_car: str = "car_pct_of_t",
                       y_qpcr: str = "value", qpcr_label: str = "CAR transgene (copies/ug gDNA)",
                       title: str | None = None) -> go.Figure:
    """Left: CAR+ cells as % of T cells per sample over time; right: the same patients' CAR
    qPCR (log axis). One colour per patient on both panels. `qpcr` is the prepared series of
    the Kinetics page (analysis.kinetics.prepare_series: plot_value, blq): a value below the
    LLOQ is drawn at LLOQ/2 with an open marker, the LLOQ dotted; never as a measured value."""
    if "plot_value" in qpcr.columns:
        y_qpcr = "plot_value"
    ids = sorted(set(car.get_column("subject_id").to_list())
                 | set(qpcr.get_column("subject_id").to_list()))
    colors = dict(colors or patient_colors(ids))
    fig = make_subplots(rows=1, cols=2, subplot_titles=["CAR+ cells, % of T cells (single-cell)",
                                                        qpcr_label])
    for sid in ids:
        col = colors.get(sid, "#777777")
        a = car.filter(pl.col("subject_id") == sid).sort("day")
        b = qpcr.filter((pl.col("subject_id") == sid) & (pl.col(y_qpcr) > 0)).sort("day")
        blq = b.get_column("blq").fill_null(False).to_list() if "blq" in b.columns else \
            [False] * b.height
        if a.height:
            fig.add_trace(go.Scatter(x=a.get_column("day").to_list(),
                                     y=a.get_column(y_car).to_list(), mode="lines+markers",
                                     name=sid, legendgroup=sid, line={"color": col},
                                     hovertemplate=f"{sid} day %{{x}}: %{{y:.1f}}%<extra></extra>"),
                          row=1, col=1)
        if b.height:
            fig.add_trace(go.Scatter(x=b.get_column("day").to_list(),
                                     y=b.get_column(y_qpcr).to_list(), mode="lines+markers",
                                     name=sid, legendgroup=sid, showlegend=a.height == 0,
                                     line={"color": col},
                                     marker={"color": col, "line": {"width": 1.5, "color": col},
                                             "symbol": ["circle-open" if q else "circle"
                                                        for q in blq]},
                                     text=["below LLOQ (drawn at LLOQ/2)" if q else ""
                                           for q in blq],
                                     hovertemplate=f"{sid} day %{{x}}: %{{y:.3g}} %{{text}}"
                                                   "<extra></extra>"),
                          row=1, col=2)
    if "lloq" in qpcr.columns:
        for level in sorted(set(qpcr.get_column("lloq").drop_nulls().to_list())):
            fig.add_hline(y=level, line={"dash": "dot", "color": "#666666", "width": 1.2},
                          row=1, col=2)
    fig.update_yaxes(title_text="% of T cells", row=1, col=1, rangemode="tozero")
    fig.update_yaxes(type="log", title_text="copies/ug gDNA", row=1, col=2)
    fig.update_xaxes(title_text="study day")
    fig.update_layout(template="cart", title=title, height=400,
                      legend={"title": {"text": "patient"}})
    return fig
