"""Figures of a two-group comparison: volcano, ranked table, z-scored heatmap of the top
features (patients x features, grouped by response), and one feature's course per patient.

Factories take the frames of `analysis.differential` (compare, patient_values, feature_course,
feature_windows) and return plotly figures in the "cart" template; nothing here computes a test.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from components.figures.many import gapped, is_many
from components.theme import GROUP_COLORS, OKABE_ITO, label_decades

__all__ = ["volcano", "ranked_table", "top_features", "zscore_heatmap",
           "feature_trajectory", "group_colors"]

_GREY = "#BBBBBB"


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def group_colors(group_a: str, group_b: str) -> dict[str, str]:
    """Response groups keep their theme colours; any other pair gets Okabe-Ito blue/vermillion."""
    return {group_a: GROUP_COLORS.get(group_a, OKABE_ITO[4]),
            group_b: GROUP_COLORS.get(group_b, OKABE_ITO[5])}


def _fdr_line(df: pl.DataFrame, *, p: str, q: str, fdr: float) -> float:
    """The p-value where the analysis's q crosses `fdr`: the largest p with q <= fdr; when
    nothing passes, the first Benjamini-Hochberg step fdr / m of the family of m tested
    features (what the smallest p would have to beat). The q-values are the analysis's own
    (analysis.stats.bh, over the family it states), so the line and the coloured points agree."""
    qv = pl.col(q).cast(pl.Float64)
    family = df.filter(qv.is_not_null() & qv.is_not_nan() & pl.col(p).is_not_null())
    passing = family.filter(qv <= fdr)
    if passing.height:
        return float(passing.get_column(p).max())
    return fdr / family.height if family.height else fdr


def volcano(df: pl.DataFrame, *, x: str = "effect", p: str = "p_value", q: str = "q_value",
            label: str = "feature", fdr: float = 0.1, top: int = 10,
            group_a: str | None = None, group_b: str | None = None,
            x_title: str | None = None, title: str | None = None) -> go.Figure:
    """Effect (x) against -log10 p (y); points with q <= fdr coloured by the group they are
    higher in, the FDR line where q crosses `fdr`, labels on the `top` smallest p-values.
    Each point carries its feature name in customdata (for click-to-select)."""
    tested = df.filter(pl.col(p).is_not_null() & pl.col(x).is_not_null())
    ga = group_a or (df.get_column("group_a")[0] if "group_a" in df.columns and df.height
                     else "group A")
    gb = group_b or (df.get_column("group_b")[0] if "group_b" in df.columns and df.height
                     else "group B")
    colors = group_colors(ga, gb)
    tested = tested.with_columns((-pl.col(p).clip(1e-300, 1).log10()).alias("_y"))
    sig = pl.col(q).is_not_null() & (pl.col(q) <= fdr)
    fig = go.Figure()
    parts = [(f"higher in {ga} (q <= {fdr:g})", sig & (pl.col(x) > 0), colors[ga]),
             (f"higher in {gb} (q <= {fdr:g})", sig & (pl.col(x) < 0), colors[gb]),
             (f"q > {fdr:g}", ~sig | (pl.col(x) == 0), _GREY)]
    for name, cond, color in parts:
        sub = tested.filter(cond)
        fig.add_trace(go.Scatter(
            x=sub.get_column(x).to_list(), y=sub.get_column("_y").to_list(), mode="markers",
            name=name, marker={"color": color, "size": 9, "line": {"width": 0.5,
                                                                   "color": "white"}},
            customdata=sub.get_column(label).to_list(),
            text=[f"{f}<br>p = {pv:.3g}, q = {'' if qv is None else f'{qv:.3g}'}"
                  for f, pv, qv in sub.select(label, p, q).iter_rows()],
            hovertemplate="%{text}<br>" + (x_title or x) + " = %{x:.3g}<extra></extra>"))
    line_p = _fdr_line(tested, p=p, q=q, fdr=fdr)
    fig.add_hline(y=-math.log10(line_p), line={"dash": "dash", "color": "#555", "width": 1},
                  annotation_text=f"FDR {fdr:.0%}", annotation_position="top left")
    fig.add_vline(x=0, line={"color": "#999", "width": 1})
    for k, row in enumerate(tested.sort(p).head(top).iter_rows(named=True)):
        fig.add_annotation(x=row[x], y=row["_y"], text=row[label], showarrow=True,
                           arrowhead=0, arrowwidth=0.8, ax=0, ay=-16 - 14 * (k % 3),
                           font={"size": 11})
    fig.update_layout(template="cart", title=title or "Volcano", hovermode="closest",
                      xaxis_title=x_title or x, yaxis_title="-log10 p",
                      legend={"orientation": "h", "y": -0.18}, height=480)
    return fig


def ranked_table(df: pl.DataFrame, *, top: int | None = None, digits: int = 3) -> pl.DataFrame:
    """The comparison as people read it: rank, feature, n, effect, p, q, group summaries,
    log2 fold change, test and reasons; numbers rounded to `digits` significant figures."""
    cols = ["feature", "n_group_a", "n_group_b", "effect", "effect_measure", "p_value",
            "q_value", "median_a", "median_b", "log2fc", "test", "reason", "note", "days",
            "values_a", "values_b"]
    out = df.select([c for c in cols if c in df.columns])
    out = out.with_columns(pl.col(c).round_sig_figs(digits) for c in
                           ("effect", "p_value", "q_value", "median_a", "median_b", "log2fc")
                           if c in out.columns)
    out = out.with_row_index("rank", offset=1)
    return out.head(top) if top else out


def top_features(df: pl.DataFrame, *, n: int = 20, p: str = "p_value",
                 effect: str = "effect") -> list[str]:
    """The n features with the smallest p (ties: the larger |effect|); untested rows last."""
    ranked = df.with_columns(pl.col(effect).abs().alias("_abs")).sort(
        [p, "_abs"], descending=[False, True], nulls_last=True)
    return ranked.get_column("feature").head(n).to_list()


def zscore_heatmap(values: pl.DataFrame, *, features: list[str] | None = None,
                   subject: str = "subject_id", feature: str = "feature",
                   value: str = "value", group: str = "group", day: str = "day",
                   timepoint: str = "timepoint", group_order: list[str] | None = None,
                   title: str | None = None) -> go.Figure:
    """Patients (rows, grouped) x features (columns), each feature z-scored across patients.
    A strip on the left shows the group; row labels state the day(s) each patient's values
    come from (the timepoint annotation)."""
    df = values if features is None else values.filter(pl.col(feature).is_in(features))
    feats = features or df.get_column(feature).unique(maintain_order=True).to_list()
    feats = [f for f in feats if f in set(df.get_column(feature).to_list())]
    groups = group_order or df.get_column(group).unique(maintain_order=True).to_list()
    order = (df.select(subject, group).unique()
             .with_columns(pl.col(group).replace_strict(
                 {g: i for i, g in enumerate(groups)}, default=len(groups)).alias("_g"))
             .sort("_g", subject))
    subjects = order.get_column(subject).to_list()
    group_of = dict(order.select(subject, group).iter_rows())
    z = np.full((len(subjects), len(feats)), np.nan)
    raw = np.full((len(subjects), len(feats)), np.nan)
    hover = [[""] * len(feats) for _ in subjects]
    when: dict[str, set[str]] = {s: set() for s in subjects}
    si = {s: i for i, s in enumerate(subjects)}
    fi = {f: j for j, f in enumerate(feats)}
    has_tp = timepoint in df.columns
    for r in df.iter_rows(named=True):
        if r[feature] not in fi or r[subject] not in si:
            continue
        i, j = si[r[subject]], fi[r[feature]]
        raw[i, j] = r[value]
        tp = r.get(timepoint) if has_tp else None
        stamp = tp or f"d{r[day]}"
        when[r[subject]].add(stamp)
        hover[i][j] = f"{r[subject]} · {r[feature]}<br>value {r[value]:.3g} · {stamp}"
    with np.errstate(all="ignore"):
        mu, sd = np.nanmean(raw, axis=0), np.nanstd(raw, axis=0, ddof=1)
        z = np.where(sd > 0, (raw - mu) / sd, 0.0)
        z = np.where(np.isfinite(raw), z, np.nan)
    labels = [f"{s} ({', '.join(sorted(when[s])) or 'no sample'})" for s in subjects]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.04, 0.96], shared_yaxes=True,
                        horizontal_spacing=0.01)
    palette = group_colors(*(groups + ["", ""])[:2]) if len(groups) >= 2 else {}
    gidx = {g: i for i, g in enumerate(groups)}
    strip = [[gidx.get(group_of[s], 0)] for s in subjects]
    n_g = max(len(groups), 1)
    scale = []
    for i, g in enumerate(groups):
        c = palette.get(g, OKABE_ITO[i % len(OKABE_ITO)])
        scale += [[i / n_g, c], [(i + 1) / n_g, c]]
    fig.add_trace(go.Heatmap(z=strip, x=["group"], y=labels, showscale=False,
                             colorscale=scale or [[0, _GREY], [1, _GREY]], zmin=-0.5,
                             zmax=n_g - 0.5, text=[[group_of[s]] for s in subjects],
                             hovertemplate="%{y}: %{text}<extra></extra>", name="group"),
                  row=1, col=1)
    fig.add_trace(go.Heatmap(z=z.tolist(), x=feats, y=labels, colorscale="RdBu_r", zmid=0,
                             zmin=-2.5, zmax=2.5, text=hover,
                             hovertemplate="%{text}<br>z = %{z:.2f}<extra></extra>",
                             colorbar={"title": {"text": "z"}}, name="z-score"),
                  row=1, col=2)
    fig.update_yaxes(autorange="reversed", type="category", automargin=True)
    fig.update_xaxes(tickangle=-45, automargin=True, row=1, col=2)
    fig.update_layout(template="cart", title=title or "Top features (z-score per feature)",
                      height=max(320, 26 * len(subjects) + 200), margin={"l": 150})
    return fig


def feature_trajectory(df: pl.DataFrame, *, x: str = "day", y: str = "value",
                       subject: str = "subject_id", group: str = "group",
                       tests: pl.DataFrame | None = None, colors: dict[str, str] | None = None,
                       log_y: bool = False, y_title: str | None = None,
                       title: str | None = None) -> go.Figure:
    """One line per patient across all timepoints, coloured by group; with `tests` (the
    frame of `feature_windows`) each window is shaded and labelled with n, effect and p."""
    groups = df.get_column(group).unique(maintain_order=True).to_list() if df.height else []
    palette = colors or (group_colors(*groups[:2]) if len(groups) >= 2 else
                         {g: GROUP_COLORS.get(g, OKABE_ITO[4]) for g in groups})
    fig = go.Figure()
    shown: set[str] = set()
    if df.height and is_many(df.get_column(subject).unique().to_list()):
        # one trace per group: the patients' lines with a gap between them
        for g in groups:
            sub = gapped(df.filter(pl.col(group) == g), key=subject, order=x)
            fig.add_trace(go.Scatter(
                x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(),
                mode="lines+markers", name=g, legendgroup=g,
                line={"color": palette.get(g, _GREY), "width": 2}, marker={"size": 7},
                text=sub.get_column(subject).to_list(),
                hovertemplate="%{text} (" + str(g) + ")<br>day %{x}: %{y:.3g}<extra></extra>"))
    for (sid,), sub in ([] if len(fig.data) else
                        df.sort(subject, x).group_by([subject], maintain_order=True)):
        g = sub.get_column(group)[0]
        fig.add_trace(go.Scatter(
            x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(),
            mode="lines+markers", name=g, legendgroup=g, showlegend=g not in shown,
            line={"color": palette.get(g, _GREY), "width": 2}, marker={"size": 7},
            text=[sid] * sub.height,
            hovertemplate="%{text} (" + g + ")<br>day %{x}: %{y:.3g}<extra></extra>"))
        shown.add(g)
    if tests is not None and tests.height:
        for k, r in enumerate(tests.iter_rows(named=True)):
            lo = r["lo"] if r["lo"] is not None else (df.get_column(x).min() if df.height
                                                     else r["centre"])
            hi = r["hi"] if r["hi"] is not None else r["centre"]
            fig.add_vrect(x0=lo, x1=hi, fillcolor="#888", opacity=0.08, line_width=0)
            pv = r["p_value"]
            text = f"<b>{r['window']}</b> " + (f"p={pv:.2g}" if pv is not None else "no test")
            # staggered rows: early windows sit close together on a day axis
            fig.add_annotation(x=(lo + hi) / 2, y=1.0 + 0.07 * (k % 3), yref="paper",
                               yanchor="bottom", text=text, showarrow=False,
                               font={"size": 10},
                               hovertext=f"n {r['n_group_a']} vs {r['n_group_b']}, "
                                         f"effect {_fmt(r['effect'])}")
    fig.update_layout(template="cart", title=title or "Feature over time",
                      xaxis_title="Study day (0 = CAR-T infusion)", yaxis_title=y_title or y,
                      margin={"t": 110}, height=460, hovermode="closest")
    if log_y:
        fig.update_yaxes(type="log")
    return label_decades(fig)
