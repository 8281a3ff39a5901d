"""Figures of CAR-T cellular kinetics: expansion curves (log10), CD7-specific readouts, qPCR vs
flow concordance and exposure-response strips.

Values below the LLOQ arrive at LLOQ/2 (analysis.kinetics) and are drawn as open markers,
ringed by one "below LLOQ" trace; the LLOQ itself is a dotted line (DESIGN.md section 3).
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from analysis.vocab import DayWindow
from components.figures.clinical import POST_HSCT_NAME, post_hsct_split
from components.figures.many import FADED, FOCUS, color_groups, gapped, is_many
from components.theme import PATIENT_PALETTE, column_label, label_decades

__all__ = ["kinetics_curve", "readout_panels", "concordance_scatter", "exposure_strip",
           "SUBTITLE_WRAP"]

SUBTITLE_WRAP = 48     # characters a subtitle line holds in a half-width column at 1400 px

_BLQ_NAME = "below LLOQ (drawn at LLOQ/2)"


def _color_map(values: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    colors = dict(colors or {})
    for i, v in enumerate(v for v in values if v not in colors):
        colors[v] = PATIENT_PALETTE[i % len(PATIENT_PALETTE)]
    return colors


def _fmt(v: float) -> str:
    return f"{v:,.3g}"


def kinetics_curve(df: pl.DataFrame, *, x: str = "day", y: str = "plot_value",
                   color: str = "subject_id", blq: str | None = "blq",
                   lloq: str | None = "lloq", colors: Mapping[str, str] | None = None,
                   log_y: bool = True, title: str | None = None, y_title: str | None = None,
                   highlight: Iterable[str] = (), shade: DayWindow | None = None,
                   hover: str | None = "value", n: str | None = None
                   ) -> go.Figure:
    """One line per `color` value against `x` (log10 y by default). BLQ points (`blq` true) get
    open markers and one extra ringed trace; each distinct `lloq` is a dotted line.
    `highlight` fades every other line; `shade` is a day window drawn as a band (an open side ends at the data)."""
    df = df.filter(pl.col(y).is_not_null() & (pl.col(y) > 0 if log_y else pl.lit(True)))
    keys = df.get_column(color).unique(maintain_order=True).to_list() if df.height else []
    cmap = _color_map(sorted(keys), colors)
    focus = set(highlight)
    fig = go.Figure()
    if is_many(keys):
        parts = [(c, state == FADED, state == FOCUS,
                  gapped(df.filter(pl.col(color).is_in(ks)), key=color, order=x), None)
                 for c, state, ks in color_groups(sorted(keys), cmap, focus)]
    else:
        parts = [(cmap[k], bool(focus) and k not in focus, k in focus,
                  df.filter(pl.col(color) == k).sort(x), str(k)) for k in sorted(keys)]
    traces = []
    post_shown = False
    for c, _faded, _bold, sub, name in list(parts):
        if name is None or "post_hsct" not in sub.columns:
            continue
        pre, after = post_hsct_split(sub, x=x)
        if after.height:
            traces.append(go.Scatter(
                x=after.get_column(x).to_list(), y=after.get_column(y).to_list(),
                mode="lines+markers", name=POST_HSCT_NAME, legendgroup="post_hsct",
                showlegend=not post_shown, opacity=0.45,
                line={"color": c, "width": 1.4, "dash": "dash"},
                marker={"size": 6, "symbol": "x-thin-open", "color": c,
                        "line": {"width": 1.2, "color": c}},
                hovertemplate=f"{name} · day %{{x}}: %{{y:,.3g}} (after HSCT)<extra></extra>"))
            post_shown = True
    parts = [(c, faded, bold, sub.filter(~pl.col("post_hsct").fill_null(False))
              if "post_hsct" in sub.columns else sub, name)
             for c, faded, bold, sub, name in parts]
    for c, faded, bold, sub, name in parts:
        is_blq = sub.get_column(blq).fill_null(False).to_list() if blq else [False] * sub.height
        raw = sub.get_column(hover).to_list() if hover and hover in sub.columns else \
            sub.get_column(y).to_list()
        text = ["" if d is None else f"{k} · day {d}: " + ("below LLOQ" if b else _fmt(v))
                if v is not None else f"{k} · day {d}"
                for k, d, v, b in zip(sub.get_column(color), sub.get_column(x), raw, is_blq,
                                      strict=True)]
        counts = {}
        if n and n in sub.columns:
            # n per time point on the figure (group curves): a mean of 1 is not a mean of 5
            ns = sub.get_column(n).to_list()
            text = [f"{t} (n = {k})" for t, k in zip(text, ns, strict=True)]
            counts = {"text": text, "texttemplate": [f"{k}" for k in ns],
                      "textposition": "top center", "textfont": {"size": 9, "color": c}}
        legend = {"name": name, "legendgroup": name} if name else \
            {"name": f"{sub.get_column(color).n_unique()} patients", "showlegend": False}
        traces.append(go.Scatter(
            x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(),
            mode="lines+markers+text" if counts else "lines+markers",
            **legend, **({"text": text} | counts), hoverinfo="text",
            opacity=0.25 if faded else 1.0, line={"color": c, "width": 3.5 if bold else 1.8},
            marker={"color": c, "size": 7,
                    "symbol": ["circle-open" if b else "circle" for b in is_blq],
                    "line": {"width": 1.5, "color": c}}))
    fig.add_traces(traces)
    if blq and df.height and df.get_column(blq).fill_null(False).any():
        b = df.filter(pl.col(blq).fill_null(False))
        fig.add_trace(go.Scatter(
            x=b.get_column(x).to_list(), y=b.get_column(y).to_list(), mode="markers",
            name=_BLQ_NAME, hoverinfo="skip",
            marker={"symbol": "circle-open", "size": 12, "color": "#555555",
                    "line": {"width": 1.2}}))
    if lloq and lloq in df.columns:
        for level in sorted(set(df.get_column(lloq).drop_nulls().to_list())):
            fig.add_hline(y=level, line={"dash": "dot", "color": "#666666", "width": 1.2})
            # placed by hand: add_hline's annotation takes a log axis' y as an exponent
            fig.add_annotation(x=1, xref="x domain", xanchor="right", yanchor="bottom",
                               y=math.log10(level) if log_y and level > 0 else level,
                               text=f"LLOQ {_fmt(level)}", showarrow=False,
                               font={"size": 11, "color": "#555555"})
    if "hsct_day" in df.columns:
        hs = (df.filter(pl.col("hsct_day").is_not_null()).group_by("hsct_day")
              .agg(pl.col(color).unique().sort()).sort("hsct_day"))
        for d, ids in hs.iter_rows():
            fig.add_vline(x=d, line={"color": "#000000", "width": 1.2, "dash": "dashdot"})
            fig.add_annotation(x=d, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                               text="HSCT " + ", ".join(map(str, ids)), font={"size": 10})
    if shade is not None and not shade.is_everything:
        xs = df.get_column(x) if df.height else pl.Series([0, 1])
        x0, x1 = shade.within(xs.min(), xs.max())
        fig.add_vrect(x0=x0, x1=x1, fillcolor="#0072B2", opacity=0.08, line_width=0,
                      layer="below", annotation_text="focus", annotation_position="top left")
    fig.update_layout(template="cart", title=title, hovermode="closest",
                      legend={"title": {"text": column_label(color)}})
    fig.update_xaxes(title_text="Study day (0 = infusion)")
    fig.update_yaxes(title_text=y_title or y, type="log" if log_y else "linear",
                     exponentformat="power" if log_y else None)
    return label_decades(fig)


def readout_panels(df: pl.DataFrame, *, x: str = "day", y: str = "value",
                   color: str = "subject_id", facet: str = "assay",
                   facet_order: Sequence[str] | None = None,
                   titles: Mapping[str, str] | None = None,
                   log_facets: Iterable[str] = (), colors: Mapping[str, str] | None = None,
                   x_range: tuple[float, float] | None = None, title: str | None = None,
                   highlight: Iterable[str] = ()) -> go.Figure:
    """Stacked panels (one per `facet` value) sharing the time axis; a line per `color`.
    Panels in `log_facets` get a log10 y axis."""
    facets = list(facet_order or (df.get_column(facet).unique(maintain_order=True).to_list()
                                  if df.height else []))
    facets = [f for f in facets if df.height and f in set(df.get_column(facet).to_list())]
    n = max(len(facets), 1)
    titles = dict(titles or {})
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[titles.get(f, f) for f in facets] or None)
    keys = sorted(df.get_column(color).unique().to_list()) if df.height else []
    cmap = _color_map(keys, colors)
    logs, focus = set(log_facets), set(highlight)
    traces, rows = [], []
    for r, f in enumerate(facets, start=1):
        sub_f = df.filter(pl.col(facet) == f)
        if is_many(keys):
            for c, state, ks in color_groups(keys, cmap, focus):
                sub = gapped(sub_f.filter(pl.col(color).is_in(ks)), key=color, order=x)
                traces.append(go.Scatter(
                    x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(),
                    mode="lines+markers", name=f"{len(ks)} patients", showlegend=False,
                    opacity=0.25 if state == FADED else 1.0,
                    line={"color": c, "width": 3.5 if state == FOCUS else 1.8},
                    marker={"color": c, "size": 6}, customdata=sub.get_column(color).to_list(),
                    hovertemplate=f"%{{customdata}} · day %{{x}}: %{{y:,.3g}}"
                                  f"<extra>{titles.get(f, f)}</extra>"))
                rows.append(r)
        for k in [] if is_many(keys) else keys:
            sub = sub_f.filter(pl.col(color) == k).sort(x)
            if sub.height == 0:
                continue
            traces.append(go.Scatter(
                x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(),
                mode="lines+markers", name=str(k), legendgroup=str(k), showlegend=r == 1,
                opacity=0.25 if focus and k not in focus else 1.0,
                line={"color": cmap[k], "width": 3.5 if k in focus else 1.8},
                marker={"color": cmap[k], "size": 6},
                hovertemplate=f"{k} · day %{{x}}: %{{y:,.3g}}<extra>{titles.get(f, f)}</extra>"))
            rows.append(r)
    if traces:
        fig.add_traces(traces, rows=rows, cols=[1] * len(rows))
    for r, f in enumerate(facets, start=1):
        label = titles.get(f, f)
        unit = label[label.rfind("(") + 1:-1] if label.endswith(")") else label
        fig.update_yaxes(type="log" if f in logs else "linear", row=r, col=1, title_text=unit)
    fig.update_xaxes(title_text="Study day (0 = infusion)", row=n, col=1)
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    fig.update_layout(template="cart", title=title, height=max(320, 260 * n))
    return label_decades(fig)


def concordance_scatter(df: pl.DataFrame, *, x: str = "x", y: str = "y",
                        color: str = "subject_id", x_title: str | None = None,
                        y_title: str | None = None, colors: Mapping[str, str] | None = None,
                        title: str | None = None) -> go.Figure:
    """Paired samples on log10-log10 axes, one trace per `color`; a sample BLQ on either assay
    (x_blq / y_blq columns) is an open marker."""
    keys = sorted(df.get_column(color).unique().to_list()) if df.height else []
    cmap = _color_map(keys, colors)
    fig = go.Figure()
    if is_many(keys):
        parts = [(c, df.filter(pl.col(color).is_in(ks)), None)
                 for c, _state, ks in color_groups(keys, cmap)]
    else:
        parts = [(cmap[k], df.filter(pl.col(color) == k), str(k)) for k in keys]
    traces = []
    for c, sub, name in parts:
        blq = (sub.get_column("x_blq") | sub.get_column("y_blq")).to_list() \
            if {"x_blq", "y_blq"} <= set(sub.columns) else [False] * sub.height
        legend = {"name": name} if name else \
            {"name": f"{sub.get_column(color).n_unique()} patients", "showlegend": False}
        traces.append(go.Scatter(
            x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(), mode="markers",
            **legend, marker={"color": c, "size": 9, "line": {"width": 1.5, "color": c},
                              "symbol": ["circle-open" if b else "circle" for b in blq]},
            text=[f"{k} · day {d}" for k, d in zip(sub.get_column(color), sub.get_column("day"),
                                                   strict=True)]
            if "day" in sub.columns else None,
            hovertemplate="%{text}<br>x %{x:,.3g} · y %{y:,.3g}<extra></extra>"))
    fig.add_traces(traces)
    fig.update_layout(template="cart", title=title)
    fig.update_xaxes(type="log", title_text=x_title or x, exponentformat="power")
    fig.update_yaxes(type="log", title_text=y_title or y, exponentformat="power")
    return label_decades(fig)


def _wrapped(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` characters, broken after a colon first ("A vs B:" /
    "U = 6, p = 0.2"), never inside "name = value"."""
    if len(text) <= width:
        return [text]
    out: list[str] = []
    for part in re.split(r"(?<=:) ", text):
        out += textwrap.wrap(part.replace(" = ", "\u00a0=\u00a0"), width,
                             break_on_hyphens=False)
    return [line.replace("\u00a0", " ") for line in out]


def exposure_strip(df: pl.DataFrame, *, x: str = "response_group", y: str = "cmax",
                   color: str = "subject_id", colors: Mapping[str, str] | None = None,
                   category_order: Sequence[str] | None = None, log_y: bool = True,
                   title: str | None = None, x_title: str | None = None,
                   y_title: str | None = None, subtitle: str | None = None,
                   wrap: int = SUBTITLE_WRAP) -> go.Figure:
    """Per-patient points of `y` by category `x` (one trace per patient, small fixed jitter).
    `subtitle` (e.g. the test and its p) goes under the title in smaller type, wrapped at
    `wrap` characters a line, so that the figure keeps its text in a half-width column."""
    df = df.filter(pl.col(y).is_not_null() & pl.col(x).is_not_null())
    cats = list(category_order) if category_order else \
        sorted({str(v) for v in df.get_column(x).to_list()}) if df.height else []
    cats = [c for c in cats if df.height and c in {str(v) for v in df.get_column(x).to_list()}]
    keys = sorted(df.get_column(color).unique().to_list()) if df.height else []
    cmap = _color_map(keys, colors)
    pos = {c: i for i, c in enumerate(cats)}
    offsets = np.linspace(-0.15, 0.15, max(len(keys), 1))
    fig = go.Figure()
    traces = []
    if is_many(keys):
        index = {k: j for j, k in enumerate(keys)}
        for c, _state, ks in color_groups(keys, cmap):
            sub = df.filter(pl.col(color).is_in(ks))
            ids = sub.get_column(color).to_list()
            xs = [pos[str(v)] + offsets[index[k]] for v, k in zip(sub.get_column(x).to_list(),
                                                                   ids, strict=True)]
            traces.append(go.Scatter(
                x=xs, y=sub.get_column(y).to_list(), mode="markers",
                name=f"{len(ks)} patients", showlegend=False, customdata=ids,
                marker={"color": c, "size": 11, "line": {"width": 1, "color": "#333"}},
                hovertemplate="%{customdata}: %{y:,.3g}<extra></extra>"))
    for j, k in enumerate([] if is_many(keys) else keys):
        sub = df.filter(pl.col(color) == k)
        xs = [pos[str(v)] + offsets[j] for v in sub.get_column(x).to_list()]
        traces.append(go.Scatter(
            x=xs, y=sub.get_column(y).to_list(), mode="markers", name=str(k),
            marker={"color": cmap[k], "size": 11, "line": {"width": 1, "color": "#333"}},
            hovertemplate=f"{k}: %{{y:,.3g}}<extra></extra>"))
    fig.add_traces(traces)
    lines = _wrapped(subtitle, wrap) if subtitle else []
    # room for two subtitle lines at least: strips side by side keep their plots level
    fig.update_layout(template="cart", title={"text": title, "x": 0, "xanchor": "left",
                                              "subtitle": {"text": "<br>".join(lines)}}
                      if lines else title,
                      **({"margin": {"t": 60 + 16 * max(2, len(lines))}} if lines else {}))
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(cats))), ticktext=cats,
                     range=[-0.6, len(cats) - 0.4], title_text=x_title or x)
    fig.update_yaxes(type="log" if log_y else "linear", title_text=y_title or y)
    return label_decades(fig)
