"""Figures of somatic clones and the T-cell repertoire: VAF lines per gene and patient, the
oncoprint grid at baseline and last follow-up, repertoire metrics over time, baseline top
clones as a stacked area, and the Morisita-Horn overlap heatmap.

Factories take the frames of `analysis.clones` and `analysis.repertoire`.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from components.figures.many import color_groups, gapped, is_many
from components.theme import GROUP_COLORS, PATIENT_PALETTE, patient_colors

__all__ = ["vaf_lines", "oncoprint", "repertoire_lines", "clone_area", "overlap_heatmap",
           "VAF_FLOOR", "car_histogram", "clone_alluvial", "clone_volcano", "rarefied_lines",
           "expansion_embedding", "stacked_share", "effect_dots", "CLASS_COLORS"]

VAF_FLOOR = 0.001   # where "not detected" is drawn on a log axis (0.1 %, panel-seq sensitivity)
_GREY = "#BBBBBB"
_DAY = "Study day (0 = CAR-T infusion)"


def vaf_lines(df: pl.DataFrame, *, x: str = "day", y: str = "vaf", gene: str = "gene",
              subject: str = "subject_id", detected: str = "detected",
              colors: dict[str, str] | None = None, log_y: bool = False, columns: int = 3,
              title: str | None = None) -> go.Figure:
    """One panel per gene, one line per patient (patient colours). Samples where the gene was
    not detected are open markers at 0 (linear) or at VAF_FLOOR (log)."""
    genes = sorted(df.get_column(gene).unique().to_list()) if df.height else []
    cols = max(1, min(columns, len(genes) or 1))
    rows = max(1, math.ceil(len(genes) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=genes or None, shared_xaxes=True,
                        vertical_spacing=0.12 if rows > 1 else 0.08, horizontal_spacing=0.06)
    palette = colors or patient_colors(df.get_column(subject).unique().to_list()
                                       if df.height else [])
    shown: set[str] = set()
    ids = sorted(df.get_column(subject).unique().to_list()) if df.height else []
    traces, at = [], []
    for k, g in enumerate(genes):
        r, c = k // cols + 1, k % cols + 1
        sub = df.filter(pl.col(gene) == g).sort(subject, x)
        if is_many(ids):
            cmap = {sid: palette.get(sid, _GREY) for sid in ids}
            for color, _state, ks in color_groups(ids, cmap):
                one = gapped(sub.filter(pl.col(subject).is_in(ks)), key=subject, order=x)
                if one.height == 0:
                    continue
                det = [bool(d) for d in (one.get_column(detected) if detected in one.columns
                                         else one.get_column(y) > 0).fill_null(True)]
                vals = [v if (d or not log_y) else VAF_FLOOR
                        for v, d in zip(one.get_column(y).to_list(), det, strict=True)]
                traces.append(go.Scatter(
                    x=one.get_column(x).to_list(), y=vals, mode="lines+markers",
                    name=f"{len(ks)} patients", showlegend=False, line={"color": color,
                                                                       "width": 2},
                    marker={"size": 7, "symbol": ["circle" if d else "circle-open"
                                                  for d in det]},
                    customdata=[[sid, g, "detected" if d else "not detected"]
                                for sid, d in zip(one.get_column(subject), det, strict=True)],
                    hovertemplate="%{customdata[0]} · %{customdata[1]}<br>day %{x}: VAF "
                    "%{y:.3f} (%{customdata[2]})<extra></extra>"))
                at.append((r, c))
            continue
        for (sid,), one in sub.group_by([subject], maintain_order=True):
            det = one.get_column(detected).to_list() if detected in one.columns else \
                [v > 0 for v in one.get_column(y).to_list()]
            vals = [v if (d or not log_y) else VAF_FLOOR
                    for v, d in zip(one.get_column(y).to_list(), det, strict=True)]
            traces.append(go.Scatter(
                x=one.get_column(x).to_list(), y=vals, mode="lines+markers", name=sid,
                legendgroup=sid, showlegend=sid not in shown,
                line={"color": palette.get(sid, _GREY), "width": 2},
                marker={"size": 7, "symbol": ["circle" if d else "circle-open" for d in det]},
                customdata=[[g, "detected" if d else "not detected"] for d in det],
                hovertemplate=sid + " · %{customdata[0]}<br>day %{x}: VAF %{y:.3f} "
                "(%{customdata[1]})<extra></extra>"))
            at.append((r, c))
            shown.add(sid)
    if traces:
        fig.add_traces(traces, rows=[r for r, _ in at], cols=[c for _, c in at])
    fig.update_yaxes(type="log" if log_y else "linear", title_text="VAF", col=1)
    if log_y:
        fig.update_yaxes(type="log")
    fig.update_xaxes(title_text=_DAY, row=rows)
    fig.update_layout(template="cart", title=title or "Variant allele fraction over time",
                      height=max(340, 280 * rows + 80), hovermode="closest")
    return fig


def oncoprint(df: pl.DataFrame, *, subject: str = "subject_id", gene: str = "gene",
              when: str = "when", vaf: str = "vaf", day: str = "day",
              classification: str = "classification", subjects: list[str] | None = None,
              title: str | None = None) -> go.Figure:
    """Patients (rows) x genes (columns), one panel per time point (Baseline, Last follow-up);
    colour = VAF, blank = not detected; hover names the variant class and the day."""
    panels = [w for w in ("Baseline", "Last follow-up")
              if df.height and w in set(df.get_column(when).to_list())]
    panels += [w for w in (df.get_column(when).unique().sort().to_list() if df.height else [])
               if w not in panels]
    genes = sorted(df.get_column(gene).unique().to_list()) if df.height else []
    subs = subjects or (sorted(df.get_column(subject).unique().to_list()) if df.height else [])
    fig = make_subplots(rows=1, cols=max(1, len(panels)), subplot_titles=panels or None,
                        shared_yaxes=True, horizontal_spacing=0.04)
    vmax = max(0.05, float(df.get_column(vaf).max() or 0)) if df.height else 0.05
    for k, w in enumerate(panels):
        sub = df.filter(pl.col(when) == w)
        z = [[None] * len(genes) for _ in subs]
        text = [[""] * len(genes) for _ in subs]
        hover = [[f"{s} · {g}: no sample" for g in genes] for s in subs]
        for r in sub.iter_rows(named=True):
            if r[subject] not in subs:
                continue
            i, j = subs.index(r[subject]), genes.index(r[gene])
            v = r[vaf]
            z[i][j] = v if v and v > 0 else None
            text[i][j] = f"{100 * v:.0f}%" if v and v > 0 else ""
            hover[i][j] = (f"{r[subject]} · {r[gene]} · day {r[day]}<br>"
                           + (f"VAF {v:.3f} ({r.get(classification) or 'variant'})"
                              if v and v > 0 else "not detected"))
        fig.add_trace(go.Heatmap(
            z=z, x=genes, y=subs, text=text, texttemplate="%{text}", customdata=hover,
            hovertemplate="%{customdata}<extra></extra>", colorscale="YlOrRd", zmin=0,
            zmax=vmax, xgap=3, ygap=3, showscale=k == len(panels) - 1,
            colorbar={"title": {"text": "VAF"}}, name=w), row=1, col=k + 1)
    fig.update_yaxes(autorange="reversed", type="category", showgrid=False, automargin=True)
    fig.update_xaxes(type="category", showgrid=False, tickangle=-45, automargin=True)
    fig.update_layout(template="cart", title=title or "Somatic clones at baseline and last "
                      "follow-up", height=max(300, 34 * len(subs) + 180),
                      plot_bgcolor="#F4F4F4")
    return fig


def repertoire_lines(df: pl.DataFrame, *, metric: str = "clonality", x: str = "day",
                     subject: str = "subject_id", group: str | None = "group",
                     colors: dict[str, str] | None = None, y_title: str | None = None,
                     title: str | None = None) -> go.Figure:
    """A repertoire metric over time, one line per patient, coloured by group when `group` is
    a column (else by patient)."""
    use_group = group is not None and group in df.columns
    palette = colors or (GROUP_COLORS if use_group else
                         patient_colors(df.get_column(subject).unique().to_list()
                                        if df.height else []))
    fig = go.Figure()
    shown: set[str] = set()
    if df.height and is_many(df.get_column(subject).unique().to_list()):
        # one trace per colour key: the patients' lines with a gap between them
        keyed = df.with_columns((pl.col(group) if use_group else pl.col(subject))
                                .cast(pl.String).fill_null("unknown").alias("_key"))
        traces = []
        for key in keyed.get_column("_key").unique(maintain_order=True).to_list():
            sub = gapped(keyed.filter(pl.col("_key") == key), key=subject, order=x)
            traces.append(go.Scatter(
                x=sub.get_column(x).to_list(), y=sub.get_column(metric).to_list(),
                mode="lines+markers", name=key, legendgroup=key,
                line={"color": palette.get(key, _GREY), "width": 2},
                text=sub.get_column(subject).to_list(),
                hovertemplate="%{text}<br>day %{x}: %{y:.3g}<extra></extra>"))
        fig.add_traces(traces)
    for (sid,), sub in ([] if len(fig.data) else
                        df.sort(subject, x).group_by([subject], maintain_order=True)):
        key = sub.get_column(group)[0] if use_group else sid
        fig.add_trace(go.Scatter(
            x=sub.get_column(x).to_list(), y=sub.get_column(metric).to_list(),
            mode="lines+markers", name=key, legendgroup=key, showlegend=key not in shown,
            line={"color": palette.get(key, _GREY), "width": 2}, text=[sid] * sub.height,
            hovertemplate="%{text}<br>day %{x}: %{y:.3g}<extra></extra>"))
        shown.add(key)
    fig.update_layout(template="cart", title=title or f"{metric} over time",
                      xaxis_title=_DAY, yaxis_title=y_title or metric, height=420,
                      hovermode="closest")
    return fig


def clone_area(df: pl.DataFrame, *, x: str = "day", y: str = "frequency",
               clone: str = "clonotype", rank: str = "rank", label: str = "timepoint",
               title: str | None = None) -> go.Figure:
    """Stacked area of one patient's baseline top clonotypes over time (largest at the bottom),
    the rest of the repertoire in grey on top."""
    order = (df.select(clone, rank).unique().sort(rank).get_column(clone).to_list()
             if df.height else [])
    palette = list(PATIENT_PALETTE)  # no yellow, no PLT-rug orange
    fig = go.Figure()
    for k, c in enumerate(order):
        sub = df.filter(pl.col(clone) == c).sort(x)
        other = k == len(order) - 1 and c.startswith("other")
        color = "#DDDDDD" if other else palette[k % len(palette)]
        labels = sub.get_column(label).to_list() if label in sub.columns else [""] * sub.height
        fig.add_trace(go.Scatter(
            x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(), mode="lines",
            stackgroup="clones", name=c, line={"width": 0.5, "color": color},
            fillcolor=color, text=labels,
            hovertemplate=c + "<br>day %{x} %{text}: %{y:.1%}<extra></extra>"))
    fig.update_layout(template="cart", title=title or "Baseline top clonotypes over time",
                      xaxis_title=_DAY, yaxis_title="share of repertoire",
                      yaxis={"tickformat": ".0%", "range": [0, 1]}, height=440,
                      legend={"font": {"size": 10}})
    return fig


def overlap_heatmap(df: pl.DataFrame, *, a: str = "timepoint_a", b: str = "timepoint_b",
                    day_a: str = "day_a", day_b: str = "day_b",
                    value: str = "morisita_horn", title: str | None = None) -> go.Figure:
    """Morisita-Horn overlap between a patient's samples (ordered by day), 0 to 1."""
    meta = (df.select(pl.col(a).alias("lab"), pl.col(day_a).alias("d")).unique().sort("d")
            if df.height else pl.DataFrame(schema={"lab": pl.String, "d": pl.Int64}))
    # two short lines per tick ("Screening<br>d-11"), upright: slanted "Screening (d-11)"
    # labels were cut off in a half-width column
    labels = [f"{lab or 'sample'}<br>d{d}" for lab, d in meta.iter_rows()]
    days = meta.get_column("d").to_list()
    idx = {d: i for i, d in enumerate(days)}
    z = [[None] * len(days) for _ in days]
    for r in df.iter_rows(named=True):
        z[idx[r[day_a]]][idx[r[day_b]]] = r[value]
    fig = go.Figure(go.Heatmap(z=z, x=labels, y=labels, colorscale="Viridis", zmin=0, zmax=1,
                               texttemplate="%{z:.2f}", colorbar={"title": {"text": "M-H"}},
                               hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category", showgrid=False)
    fig.update_xaxes(type="category", showgrid=False, tickangle=0, automargin=True,
                     tickfont={"size": 10})
    fig.update_yaxes(automargin=True, tickfont={"size": 10})
    fig.update_layout(template="cart", title=title or "Repertoire overlap (Morisita-Horn)",
                      height=max(340, 44 * len(days) + 180))
    return fig


# ---- CAR status, clones across time, depth-matched metrics, compositions -----------------------
CLASS_COLORS = {"reference": "#444444", "expanded": "#D55E00", "persistent": "#56B4E9",
                "contracted": "#0072B2", "lost": "#BBBBBB", "new": "#E69F00",
                "before reference": "#DDDDDD"}
_EXPANSION_COLORS = {"1": "#C6DBEF", "2": "#6BAED6", "3-5": "#2171B5", "6-20": "#E6550D",
                     ">20": "#A50F15", "no clonotype": "#E5E5E5"}


def car_histogram(df: pl.DataFrame, *, lo: str = "lo", hi: str = "hi", y: str = "n_cells",
                  cut: float | None = None, cut_label: str = "cut", log_y: bool = True,
                  title: str | None = None) -> go.Figure:
    """Cells per bin of log1p(CAR counts) (pre-binned), with the CAR+ cut as a vertical line."""
    lows, highs = df.get_column(lo).to_list(), df.get_column(hi).to_list()
    fig = go.Figure(go.Bar(
        x=[(a + b) / 2 for a, b in zip(lows, highs, strict=True)], y=df.get_column(y).to_list(),
        width=[b - a for a, b in zip(lows, highs, strict=True)], marker={"color": "#7F7F7F"},
        customdata=[[a, b] for a, b in zip(lows, highs, strict=True)], name="cells",
        hovertemplate="log1p(counts) %{customdata[0]:.2f}-%{customdata[1]:.2f}: %{y:,} cells"
                      "<extra></extra>"))
    if cut is not None:
        fig.add_vline(x=cut, line={"color": "#D55E00", "width": 2, "dash": "dash"},
                      annotation_text=cut_label, annotation_position="top right")
    fig.update_layout(template="cart", title=title or "CAR transcript counts per cell",
                      xaxis_title="log1p(CAR counts)", yaxis_title="cells", height=360,
                      yaxis_type="log" if log_y else "linear", bargap=0, showlegend=False)
    return fig


def clone_alluvial(df: pl.DataFrame, *, clone: str = "clonotype", step: str = "step",
                   label: str = "timepoint", state: str = "class", weight: str = "weight",
                   rank: str = "rank", title: str | None = None) -> go.Figure:
    """Alluvial (Sankey) of a patient's dominant clones: the first column holds each clone
    at the reference sample (band width = its frequency there); each later column the
    clone's class against the reference (expanded, persistent, contracted, lost)."""
    df = df.filter(pl.col(step).is_not_null()) if df.height else df
    steps = sorted(set(df.get_column(step).to_list())) if df.height else []
    nodes: dict[tuple[int, str], int] = {}
    names, colours = [], []

    def node(k: int, key: str, text: str, colour: str) -> int:
        if (k, key) not in nodes:
            nodes[(k, key)] = len(names)
            names.append(text)
            colours.append(colour)
        return nodes[(k, key)]

    src, dst, val, link_col = [], [], [], []
    labels = dict(df.select(step, label).unique(step).iter_rows()) if df.height else {}
    palette = list(PATIENT_PALETTE)  # no yellow, no PLT-rug orange
    for (cid,), one in df.sort(step).group_by([clone], maintain_order=True):
        one = one.sort(step)
        r = int(one.get_column(rank)[0])
        w = float(one.get_column(weight)[0] or 0)
        prev = None
        for row in one.iter_rows(named=True):
            k = steps.index(row[step])
            if prev is None:
                cur = node(k, cid, f"#{r} {cid[:14]}", palette[(r - 1) % len(palette)])
            else:
                cls = row[state]
                cur = node(k, cls, f"{labels.get(row[step]) or ''}: {cls}",
                           CLASS_COLORS.get(cls, _GREY))
                src.append(prev)
                dst.append(cur)
                val.append(max(w, 1e-6))
                link_col.append("rgba(120,120,120,0.35)")
            prev = cur
    fig = go.Figure(go.Sankey(
        arrangement="snap", node={"label": names, "color": colours, "pad": 12,
                                  "thickness": 14},
        link={"source": src, "target": dst, "value": val, "color": link_col,
              "hovertemplate": "%{source.label} -> %{target.label}: reference share "
                               "%{value:.1%}<extra></extra>"}))
    fig.update_layout(template="cart", title=title or "Dominant clones over time",
                      height=max(380, 26 * len(df.get_column(clone).unique()) + 160)
                      if df.height else 380)
    for i, k in enumerate(steps):
        fig.add_annotation(x=i / max(len(steps) - 1, 1), y=1.06, xref="paper", yref="paper",
                           text=str(labels.get(k) or ""), showarrow=False)
    return fig


def clone_volcano(df: pl.DataFrame, *, x: str = "log2_fc", q: str = "q_value",
                  color: str = "class", text: str = "clonotype", title: str | None = None,
                  fdr: float | None = None) -> go.Figure:
    """Per-clone change between two samples: log2 fold change of frequency against -log10 BH
    q, one colour per class; the FDR line when given."""
    fig = go.Figure()
    for cls in CLASSES_ORDER:
        sub = df.filter(pl.col(color) == cls)
        if sub.height == 0:
            continue
        qv = sub.get_column(q).fill_null(1.0).clip(1e-300, 1.0).to_list()
        fig.add_trace(go.Scattergl(
            x=sub.get_column(x).to_list(), y=[-math.log10(v) for v in qv], mode="markers",
            name=cls, marker={"color": CLASS_COLORS.get(cls, _GREY), "size": 6,
                              "opacity": 0.8},
            text=sub.get_column(text).to_list(),
            hovertemplate="%{text}<br>log2 FC %{x:.2f}, -log10 q %{y:.2f}<extra>" + cls
                          + "</extra>"))
    if fdr:
        fig.add_hline(y=-math.log10(fdr), line={"dash": "dot", "color": "#777777"},
                      annotation_text=f"q = {fdr:g}")
    fig.update_layout(template="cart", title=title or "Per-clone change",
                      xaxis_title="log2 fold change of clone frequency",
                      yaxis_title="-log10 BH q (Fisher exact)", height=420)
    return fig


CLASSES_ORDER = ("expanded", "persistent", "contracted", "lost", "new")


def rarefied_lines(df: pl.DataFrame, *, x: str = "day", y: str = "mean", lo: str = "lo",
                   hi: str = "hi", subject: str = "subject_id", group: str | None = "group",
                   colors: dict[str, str] | None = None, y_title: str | None = None,
                   title: str | None = None) -> go.Figure:
    """A depth-matched repertoire metric over time, one line per patient with the 95 %
    subsampling interval as error bars; coloured by group when `group` is a column."""
    use_group = group is not None and group in df.columns
    palette = colors or (GROUP_COLORS if use_group else patient_colors(
        df.get_column(subject).unique().to_list() if df.height else []))
    fig = go.Figure()
    shown: set[str] = set()
    for (sid,), sub in df.sort(subject, x).group_by([subject], maintain_order=True):
        key = str(sub.get_column(group)[0]) if use_group else sid
        m = sub.get_column(y).to_list()
        fig.add_trace(go.Scatter(
            x=sub.get_column(x).to_list(), y=m, mode="lines+markers", name=key,
            legendgroup=key, showlegend=key not in shown,
            line={"color": palette.get(key, _GREY), "width": 2},
            error_y={"type": "data", "symmetric": False,
                     "array": [(b - a) if a is not None and b is not None else None
                               for a, b in zip(m, sub.get_column(hi).to_list(), strict=True)],
                     "arrayminus": [(a - b) if a is not None and b is not None else None
                                    for a, b in zip(m, sub.get_column(lo).to_list(),
                                                    strict=True)]},
            text=[sid] * sub.height,
            hovertemplate="%{text}<br>day %{x}: %{y:.3g}<extra></extra>"))
        shown.add(key)
    fig.update_layout(template="cart", title=title or "Depth-matched metric over time",
                      xaxis_title=_DAY, yaxis_title=y_title or y, height=420)
    return fig


def expansion_embedding(df: pl.DataFrame, *, x: str = "x", y: str = "y",
                        color: str = "expansion", text: str = "clonotype",
                        title: str | None = None) -> go.Figure:
    """Cells on the embedding coloured by clone size in their sample (cells without a
    clonotype in light grey, drawn first so expanded clones lie on top)."""
    fig = go.Figure()
    for key in ("no clonotype", "1", "2", "3-5", "6-20", ">20"):
        sub = df.filter(pl.col(color) == key)
        if sub.height == 0:
            continue
        fig.add_trace(go.Scattergl(
            x=sub.get_column(x).to_list(), y=sub.get_column(y).to_list(), mode="markers",
            name=key if key == "no clonotype" else f"clone size {key}",
            marker={"color": _EXPANSION_COLORS[key], "size": 4 if key == "no clonotype" else 6},
            text=sub.get_column(text).fill_null("").to_list(),
            hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(template="cart", title=title or "Clonal expansion on the embedding",
                      height=480, xaxis={"showticklabels": False, "title": ""},
                      yaxis={"showticklabels": False, "title": "", "scaleanchor": "x"})
    return fig


def stacked_share(df: pl.DataFrame, *, x: str, y: str = "fraction", color: str = "cell_type",
                  facet_col: str | None = None, title: str | None = None,
                  y_title: str = "share") -> go.Figure:
    """Stacked bars of shares (e.g. cell types of CAR+ and CAR- T cells per patient)."""
    facets = (df.get_column(facet_col).unique().sort().to_list()
              if facet_col and df.height else [None])
    fig = make_subplots(rows=1, cols=len(facets), shared_yaxes=True,
                        subplot_titles=[str(f) for f in facets] if facet_col else None)
    keys = df.get_column(color).unique().sort().to_list() if df.height else []
    palette = list(PATIENT_PALETTE)  # no yellow, no PLT-rug orange
    for j, f in enumerate(facets):
        sub = df if f is None else df.filter(pl.col(facet_col) == f)
        for k, key in enumerate(keys):
            one = sub.filter(pl.col(color) == key)
            fig.add_trace(go.Bar(x=one.get_column(x).to_list(), y=one.get_column(y).to_list(),
                                 name=str(key), legendgroup=str(key), showlegend=j == 0,
                                 marker={"color": palette[k % len(palette)]},
                                 hovertemplate=f"{key}: " + "%{y:.1%}<extra></extra>"),
                          row=1, col=j + 1)
    fig.update_layout(template="cart", barmode="stack", title=title, height=420)
    fig.update_yaxes(tickformat=".0%", title_text=y_title, col=1)
    return fig


def effect_dots(df: pl.DataFrame, *, x: str = "effect", y: str = "cell_type",
                p: str = "p_value", q: str = "q_value", x_title: str = "effect",
                title: str | None = None) -> go.Figure:
    """One dot per row (cell type or gene): the effect, labelled with p and q."""
    rows = df.sort(x) if df.height else df
    fig = go.Figure(go.Scatter(
        x=rows.get_column(x).to_list(), y=rows.get_column(y).to_list(), mode="markers+text",
        marker={"size": 10, "color": ["#D55E00" if (v or 0) > 0 else "#0072B2"
                                      for v in rows.get_column(x).to_list()]},
        text=[f"p={a:.2g}, q={b:.2g}" if a is not None and b is not None else "not tested"
              for a, b in zip(rows.get_column(p).to_list(), rows.get_column(q).to_list(),
                              strict=True)],
        textposition="middle right", hovertemplate="%{y}: %{x:.2f} (%{text})<extra></extra>"))
    fig.add_vline(x=0, line={"color": "#999999", "width": 1})
    fig.update_layout(template="cart", title=title, xaxis_title=x_title,
                      yaxis={"type": "category"}, height=max(300, 30 * rows.height + 140),
                      showlegend=False)
    return fig
