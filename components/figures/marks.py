"""Clinical marks on time axes: an HSCT (or any one-day event) as a dash-dot vertical line across
every panel of a figure, labelled once above the plot.

After an allogeneic HSCT the counts, cytokines and CAR-T levels are the graft's course, not the
CAR-T's (analysis.post_hsct), so every time axis that can reach past a transplant marks it
(Blood counts and Kinetics draw their own marks; the Patient timeline, the Cytokines & safety
panels and the cohort cytokine panels use this module). Marks are `(x0, x1, text)` tuples as
analysis.post_hsct.hsct_marks makes them; only one-day marks (x0 == x1) are drawn as lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

__all__ = ["HSCT_LINE", "add_day_marks"]

HSCT_LINE = {"color": "#333333", "width": 1.2, "dash": "dashdot"}


def add_day_marks(fig: go.Figure, marks: Sequence[tuple[float, float, str]], *,
                  range_x: Sequence[float] | None = None) -> go.Figure:
    """Each one-day mark of `marks` as a vertical dash-dot line over every panel with data
    (call after the traces: plotly leaves shapes out of empty subplots) and its text above the
    plot area. Marks outside `range_x` are left out (their label would float over nothing).
    Returns the same figure."""
    for x0, x1, text in marks:
        if x0 != x1:
            continue
        if range_x is not None and not (range_x[0] <= x0 <= range_x[1]):
            continue
        fig.add_vline(x=x0, line=HSCT_LINE, layer="above")
        fig.add_annotation(x=x0, xref="x", y=1.0, yref="paper", yanchor="bottom",
                           xanchor="left", text=text, showarrow=False,
                           font={"size": 10, "color": HSCT_LINE["color"]})
    return fig
