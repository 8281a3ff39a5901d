"""The T-cell repertoire over time (frames of `analysis.repertoire`): metrics per patient,
depth-matched (rarefied) metrics with their subsampling interval, baseline top clones as a
stacked area, and the Morisita-Horn overlap heatmap."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from components.figures.clones.style import DAY_TITLE, GREY
from components.figures.many import gapped, is_many
from components.theme import GROUP_COLORS, PATIENT_PALETTE, patient_colors

__all__ = ["repertoire_lines", "rarefied_lines", "clone_area", "overlap_heatmap"]

def repertoire_lines(df: pl.DataFrame, *, metric: str = "clonality", x: str = "day",
                     subject: str = "subject_id", group: str | None = "group",
                     colors: dict[str, str] | None = None, y_title: str | None = None,
                     title: str | None = None) -> go.Figure:
    """A repertoire metric over time, one line per patient, coloured by group when `group` is
    a column (else by patient)."""
    use_group = group is not None and group in df.columns
    palette = colors or (GROUP_COLORS if use_group else
                         patient_colors(df.get_column(subject).unique().to_list()
                                        if df.height else []))
    fig = go.Figure()
    shown: set[str] = set()
    if df.height and is_many(df.get_column(subject).unique().to_list()):
        # one trace per colour key: the patients' lines with a gap between them
        keyed = df.with_columns((pl.col(group) if use_group else pl.col(subject))
                                .cast(pl.String).fill_null("unknown").alias("_key"))
        traces = []
        for key in keyed.get_column("_key").unique(maintain_order=True).to_list():
            sub = gapped(keyed.filter(pl.col("_key") == key), key=subject, order=x)
            traces.append(go.Scatter(
                x=sub.get_column(x).to_list(), y=sub.get_column(metric).to_list(),
                mode="lines+markers", name=key, legendgroup=key,
                line={"color": palette.get(key, GREY), "width": 2},
                text=sub.get_column(subject).to_list(),
                hovertemplate="%{text}<br>day %{x}: %{y:.3g}<extra></extra>"))
        fig.add_traces(traces)
    for (sid,), sub in ([] if len(fig.data) else
                        df.sort(subject, x).group_by([subject], maintain_order=True)):
        key = sub.get_column(group)[0] if use_group else sid
        fig.add_trace(go.Scatter(
            x=sub.get_column(x).to_list(), y=sub.get_column(metric).to_list(),
            mode="lines+markers", name=key, legendgroup=key, showlegend=key not in shown,
            line={"color": palette.get(key, GREY), "width": 2}, text=[sid] * sub.height,
            hovertemplate="%{text}<br>day %{x}: %{y:.3g}<extra></extra>"))
        shown.add(key)
    fig.update_layout(template="cart", title=title or f"{metric} over time",
                      xaxis_title=DAY_TITLE, yaxis_title=y_title or metric, height=420,
                      hovermode="closest")
    return fig


def clone_area(df: pl.DataFrame, *, x: str = "day", y: str = "frequency",
               clone: str = "clonotype", rank: str = "rank", label: str = "timepoint",
               title: str | None = None) -> go.Figure:
    """Stacked area of one patient's baseline top clonotypes over time (largest at the bottom),
    the rest of the repertoire in grey on top."""
    order = (df.select(clone, rank).unique().sort(rank).get_column(clone).to_list()
             if df.height else [])
    palette = list(PATIENT_PALETTE)  # no yellow, no PLT-rug orange
    fig = go.Figure()
    for k, c in enumerate(order):
        sub = df.filter(pl.col(clone) == c).sort(x)
        other = k == len(order) - 1 and c.startswith("other")
        color = "#DDDDDD" if other else palette[k % len(palette)]
        labels = sub.get_column(label).to_list() if label in sub.columns else [""] * sub.height
        fig.add_trace(go.Scatter(
            x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(), mode="lines",
            stackgroup="clones", name=c, line={"width": 0.5, "color": color},
            fillcolor=color, text=labels,
            hovertemplate=c + "<br>day %{x} %{text}: %{y:.1%}<extra></extra>"))
    fig.update_layout(template="cart", title=title or "Baseline top clonotypes over time",
                      xaxis_title=DAY_TITLE, yaxis_title="share of repertoire",
                      yaxis={"tickformat": ".0%", "range": [0, 1]}, height=440,
                      legend={"font": {"size": 10}})
    return fig


def overlap_heatmap(df: pl.DataFrame, *, a: str = "timepoint_a", b: str = "timepoint_b",
                    day_a: str = "day_a", day_b: str = "day_b",
                    value: str = "morisita_horn", title: str | None = None) -> go.Figure:
    """Morisita-Horn overlap between a patient's samples (ordered by day), 0 to 1."""
    meta = (df.select(pl.col(a).alias("lab"), pl.col(day_a).alias("d")).unique().sort("d")
            if df.height else pl.DataFrame(schema={"lab": pl.String, "d": pl.Int64}))
    # two short lines per tick ("Screening<br>d-11"), upright: slanted "Screening (d-11)"
    # labels were cut off in a half-width column
    labels = [f"{lab or 'sample'}<br>d{d}" for lab, d in meta.iter_rows()]
    days = meta.get_column("d").to_list()
    idx = {d: i for i, d in enumerate(days)}
    z = [[None] * len(days) for _ in days]
    for r in df.iter_rows(named=True):
        z[idx[r[day_a]]][idx[r[day_b]]] = r[value]
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, colorscale="Viridis", zmin=0, zmax=1,
                               texttemplate="%{z:.2f}", colorbar={"title": {"text": "M-H"}},
                               hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category", showgrid=False)
    fig.update_xaxes(type="category", showgrid=False, tickangle=0, automargin=True,
                     tickfont={"size": 10})
    fig.update_yaxes(automargin=True, tickfont={"size": 10})
    fig.update_layout(template="cart", title=title or "Repertoire overlap (Morisita-Horn)",
                      height=max(340, 44 * len(days) + 180))
    return fig



def rarefied_lines(df: pl.DataFrame, *, x: str = "day", y: str = "mean", lo: str = "lo",
                   hi: str = "hi", subject: str = "subject_id", group: str | None = "group",
                   colors: dict[str, str] | None = None, y_title: str | None = None,
                   title: str | None = None) -> go.Figure:
    """A depth-matched repertoire metric over time, one line per patient with the 95 %
    subsampling interval as error bars; coloured by group when `group` is a column."""
    use_group = group is not None and group in df.columns
    palette = colors or (GROUP_COLORS if use_group else patient_colors(
        df.get_column(subject).unique().to_list() if df.height else []))
    fig = go.Figure()
    shown: set[str] = set()
    for (sid,), sub in df.sort(subject, x).group_by([subject], maintain_order=True):
        key = str(sub.get_column(group)[0]) if use_group else sid
        m = sub.get_column(y).to_list()
        fig.add_trace(go.Scatter(
            x=sub.get_column(x).to_list(), y=m, mode="lines+markers", name=key,
            legendgroup=key, showlegend=key not in shown,
            line={"color": palette.get(key, GREY), "width": 2},
            error_y={"type": "data", "symmetric": False,
                     "array": [(b - a) if a is not None and b is not None else None
                               for a, b in zip(m, sub.get_column(hi).to_list(), strict=True)],
                     "arrayminus": [(a - b) if a is not None and b is not None else None
                                    for a, b in zip(m, sub.get_column(lo).to_list(),
                                                    strict=True)]},
            text=[sid] * sub.height,
            hovertemplate="%{text}<br>day %{x}: %{y:.3g}<extra></extra>"))
        shown.add(key)
    fig.update_layout(template="cart", title=title or "Depth-matched metric over time",
                      xaxis_title=DAY_TITLE, yaxis_title=y_title or y, height=420)
    return fig
