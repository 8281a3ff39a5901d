"""Figures of one patient: every layer of the study on one infusion-aligned time axis (stacked
lanes sharing x, plotly `make_subplots(shared_xaxes=True)`), and a clickable strip of the cohort
to pick a patient from.

Frames in, `go.Figure` out (no analysis, no data loading): `views.patient` prepares one frame per
lane. A lane without rows is left out, so the figure shows exactly the layers the study has for
the patient. Log axes for counts, CAR-T, cytokines and inflammation markers; values below the
LLOQ are drawn at LLOQ/2 with an open marker of their own (DESIGN.md section 3), the LLOQ as a
dashed line. Sample markers carry `customdata = ["sample", sample_id, assay]` so a click on one
can open the view of that sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from components.figures.marks import add_day_marks
from components.theme import (
    GRADE_COLORS,
    PATIENT_PALETTE,
    RESPONSE_COLORS,
    label_decades,
)

__all__ = ["LANES", "LANE_TITLES", "patient_timeline", "cohort_strip", "lanes_shown"]

LANES = ("course", "response", "counts", "support", "toxicity", "car_qpcr", "car_flow",
         "cytokines", "inflammation", "samples", "vaf", "clones")
LANE_TITLES = {
    "course": "Course", "response": "Response", "counts": "Blood counts",
    "support": "Transfusions and medications", "toxicity": "CRS, ICANS, infections",
    "car_qpcr": "CAR-T (qPCR)", "car_flow": "CAR-T (flow)", "cytokines": "Cytokines",
    "inflammation": "CRP, ferritin", "samples": "Samples", "vaf": "Somatic VAF",
    "clones": "Top TCR clones",
}
_LOG_LANES = {"counts", "car_qpcr", "car_flow", "cytokines", "inflammation"}
_CATEGORY_LANES = {"course", "response", "support", "toxicity", "samples"}
_NUMERIC_PX, _ROW_PX, _CATEGORY_PAD_PX = 170, 24, 34
_COURSE_STYLE = {  # kind -> (marker symbol, colour)
    "lymphodepletion": ("line-ns", "#7F7F7F"), "infusion": ("triangle-up", "#0072B2"),
    "hsct": ("star", "#CC79A7"), "progression": ("x", "#D55E00"),
    "death": ("cross", "#000000"), "last_contact": ("line-ns-open", "#444444"),
}
_SUPPORT_COLORS = {"RBC": "#B2182B", "PLT": "#F4A582", "g_csf": "#009E73",
                   "growth_factor": "#009E73", "tpo_ra": "#56B4E9", "tocilizumab": "#0072B2",
                   "corticosteroid": "#E69F00", "ciclosporin": "#CC79A7",
                   "anti_infective": "#999933", "other": "#888888"}
# lines of one patient (analytes): the patient palette, no yellow and no PLT-rug orange
_PALETTE = list(PATIENT_PALETTE)


def lanes_shown(lanes: Mapping[str, pl.DataFrame | None]) -> list[str]:
    """The lanes (in LANES order) that have rows to draw."""
    return [k for k in LANES if lanes.get(k) is not None and lanes[k].height > 0]


def _lane_height(key: str, frame: pl.DataFrame) -> int:
    if key in _CATEGORY_LANES:
        return _CATEGORY_PAD_PX + _ROW_PX * max(1, frame.get_column("row").n_unique())
    return _NUMERIC_PX


def _colors(keys: Sequence[str], fixed: Mapping[str, str] | None = None) -> dict[str, str]:
    out = dict(fixed or {})
    free = [c for c in _PALETTE if c not in out.values()] or _PALETTE
    for i, k in enumerate(k for k in keys if k not in out):
        out[k] = free[i % len(free)]
    return out


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
            names.update(_colors(lanes[key].get_column("analyte").unique(maintain_order=True)
                                 .to_list(), {**names, **(colors or {})}))
    legends: dict[str, dict] = {}
    for key in shown:
        frame = lanes[key]
        assert frame is not None
        c, r = place[key]
        i = (r - 1) * ncols + c                 # the lane's subplot number
        legend = "legend" if i == 1 else f"legend{i}"
        _DRAW[key](fig, frame, row=r, col=c, axis=i, legend=legend,
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
        if key in _LOG_LANES:
            axis.update(type="log")
        if key in _CATEGORY_LANES:
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
        color = _COURSE_STYLE.get(r["kind"], ("", "#444444"))[1]
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


# ---- lanes ------------------------------------------------------------------------------------
def _course(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int = 1, legend: str,
            **_: object) -> None:
    spans = df.filter(pl.col("end_day").is_not_null() & (pl.col("end_day") > pl.col("day")))
    for r in spans.iter_rows(named=True):
        fig.add_trace(go.Bar(x=[r["end_day"] - r["day"] + 1], base=[r["day"] - 0.5],
                             y=[r["row"]], orientation="h", width=0.5,
                             marker={"color": _COURSE_STYLE.get(r["kind"], ("", "#777"))[1]},
                             name=r["row"], legend=legend, showlegend=False,
                             hovertext=[r["text"]], hoverinfo="text"), row=row, col=col)
    points = df.filter(~pl.col("row").is_in(spans.get_column("row").implode()))
    for r in points.iter_rows(named=True):
        symbol, color = _COURSE_STYLE.get(r["kind"], ("circle", "#444444"))
        fig.add_trace(go.Scatter(x=[r["day"]], y=[r["row"]], mode="markers",
                                 marker={"symbol": symbol, "size": 13, "color": color,
                                         "line": {"width": 2, "color": color}},
                                 name=r["row"], legend=legend, showlegend=False,
                                 hovertext=[r["text"]], hoverinfo="text"), row=row, col=col)


def _response(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int = 1, legend: str,
              **_: object) -> None:
    seen: set[str] = set()
    for (resp,), g in df.group_by(["response"], maintain_order=True):
        fig.add_trace(go.Scatter(
            x=g.get_column("day").to_list(), y=g.get_column("row").to_list(),
            mode="markers+text", text=g.get_column("response").to_list(),
            textposition="middle right", textfont={"size": 10},
            marker={"symbol": "square", "size": 12,
                    "color": RESPONSE_COLORS.get(str(resp), "#999999"),
                    "line": {"width": 1, "color": "#333333"}},
            name=str(resp), legend=legend, showlegend=str(resp) not in seen,
            hovertext=g.get_column("text").to_list(), hoverinfo="text"), row=row, col=col)
        seen.add(str(resp))


def _series(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int = 1, legend: str,
            colors: Mapping[str, str], thresholds: pl.DataFrame | None = None,
            color: str = "analyte", y: str = "value", log: bool = True, hover_unit: str = "",
            axis: int = 0, **_: object) -> None:
    df = df.filter(pl.col(y).is_not_null() & ((pl.col(y) > 0) if log else pl.lit(True)))
    keys = df.get_column(color).unique(maintain_order=True).to_list()
    cmap = _colors(keys, colors)
    for key in keys:
        g = df.filter(pl.col(color) == key).sort("day")
        label = g.get_column("label").first() if "label" in g.columns else str(key)
        fig.add_trace(go.Scatter(
            x=g.get_column("day").to_list(), y=g.get_column(y).to_list(), mode="lines+markers",
            line={"color": cmap[key], "width": 1.6}, marker={"size": 5, "color": cmap[key]},
            name=str(label), legend=legend,
            hovertemplate=f"{label}<br>day %{{x}}: %{{y:.4g}}{hover_unit}<extra></extra>"),
            row=row, col=col)
    if thresholds is not None and thresholds.height:
        # labels of neighbouring lines step left in turn (1.0, 0.8, 0.6 of the width), so
        # "severe <0.5" and "very severe <0.2" never print over each other
        lines = thresholds.filter(pl.col("analyte").is_in(keys)).sort("value")
        for k, t in enumerate(lines.iter_rows(named=True)):
            _hline(fig, t["value"], axis=axis or row, log=log, text=t["label"],
                   color=cmap.get(t["analyte"], "#777777"), dash="dot", at=1.0 - 0.2 * (k % 3))


def _hline(fig: go.Figure, y: float, *, axis: int, log: bool, text: str, color: str,
           dash: str, at: float = 1.0) -> None:
    """A labelled horizontal line on one lane (`axis`: its subplot number). The label is
    placed by hand: annotations on a log axis take log10 coordinates, which `add_hline` does
    not convert."""
    suffix = "" if axis == 1 else str(axis)
    # explicit axis references: add_hline(row=...) walks every subplot and is slow
    fig.add_shape(type="line", xref=f"x{suffix} domain", x0=0, x1=1, yref=f"y{suffix}",
                  y0=y, y1=y, line={"color": color, "width": 1, "dash": dash})
    fig.add_annotation(x=at, xref=f"x{suffix} domain", y=math.log10(y) if log else y,
                       yref=f"y{suffix}", text=text, showarrow=False, xanchor="right",
                       yanchor="bottom", font={"size": 9, "color": color})


def _counts(fig: go.Figure, df: pl.DataFrame, **kw: object) -> None:
    _series(fig, df, **kw)  # type: ignore[arg-type]


def _plain(fig: go.Figure, df: pl.DataFrame, **kw: object) -> None:
    kw = {**kw, "thresholds": None}
    _series(fig, df, **kw)  # type: ignore[arg-type]


def _spans(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int = 1, legend: str,
           **_: object) -> None:
    bars = df.filter(pl.col("kind") != "dose") if "kind" in df.columns else df
    graded = "grade" in bars.columns
    bars = bars.with_columns(
        (pl.col("grade").cast(pl.Int64) if graded else pl.lit(None, pl.Int64)).alias("_g"),
        pl.col("end_day").fill_null(pl.col("day")).alias("_end"))
    # one trace per row and colour (a patient has hundreds of transfusions)
    for (row_label, g_), g in bars.group_by(["row", "_g"], maintain_order=True):
        key = str(g.get_column("key").first())
        color = (GRADE_COLORS.get(int(g_), "#999999") if g_ is not None
                 else _SUPPORT_COLORS.get(key, "#888888"))
        name = f"grade {int(g_)}" if g_ is not None else str(row_label)
        fig.add_trace(go.Bar(
            x=(g.get_column("_end") - g.get_column("day") + 1).to_list(),
            base=(g.get_column("day") - 0.5).to_list(), y=g.get_column("row").to_list(),
            orientation="h", width=0.6,
            marker={"color": color, "line": {"width": 0.6, "color": "#444444"}},
            name=name, legend=legend, legendgroup=f"{legend}-{name}",
            showlegend=g_ is not None and name not in _legend_names(fig, legend),
            hovertext=g.get_column("text").to_list(), hoverinfo="text"), row=row, col=col)
    if "kind" in df.columns:
        doses = df.filter(pl.col("kind") == "dose")
        for (key,), g in doses.group_by(["key"], maintain_order=True):
            fig.add_trace(go.Scatter(
                x=g.get_column("day").to_list(), y=g.get_column("row").to_list(),
                mode="markers", marker={"symbol": "diamond", "size": 10,
                                        "color": _SUPPORT_COLORS.get(str(key), "#444444"),
                                        "line": {"width": 1, "color": "#222222"}},
                name=str(g.get_column("label").first() if "label" in g.columns else key),
                legend=legend, hovertext=g.get_column("text").to_list(), hoverinfo="text"),
                row=row, col=col)


def _legend_names(fig: go.Figure, legend: str) -> set[str]:
    return {t.name for t in fig.data if getattr(t, "legend", None) == legend and t.showlegend
            is not False}


def _car(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int = 1, legend: str,
         axis: int = 0, **_: object) -> None:
    for i, ((assay,), g) in enumerate(df.group_by(["assay"], maintain_order=True)):
        g = g.sort("day")
        color = ("#0072B2", "#009E73", "#CC79A7")[i % 3]
        label = g.get_column("label").first()
        q = g.filter(~pl.col("blq"))
        b = g.filter(pl.col("blq") & pl.col("plot_value").is_not_null())
        fig.add_trace(go.Scatter(
            x=g.filter(pl.col("plot_value").is_not_null()).get_column("day").to_list(),
            y=g.filter(pl.col("plot_value").is_not_null()).get_column("plot_value").to_list(),
            mode="lines", line={"color": color, "width": 1.4}, name=f"{label}",
            legend=legend, legendgroup=f"{legend}-{assay}", hoverinfo="skip"), row=row, col=col)
        fig.add_trace(go.Scatter(
            x=q.get_column("day").to_list(), y=q.get_column("value").to_list(), mode="markers",
            marker={"size": 7, "color": color}, name=f"{label} >= LLOQ", legend=legend,
            legendgroup=f"{legend}-{assay}", showlegend=False,
            hovertemplate=f"{label}<br>day %{{x}}: %{{y:.4g}}<extra></extra>"), row=row, col=col)
        if b.height:
            fig.add_trace(go.Scatter(
                x=b.get_column("day").to_list(), y=b.get_column("plot_value").to_list(),
                mode="markers", marker={"size": 8, "symbol": "circle-open", "color": color,
                                        "line": {"width": 1.5}},
                name="below LLOQ (at LLOQ/2)", legend=legend,
                legendgroup=f"{legend}-{assay}-blq",
                customdata=b.get_column("value").to_list(),
                hovertemplate=f"{label}<br>day %{{x}}: below LLOQ (measured %{{customdata}})"
                              "<extra></extra>"), row=row, col=col)
        lloq = g.get_column("lloq").drop_nulls()
        if lloq.len():
            _hline(fig, float(lloq.max()), axis=axis or row, log=True,
                   text=f"LLOQ {float(lloq.max()):g}", color=color, dash="dash")


def _samples(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int = 1, legend: str,
             **_: object) -> None:
    for i, ((_assay,), g) in enumerate(df.group_by(["assay"], maintain_order=True)):
        fig.add_trace(go.Scatter(
            x=g.get_column("day").to_list(), y=g.get_column("row").to_list(), mode="markers",
            marker={"symbol": "circle", "size": 11, "color": _PALETTE[i % len(_PALETTE)],
                    "line": {"width": 1, "color": "#222222"}},
            name=str(g.get_column("row").first()), legend=legend, showlegend=False,
            customdata=[["sample", s, a] for s, a in zip(g.get_column("sample_id"),
                                                         g.get_column("assay"), strict=True)],
            hovertext=g.get_column("text").to_list(), hoverinfo="text"), row=row, col=col)


def _vaf(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int = 1, legend: str,
         colors: Mapping[str, str], **_: object) -> None:
    _series(fig, df.with_columns((pl.col("vaf") * 100).alias("vaf_pct"),
                                 pl.col("gene").alias("label")),
            row=row, col=col, legend=legend, colors=colors, color="gene", y="vaf_pct",
            log=False,
            hover_unit=" %")
    fig.update_yaxes(title_text="VAF %", rangemode="tozero", row=row, col=col)


def _clones(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int = 1, legend: str,
            colors: Mapping[str, str], **_: object) -> None:
    _series(fig, df.with_columns((pl.col("frequency") * 100).alias("pct"),
                                 pl.col("clonotype").alias("label")),
            row=row, col=col, legend=legend, colors=colors, color="clonotype", y="pct",
            log=False,
            hover_unit=" %")
    fig.update_yaxes(title_text="% of TCRs", rangemode="tozero", row=row, col=col)


_DRAW = {"course": _course, "response": _response, "counts": _counts, "support": _spans,
         "toxicity": _spans, "car_qpcr": _car, "car_flow": _car, "cytokines": _plain,
         "inflammation": _plain, "samples": _samples, "vaf": _vaf, "clones": _clones}


# ---- picking a patient ------------------------------------------------------------------------
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
