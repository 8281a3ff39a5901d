"""Clones and CAR status on single cells: the CAR transcript histogram with its cut, cells on
the embedding coloured by clone size, stacked shares (cell types of CAR+ and CAR- T cells)
and effect dots per cell type."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from components.theme import PATIENT_PALETTE

__all__ = ["car_histogram", "expansion_embedding", "stacked_share", "effect_dots"]

_EXPANSION_COLORS = {"1": "#C6DBEF", "2": "#6BAED6", "3-5": "#2171B5", "6-20": "#E6550D",
                     ">20": "#A50F15", "no clonotype": "#E5E5E5"}


def car_histogram(df: pl.DataFrame, *, lo: str = "lo", hi: str = "hi", y: str = "n_cells",
                  cut: float | None = None, cut_label: str = "cut", log_y: bool = True,
                  title: str | None = None) -> go.Figure:
    """Cells per bin of log1p(CAR counts) (pre-binned), with the CAR+ cut as a vertical line."""
    lows, highs = df.get_column(lo).to_list(), df.get_column(hi).to_list()
    fig = go.Figure(go.Bar(
        x=[(a + b) / 2 for a, b in zip(lows, highs, strict=True)], y=df.get_column(y).to_list(),
        width=[b - a for a, b in zip(lows, highs, strict=True)], marker={"color": "#7F7F7F"},
        customdata=[[a, b] for a, b in zip(lows, highs, strict=True)], name="cells",
        hovertemplate="log1p(counts) %{customdata[0]:.2f}-%{customdata[1]:.2f}: %{y:,} cells"
                      "<extra></extra>"))
    if cut is not None:
        fig.add_vline(x=cut, line={"color": "#D55E00", "width": 2, "dash": "dash"},
                      annotation_text=cut_label, annotation_position="top right")
    fig.update_layout(template="cart", title=title or "CAR transcript counts per cell",
                      xaxis_title="log1p(CAR counts)", yaxis_title="cells", height=360,
                      yaxis_type="log" if log_y else "linear", bargap=0, showlegend=False)
    return fig


def expansion_embedding(df: pl.DataFrame, *, x: str = "x", y: str = "y",
                        color: str = "expansion", text: str = "clonotype",
                        title: str | None = None) -> go.Figure:
    """Cells on the embedding coloured by clone size in their sample (cells without a
    clonotype in light grey, drawn first so expanded clones lie on top)."""
    fig = go.Figure()
    for key in ("no clonotype", "1", "2", "3-5", "6-20", ">20"):
        sub = df.filter(pl.col(color) == key)
        if sub.height == 0:
            continue
        fig.add_trace(go.Scattergl(
            x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(), mode="markers",
            name=key if key == "no clonotype" else f"clone size {key}",
            marker={"color": _EXPANSION_COLORS[key], "size": 4 if key == "no clonotype" else 6},
            text=sub.get_column(text).fill_null("").to_list(),
            hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(template="cart", title=title or "Clonal expansion on the embedding",
                      height=480, xaxis={"showticklabels": False, "title": ""},
                      yaxis={"showticklabels": False, "title": "", "scaleanchor": "x"})
    return fig


def stacked_share(df: pl.DataFrame, *, x: str, y: str = "fraction", color: str = "cell_type",
                  facet_col: str | None = None, title: str | None = None,
                  y_title: str = "share") -> go.Figure:
    """Stacked bars of shares (e.g. cell types of CAR+ and CAR- T cells per patient)."""
    facets = (df.get_column(facet_col).unique().sort().to_list()
              if facet_col and df.height else [None])
    fig = make_subplots(rows=1, cols=len(facets), shared_yaxes=True,
                        subplot_titles=[str(f) for f in facets] if facet_col else None)
    keys = df.get_column(color).unique().sort().to_list() if df.height else []
    palette = list(PATIENT_PALETTE)  # no yellow, no PLT-rug orange
    for j, f in enumerate(facets):
        sub = df if f is None else df.filter(pl.col(facet_col) == f)
        for k, key in enumerate(keys):
            one = sub.filter(pl.col(color) == key)
            fig.add_trace(go.Bar(x=one.get_column(x).to_list(), y=one.get_column(y).to_list(),
                                 name=str(key), legendgroup=str(key), showlegend=j == 0,
                                 marker={"color": palette[k % len(palette)]},
                                 hovertemplate=f"{key}: " + "%{y:.1%}<extra></extra>"),
                          row=1, col=j + 1)
    fig.update_layout(template="cart", barmode="stack", title=title, height=420)
    fig.update_yaxes(tickformat=".0%", title_text=y_title, col=1)
    return fig


def effect_dots(df: pl.DataFrame, *, x: str = "effect", y: str = "cell_type",
                p: str = "p_value", q: str = "q_value", x_title: str = "effect",
                title: str | None = None) -> go.Figure:
    """One dot per row (cell type or gene): the effect, labelled with p and q."""
    rows = df.sort(x) if df.height else df
    fig = go.Figure(go.Scatter(
        x=rows.get_column(x).to_list(), y=rows.get_column(y).to_list(), mode="markers+text",
        marker={"size": 10, "color": ["#D55E00" if (v or 0) > 0 else "#0072B2"
                                      for v in rows.get_column(x).to_list()]},
        text=[f"p={a:.2g}, q={b:.2g}" if a is not None and b is not None else "not tested"
              for a, b in zip(rows.get_column(p).to_list(), rows.get_column(q).to_list(),
                              strict=True)],
        textposition="middle right", hovertemplate="%{y}: %{x:.2f} (%{text})<extra></extra>"))
    fig.add_vline(x=0, line={"color": "#999999", "width": 1})
    fig.update_layout(template="cart", title=title, xaxis_title=x_title,
                      yaxis={"type": "category"}, height=max(300, 30 * rows.height + 140),
                      showlegend=False)
    return fig
