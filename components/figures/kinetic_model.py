"""The cellular-kinetics model over the observed CAR-T levels: per patient the measured values
(open markers at LLOQ/2 below the LLOQ) and, where the fit converged, the fitted curve; a
patient whose fit did not converge shows its values only, the legend says so."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go
import polars as pl

from components.theme import PATIENT_PALETTE, label_decades

__all__ = ["model_overlay"]


def model_overlay(observed: pl.DataFrame, curves: pl.DataFrame, *, x: str = "day",
                  y: str = "plot_value", color: str = "subject_id", blq: str = "blq",
                  status: Mapping[str, str] | None = None,
                  colors: Mapping[str, str] | None = None, log_y: bool = True,
                  title: str | None = None, y_title: str | None = None) -> go.Figure:
    """`observed` (subject_id, day, plot_value, blq, value) as markers, `curves` (subject_id,
    day, value) as lines in the same colour; `status` maps patients to "converged" or the
    reason a fit failed. Markers carry the subject_id in `customdata` (a click can open the
    patient)."""
    keys = sorted(observed.get_column(color).unique().to_list()) if observed.height else []
    cmap = dict(colors or {})
    for i, k in enumerate(k for k in keys if k not in cmap):
        cmap[k] = PATIENT_PALETTE[i % len(PATIENT_PALETTE)]
    fig = go.Figure()
    fitted = set(curves.get_column(color).unique().to_list()) if curves.height else set()
    for k in keys:
        g = observed.filter((pl.col(color) == k) & pl.col(y).is_not_null()).sort(x)
        if log_y:
            g = g.filter(pl.col(y) > 0)
        flags = g.get_column(blq).fill_null(False).to_list()
        name = str(k) if k in fitted else f"{k} (no fit)"
        reason = (status or {}).get(k, "")
        fig.add_trace(go.Scatter(
            x=g.get_column(x).to_list(), y=g.get_column(y).to_list(), mode="markers",
            marker={"color": cmap[k], "size": 7,
                    "symbol": ["circle-open" if b else "circle" for b in flags]},
            name=name, legendgroup=str(k), customdata=[[str(k)]] * g.height,
            hovertemplate=f"{k}<br>day %{{x}}: %{{y:.4g}}"
                          + (f"<br>{reason}" if reason and k not in fitted else "")
                          + "<extra></extra>"))
        if k in fitted:
            c = curves.filter(pl.col(color) == k).sort(x)
            fig.add_trace(go.Scatter(
                x=c.get_column(x).to_list(), y=c.get_column("value").to_list(), mode="lines",
                line={"color": cmap[k], "width": 1.8}, name=f"{k} model", legendgroup=str(k),
                showlegend=False, hoverinfo="skip"))
    fig.update_xaxes(title_text="Day from CAR-T infusion")
    fig.update_yaxes(title_text=y_title or "", type="log" if log_y else "linear")
    fig.update_layout(template="cart", title={"text": title or ""}, height=460,
                      hovermode="closest")
    return label_decades(fig)
