"""Embeddings of millions of cells drawn server-side as a raster (datashader), shown in a plotly
figure as an image placed in data coordinates, so the axes, box and lasso selections keep
working in the embedding's own units.

Categories: every pixel takes the colour mix of the categories of its cells (datashader
`count_cat`), its opacity the number of cells (histogram-equalised, so sparse regions stay
visible). A continuous value (a gene, a score): every pixel shows the mean value of its cells
on a fixed colour scale whose bar says the units. Arrays in, `go.Figure` out; the view
(views/landscape.py) chooses the cells, the colours and the window.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

__all__ = ["shade_categories", "shade_values", "raster_figure", "png_data_url", "VIRIDIS"]

VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779",
           "#6ece58", "#b5de2b", "#fde725")
Range = tuple[float, float]


def _canvas(x_range: Range, y_range: Range, width: int, height: int) -> Any:
    import datashader as ds

    return ds.Canvas(plot_width=int(width), plot_height=int(height),
                     x_range=(float(x_range[0]), float(x_range[1])),
                     y_range=(float(y_range[0]), float(y_range[1])))


def _rgba(img: object) -> np.ndarray:
    """datashader Image -> (height, width, 4) uint8, first row at the top."""
    packed = np.asarray(img.data, dtype=np.uint32)  # type: ignore[attr-defined]
    return np.flipud(packed.view(np.uint8).reshape(*packed.shape, 4))


def shade_categories(x: np.ndarray, y: np.ndarray, codes: np.ndarray, *,
                     colors: Sequence[str], x_range: Range, y_range: Range,
                     width: int = 900, height: int = 600, spread: int = 1) -> np.ndarray:
    """RGBA image of points coloured by category code (0..len(colors)-1; -1 = no category,
    drawn grey)."""
    import datashader.transfer_functions as tf
    import pandas as pd

    k = len(colors)
    codes = np.where((codes < 0) | (codes >= k), k, codes).astype(np.int32)
    names = [str(i) for i in range(k + 1)]
    frame = pd.DataFrame({"x": np.asarray(x, np.float32), "y": np.asarray(y, np.float32),
                          "c": pd.Categorical.from_codes(codes, names)})
    import datashader as ds

    agg = _canvas(x_range, y_range, width, height).points(frame, "x", "y",
                                                          agg=ds.count_cat("c"))
    key = dict(zip(names, [*colors, "#BBBBBB"], strict=True))
    img = tf.shade(agg, color_key=key, how="eq_hist", min_alpha=60)
    if spread:
        img = tf.dynspread(img, threshold=0.5, max_px=spread)
    return _rgba(img)


def shade_values(x: np.ndarray, y: np.ndarray, values: np.ndarray, *, span: Range,
                 x_range: Range, y_range: Range, width: int = 900, height: int = 600,
                 colorscale: Sequence[str] = VIRIDIS, spread: int = 1) -> np.ndarray:
    """RGBA image of the mean value of the points in each pixel on a linear colour scale over
    `span` (values outside it take the end colours)."""
    import datashader as ds
    import datashader.transfer_functions as tf
    import pandas as pd

    frame = pd.DataFrame({"x": np.asarray(x, np.float32), "y": np.asarray(y, np.float32),
                          "v": np.asarray(values, np.float32)})
    agg = _canvas(x_range, y_range, width, height).points(frame, "x", "y", agg=ds.mean("v"))
    lo, hi = float(span[0]), float(span[1])
    img = tf.shade(agg.clip(lo, hi), cmap=list(colorscale), how="linear",
                   span=(lo, hi if hi > lo else lo + 1e-6), min_alpha=255)
    if spread:
        img = tf.dynspread(img, threshold=0.5, max_px=spread)
    return _rgba(img)


def png_data_url(rgba: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), mode="RGBA").save(buf, format="PNG",
                                                                 compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def raster_figure(rgba: np.ndarray, *, x_range: Range, y_range: Range,
                  legend: Mapping[str, str] | None = None,
                  colorbar: tuple[str, float, float] | None = None,
                  colorscale: Sequence[str] = VIRIDIS, basis: str = "UMAP",
                  title: str | None = None, height: int = 600) -> go.Figure:
    """The raster as a plotly figure: the image stretched over `x_range` x `y_range` in data
    coordinates, axes fixed to that window, `legend` (label -> colour) as legend entries,
    `colorbar` (title, low, high) as a colour bar. An invisible trace spans the window so box
    and lasso selection report their shape in data coordinates."""
    fig = go.Figure()
    fig.add_trace(go.Scattergl(x=list(x_range), y=list(y_range), mode="markers",
                               marker={"opacity": 0, "size": 1}, hoverinfo="skip",
                               showlegend=False, name="window"))
    for label, colour in (legend or {}).items():
        fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", name=str(label),
                                   marker={"color": colour, "size": 9}))
    if colorbar is not None:
        name, lo, hi = colorbar
        fig.add_trace(go.Scattergl(
            x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
            marker={"color": [lo, hi], "cmin": lo, "cmax": hi, "showscale": True,
                    "colorscale": [[i / (len(colorscale) - 1), c]
                                   for i, c in enumerate(colorscale)],
                    "colorbar": {"title": {"text": name}}}))
    fig.add_layout_image(source=png_data_url(rgba), xref="x", yref="y", x=x_range[0],
                         y=y_range[1], sizex=x_range[1] - x_range[0],
                         sizey=y_range[1] - y_range[0], sizing="stretch", layer="below")
    fig.update_xaxes(range=list(x_range), title=f"{basis} 1", showgrid=False, zeroline=False)
    fig.update_yaxes(range=list(y_range), title=f"{basis} 2", showgrid=False, zeroline=False)
    fig.update_layout(template="cart", title=title, height=height, dragmode="zoom",
                      legend={"itemsizing": "constant"}, plot_bgcolor="white")
    return fig
