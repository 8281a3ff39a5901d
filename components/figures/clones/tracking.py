"""Single clones across samples: an alluvial of a patient's dominant clones (their class
against the reference sample at each later sample) and the per-clone change volcano."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import polars as pl

from components.figures.clones.style import CLASS_COLORS, CLASSES_ORDER, GREY
from components.theme import PATIENT_PALETTE

__all__ = ["clone_alluvial", "clone_volcano"]

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
                           CLASS_COLORS.get(cls, GREY))
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
            name=cls, marker={"color": CLASS_COLORS.get(cls, GREY), "size": 6,
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
