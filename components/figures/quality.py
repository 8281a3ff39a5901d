"""Figures of what a study holds: the sample-availability matrix."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

__all__ = ["availability_matrix"]


def availability_matrix(df: pl.DataFrame, *, subject: str = "subject_id",
                        timepoint: str = "timepoint", assay: str = "assay",
                        count: str = "n_samples", title: str | None = None) -> go.Figure:
    """Patients (rows) x timepoints (columns) per assay (small multiples side by side):
    a filled cell means the assay has a sample at that timepoint."""
    assays = df.get_column(assay).unique(maintain_order=True).to_list() if df.height else []
    tps = df.get_column(timepoint).unique(maintain_order=True).to_list() if df.height else []
    subjects = sorted(df.get_column(subject).unique().to_list()) if df.height else []
    fig = go.Figure()
    n = max(len(assays), 1)
    gap = 0.03
    width = (1 - gap * (n - 1)) / n
    for i, a in enumerate(assays):
        sub = df.filter(pl.col(assay) == a)
        z = [[None] * len(tps) for _ in subjects]
        text = [[""] * len(tps) for _ in subjects]
        for r in sub.iter_rows(named=True):
            si, ti = subjects.index(r[subject]), tps.index(r[timepoint])
            z[si][ti] = 1
            text[si][ti] = f"{r[subject]} · {r[timepoint]} · {a}: {r[count]} sample(s)"
        axis = "" if i == 0 else str(i + 1)
        fig.add_trace(go.Heatmap(
            z=z, x=tps, y=subjects, text=text, hoverinfo="text", showscale=False,
            colorscale=[[0, "#0072B2"], [1, "#0072B2"]], xgap=2, ygap=2, name=a,
            xaxis=f"x{axis}", yaxis=f"y{axis}"))
        x0 = i * (width + gap)
        fig.update_layout({
            # upright tick labels: slanted ones ran into the neighbouring panel
            f"xaxis{axis}": {"domain": [x0, x0 + width],
                             "tickangle": -90, "showgrid": False, "type": "category",
                             "automargin": False, "tickfont": {"size": 11},
                             "categoryorder": "array", "categoryarray": tps},
            f"yaxis{axis}": {"showticklabels": i == 0, "showgrid": False, "anchor": f"x{axis}",
                             "autorange": "reversed", "type": "category"},
        })
        # the assay above its panel (axis titles below were pushed apart by plotly)
        fig.add_annotation(text=a, x=x0 + width / 2, xref="paper", y=1.0, yref="paper",
                           xanchor="center", yanchor="bottom", showarrow=False,
                           font={"size": 12})
    fig.update_layout(template="cart", title=title or "Sample availability",
                      height=max(280, 28 * len(subjects) + 200),
                      margin={"b": 90, "t": 90})
    return fig
