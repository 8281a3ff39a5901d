"""Blood counts over time: one row per analyte, per patient (lines, or colour groups when
the cohort is large) or per response group (median line with IQR ribbon), with criteria
thresholds, a transfusion rug, lymphodepletion/infusion marks and values after an HSCT drawn
apart (dashed, faded: not the CAR-T's course)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from analysis.vocab import DayWindow
from components.figures.clinical.style import EVENT_STYLE, rgba
from components.figures.many import FADED, FOCUS, color_groups, gapped, is_many
from components.theme import GROUP_COLORS, label_decades, patient_colors

__all__ = ["POST_HSCT_NAME", "post_hsct_split", "counts_by_patient", "counts_by_group"]

_RUG_ROWS = ("PLT", "RBC")


# ---- values after an HSCT (analysis.post_hsct) -------------------------------------------
POST_HSCT_NAME = "after HSCT (not the CAR-T's course)"


def post_hsct_split(s: pl.DataFrame, *, x: str = "day") -> tuple[pl.DataFrame, pl.DataFrame]:
    """One patient's rows sorted by `x` -> (CAR-T course, after HSCT). The second part starts
    with the last value before the HSCT so its dashed line joins on; empty without a
    `post_hsct` column or a transplant."""
    if "post_hsct" not in s.columns or not s.get_column("post_hsct").fill_null(False).any():
        return s, s.clear()
    post = s.get_column("post_hsct").fill_null(False)
    pre, after = s.filter(~post), s.filter(post)
    return pre, pl.concat([pre.tail(1), after]) if pre.height else after


def _post_hsct_trace(s: pl.DataFrame, *, x: str, y: str, color: str, first: bool,
                     hover: str) -> go.Scatter:
    return go.Scatter(
        x=s.get_column(x).to_list(), y=s.get_column(y).to_list(), mode="lines+markers",
        name=POST_HSCT_NAME, legendgroup="post_hsct", showlegend=first, opacity=0.45,
        line={"color": color, "width": 1.4, "dash": "dash"},
        marker={"size": 5, "symbol": "x-thin-open", "color": color,
                "line": {"width": 1.2, "color": color}},
        hovertemplate=hover + " (after HSCT)<extra></extra>")


# ---- blood counts --------------------------------------------------------------------------
def _count_rows(analytes: Sequence[str], with_rug: bool) -> go.Figure:
    n = len(analytes) + (1 if with_rug else 0)
    heights = [1.0] * len(analytes) + ([0.25] if with_rug else [])
    titles = list(analytes) + (["Transfusions"] if with_rug else [])
    return make_subplots(rows=max(n, 1), cols=1, shared_xaxes=True, row_heights=heights,
                         vertical_spacing=0.05, subplot_titles=titles)


def _decorate_counts(fig: go.Figure, analytes: Sequence[str], *, log_y: bool,
                     ref_lines: Mapping[str, Sequence[tuple[float, str]]] | None,
                     labels: Mapping[str, str] | None,
                     transfusions: pl.DataFrame | None,
                     marks: Sequence[tuple[float, float, str]],
                     shade: DayWindow | None,
                     title: str | None) -> None:
    for i, a in enumerate(analytes, start=1):
        fig.update_yaxes(type="log" if log_y else "linear",
                         title_text=(labels or {}).get(a, a), row=i, col=1)
        # labels at the right end (the early days are crowded with data), neighbouring ones
        # stepped left in turn so that close thresholds (0.5 and 0.2) do not merge
        suffix = "" if i == 1 else str(i)
        for k, (value, text) in enumerate(sorted((ref_lines or {}).get(a, ()))):
            fig.add_hline(y=value, line={"dash": "dot", "color": "#555555", "width": 1},
                          row=i, col=1)
            fig.add_annotation(x=1.0 - 0.17 * (k % 2), xref=f"x{suffix} domain",
                               y=math.log10(value) if log_y and value > 0 else value,
                               yref=f"y{suffix}", text=text, showarrow=False,
                               xanchor="right", yanchor="bottom", font={"size": 10},
                               bgcolor="rgba(255,255,255,0.7)")
    if transfusions is not None:
        r = len(analytes) + 1
        for prod, color in (("PLT", EVENT_STYLE["PLT transfusion"][1]),
                            ("RBC", EVENT_STYLE["RBC transfusion"][1])):
            sub = transfusions.filter(pl.col("product") == prod)
            fig.add_trace(go.Scatter(
                x=sub.get_column("day").to_list(), y=[prod] * sub.height, mode="markers",
                name=f"{prod} transfusion", legendgroup="tx",
                text=sub.get_column("subject_id").to_list(),
                hovertemplate="%{text}: " + prod + " transfusion on day %{x}<extra></extra>",
                marker={"symbol": "line-ns-open", "size": 12, "color": color,
                        "line": {"width": 1.5, "color": color}}), row=r, col=1)
        fig.update_yaxes(type="category", categoryorder="array", categoryarray=list(_RUG_ROWS),
                         row=r, col=1, showgrid=False)
    # one label per mark above the top panel: a span's label ends at its start (right
    # aligned), a line's label starts at the line, so lymphodepletion and infusion never merge
    for x0, x1, text in marks:
        if x0 == x1:
            fig.add_vline(x=x0, line={"color": "#333333", "width": 1.2,
                                      "dash": "dashdot" if text.startswith("HSCT") else
                                      "solid"})
            fig.add_annotation(x=x0, y=1.0, yref="paper", text=text, showarrow=False,
                               xanchor="left", yanchor="bottom", font={"size": 10})
        else:
            fig.add_vrect(x0=x0, x1=x1, fillcolor="#999999", opacity=0.18, line_width=0)
            fig.add_annotation(x=x0, y=1.0, yref="paper", text=text, showarrow=False,
                               xanchor="right", yanchor="bottom", font={"size": 10})
    if shade is not None and not shade.is_everything:
        x0, x1 = shade.within(-30, 1000)
        fig.add_vrect(x0=x0, x1=x1, fillcolor="#F0E442", opacity=0.25, line_width=0)
    n_rows = len(analytes) + (1 if transfusions is not None else 0)
    fig.update_xaxes(title_text="Study day (0 = CAR-T infusion)", row=max(n_rows, 1), col=1)
    fig.update_layout(template="cart", title=title or "Blood counts",
                      height=max(320, 260 * len(analytes) + (90 if transfusions is not None
                                                              else 0)),
                      legend={"orientation": "v"}, hovermode="closest")


def counts_by_patient(df: pl.DataFrame, *, analytes: Sequence[str], x: str = "day",
                      y: str = "value", color: str = "subject_id",
                      colors: Mapping[str, str] | None = None, log_y: bool = False,
                      ref_lines: Mapping[str, Sequence[tuple[float, str]]] | None = None,
                      labels: Mapping[str, str] | None = None,
                      transfusions: pl.DataFrame | None = None,
                      marks: Sequence[tuple[float, float, str]] = (),
                      highlight: Sequence[str] = (),
                      shade: DayWindow | None = None,
                      title: str | None = None) -> go.Figure:
    """One row per analyte, one line per patient; reference lines at the criteria thresholds,
    a transfusion rug row (RBC and PLT distinct), vertical marks (lymphodepletion span,
    infusion line). `highlight` draws those patients bold and fades the rest; `shade` tints a
    day window."""
    analytes = list(analytes)
    fig = _count_rows(analytes, transfusions is not None)
    ids = df.get_column(color).unique().sort().to_list() if df.height else []
    colors = dict(colors or patient_colors(ids))
    hl = set(highlight)
    traces, rows = [], []
    post_shown = False
    for i, a in enumerate(analytes, start=1):
        sub = df.filter(pl.col("analyte") == a)
        if is_many(ids) and "post_hsct" in sub.columns:
            after = sub.filter(pl.col("post_hsct").fill_null(False))
            if after.height:
                g = gapped(after.sort(color, x), key=color, order=x)
                traces.append(_post_hsct_trace(g, x=x, y=y, color="#777777",
                                               first=not post_shown,
                                               hover=f"day %{{x}} · {a} %{{y}}"))
                rows.append(i)
                post_shown = True
            sub = sub.filter(~pl.col("post_hsct").fill_null(False))
        if is_many(ids):
            cmap = {sid: colors.get(sid, "#555555") for sid in ids}
            for c, state, ks in color_groups(ids, cmap, hl):
                s = gapped(sub.filter(pl.col(color).is_in(ks)), key=color, order=x)
                traces.append(go.Scatter(
                    x=s.get_column(x).to_list(), y=s.get_column(y).to_list(),
                    mode="lines+markers", name=f"{len(ks)} patients", showlegend=False,
                    line={"color": c, "width": 3.5 if state == FOCUS else 1.6},
                    marker={"size": 4}, opacity=0.25 if state == FADED else 1.0,
                    customdata=s.get_column(color).to_list(),
                    hovertemplate=f"%{{customdata}} · day %{{x}} · {a} %{{y}}<extra></extra>"))
                rows.append(i)
        for sid in [] if is_many(ids) else ids:
            s, after = post_hsct_split(sub.filter(pl.col(color) == sid).sort(x), x=x)
            if after.height:
                traces.append(_post_hsct_trace(
                    after, x=x, y=y, color=colors.get(sid, "#555555"), first=not post_shown,
                    hover=f"{sid} · day %{{x}} · {a} %{{y}}"))
                rows.append(i)
                post_shown = True
            if s.height == 0:
                continue
            faded = bool(hl) and sid not in hl
            traces.append(go.Scatter(
                x=s.get_column(x).to_list(), y=s.get_column(y).to_list(),
                mode="lines+markers", name=str(sid), legendgroup=str(sid), showlegend=i == 1,
                line={"color": colors.get(sid, "#555555"), "width": 3.5 if sid in hl else 1.6},
                marker={"size": 4}, opacity=0.25 if faded else 1.0,
                hovertemplate=f"{sid} · day %{{x}} · {a} %{{y}}<extra></extra>"))
            rows.append(i)
    if traces:
        fig.add_traces(traces, rows=rows, cols=[1] * len(rows))
    _decorate_counts(fig, analytes, log_y=log_y, ref_lines=ref_lines, labels=labels,
                     transfusions=transfusions, marks=marks, shade=shade, title=title)
    return label_decades(fig)


def counts_by_group(summary: pl.DataFrame, *, analytes: Sequence[str], x: str = "day",
                    group: str = "response_group", median: str = "median", q1: str = "q1",
                    q3: str = "q3", n: str = "n", log_y: bool = False,
                    ref_lines: Mapping[str, Sequence[tuple[float, str]]] | None = None,
                    labels: Mapping[str, str] | None = None,
                    transfusions: pl.DataFrame | None = None,
                    marks: Sequence[tuple[float, float, str]] = (),
                    shade: DayWindow | None = None,
                    title: str | None = None) -> go.Figure:
    """One row per analyte: the group median as a line and the interquartile range as a
    ribbon, one colour per response group."""
    analytes = list(analytes)
    fig = _count_rows(analytes, transfusions is not None)
    groups = summary.get_column(group).unique(maintain_order=True).to_list() \
        if summary.height else []
    for i, a in enumerate(analytes, start=1):
        sub = summary.filter(pl.col("analyte") == a)
        for g in groups:
            s = sub.filter(pl.col(group) == g).sort(x)
            if s.height == 0:
                continue
            col = GROUP_COLORS.get(g, "#777777")
            xs = s.get_column(x).to_list()
            fig.add_trace(go.Scatter(
                x=xs + xs[::-1], y=s.get_column(q3).to_list() + s.get_column(q1).to_list()[::-1],
                fill="toself", fillcolor=rgba(col, 0.18), line={"width": 0},
                hoverinfo="skip", showlegend=False, legendgroup=str(g), name=f"{g} IQR"),
                row=i, col=1)
            fig.add_trace(go.Scatter(
                x=xs, y=s.get_column(median).to_list(), mode="lines+markers+text",
                name=str(g), legendgroup=str(g), showlegend=i == 1,
                line={"color": col, "width": 2.5},
                # n patients per time point on the figure: a median of 1 is not a median of 5
                text=[f"{v}" for v in s.get_column(n).to_list()], textposition="top center",
                textfont={"size": 9, "color": col},
                marker={"size": 4}, customdata=s.select(q1, q3, n).rows(),
                hovertemplate=f"{g} · day %{{x}} · {a} median %{{y}} (IQR %{{customdata[0]}}-"
                              "%{customdata[1]}, n=%{customdata[2]})<extra></extra>"),
                row=i, col=1)
    _decorate_counts(fig, analytes, log_y=log_y, ref_lines=ref_lines, labels=labels,
                     transfusions=transfusions, marks=marks, shade=shade, title=title)
    return label_decades(fig)
