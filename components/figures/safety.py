"""Figures of toxicity: cytokines against day with CRS/ICANS episodes shaded behind the curves
(ASTCT grade as colour, theme.GRADE_COLORS), peak vs CRS grade, CRS/ICANS incidence by grade,
adverse events by worst grade, and the ASTCT grade derived from vitals per day.

CRS episodes are shaded over the full panel height; ICANS episodes as a band along the top of
the panel, so overlapping episodes stay readable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from components.figures.many import color_groups, is_many
from components.figures.marks import add_day_marks
from components.theme import GRADE_COLORS, PATIENT_PALETTE, label_decades

__all__ = ["cytokine_panels", "peak_vs_grade", "grade_incidence_bars", "adverse_event_bars",
           "astct_heatmap"]

_ICANS_BAND = (0.86, 1.0)
_KINDS = ("CRS", "ICANS")
# tick mantissas tried in turn for a log panel spanning under one decade: the coarsest set that
# gives three labelled ticks inside the data
_MANTISSAS = ((1, 2, 5), (1, 2, 3, 5, 7), (1, 2, 3, 4, 5, 6, 7, 8, 9),
              (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9))


def _grade_rank(kind: str, grade: int) -> int:
    """Legend rank of a shaded episode: after the patients (plotly's default rank is 1000),
    CRS before ICANS, by grade."""
    k = _KINDS.index(kind) if kind in _KINDS else len(_KINDS)
    return 2000 + 10 * k + grade


def within_decade_ticks(lo: float, hi: float) -> list[float]:
    """Labelled ticks for a log axis whose data (`lo` to `hi`, both > 0) span under one decade:
    the coarsest of 1-2-5, 1-2-3-5-7, every integer mantissa, then halves, that puts at least
    three ticks within the data (a little margin kept, as plotly pads its autorange)."""
    a, b = lo / 1.05, hi * 1.05
    ticks: list[float] = []
    for mantissas in _MANTISSAS:
        ticks = [float(f"{m * 10.0 ** e:.6g}")
                 for e in range(math.floor(math.log10(a)) - 1, math.floor(math.log10(b)) + 1)
                 for m in mantissas if a <= m * 10.0 ** e <= b]
        if len(ticks) >= 3:
            break
    return ticks


def _readable_log_ticks(fig: go.Figure, spans: Mapping[str, tuple[float, float]]) -> None:
    """A log panel whose data span under one decade is labelled at a few values inside its
    data, without minor ticks (label_decades would label only its one power of ten, or a
    power of ten outside the data, among 2-9 minor ticks)."""
    for name, (lo, hi) in spans.items():
        if not 0 < lo <= hi:
            continue
        if hi / lo >= 10:   # decades, as label_decades labels them (a shared scale's own)
            fig.layout[name].update(tickmode=None, tickvals=None, ticktext=None, dtick=1,
                                    exponentformat="power", showexponent="all")
            continue
        ticks = within_decade_ticks(lo, hi)
        fig.layout[name].update(tickmode="array", tickvals=ticks,
                                ticktext=[f"{v:g}" for v in ticks], dtick=None,
                                minor={"ticks": "", "showgrid": False})


def _color_map(keys: Sequence[str], colors: Mapping[str, str] | None) -> dict[str, str]:
    out = dict(colors or {})
    for i, k in enumerate(k for k in keys if k not in out):
        out[k] = PATIENT_PALETTE[i % len(PATIENT_PALETTE)]
    return out


def _shade(fig: go.Figure, episodes: pl.DataFrame, *, row: int | None, col: int | None,
           seen: set) -> None:
    for ep in episodes.iter_rows(named=True):
        grade = int(ep["grade"]) if ep["grade"] is not None else 1
        kind = ep["kind"]
        y0, y1 = (0.0, 1.0) if kind == "CRS" else _ICANS_BAND
        name = f"{kind} grade {grade}"
        kw = {"row": row, "col": col} if row is not None else {}
        # ranked by grade: the legend reads CRS 1, 2, 3, ICANS 1, ... whatever came first
        fig.add_vrect(x0=ep["start"] - 0.5, x1=ep["end"] + 0.5, y0=y0, y1=y1,
                      fillcolor=GRADE_COLORS.get(grade, "#999999"),
                      opacity=0.45 if kind == "CRS" else 0.75, layer="below",
                      line={"width": 0 if kind == "CRS" else 1, "color": "#444444",
                            "dash": "dot"},
                      name=name, legendgroup=name, showlegend=name not in seen,
                      legendrank=_grade_rank(kind, grade), **kw)
        seen.add(name)


def cytokine_panels(df: pl.DataFrame, episodes: pl.DataFrame | None = None, *,
                    x: str = "day", y: str = "value", color: str = "subject_id",
                    facet: str = "analyte", facet_order: Sequence[str] | None = None,
                    titles: Mapping[str, str] | None = None,
                    colors: Mapping[str, str] | None = None, log_y: bool = True,
                    cols: int = 4, title: str | None = None,
                    x_range: tuple[float, float] | None = None,
                    marks: Sequence[tuple[float, float, str]] = (),
                    match_y: bool = False) -> go.Figure:
    """Small multiples (one per `facet` value) of `y` against `x`, a line per `color`, with the
    CRS/ICANS episodes (analysis.toxicity.toxicity_episodes) of the panel's patients shaded
    (legend by kind, then grade) and `marks` (HSCT: analysis.post_hsct.hsct_marks) as
    dash-dot lines across the panels. `match_y`: every panel on one y scale (one analyte, to
    compare patients). On a log axis a panel whose values span under one decade is labelled
    at a few values inside them (within_decade_ticks)."""
    present = set(df.get_column(facet).to_list()) if df.height else set()
    facets = [f for f in (facet_order or sorted(present)) if f in present]
    n = max(len(facets), 1)
    ncols = min(cols, n)
    nrows = math.ceil(n / ncols)
    titles = dict(titles or {})
    fig = make_subplots(rows=nrows, cols=ncols, shared_xaxes=True, vertical_spacing=0.12,
                        horizontal_spacing=0.06,
                        subplot_titles=[titles.get(f, str(f)) for f in facets] or None)
    keys = sorted(df.get_column(color).unique().to_list()) if df.height else []
    cmap = _color_map(keys, colors)
    seen: set = set()
    spans: dict[str, tuple[float, float]] = {}
    eps = episodes if episodes is not None else pl.DataFrame(
        schema={"subject_id": pl.String, "kind": pl.String, "start": pl.Int64,
                "end": pl.Int64, "grade": pl.Int64})
    for i, f in enumerate(facets):
        r, c = i // ncols + 1, i % ncols + 1
        sub_f = df.filter(pl.col(facet) == f)
        in_panel = set(sub_f.get_column("subject_id").to_list()) if "subject_id" in \
            sub_f.columns else set()
        if x_range is not None:
            panel_eps = eps.filter(pl.col("subject_id").is_in(list(in_panel))
                                   & (pl.col("end") >= x_range[0])
                                   & (pl.col("start") <= x_range[1]))
        else:
            panel_eps = eps.filter(pl.col("subject_id").is_in(list(in_panel)))
        for k in keys:
            sub = sub_f.filter(pl.col(color) == k).sort(x)
            if log_y:
                sub = sub.filter(pl.col(y) > 0)
            if sub.height == 0:
                continue
            values = sub.get_column(y).drop_nulls()
            if log_y and values.len():
                axis = "yaxis" if match_y else f"yaxis{'' if i == 0 else i + 1}"
                lo, hi = spans.get(axis, (math.inf, 0.0))
                spans[axis] = (min(lo, float(values.min())), max(hi, float(values.max())))
            fig.add_trace(go.Scatter(
                x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(),
                mode="lines+markers", name=str(k), legendgroup=str(k),
                showlegend=str(k) not in seen, line={"color": cmap[k], "width": 1.8},
                marker={"color": cmap[k], "size": 5},
                hovertemplate=f"{k} · day %{{x}}: %{{y:,.3g}}<extra>{f}</extra>"),
                row=r, col=c)
            seen.add(str(k))
        # after the traces: plotly leaves shapes out of subplots that are still empty
        _shade(fig, panel_eps, row=r, col=c, seen=seen)
        fig.update_yaxes(type="log" if log_y else "linear", row=r, col=c)
    if x_range is not None:
        fig.update_xaxes(range=list(x_range))
    fig.update_xaxes(title_text="Study day", row=nrows)
    add_day_marks(fig, marks, range_x=x_range)
    if match_y:
        fig.update_yaxes(matches="y")
    # room for the title above the panel titles (they collided at the default margin)
    fig.update_layout(template="cart", title=title, height=max(320, 250 * nrows) + 40,
                      margin={"t": 100 if title else 60})
    label_decades(fig)
    if match_y:     # the shared scale is that of every panel's values (ticks on each axis)
        spans = dict.fromkeys((a.plotly_name for a in fig.select_yaxes()), spans["yaxis"]) \
            if "yaxis" in spans else {}
    _readable_log_ticks(fig, spans)
    return fig


def peak_vs_grade(df: pl.DataFrame, *, x: str = "crs_max_grade", y: str = "peak_value",
                  facet: str = "analyte", color: str = "subject_id",
                  facet_order: Sequence[str] | None = None,
                  colors: Mapping[str, str] | None = None, log_y: bool = True, cols: int = 4,
                  title: str | None = None) -> go.Figure:
    """Per-patient peak (`y`) against CRS max grade (`x`), one panel per `facet` value."""
    df = df.filter(pl.col(x).is_not_null() & pl.col(y).is_not_null())
    present = set(df.get_column(facet).to_list()) if df.height else set()
    facets = [f for f in (facet_order or sorted(present)) if f in present]
    n = max(len(facets), 1)
    ncols = min(cols, n)
    nrows = math.ceil(n / ncols)
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=facets or None,
                        vertical_spacing=0.14, horizontal_spacing=0.06)
    keys = sorted(df.get_column(color).unique().to_list()) if df.height else []
    cmap = _color_map(keys, colors)
    traces, rows, cols_ = [], [], []
    for i, f in enumerate(facets):
        r, c = i // ncols + 1, i % ncols + 1
        sub_f = df.filter(pl.col(facet) == f)
        if is_many(keys):
            for color_, _state, ks in color_groups(keys, cmap):
                sub = sub_f.filter(pl.col(color).is_in(ks))
                traces.append(go.Scatter(
                    x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(),
                    mode="markers", name=f"{len(ks)} patients", showlegend=False,
                    customdata=sub.get_column(color).to_list(),
                    marker={"color": color_, "size": 10, "line": {"width": 1, "color": "#333"}},
                    hovertemplate=f"%{{customdata}}: grade %{{x}}, peak %{{y:,.3g}}"
                                  f"<extra>{f}</extra>"))
                rows.append(r)
                cols_.append(c)
        for k in [] if is_many(keys) else keys:
            sub = sub_f.filter(pl.col(color) == k)
            if sub.height == 0:
                continue
            traces.append(go.Scatter(
                x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(), mode="markers",
                name=str(k), legendgroup=str(k), showlegend=i == 0,
                marker={"color": cmap[k], "size": 10, "line": {"width": 1, "color": "#333"}},
                hovertemplate=f"{k}: grade %{{x}}, peak %{{y:,.3g}}<extra>{f}</extra>"))
            rows.append(r)
            cols_.append(c)
    if traces:
        fig.add_traces(traces, rows=rows, cols=cols_)
    for i, _f in enumerate(facets):
        r, c = i // ncols + 1, i % ncols + 1
        fig.update_yaxes(type="log" if log_y else "linear", row=r, col=c)
        fig.update_xaxes(dtick=1, range=[-0.5, 4.5], row=r, col=c)
    fig.update_xaxes(title_text="CRS max grade", row=nrows)
    fig.update_layout(template="cart", title=title, height=max(320, 250 * nrows))
    return label_decades(fig)


def grade_incidence_bars(df: pl.DataFrame, *, kind: str = "kind", grade: str = "grade",
                         n: str = "n", title: str | None = None) -> go.Figure:
    """Patients by max grade (1-5) per kind (CRS, ICANS), stacked; grade 0 rows are skipped."""
    rows = df.filter(pl.col(grade).is_in([str(g) for g in range(1, 6)])) if df.height else df
    kinds = rows.get_column(kind).unique(maintain_order=True).to_list() if rows.height else []
    fig = go.Figure()
    for g in range(1, 6):
        sub = rows.filter(pl.col(grade) == str(g)) if rows.height else rows
        if sub.height == 0 or sub.get_column(n).sum() == 0:
            continue
        fig.add_trace(go.Bar(x=sub.get_column(kind).to_list(), y=sub.get_column(n).to_list(),
                             name=f"grade {g}", marker={"color": GRADE_COLORS[g],
                                                        "line": {"color": "#444", "width": 1}},
                             hovertemplate=f"%{{x}} grade {g}: %{{y}} patient(s)<extra></extra>"))
    fig.update_layout(template="cart", barmode="stack", title=title)
    fig.update_xaxes(categoryorder="array", categoryarray=kinds)
    fig.update_yaxes(title_text="Patients", dtick=1)
    return fig


def adverse_event_bars(df: pl.DataFrame, *, term: str = "term", top: int = 15,
                       title: str | None = None) -> go.Figure:
    """Horizontal stacked bars: patients per term by worst grade (grade_1..grade_5 columns)."""
    d = df.head(top) if df.height else df
    terms = d.get_column(term).to_list() if d.height else []
    fig = go.Figure()
    for g in range(1, 6):
        col = f"grade_{g}"
        if col not in d.columns or d.height == 0 or d.get_column(col).sum() == 0:
            continue
        fig.add_trace(go.Bar(y=terms, x=d.get_column(col).to_list(), orientation="h",
                             name=f"grade {g}", marker={"color": GRADE_COLORS[g],
                                                        "line": {"color": "#444", "width": 1}},
                             hovertemplate=f"%{{y}} grade {g}: %{{x}} patient(s)"
                                           "<extra></extra>"))
    fig.update_layout(template="cart", barmode="stack", title=title,
                      height=max(300, 28 * len(terms) + 140))
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=terms,
                     automargin=True)
    fig.update_xaxes(title_text="Patients (worst grade)", dtick=1)
    return fig


def astct_heatmap(daily: pl.DataFrame, *, x: str = "day", y: str = "subject_id",
                  z: str = "derived_grade", recorded: str = "recorded_grade",
                  title: str | None = None) -> go.Figure:
    """Patients x days coloured by the ASTCT grade derived from vitals; cell text is the
    recorded grade on that day ("r2") when a `recorded` column is given."""
    days = sorted(daily.get_column(x).unique().to_list()) if daily.height else []
    subjects = sorted(daily.get_column(y).unique().to_list()) if daily.height else []
    zz = [[None] * len(days) for _ in subjects]
    tt = [[""] * len(days) for _ in subjects]
    di, si = {d: i for i, d in enumerate(days)}, {s: i for i, s in enumerate(subjects)}
    has_rec = recorded in daily.columns
    for r in daily.iter_rows(named=True):
        i, j = si[r[y]], di[r[x]]
        zz[i][j] = r[z]
        if has_rec and r[recorded]:
            tt[i][j] = f"r{r[recorded]}"
    scale = []
    for g in range(5):
        scale += [[g / 5, GRADE_COLORS[g]], [(g + 1) / 5, GRADE_COLORS[g]]]
    fig = go.Figure(go.Heatmap(
        z=zz, x=days, y=subjects, text=tt, texttemplate="%{text}", zmin=-0.5, zmax=4.5,
        colorscale=scale, xgap=1, ygap=1,
        colorbar={"title": {"text": "ASTCT grade<br>(vitals)"}, "tickvals": [0, 1, 2, 3, 4]},
        hovertemplate="%{y} · day %{x}: derived grade %{z}<extra>%{text}</extra>"))
    fig.update_layout(template="cart", title=title, height=max(260, 40 * len(subjects) + 140))
    fig.update_xaxes(title_text="Study day", showgrid=False)
    fig.update_yaxes(autorange="reversed", showgrid=False, type="category")
    return fig
