"""The patient timeline: every layer of the study for one patient on one infusion-aligned time
axis (stacked lanes sharing x, plotly `make_subplots(shared_xaxes=True)`). A lane without rows
is left out, so the figure shows exactly the layers the study has for the patient."""

from __future__ import annotations

import math
from collections.abc import Mapping

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from components.figures.marks import add_day_marks
from components.figures.patient.lanes import (
    CATEGORY_LANES,
    COURSE_STYLE,
    DRAW,
    LANE_TITLES,
    LANES,
    LOG_LANES,
    lane_colors,
)
from components.theme import label_decades

__all__ = ["patient_timeline", "lanes_shown"]

_NUMERIC_PX, _ROW_PX, _CATEGORY_PAD_PX = 170, 24, 34


def lanes_shown(lanes: Mapping[str, pl.DataFrame | None]) -> list[str]:
    """The lanes (in LANES order) that have rows to draw."""
    return [k for k in LANES if lanes.get(k) is not None and lanes[k].height > 0]


def _lane_height(key: str, frame: pl.DataFrame) -> int:
    if key in CATEGORY_LANES:
        return _CATEGORY_PAD_PX + _ROW_PX * max(1, frame.get_column("row").n_unique())
    return _NUMERIC_PX


def patient_timeline(lanes: Mapping[str, pl.DataFrame | None], *,
                     thresholds: pl.DataFrame | None = None, title: str | None = None,
                     range_x: tuple[float, float] | None = None,
                     x_title: str = "Day from CAR-T infusion",
                     colors: Mapping[str, str] | None = None,
                     compact: bool = False) -> go.Figure:
    """Stacked lanes of one patient on one shared x axis (study day, 0 = infusion).

    `compact` (a slide): the course is drawn as labelled vertical lines across every lane
    instead of a lane of its own, lanes share the height equally and there are no legends.

    `lanes` maps lane keys (LANES) to frames:
    course (row, day, end_day, kind, text); response (row, day, response, text);
    counts, cytokines, inflammation (day, analyte, value, label);
    support, toxicity (row, day, end_day, key, text; toxicity also grade and kind "episode" or
    "dose"); car_qpcr, car_flow (day, assay, value, plot_value, blq, lloq, label);
    samples (row, day, sample_id, assay, text); vaf (day, gene, vaf); clones (day, clonotype,
    frequency). `thresholds` (analyte, value, label) draws the response thresholds on the
    counts lane; `colors` fixes the colour of analytes, genes or clonotypes by name.
    """
    course = lanes.get("course")
    if compact:
        lanes = {k: v for k, v in lanes.items() if k != "course"}
    shown = lanes_shown(lanes)
    if not shown:
        fig = go.Figure()
        fig.update_layout(template="cart", title={"text": title or ""}, height=200,
                          annotations=[{"text": "Nothing recorded for this patient",
                                        "showarrow": False, "xref": "paper", "yref": "paper",
                                        "x": 0.5, "y": 0.5}])
        return fig
    # a slide (compact) holds every lane in two columns of lanes sharing one day axis; the
    # page stacks them in one column, each lane as tall as its content needs
    ncols = 2 if compact and len(shown) > 4 else 1
    nrows = math.ceil(len(shown) / ncols)
    place = {k: (i // nrows + 1, i % nrows + 1) for i, k in enumerate(shown)}  # col, row
    heights = ([1] * nrows if compact else
               [_lane_height(k, lanes[k]) for k in shown])  # type: ignore[arg-type]
    total = sum(heights)
    grid = [[None] * ncols for _ in range(nrows)]
    for k, (c, r) in place.items():
        grid[r - 1][c - 1] = LANE_TITLES[k]
    fig = make_subplots(rows=nrows, cols=ncols, shared_xaxes="all" if ncols > 1 else True,
                        vertical_spacing=0.04 if compact else 0.012, horizontal_spacing=0.1,
                        row_heights=[h / total for h in heights],
                        subplot_titles=[t or "" for row in grid for t in row])
    names = {}
    for key in ("counts", "cytokines", "inflammation"):
        if key in shown:
            names.update(lane_colors(lanes[key].get_column("analyte").unique(maintain_order=True)
                                 .to_list(), {**names, **(colors or {})}))
    legends: dict[str, dict] = {}
    for key in shown:
        frame = lanes[key]
        assert frame is not None
        c, r = place[key]
        i = (r - 1) * ncols + c                 # the lane's subplot number
        legend = "legend" if i == 1 else f"legend{i}"
        DRAW[key](fig, frame, row=r, col=c, axis=i, legend=legend,
                   colors={**names, **(colors or {})}, thresholds=thresholds)
        curve = lanes.get(f"{key}_fit")
        if curve is not None and curve.height:
            fig.add_trace(go.Scatter(
                x=curve.get_column("day").to_list(), y=curve.get_column("value").to_list(),
                mode="lines", line={"color": "#333333", "width": 1.5, "dash": "dashdot"},
                name="kinetic model", legend=legend, hoverinfo="skip"), row=r, col=c)
        # axes and legends set on the layout directly (update_yaxes(row=...) walks every
        # subplot on each call)
        axis = fig.layout[f"yaxis{'' if i == 1 else i}"]
        legends[legend] = {"x": 1.01, "xanchor": "left", "y": axis.domain[1],
                           "yanchor": "top", "font": {"size": 10},
                           "bgcolor": "rgba(255,255,255,0)", "tracegroupgap": 2}
        if key in LOG_LANES:
            axis.update(type="log")
        if key in CATEGORY_LANES:
            rows = frame.get_column("row").unique(maintain_order=True).to_list()
            axis.update(type="category", categoryorder="array", categoryarray=rows,
                        autorange="reversed", showgrid=False, tickfont={"size": 10})
    fig.update_layout(legends)
    n_titles = sum(t is not None for row in grid for t in row)
    starts = [fig.layout["xaxis" if c == 1 else f"xaxis{c}"].domain[0]
              for c in range(1, ncols + 1)]
    for ann in fig.layout.annotations[:n_titles]:  # lane titles (made first): left, small
        left = starts[0] if ncols == 1 or ann.x < 0.5 else starts[1]
        ann.update(x=left, xanchor="left", font={"size": 12, "color": "#333333"})
    fig.update_xaxes(zeroline=False)
    for c in range(1, ncols + 1):
        last = max(r for cc, r in place.values() if cc == c)
        fig.update_xaxes(title_text=x_title, showticklabels=True, row=last, col=c)
        for r in range(last + 1, nrows + 1):    # an empty cell under a shorter column
            n = (r - 1) * ncols + c
            fig.layout[f"xaxis{n}"].visible = False
            fig.layout[f"yaxis{n}"].visible = False
    if range_x is not None:
        fig.update_xaxes(range=list(range_x))
    # day 0 across every lane (one shape per column of lanes)
    for c in range(1, ncols + 1):
        fig.add_shape(type="line", xref="x" if c == 1 else f"x{c}", x0=0, x1=0, yref="paper",
                      y0=0, y1=1, line={"color": "#0072B2", "width": 1, "dash": "dot"},
                      layer="below")
    fig.update_layout(template="cart", height=total + 110, title={"text": title or ""},
                      margin={"l": 130, "r": 190, "t": 70, "b": 50}, hovermode="closest",
                      barmode="overlay", clickmode="event+select", dragmode="zoom")
    if not compact and course is not None and course.height:
        # the HSCT across every lane: later counts, CAR-T and cytokines are the graft's
        hsct = course.filter(pl.col("kind") == "hsct").get_column("day").unique().sort()
        add_day_marks(fig, [(float(d), float(d), "HSCT") for d in hsct.to_list()])
    if compact:
        fig.update_layout(showlegend=False, height=720, margin={"l": 120, "r": 30, "t": 70,
                                                                 "b": 50})
        fig.update_yaxes(tickfont={"size": 9})
        if course is not None and course.height:
            for c in range(1, ncols + 1):
                _course_lines(fig, course, xref="x" if c == 1 else f"x{c}")
    return label_decades(fig)


def _course_lines(fig: go.Figure, course: pl.DataFrame, *, xref: str = "x") -> None:
    """The course as vertical lines over every lane of the column whose x axis is `xref`,
    labelled along the top."""
    for r in course.filter(pl.col("kind") != "infusion").iter_rows(named=True):
        color = COURSE_STYLE.get(r["kind"], ("", "#444444"))[1]
        if r["kind"] == "lymphodepletion" and r["end_day"] is not None:
            fig.add_shape(type="rect", xref=xref, x0=r["day"] - 0.5, x1=r["end_day"] + 0.5,
                          yref="paper", y0=0, y1=1, fillcolor=color, opacity=0.15,
                          line={"width": 0}, layer="below")
            continue
        fig.add_shape(type="line", xref=xref, x0=r["day"], x1=r["day"], yref="paper", y0=0,
                      y1=1, line={"color": color, "width": 1.2, "dash": "dash"})
        fig.add_annotation(x=r["day"], xref=xref, y=1.0, yref="paper", yanchor="bottom",
                           text=str(r["row"]), showarrow=False,
                           font={"size": 10, "color": color})
