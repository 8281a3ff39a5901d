"""The raster's aggregation (components/figures/raster.py) done in numpy gives datashader's own
`Canvas.points` counts and means pixel for pixel: points on the edges, outside the window and
NaN included, so the numba kernel datashader would compile on a cold page is not needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.figures import raster as rfig


def _points(n: int = 60_000, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1.2, n).astype(np.float32)
    y = rng.normal(0, 1.0, n).astype(np.float32)
    # exactly on the edges, outside, NaN
    x[:6] = [-2.0, 2.0, 2.0, -2.0, 0.0, np.nan]
    y[:6] = [-1.5, 1.5, -1.5, 1.5, np.nan, 0.0]
    return x, y


WINDOWS = [((-2.0, 2.0), (-1.5, 1.5), 90, 60), ((-0.3, 0.7), (-0.2, 0.25), 37, 23)]


@pytest.mark.parametrize(("x_range", "y_range", "width", "height"), WINDOWS)
def test_category_counts_are_datashaders(x_range, y_range, width, height) -> None:
    import datashader as ds

    x, y = _points()
    codes = np.random.default_rng(5).integers(0, 4, x.size)
    frame = pd.DataFrame({"x": x, "y": y,
                          "c": pd.Categorical.from_codes(codes, ["a", "b", "c", "d"])})
    theirs = ds.Canvas(plot_width=width, plot_height=height, x_range=x_range,
                       y_range=y_range).points(frame, "x", "y", agg=ds.count_cat("c"))
    ours = rfig.count_categories(x, y, codes, n=4, x_range=x_range, y_range=y_range,
                                 width=width, height=height)
    assert ours.shape == theirs.shape and ours.sum() > 1000
    assert np.array_equal(ours, theirs.values)


@pytest.mark.parametrize(("x_range", "y_range", "width", "height"), WINDOWS)
def test_category_counts_in_blocks_are_datashaders(x_range, y_range, width, height,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import datashader as ds

    # two categories a block: blocks, a last short one and codes outside 0..n-1 not counted
    monkeypatch.setattr(rfig, "_COUNT_BLOCK_BYTES", 8 * width * height * 2)
    x, y = _points()
    codes = np.random.default_rng(6).integers(-1, 8, x.size)
    names = [str(i) for i in range(7)]
    keep = (codes >= 0) & (codes < 7)
    frame = pd.DataFrame({"x": x[keep], "y": y[keep],
                          "c": pd.Categorical.from_codes(codes[keep], names)})
    theirs = ds.Canvas(plot_width=width, plot_height=height, x_range=x_range,
                       y_range=y_range).points(frame, "x", "y", agg=ds.count_cat("c"))
    ours = rfig.count_categories(x, y, codes, n=7, x_range=x_range, y_range=y_range,
                                 width=width, height=height)
    assert ours.dtype == np.uint32 and ours.shape == theirs.shape and ours.sum() > 1000
    assert np.array_equal(ours, theirs.values)


def test_many_categories_are_counted_without_int64_copies_of_the_image() -> None:
    import tracemalloc

    x, y = _points(20_000)
    n, width, height = 150, 300, 200                 # 150 patients
    codes = np.random.default_rng(7).integers(0, n, x.size)
    result = width * height * n * 4                  # the uint32 counts themselves
    tracemalloc.start()
    try:
        counts = rfig.count_categories(x, y, codes, n=n, x_range=(-2, 2), y_range=(-1.5, 1.5),
                                       width=width, height=height)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    every = rfig.count_categories(x, y, np.zeros(x.size, int), n=1, x_range=(-2, 2),
                                  y_range=(-1.5, 1.5), width=width, height=height)
    assert np.array_equal(counts.sum(axis=2), every[:, :, 0]) and every.sum() > 10_000
    # one int64 count of the whole image and categories alone would be 2x the result
    assert peak < result + rfig._COUNT_BLOCK_BYTES * 1.2 < 3 * result


@pytest.mark.parametrize(("x_range", "y_range", "width", "height"), WINDOWS)
def test_pixel_means_are_datashaders(x_range, y_range, width, height) -> None:
    import datashader as ds

    x, y = _points()
    v = np.random.default_rng(6).gamma(2.0, 1.0, x.size).astype(np.float32)
    v[::97] = np.nan
    theirs = ds.Canvas(plot_width=width, plot_height=height, x_range=x_range,
                       y_range=y_range).points(pd.DataFrame({"x": x, "y": y, "v": v}), "x", "y",
                                               agg=ds.mean("v"))
    ours = rfig.mean_values(x, y, v, x_range=x_range, y_range=y_range, width=width,
                            height=height)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs.values))
    assert np.allclose(ours, theirs.values, rtol=1e-5, equal_nan=True)


def test_every_point_inside_takes_the_no_mask_path_and_counts_all() -> None:
    x, y = _points()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    window = ((float(x.min()), float(x.max())), (float(y.min()), float(y.max())))
    counts = rfig.count_categories(x, y, np.zeros(x.size, int), n=1, x_range=window[0],
                                   y_range=window[1], width=50, height=40)
    assert counts.sum() == x.size
    # a code outside 0..n-1 is not counted
    codes = np.zeros(x.size, int)
    codes[:10] = 7
    assert rfig.count_categories(x, y, codes, n=1, x_range=window[0], y_range=window[1],
                                 width=50, height=40).sum() == x.size - 10


def test_images_are_shaded_from_the_numpy_aggregates() -> None:
    x, y = _points()
    codes = np.random.default_rng(5).integers(0, 3, x.size)
    rgba = rfig.shade_categories(x, y, codes, colors=["#ff0000", "#00ff00", "#0000ff"],
                                 x_range=(-2, 2), y_range=(-1.5, 1.5), width=90, height=60)
    assert rgba.shape == (60, 90, 4) and (rgba[..., 3] > 0).mean() > 0.3
    rgba = rfig.shade_values(x, y, np.abs(x), span=(0.0, 2.0), x_range=(-2, 2),
                             y_range=(-1.5, 1.5), width=90, height=60)
    assert rgba.shape == (60, 90, 4)
    # the column of x near 0 is dark (low values), the edges bright
    assert rgba[30, 45, :3].astype(int).sum() < rgba[30, 2, :3].astype(int).sum()


@pytest.mark.parametrize("n", [0, 30, 60_000])
def test_spreading_is_datashaders(n: int) -> None:
    """Sparse images are spread by one pixel, dense ones kept, as tf.dynspread decides."""
    import datashader.transfer_functions as tf

    x, y = _points(max(n, 10))
    x, y = x[:n], y[:n]
    agg = rfig._grid(rfig.count_categories(x, y, np.zeros(n, int), n=1, x_range=(-2, 2),
                                           y_range=(-1.5, 1.5), width=90, height=60),
                     categories=["0"], x_range=(-2, 2), y_range=(-1.5, 1.5), width=90,
                     height=60)
    img = tf.shade(agg, color_key={"0": "#ff0000"}, how="eq_hist", min_alpha=60)
    ours = rfig._dynspread(img, threshold=0.5, max_px=1)
    theirs = tf.dynspread(img, threshold=0.5, max_px=1)
    assert np.array_equal(np.asarray(ours.data), np.asarray(theirs.data))
    for px in (1, 2, 4):
        assert rfig._density(img, px) == pytest.approx(tf._rgb_density(img.data, px))
