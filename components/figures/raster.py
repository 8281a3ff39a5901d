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

__all__ = ["shade_categories", "shade_values", "count_categories", "mean_values",
           "raster_figure", "png_data_url", "VIRIDIS", "NO_CATEGORY"]

_COUNT_BLOCK_BYTES = 32 * 1024 * 1024   # int64 counts of one block of categories
NO_CATEGORY = "#BBBBBB"          # cells without a category (no cell type, say)
VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779",
           "#6ece58", "#b5de2b", "#fde725")
Range = tuple[float, float]


def _pixels(x: np.ndarray, y: np.ndarray, *, x_range: Range, y_range: Range, width: int,
            height: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(pixel number row * width + column as int32, mask of the points drawn or None when all
    are) with datashader's own mapping (`Canvas.points`: points outside the closed ranges
    dropped, pixel = int(value * scale + translate) in float64, the upper edge in the last
    pixel; row 0 at y_range[0]). Done in numpy rather than by datashader's aggregation, which
    compiles a numba kernel per process on first use (over a second of a cold page) for a
    count numpy does about as fast."""
    x0, x1 = float(x_range[0]), float(x_range[1])
    y0, y1 = float(y_range[0]), float(y_range[1])
    x, y = np.asarray(x), np.asarray(y)
    inside: np.ndarray | None = None
    # the whole embedding (the cold view): no mask to build (a NaN fails these tests)
    if not (x.size and x.min() >= x0 and x.max() <= x1 and y.min() >= y0 and y.max() <= y1):
        inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        x, y = x[inside], y[inside]
    out = []
    for v, lo, hi, n in ((y, y0, y1, height), (x, x0, x1, width)):
        scale = n / (hi - lo)
        f = np.multiply(v, scale, dtype=np.float64)
        f += -lo * scale
        i = f.astype(np.int32)
        np.minimum(i, n - 1, out=i)
        out.append(i)
    yi, xi = out
    yi *= np.int32(width)
    yi += xi
    return yi, inside


def _grid(data: np.ndarray, *, x_range: Range, y_range: Range, width: int, height: int,
          categories: Sequence[str] | None = None) -> Any:
    """An aggregate as datashader's `Canvas.points` returns it (xarray, dims y, x[, c],
    pixel-centre coordinates), for datashader's shading functions."""
    import xarray as xr

    x0, x1 = float(x_range[0]), float(x_range[1])
    y0, y1 = float(y_range[0]), float(y_range[1])
    coords: dict[str, Any] = {
        "y": y0 + (np.arange(height) + 0.5) * (y1 - y0) / height,
        "x": x0 + (np.arange(width) + 0.5) * (x1 - x0) / width}
    dims = ["y", "x"]
    if categories is not None:
        coords["c"] = list(categories)
        dims.append("c")
    return xr.DataArray(data, coords=coords, dims=dims,
                        attrs={"x_range": (x0, x1), "y_range": (y0, y1)})


def _density(img: Any, px: int) -> float:
    """datashader's `_rgb_density` in numpy: of the pixels drawn (alpha > 0), the fraction with
    another drawn pixel within `px` pixels (a square, clipped at the edges); inf when none."""
    drawn = ((np.asarray(img.data, np.uint32) >> 24) & 255) > 0
    if not drawn.any():
        return float("inf")
    h, w = drawn.shape
    box = np.zeros((h + 1, w + 1), np.int64)
    box[1:, 1:] = drawn.cumsum(0).cumsum(1)
    r0, r1 = np.clip(np.arange(h) - px, 0, h), np.clip(np.arange(h) + px + 1, 0, h)
    c0, c1 = np.clip(np.arange(w) - px, 0, w), np.clip(np.arange(w) + px + 1, 0, w)
    near = (box[r1][:, c1] - box[r0][:, c1] - box[r1][:, c0] + box[r0][:, c0])
    return float((drawn & (near > 1)).sum() / drawn.sum())


def _dynspread(img: Any, *, threshold: float, max_px: int) -> Any:
    """datashader's `tf.dynspread` (circle, 'over') with its density test in numpy: a dense
    image (every cold view of many cells) is returned as it is without loading a numba
    kernel; a sparse one is spread by datashader."""
    import datashader.transfer_functions as tf

    px_ = 0
    for px in range(1, max_px + 1):
        px_ = px
        if _density(img, px * 2) > threshold:
            px_ -= 1
            break
    return tf.spread(img, px_, shape="circle") if px_ >= 1 else img


def count_categories(x: np.ndarray, y: np.ndarray, codes: np.ndarray, *, n: int,
                     x_range: Range, y_range: Range, width: int = 900, height: int = 600
                     ) -> np.ndarray:
    """(height, width, n) uint32: points per pixel and category code (0..n-1; other codes are
    not counted), as datashader's `count_cat`. Counted a block of categories at a time, so
    the int64 counts of numpy's bincount never take more than about `_COUNT_BLOCK_BYTES`
    next to the uint32 result (150 patients: 4 bytes per pixel and category, not 12)."""
    pix, inside = _pixels(x, y, x_range=x_range, y_range=y_range, width=width, height=height)
    c = np.asarray(codes)
    c = (c if inside is None else c[inside]).astype(np.int64, copy=False)
    px = height * width
    out = np.zeros((px, n), dtype=np.uint32)
    block = max(1, _COUNT_BLOCK_BYTES // (8 * px))
    for k0 in range(0, n, block):
        k1 = min(n, k0 + block)
        sel = (c >= k0) & (c < k1)
        every = bool(sel.all())
        key = (pix if every else pix[sel]).astype(np.int64)   # int64: no overflow for any n
        key *= k1 - k0
        key += (c if every else c[sel]) - k0
        out[:, k0:k1] = np.bincount(key, minlength=px * (k1 - k0)).reshape(px, k1 - k0)
    return out.reshape(height, width, n)


def mean_values(x: np.ndarray, y: np.ndarray, values: np.ndarray, *, x_range: Range,
                y_range: Range, width: int = 900, height: int = 600) -> np.ndarray:
    """(height, width) float64: mean of the non-NaN values per pixel, NaN where a pixel has
    none, as datashader's `mean`."""
    pix, inside = _pixels(x, y, x_range=x_range, y_range=y_range, width=width, height=height)
    v = np.asarray(values)
    v = v if inside is None else v[inside]
    if (nan := np.isnan(v)).any():
        pix, v = pix[~nan], v[~nan]
    total = np.bincount(pix, weights=v, minlength=height * width)
    count = np.bincount(pix, minlength=height * width)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, total / count, np.nan)
    return out.reshape(height, width)


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

    k = len(colors)
    codes = np.where((codes < 0) | (codes >= k), k, codes)
    names = [str(i) for i in range(k + 1)]
    size = {"x_range": x_range, "y_range": y_range, "width": int(width), "height": int(height)}
    agg = _grid(count_categories(x, y, codes, n=k + 1, **size), categories=names, **size)
    key = dict(zip(names, [*colors, NO_CATEGORY], strict=True))
    img = tf.shade(agg, color_key=key, how="eq_hist", min_alpha=60)
    if spread:
        img = _dynspread(img, threshold=0.5, max_px=spread)
    return _rgba(img)


def shade_values(x: np.ndarray, y: np.ndarray, values: np.ndarray, *, span: Range,
                 x_range: Range, y_range: Range, width: int = 900, height: int = 600,
                 colorscale: Sequence[str] = VIRIDIS, spread: int = 1) -> np.ndarray:
    """RGBA image of the mean value of the points in each pixel on a linear colour scale over
    `span` (values outside it take the end colours)."""
    import datashader.transfer_functions as tf

    size = {"x_range": x_range, "y_range": y_range, "width": int(width), "height": int(height)}
    agg = _grid(mean_values(x, y, values, **size), **size)
    lo, hi = float(span[0]), float(span[1])
    img = tf.shade(agg.clip(lo, hi), cmap=list(colorscale), how="linear",
                   span=(lo, hi if hi > lo else lo + 1e-6), min_alpha=255)
    if spread:
        img = _dynspread(img, threshold=0.5, max_px=spread)
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
