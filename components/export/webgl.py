"""WebGL traces in vector files: Scattergl cannot be vector graphics, so in SVG and PDF a small
one becomes an SVG scatter and a large one is drawn once as a PNG (by the export server) and
placed as a layout image under the axes."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import plotly.graph_objects as go

from components.export import server
from components.export.formats import SLIDE_SIZE

__all__ = ["rasterize_webgl"]

_VECTOR_POINTS = 5_000


def _numeric(values: Any, n: int) -> np.ndarray | None:
    if values is None:
        return np.arange(n, dtype=float)
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if arr.ndim == 1 else None


def _trace_len(trace: Any) -> int:
    for v in (trace.x, trace.y):
        if v is not None:
            return len(v)
    return 0


def _as_scatter(trace: Any) -> go.Scatter:
    spec = trace.to_plotly_json()
    spec.pop("type", None)
    return go.Scatter(spec, skip_invalid=True)


def _axis_key(ref: str | None, letter: str) -> str:
    ref = ref or letter
    return f"{letter}axis{ref[1:]}"


def _range(values: list[np.ndarray], axis: Any, *, pad: float) -> tuple[float, float] | None:
    if axis.range is not None and axis.autorange in (None, False):
        lo, hi = axis.range
        return (float(lo), float(hi)) if lo is not None and hi is not None else None
    data = np.concatenate(values) if values else np.array([])
    if axis.type == "log":
        data = np.log10(data[data > 0])
    elif axis.type not in (None, "-", "linear"):
        return None
    data = data[np.isfinite(data)]
    if data.size == 0:
        return None
    lo, hi = float(data.min()), float(data.max())
    span = hi - lo or abs(hi) or 1.0
    lo, hi = lo - pad * span, hi + pad * span
    return (hi, lo) if axis.autorange == "reversed" else (lo, hi)


def rasterize_webgl(fig: go.Figure, *, width: int = SLIDE_SIZE[0], height: int = SLIDE_SIZE[1],
                    scale: float = 2, max_vector_points: int = _VECTOR_POINTS) -> go.Figure:
    """A copy of `fig` whose Scattergl traces survive SVG/PDF export: up to
    `max_vector_points` points they become SVG scatter traces; above, each subplot's WebGL
    traces are drawn once to a transparent PNG (needs the export server) and placed as a layout
    image filling the axes, with the axis ranges fixed so the image and the axes agree. Legend
    entries and colour bars stay (as empty placeholder traces)."""
    gl = [i for i, t in enumerate(fig.data) if t.type == "scattergl"]
    if not gl:
        return fig
    out = go.Figure(fig)
    if sum(_trace_len(out.data[i]) for i in gl) <= max_vector_points:
        return go.Figure(data=[_as_scatter(t) if t.type == "scattergl" else t
                               for t in out.data], layout=out.layout)
    groups: dict[tuple[str, str], list[int]] = {}
    for i in gl:
        t = out.data[i]
        groups.setdefault((t.xaxis or "x", t.yaxis or "y"), []).append(i)
    traces = list(out.data)
    for (xref, yref), idx in groups.items():
        xaxis, yaxis = out.layout[_axis_key(xref, "x")], out.layout[_axis_key(yref, "y")]
        on_axes = [t for t in out.data if (t.xaxis or "x", getattr(t, "yaxis", None) or "y")
                   == (xref, yref)]
        xs = [_numeric(t.x, _trace_len(t)) for t in on_axes]
        ys = [_numeric(t.y, _trace_len(t)) for t in on_axes]
        if any(v is None for v in xs + ys):
            for i in idx:
                traces[i] = _as_scatter(out.data[i])
            continue
        markers = any("markers" in (out.data[i].mode or "markers") for i in idx)
        xr = _range(xs, xaxis, pad=0.05 if markers else 0.0)
        yr = _range(ys, yaxis, pad=0.05 if markers else 0.0)
        if xr is None or yr is None:
            for i in idx:
                traces[i] = _as_scatter(out.data[i])
            continue
        png = _draw_gl_layer([out.data[i] for i in idx], xaxis, yaxis, xr, yr,
                             _plot_area(out, xaxis, yaxis, width, height), scale)
        # the axes keep their range exactly; an aspect constraint would move it again
        xaxis.update(range=list(xr), autorange=False, scaleanchor=None)
        yaxis.update(range=list(yr), autorange=False, scaleanchor=None)
        out.add_layout_image(source="data:image/png;base64," + base64.b64encode(png).decode(),
                             xref=f"{xref} domain", yref=f"{yref} domain", x=0, y=1, sizex=1,
                             sizey=1, xanchor="left", yanchor="top", sizing="stretch",
                             layer="below", name="webgl-raster")
        for i in idx:
            traces[i] = _placeholder(out.data[i])
    return go.Figure(data=traces, layout=out.layout)


def _plot_area(fig: go.Figure, xaxis: Any, yaxis: Any, width: int, height: int
               ) -> tuple[int, int]:
    m = fig.layout.margin
    tm = fig.layout.template.layout.margin if fig.layout.template else None

    def pick(side: str, default: int) -> float:
        v = getattr(m, side)
        if v is None and tm is not None:
            v = getattr(tm, side)
        return default if v is None else v

    # kaleido draws at the requested size whatever the layout says
    w = width - pick("l", 80) - pick("r", 80)
    h = height - pick("t", 100) - pick("b", 80)
    xd, yd = xaxis.domain or (0, 1), yaxis.domain or (0, 1)
    return max(50, int(w * (xd[1] - xd[0]))), max(50, int(h * (yd[1] - yd[0])))


def _draw_gl_layer(traces: list[Any], xaxis: Any, yaxis: Any, xr: tuple[float, float],
                   yr: tuple[float, float], size: tuple[int, int], scale: float) -> bytes:
    layer = go.Figure(layout={
        "width": size[0], "height": size[1], "margin": {"l": 0, "r": 0, "t": 0, "b": 0,
                                                          "pad": 0},
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)", "showlegend": False,
        "xaxis": {"range": list(xr), "type": xaxis.type or "linear", "visible": False},
        "yaxis": {"range": list(yr), "type": yaxis.type or "linear", "visible": False},
        "template": "none"})
    for t in traces:
        spec = t.to_plotly_json()
        spec.update(xaxis="x", yaxis="y", showlegend=False)
        if isinstance(spec.get("marker"), dict):
            spec["marker"] = {**spec["marker"], "showscale": False}
        layer.add_trace(go.Scattergl(spec, skip_invalid=True))
    return server.call(layer.to_dict(), {"format": "png", "width": size[0], "height": size[1],
                                   "scale": scale})


def _placeholder(trace: Any) -> go.Scatter:
    """An empty SVG trace that keeps the legend entry and colour bar of a rasterised one."""
    spec = trace.to_plotly_json()
    keep = {k: spec[k] for k in ("name", "legendgroup", "showlegend", "mode", "xaxis", "yaxis",
                                 "legendrank", "legendgrouptitle", "line", "uid")
            if k in spec}
    marker = dict(spec.get("marker") or {})
    color = marker.get("color")
    if color is not None and not isinstance(color, str):
        values = np.asarray(color)
        if values.size and np.issubdtype(values.dtype, np.number):
            marker.setdefault("cmin", float(np.nanmin(values)))
            marker.setdefault("cmax", float(np.nanmax(values)))
            marker["color"] = [marker["cmin"]]
        else:
            marker["color"] = values.flat[0] if values.size else None
    for k in ("size", "symbol", "opacity"):
        v = marker.get(k)
        if v is not None and not isinstance(v, (str, int, float)):
            marker[k] = np.asarray(v).flat[0] if np.asarray(v).size else None
    return go.Scatter(x=[None], y=[None], marker=marker, hoverinfo="skip", **keep)
