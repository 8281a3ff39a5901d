"""Somatic clones: VAF lines per gene and patient, and the oncoprint grid at baseline and
last follow-up (frames of `analysis.clones`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from components.figures.clones.style import DAY_TITLE, GREY
from components.figures.many import color_groups, gapped, is_many
from components.theme import patient_colors

__all__ = ["VAF_FLOOR", "vaf_lines", "oncoprint"]

VAF_FLOOR = 0.001   # where "not detected" is drawn on a log axis (0.1 %, panel-seq sensitivity)


def vaf_lines(df: pl.DataFrame, *, x: str = "day", y: str = "vaf", gene: str = "gene",
              subject: str = "subject_id", detected: str = "detected",
              colors: dict[str, str] | None = None, log_y: bool = False, columns: int = 3,
              category_orders: Mapping[str, Sequence[str]] | None = None,
              title: str | None = None) -> go.Figure:
    """One panel per gene, one line per patient (patient colours). Samples where the gene was
    not detected are open markers at 0 (linear) or at VAF_FLOOR (log). The legend lists the
    patients in `category_orders[subject]` order (the study's), others after them sorted;
    by default sorted."""
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
            cmap = {sid: palette.get(sid, GREY) for sid in ids}
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
                line={"color": palette.get(sid, GREY), "width": 2},
                marker={"size": 7, "symbol": ["circle" if d else "circle-open" for d in det]},
                customdata=[[g, "detected" if d else "not detected"] for d in det],
                hovertemplate=sid + " · %{customdata[0]}<br>day %{x}: VAF %{y:.3f} "
                "(%{customdata[1]})<extra></extra>"))
            at.append((r, c))
            shown.add(sid)
    if traces:
        # traces were made gene by gene, so a patient missing from the first genes would come
        # late in the legend: draw them patient by patient (stable: genes in order within one)
        given = list((category_orders or {}).get(subject, ()))
        rank = {sid: i for i, sid in enumerate(given + sorted(set(ids) - set(given)))}
        order = sorted(range(len(traces)),
                       key=lambda i: rank.get(traces[i].legendgroup, -1))
        fig.add_traces([traces[i] for i in order], rows=[at[i][0] for i in order],
                       cols=[at[i][1] for i in order])
    fig.update_yaxes(type="log" if log_y else "linear", title_text="VAF", col=1)
    if log_y:
        fig.update_yaxes(type="log")
    fig.update_xaxes(title_text=DAY_TITLE, row=rows)
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
