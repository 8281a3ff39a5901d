"""The embedding of millions of cells as a server-side raster (views/landscape_raster.py,
components/figures/raster.py): an image for a generated 2M-cell study, points with hover after
zooming in, selections tested against every cell in data coordinates."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest

from analysis import embedding as emb
from data_loaders import load_study
from data_loaders.study import Study
from sample_data.many_cells import write_many_cells
from views import landscape as lv
from views import landscape_raster as lr


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Study:
    folder = tmp_path_factory.mktemp("raster") / "syn"
    write_many_cells(folder, cells=2_000_000, genes=40, nnz=5, patients=20)
    return load_study(folder)


def _image(spec: object) -> np.ndarray:
    from PIL import Image

    images = spec.fig.layout.images  # type: ignore[attr-defined]
    assert len(images) == 1 and images[0].xref == "x" and images[0].yref == "y"
    src = images[0].source
    assert src.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


def _params(**kw: object) -> lr.RasterParams:
    return lr.RasterParams(lv.LandscapeParams(lv.RNA, "X_umap", **kw))  # type: ignore[arg-type]


@pytest.mark.slow
def test_two_million_cells_are_drawn_as_one_image_of_every_cell(big: Study) -> None:
    assert lr.use_raster(big)
    spec = lr.raster(big, params=_params())
    rgba = _image(spec)
    assert rgba.shape == (600, 900, 4)
    drawn = rgba[..., 3] > 0
    assert 0.1 < drawn.mean() < 0.9                 # the blobs, not an empty or full frame
    colours = {tuple(c) for c in rgba[drawn][::50, :3]}
    assert len(colours) > 12                        # twelve cell types mixed at the edges
    assert spec.data.get_column("cells_in_window").sum() == 2_000_000
    legend = [t.name for t in spec.fig.data if t.showlegend is not False and t.name]
    assert len(legend) == 12 and "CD8 T" in legend
    assert "2,000,000 cells" in spec.caption and spec.view.endswith("landscape_raster.raster")


@pytest.mark.slow
def test_colour_by_a_gene_draws_the_mean_per_pixel_with_its_units(big: Study) -> None:
    spec = lr.raster(big, params=_params(color_by="Gene", gene="G0001"))
    _image(spec)
    bars = [t for t in spec.fig.data if getattr(t.marker, "showscale", False)]
    assert len(bars) == 1 and "G0001" in bars[0].marker.colorbar.title.text
    assert spec.data.get_column("cells_in_window")[0] == 2_000_000


@pytest.mark.slow
def test_zooming_in_gives_points_with_hover_and_their_cells(big: Study) -> None:
    x_range, y_range = (9.0, 10.5), (-0.5, 0.5)
    spec = lr.raster(big, params=lr.zoomed(_params(), x_range=x_range, y_range=y_range))
    assert not spec.fig.layout.images
    coords = emb.load_embedding(big, basis="X_umap").coords
    expect = np.flatnonzero(emb.in_window(coords, x_range=x_range, y_range=y_range))
    assert 0 < expect.size <= lr.POINTS_BELOW
    cells = np.concatenate([np.asarray(t.customdata).ravel() for t in spec.fig.data
                            if t.customdata is not None])
    assert np.array_equal(np.sort(cells.astype(np.int64)), expect)
    drawn = [t for t in spec.fig.data if t.customdata is not None]
    assert all("%{text}" in t.hovertemplate for t in drawn)
    cell = int(np.asarray(drawn[0].customdata)[0])
    row = lr._cells(big, None, "X_umap")[0].row(cell, named=True)
    assert drawn[0].text[0].split("<br>")[:2] == [row["cell_type"], row["subject_id"]]
    assert drawn[0].text[0].split("<br>")[2].startswith("day ")
    assert list(spec.fig.layout.xaxis.range) == list(x_range)
    assert "as points" in spec.caption
    panned = lr.raster(big, params=lr.RasterParams(_params().landscape, x_range, y_range,
                                                   dragmode="pan"))
    assert panned.fig.layout.dragmode == "pan"


@pytest.mark.slow
def test_a_zoomed_raster_keeps_each_categorys_colour(big: Study) -> None:
    def legend(spec: object) -> dict[str, str]:
        return {t.name: t.marker.color for t in spec.fig.data  # type: ignore[attr-defined]
                if t.showlegend is not False and t.name}

    every = legend(lr.raster(big, params=_params()))
    part = legend(lr.raster(big, params=lr.zoomed(_params(), x_range=(2.0, 15.0),
                                                   y_range=(-6.5, 6.5))))
    assert 2 <= len(part) < len(every)              # only the types in the window
    assert all(every[name] == colour for name, colour in part.items())
    points = lr.raster(big, params=lr.zoomed(_params(), x_range=(9.0, 10.5),
                                             y_range=(-0.5, 0.5)))
    drawn = {t.name: t.marker.color for t in points.fig.data if t.customdata is not None}
    assert drawn and all(every[name] == colour for name, colour in drawn.items())


@pytest.mark.slow
def test_a_lasso_selects_every_cell_inside_not_only_drawn_ones(big: Study) -> None:
    from matplotlib.path import Path as MplPath

    lasso = {"x": [8.0, 12.5, 11.0, 7.5], "y": [-2.0, -1.0, 2.5, 1.0]}
    got = lr.selected_in(big, params=_params(), event={"selection": {"lasso": [lasso],
                                                                     "box": []}})
    coords = emb.load_embedding(big, basis="X_umap").coords
    inside = MplPath(np.column_stack([lasso["x"], lasso["y"]])).contains_points(coords)
    assert len(got) == int(inside.sum()) > 50_000
    assert np.array_equal(np.asarray(got), np.flatnonzero(inside))
    box = lr.selected_in(big, params=_params(), event={"selection": {
        "box": [{"x": [9.0, 10.5], "y": [0.5, -0.5]}], "lasso": []}})
    assert len(box) == int(emb.in_window(coords, x_range=(9, 10.5), y_range=(-0.5, 0.5)).sum())


def test_a_box_on_the_chart_is_the_window_to_zoom_to() -> None:
    assert lr.window_of({"selection": {"box": [{"x": [3, 1], "y": [0, 2]}]}}) == \
        ((1.0, 3.0), (0.0, 2.0))
    assert lr.window_of({"selection": {"box": [], "lasso": []}}) is None
    assert lr.window_of(None) is None


def test_a_zoom_pan_or_reset_of_the_chart_is_the_next_window() -> None:
    here = ((0.0, 1.0), (0.0, 1.0))
    assert lr.next_window({"x": [3, 1.5], "y": [-2, 2]}, current=here) == \
        ((1.5, 3.0), (-2.0, 2.0))
    assert lr.next_window({"reset": True}, current=here) is None
    assert lr.next_window(None, current=here) == here
    assert lr.next_window({}, current=None) is None
    for bad in ({"x": [1, 1], "y": [0, 2]}, {"x": [0, "a"], "y": [0, 2]},
                {"x": [0, float("nan")], "y": [0, 2]}, {"x": [0, 1]}, {"x": 3, "y": [0, 1]}):
        assert lr.next_window(bad, current=here) == here, bad


def test_the_redrawn_chart_keeps_the_tool_in_use() -> None:
    assert lr.dragmode_after({"x": [0, 1], "y": [0, 1], "dragmode": "pan"},
                             current="zoom") == "pan"
    assert lr.dragmode_after({"reset": True}, current="pan") == "pan"
    assert lr.dragmode_after({"dragmode": "drawline"}, current="zoom") == "zoom"
    assert lr.dragmode_after(None, current="lasso") == "lasso"


def test_the_thresholds_are_study_settings(write_study) -> None:
    from analysis.rules import rules_for

    folder = write_study(**{"study.toml": "[rules]\nraster_above = 10\n"
                                          "raster_points_below = 5\n"})
    rules = rules_for(load_study(folder))
    assert (rules.raster_above, rules.raster_points_below) == (10, 5)
    assert (lr.RASTER_ABOVE, lr.POINTS_BELOW) == (1_000_000, 50_000)


def test_in_polygon_agrees_with_matplotlib() -> None:
    from matplotlib.path import Path as MplPath

    rng = np.random.default_rng(3)
    pts = rng.uniform(-1, 1, (20_000, 2)).astype(np.float32)
    star = np.array([[np.cos(a) * r, np.sin(a) * r] for a, r in zip(
        np.linspace(0, 2 * np.pi, 10, endpoint=False), [0.9, 0.3] * 5, strict=True)])
    ours = emb.in_polygon(pts, xs=star[:, 0], ys=star[:, 1])
    theirs = MplPath(star).contains_points(pts)
    assert ours.sum() > 1000 and (ours != theirs).sum() <= 2     # points on an edge may differ


def test_the_demo_is_drawn_as_points(demo_dir: Path) -> None:
    assert not lr.use_raster(load_study(demo_dir))


def test_cells_without_a_category_are_grey_as_points_too(demo_dir: Path) -> None:
    import polars as pl

    from components.figures import landscape as figs
    from components.figures import raster as rfig

    study = load_study(demo_dir)
    cats = pl.Series(["B cell", "T cell", None], dtype=pl.String)
    colors = lr._palette(study, None, "X_umap", "cell_type", cats)
    assert colors["NA"] == rfig.NO_CATEGORY
    pts = pl.DataFrame({"x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 2.0], "cell": [0, 1, 2],
                        "cell_type": cats})
    fig = figs.embedding_scatter(pts, colors=colors)
    drawn = {t.name: t.marker.color for t in fig.data if t.customdata is not None}
    assert drawn["NA"] == rfig.NO_CATEGORY
    assert drawn["NA"] != drawn["B cell"]
