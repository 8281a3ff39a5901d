"""The presentation template: a copy of a figure dressed for slides (larger fonts, thicker
lines, white background, the study palette, an optional provenance footer); the figure on screen
is unchanged."""

from __future__ import annotations

import re
from functools import partial
from typing import Any
from xml.sax.saxutils import escape

import plotly.graph_objects as go

from components.export.formats import SLIDE_SIZE
from components.theme import FONT, OKABE_ITO

__all__ = ["presentation_figure"]

_SLIDE_FONT, _SLIDE_TITLE, _SLIDE_TICK, _SLIDE_LINE = 18, 26, 16, 3


def _at_least(current: float | None, floor: float) -> float:
    return floor if current is None else max(current, floor)


def presentation_figure(fig: go.Figure, *, footer: str | None = None, title: str | None = None,
                        height: int = SLIDE_SIZE[1]) -> go.Figure:
    """A copy of `fig` dressed for slides: larger fonts, thicker lines, white background, the
    study palette; `footer` adds a small grey line under the plot. A y-axis title too long for
    its subplot at `height` pixels is set smaller instead of larger. `fig` is not changed."""
    out = go.Figure(fig)
    from components.theme import display_units

    display_units(out)
    lay = out.layout
    out.update_layout(
        paper_bgcolor="white", plot_bgcolor="white", colorway=OKABE_ITO,
        font={"family": FONT, "color": "#222222", "size": _at_least(lay.font.size, _SLIDE_FONT)},
        legend_font_size=_at_least(lay.legend.font.size, _SLIDE_TICK),
        hoverlabel_font_size=_SLIDE_TICK)
    if title is not None:
        out.update_layout(title_text=title)
    if lay.title.text:
        out.update_layout(title_font_size=_at_least(lay.title.font.size, _SLIDE_TITLE))
    out.for_each_xaxis(_slide_axis)
    out.for_each_yaxis(partial(_slide_axis, plot_height=height - 110))
    for ann in lay.annotations:
        ann.font.size = _at_least(ann.font.size, 14)
    for trace in out.data:
        _slide_trace(trace)
    if footer:
        bottom = lay.margin.b if lay.margin.b is not None else 50
        out.update_layout(margin_b=bottom + 26)
        out.add_annotation(text=escape(footer), xref="paper", yref="paper", x=0, y=0,
                           xanchor="left", yanchor="top", yshift=-bottom - 4, showarrow=False,
                           align="left", font={"size": 11, "color": "#777777"},
                           name="provenance-footer")
    return out


def _slide_axis(axis: Any, plot_height: float | None = None) -> None:
    size = _at_least(axis.title.font.size, _SLIDE_FONT)
    text = re.sub(r"<[^>]+>", "", axis.title.text or "")
    if plot_height and text:
        # a rotated title must fit along its subplot (about 0.55 em per character)
        span = (axis.domain[1] - axis.domain[0]) if axis.domain else 1.0
        fits = span * plot_height / (0.55 * len(text))
        size = max(10.0, min(size, fits))
    axis.update(tickfont_size=_at_least(axis.tickfont.size, _SLIDE_TICK), title_font_size=size,
                linewidth=_at_least(axis.linewidth, 1.5), automargin=True)


def _slide_trace(trace: Any) -> None:
    mode = getattr(trace, "mode", None)
    kind = trace.type
    if kind in ("scatter", "scattergl") and (mode is None or "lines" in mode):
        # a hidden outline (width 0, e.g. a confidence band) stays hidden; bands keep theirs
        if trace.line.width != 0 and trace.fill in (None, "none"):
            trace.line.width = _at_least(trace.line.width, _SLIDE_LINE)
    elif kind in ("box", "violin"):
        trace.line.width = _at_least(trace.line.width, 2)
