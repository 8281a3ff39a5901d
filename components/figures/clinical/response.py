"""The response heatmap: patients x assessment timepoints, coloured CR / PR / NR / NE /
not assessed, the deciding rule on hover."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import polars as pl

from analysis.vocab import RESPONSE_CATEGORIES
from components.theme import RESPONSE_COLORS

__all__ = ["response_heatmap"]

_HEAT_CATS = (*RESPONSE_CATEGORIES, "not assessed")


def response_heatmap(df: pl.DataFrame, *, subject: str = "subject_id",
                     timepoint: str = "timepoint", category: str = "category",
                     text: str | None = "rule", subjects: Sequence[str] | None = None,
                     timepoints: Sequence[str] | None = None,
                     title: str | None = None) -> go.Figure:
    """Patients (rows) x assessment timepoints (columns), coloured CR / PR / NR / NE /
    not assessed; hover shows the rule that decided the cell."""
    tps = list(timepoints) if timepoints is not None else \
        df.get_column(timepoint).unique(maintain_order=True).to_list()
    ids = list(subjects) if subjects is not None else \
        sorted(df.get_column(subject).unique().to_list())
    code = {c: i for i, c in enumerate(_HEAT_CATS)}
    z = [[code["not assessed"]] * len(tps) for _ in ids]
    hover = [[f"{sid} · {tp}: not assessed" for tp in tps] for sid in ids]
    for r in df.iter_rows(named=True):
        if r[subject] in ids and r[timepoint] in tps:
            i, j = ids.index(r[subject]), tps.index(r[timepoint])
            z[i][j] = code.get(r[category], code["NE"])
            hover[i][j] = f"{r[subject]} · {r[timepoint]}: " + (
                str(r[text]) if text and r.get(text) else str(r[category]))
    k = len(_HEAT_CATS)
    scale = []
    for i, c in enumerate(_HEAT_CATS):
        scale += [[i / k, RESPONSE_COLORS[c]], [(i + 1) / k, RESPONSE_COLORS[c]]]
    labels = [[_HEAT_CATS[v] if v < 4 else "" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=tps, y=ids, text=labels, texttemplate="%{text}", customdata=hover,
        hovertemplate="%{customdata}<extra></extra>", colorscale=scale, zmin=-0.5,
        zmax=k - 0.5, xgap=3, ygap=3,
        colorbar={"tickvals": list(range(k)), "ticktext": list(_HEAT_CATS), "title": ""}))
    fig.update_layout(template="cart", title=title or "Response over time",
                      height=max(260, 36 * len(ids) + 150),
                      xaxis={"type": "category", "showgrid": False, "title": {"text": ""}},
                      yaxis={"type": "category", "autorange": "reversed", "showgrid": False})
    return fig

