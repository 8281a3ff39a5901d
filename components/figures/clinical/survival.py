"""Outcome figures: Kaplan-Meier curves with 95% bands, censoring ticks and numbers at risk
on a shared time axis, and ORR bars per landmark with exact 95% CI whiskers."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from analysis.vocab import RESPONDER
from components.figures.clinical.style import rgba
from components.theme import GROUP_COLORS, OKABE_ITO

__all__ = ["km_plot", "orr_plot"]


def km_plot(curve: pl.DataFrame, at_risk: pl.DataFrame, *, group: str = "group",
            time: str = "time", survival: str = "survival", ci_low: str = "ci_low",
            ci_high: str = "ci_high", censored: pl.DataFrame | None = None,
            colors: Mapping[str, str] | None = None, note: str = "",
            title: str | None = None) -> go.Figure:
    """Kaplan-Meier step curves with 95% bands (top) and numbers at risk under the plot
    (bottom row, same time axis). `censored` (group, time, survival) draws censoring ticks;
    `note` (e.g. how HSCT was handled) is stated under the title."""
    groups = curve.get_column(group).unique(maintain_order=True).to_list() \
        if curve.height else []
    risk_share = min(0.35, 0.08 + 0.06 * max(len(groups), 1))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True,
                        row_heights=[1 - risk_share, risk_share], vertical_spacing=0.08)
    palette = dict(colors or {})
    for i, g in enumerate(groups):
        col = palette.get(g) or GROUP_COLORS.get(g) or OKABE_ITO[(i + 4) % len(OKABE_ITO)]
        s = curve.filter(pl.col(group) == g).sort(time)
        xs = s.get_column(time).to_list()
        ux, uy = _steps(xs, s.get_column(ci_high).to_list())
        lx, ly = _steps(xs, s.get_column(ci_low).to_list())
        fig.add_trace(go.Scatter(
            x=ux + lx[::-1], y=uy + ly[::-1], mode="lines", fill="toself",
            fillcolor=rgba(col, 0.15), line={"width": 0}, hoverinfo="skip",
            showlegend=False, legendgroup=str(g), name=f"{g} 95% CI"), row=1, col=1)
        fig.add_trace(go.Scatter(
            x=xs, y=s.get_column(survival).to_list(), mode="lines", name=str(g),
            legendgroup=str(g), line={"shape": "hv", "color": col, "width": 2.5},
            hovertemplate=f"{g} · day %{{x}}: %{{y:.2f}}<extra></extra>"), row=1, col=1)
        if censored is not None and censored.height:
            c = censored.filter(pl.col(group) == g)
            fig.add_trace(go.Scatter(
                x=c.get_column(time).to_list(), y=c.get_column(survival).to_list(),
                mode="markers", marker={"symbol": "line-ns-open", "size": 12, "color": col},
                name=f"{g} censored", legendgroup=str(g), showlegend=False,
                hovertemplate=f"{g} · censored on day %{{x}}<extra></extra>"), row=1, col=1)
        r = at_risk.filter(pl.col(group) == g)
        # numbers drawn whole (cliponaxis off) in their own row of the at-risk table
        fig.add_trace(go.Scatter(
            x=r.get_column(time).to_list(), y=[str(g)] * r.height, mode="text",
            text=[str(v) for v in r.get_column("at_risk").to_list()],
            textfont={"color": col, "size": 12}, textposition="middle center",
            cliponaxis=False, showlegend=False, hoverinfo="skip",
            name=f"{g} at risk"), row=2, col=1)
    ticks = at_risk.get_column(time).unique().sort().to_list() if at_risk.height else None
    fig.update_yaxes(range=[0, 1.05], title_text="Probability", row=1, col=1)
    # the group names label the at-risk rows in full (automargin), a half row of room above
    # and below so no number is cut
    fig.update_yaxes(type="category", title_text="At risk", showgrid=False,
                     categoryorder="array", categoryarray=[str(g) for g in groups],
                     range=[len(groups) - 0.5, -0.5], automargin=True,
                     tickfont={"size": 11}, row=2, col=1)
    fig.update_xaxes(tickvals=ticks, row=1, col=1)
    fig.update_xaxes(tickvals=ticks, title_text="Days since CAR-T infusion", row=2, col=1)
    heading = title or "Kaplan-Meier estimate"
    if note:
        heading += f"<br><sup>{note}</sup>"
    fig.update_layout(template="cart", title=heading, height=500 + 24 * max(len(groups), 1),
                      hovermode="closest", margin={"l": 120})
    return fig


def _steps(xs: list, ys: list) -> tuple[list, list]:
    """The corner points of a right-continuous step function through (xs, ys)."""
    sx, sy = [], []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if i:
            sx.append(x)
            sy.append(ys[i - 1])
        sx.append(x)
        sy.append(y)
    return sx, sy


def orr_plot(df: pl.DataFrame, *, landmark: str = "landmark", orr: str = "orr",
             ci_low: str = "ci_low", ci_high: str = "ci_high", n: str = "n",
             responders: str = "responders", title: str | None = None) -> go.Figure:
    """ORR per landmark as bars with exact 95% CI whiskers and k/n labels."""
    d = df.filter(pl.col(n) > 0) if df.height else df
    o = d.get_column(orr).to_list()
    vals = [v * 100 for v in o]
    hi = [(h - v) * 100 for h, v in zip(d.get_column(ci_high).to_list(), o, strict=True)]
    lo = [(v - lo_) * 100 for lo_, v in zip(d.get_column(ci_low).to_list(), o, strict=True)]
    labels = [f"{k}/{m}" for k, m in zip(d.get_column(responders).to_list(),
                                         d.get_column(n).to_list(), strict=True)]
    fig = go.Figure(go.Bar(
        x=d.get_column(landmark).to_list(), y=vals, text=labels, textposition="inside",
        marker_color=GROUP_COLORS[RESPONDER], name="ORR",
        error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo,
                 "color": "#333333"},
        hovertemplate="%{x}: ORR %{y:.0f}% (%{text})<extra></extra>"))
    fig.update_layout(template="cart", title=title or "Overall response rate (CR + PR), 95% CI",
                      yaxis={"title": {"text": "ORR (%)"}, "range": [0, 105]},
                      xaxis={"type": "category", "title": {"text": ""}}, height=400)
    return fig
