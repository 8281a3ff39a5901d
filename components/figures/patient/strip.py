"""The cohort strip to pick a patient from: one follow-up bar per patient, coloured by best
response; a click returns the patient's subject_id."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from components.theme import RESPONSE_COLORS

__all__ = ["cohort_strip"]

def cohort_strip(df: pl.DataFrame, *, y: str = "subject_id", start: str = "start",
                 end: str = "end", color: str = "best_response", selected: str | None = None,
                 title: str | None = None) -> go.Figure:
    """One bar per patient from `start` to `end` (follow-up), coloured by `color` (response
    categories), the `selected` patient outlined; a click on a bar returns its subject_id in
    `customdata`."""
    fig = go.Figure()
    seen: set[str] = set()
    for r in df.iter_rows(named=True):
        key = str(r.get(color) or "not assessed")
        fig.add_trace(go.Bar(
            x=[r[end] - r[start]], base=[r[start]], y=[r[y]], orientation="h",
            marker={"color": RESPONSE_COLORS.get(key, "#999999"),
                    "line": {"width": 3 if r[y] == selected else 0.5,
                             "color": "#000000" if r[y] == selected else "#666666"}},
            name=key, legendgroup=key, showlegend=key not in seen,
            customdata=[[r[y]]], hovertemplate=f"{r[y]}: {key}, follow-up to day {r[end]}"
                                               "<extra>click to open</extra>"))
        seen.add(key)
    fig.update_yaxes(type="category", categoryorder="array",
                     categoryarray=df.get_column(y).to_list(), autorange="reversed",
                     showgrid=False)
    fig.update_xaxes(title_text="Day from CAR-T infusion")
    fig.update_layout(template="cart", title={"text": title or ""}, barmode="overlay",
                      height=min(150 + 18 * df.height, 640), clickmode="event+select",
                      margin={"l": 90, "r": 20, "t": 40, "b": 80},
                      # below the lanes in one row: beside a short strip it scrolls
                      legend={"title": {"text": "Best response"}, "orientation": "h",
                              "x": 0, "y": 0, "yanchor": "bottom", "yref": "container"})
    return fig
