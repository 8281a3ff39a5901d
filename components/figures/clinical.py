"""Figures of the clinical course: swimmer plot, blood counts over time (per patient or group
median with IQR ribbon), response heatmap, Kaplan-Meier curves with numbers at risk, ORR bars.

Factories take frames first and column names as keywords and return a plotly Figure with the
"cart" template. The standard-figure builders at the end make the deck slides headless.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from analysis.vocab import RESPONDER, RESPONSE_CATEGORIES
from components.figures.many import FADED, FOCUS, color_groups, gapped, is_many
from components.theme import (
    GRADE_COLORS,
    GROUP_COLORS,
    OKABE_ITO,
    RESPONSE_COLORS,
    label_decades,
    patient_colors,
)

__all__ = ["swimmer_plot", "post_hsct_split", "POST_HSCT_NAME", "counts_by_patient", "counts_by_group", "response_heatmap",
           "km_plot", "orr_plot", "EVENT_STYLE"]

# kind -> (marker symbol, colour, size); CRS/ICANS kinds carry their grade ("CRS G2").
EVENT_STYLE: dict[str, tuple[str, str, int]] = {
    "CR": ("square", RESPONSE_COLORS["CR"], 11),
    "PR": ("square", RESPONSE_COLORS["PR"], 11),
    "NR": ("square", RESPONSE_COLORS["NR"], 11),
    "NE": ("square-open", "#777777", 10),
    "CRS": ("diamond", "#CC79A7", 10),
    "ICANS": ("triangle-up", "#8E44AD", 10),
    "RBC transfusion": ("line-ns-open", "#B2182B", 8),
    "PLT transfusion": ("line-ns-open", "#E69F00", 8),
    "HSCT": ("star", "#000000", 13),
    # not NR's vermilion: a progression marker on an NR lane must read as its own event
    "Progression": ("x", "#882255", 12),
    "Death": ("cross", "#000000", 12),
}
_RESP_RANK = {c: i for i, c in enumerate(RESPONSE_CATEGORIES)}   # best first
_RUG_ROWS = ("PLT", "RBC")


def _kind_family(kind: str) -> str:
    return kind.split(" G")[0] if kind.startswith(("CRS", "ICANS")) else kind


# ---- swimmer -------------------------------------------------------------------------------
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
                     shade: tuple[float | None, float | None] | None,
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
    if shade is not None and (shade[0] is not None or shade[1] is not None):
        fig.add_vrect(x0=shade[0] if shade[0] is not None else -30,
                      x1=shade[1] if shade[1] is not None else 1000,
                      fillcolor="#F0E442", opacity=0.25, line_width=0)
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
                      shade: tuple[float | None, float | None] | None = None,
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
                    shade: tuple[float | None, float | None] | None = None,
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
                fill="toself", fillcolor=_rgba(col, 0.18), line={"width": 0},
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


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# ---- responses -----------------------------------------------------------------------------
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


# ---- survival and ORR ----------------------------------------------------------------------
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
            fillcolor=_rgba(col, 0.15), line={"width": 0}, hoverinfo="skip",
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
