"""The lanes of the patient timeline: their keys and titles, which are log and which are
categorical, and one drawing function per lane (`DRAW[key](fig, frame, row=, col=, axis=,
legend=, colors=, thresholds=)`), each adding its traces to one subplot of the shared-x figure.
Values below the LLOQ are drawn at LLOQ/2 with an open marker of their own (DESIGN.md section 3),
the LLOQ as a dashed line; sample markers carry `customdata = ["sample", sample_id, assay]`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import polars as pl

from components.theme import GRADE_COLORS, PATIENT_PALETTE, RESPONSE_COLORS

__all__ = ["LANES", "LANE_TITLES", "LOG_LANES", "CATEGORY_LANES", "COURSE_STYLE", "DRAW",
           "lane_colors"]

LANES = ("course", "response", "counts", "support", "toxicity", "car_qpcr", "car_flow",
         "cytokines", "inflammation", "samples", "vaf", "clones")
LANE_TITLES = {
    "course": "Course", "response": "Response", "counts": "Blood counts",
    "support": "Transfusions and medications", "toxicity": "CRS, ICANS, infections",
    "car_qpcr": "CAR-T (qPCR)", "car_flow": "CAR-T (flow)", "cytokines": "Cytokines",
    "inflammation": "CRP, ferritin", "samples": "Samples", "vaf": "Somatic VAF",
    "clones": "Top TCR clones",
}
LOG_LANES = {"counts", "car_qpcr", "car_flow", "cytokines", "inflammation"}
CATEGORY_LANES = {"course", "response", "support", "toxicity", "samples"}
COURSE_STYLE = {  # kind -> (marker symbol, colour)
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


def lane_colors(keys: Sequence[str], fixed: Mapping[str, str] | None = None) -> dict[str, str]:
    """A colour per key: `fixed` ones kept, the rest from the patient palette in turn."""
    out = dict(fixed or {})
    free = [c for c in _PALETTE if c not in out.values()] or _PALETTE
    for i, k in enumerate(k for k in keys if k not in out):
        out[k] = free[i % len(free)]
    return out


def _course(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int = 1, legend: str,
            **_: object) -> None:
    spans = df.filter(pl.col("end_day").is_not_null() & (pl.col("end_day") > pl.col("day")))
    for r in spans.iter_rows(named=True):
        fig.add_trace(go.Bar(x=[r["end_day"] - r["day"] + 1], base=[r["day"] - 0.5],
                             y=[r["row"]], orientation="h", width=0.5,
                             marker={"color": COURSE_STYLE.get(r["kind"], ("", "#777"))[1]},
                             name=r["row"], legend=legend, showlegend=False,
                             hovertext=[r["text"]], hoverinfo="text"), row=row, col=col)
    points = df.filter(~pl.col("row").is_in(spans.get_column("row").implode()))
    for r in points.iter_rows(named=True):
        symbol, color = COURSE_STYLE.get(r["kind"], ("circle", "#444444"))
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
    cmap = lane_colors(keys, colors)
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


def _percent_lane(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int, legend: str,
                  colors: Mapping[str, str], value: str, label: str, title: str) -> None:
    """A lane of fractions (`value`, 0-1) drawn as percentages, one line per `label`."""
    _series(fig, df.with_columns((pl.col(value) * 100).alias("pct"), pl.col(label).alias("label")),
            row=row, col=col, legend=legend, colors=colors, color=label, y="pct", log=False,
            hover_unit=" %")
    fig.update_yaxes(title_text=title, rangemode="tozero", row=row, col=col)


def _vaf(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int = 1, legend: str,
         colors: Mapping[str, str], **_: object) -> None:
    _percent_lane(fig, df, row=row, col=col, legend=legend, colors=colors, value="vaf",
                  label="gene", title="VAF %")


def _clones(fig: go.Figure, df: pl.DataFrame, *, row: int, col: int = 1, legend: str,
            colors: Mapping[str, str], **_: object) -> None:
    _percent_lane(fig, df, row=row, col=col, legend=legend, colors=colors, value="frequency",
                  label="clonotype", title="% of TCRs")


DRAW = {"course": _course, "response": _response, "counts": _counts, "support": _spans,
         "toxicity": _spans, "car_qpcr": _car, "car_flow": _car, "cytokines": _plain,
         "inflammation": _plain, "samples": _samples, "vaf": _vaf, "clones": _clones}
