"""The swimmer plot: one lane per patient from infusion to last follow-up, coloured by
response group, with a marker per event (EVENT_STYLE)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from analysis.vocab import RESPONSE_CATEGORIES
from components.figures.clinical.style import EVENT_STYLE
from components.theme import GRADE_COLORS, GROUP_COLORS

__all__ = ["swimmer_plot"]

_RESP_RANK = {c: i for i, c in enumerate(RESPONSE_CATEGORIES)}   # best first


def _kind_family(kind: str) -> str:
    return kind.split(" G")[0] if kind.startswith(("CRS", "ICANS")) else kind


def swimmer_plot(lanes: pl.DataFrame, events: pl.DataFrame, *, subject: str = "subject_id",
                 end: str = "end", group: str = "response_group",
                 best: str = "best_response", day: str = "day", kind: str = "kind",
                 label: str = "label", sort_by: str = "follow-up",
                 title: str | None = None) -> go.Figure:
    """One horizontal lane per patient from infusion (day 0) to `end`, coloured by response
    group, with a marker per event (hover shows it). sort_by "follow-up" (longest on top) or
    "response" (CR, PR, NR, NE, then follow-up)."""
    if sort_by == "response":
        order_df = lanes.with_columns(pl.col(best).replace_strict(_RESP_RANK, default=4)
                                      .alias("_r")).sort("_r", end, descending=[False, True])
    else:
        order_df = lanes.sort(end, descending=True)
    order = order_df.get_column(subject).to_list()
    fig = go.Figure()
    for g in lanes.get_column(group).unique(maintain_order=True).to_list():
        sub = lanes.filter(pl.col(group) == g) if g is not None else \
            lanes.filter(pl.col(group).is_null())
        fig.add_trace(go.Bar(
            x=sub.get_column(end).to_list(), y=sub.get_column(subject).to_list(), base=0,
            orientation="h", name=str(g), marker_color=GROUP_COLORS.get(g, "#999999"),
            opacity=0.35, width=0.55, legendgroup="lanes",
            hovertemplate="%{y}: followed to day %{x}<extra>" + str(g) + "</extra>"))
    n_entries = lanes.get_column(group).n_unique() if lanes.height else 0
    if events.height:
        ev = events.with_columns(pl.col(kind).map_elements(_kind_family, return_dtype=pl.String)
                                 .alias("_fam"))
        for fam in [k for k in EVENT_STYLE if k in set(ev.get_column("_fam").to_list())]:
            sub = ev.filter(pl.col("_fam") == fam)
            symbol, color, size = EVENT_STYLE[fam]
            # CRS and ICANS: one legend entry per grade, the grade as the marker's fill
            # (GRADE_COLORS, light to dark) inside the event's own outline colour
            parts = [(k.replace(" G", " grade "), sub.filter(pl.col(kind) == k),
                      GRADE_COLORS.get(int(k.rsplit("G", 1)[1]), color)
                      if k.rsplit("G", 1)[-1].isdigit() else color)
                     for k in sorted(sub.get_column(kind).unique().to_list())] \
                if fam in ("CRS", "ICANS") else [(fam, sub, color)]
            for name, part, fill in parts:
                n_entries += 1
                fig.add_trace(go.Scatter(
                    x=part.get_column(day).to_list(), y=part.get_column(subject).to_list(),
                    mode="markers", name=name, text=part.get_column(label).to_list(),
                    legendgroup=fam, hovertemplate="%{y} · %{text}<extra></extra>",
                    marker={"symbol": symbol, "color": fill, "size": size,
                            "line": {"width": 1.5, "color": color}}))
    # the legend below the plot in rows: a legend beside a short plot gets a scroll box that
    # hides the entries at its end (HSCT, progression, death)
    legend_rows = -(-n_entries // 6)
    fig.update_layout(
        template="cart", title=title or "Swimmer plot: follow-up and events per patient",
        barmode="overlay", height=max(300, 40 * len(order) + 170 + 24 * legend_rows),
        xaxis={"title": {"text": "Study day (0 = CAR-T infusion)"}},
        yaxis={"title": {"text": ""}, "type": "category", "categoryorder": "array",
               "categoryarray": list(reversed(order))},
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 0, "yanchor": "bottom",
                "yref": "container"},
        margin={"b": 70 + 24 * legend_rows})
    return fig
