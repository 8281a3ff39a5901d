"""FlowSOM metaclusters and their composition, and the cytometry figure factories."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest

from analysis.flow import (
    FlowSomParams,
    flowsom_clusters,
    metacluster_composition,
    metacluster_names,
)
from components.figures import cytometry as figs


def _events(n: int = 600, seed: int = 0) -> pl.DataFrame:
    """Two samples; a CD3+ CD7- population only in the second."""
    rng = np.random.default_rng(seed)
    frames = []
    for sid, day, frac in (("S1", -5, 0.0), ("S2", 28, 0.5)):
        k = int(n * frac)
        cd3 = np.r_[rng.normal(4, 0.3, k), rng.normal(0.5, 0.3, n - k)]
        cd7 = np.r_[rng.normal(0.3, 0.3, k), rng.normal(4, 0.3, n - k)]
        frames.append(pl.DataFrame({"sample_id": [sid] * n, "subject_id": ["P1"] * n,
                                    "day": [day] * n, "CD3": cd3, "CD7": cd7}))
    return pl.concat(frames)


def test_flowsom_separates_populations_and_abundance_is_a_composition():
    ev = _events()
    res = flowsom_clusters(ev, params=FlowSomParams(("CD3", "CD7"), n_metaclusters=2,
                                                    xdim=4, ydim=4, per_sample=600))
    assert res.labels.size == ev.height and set(res.labels.tolist()) == {1, 2}
    names = res.medians.get_column("name").to_list()
    assert any("CD3+" in n and "CD7-" in n for n in names)
    comp = metacluster_composition(res)
    assert {"sample_id", "subject_id", "day", "cell_type", "n_cells", "fraction"} <= set(
        comp.columns)
    by = comp.group_by("sample_id").agg(pl.col("fraction").sum())
    assert by.get_column("fraction").to_list() == pytest.approx([1.0, 1.0])
    cd7neg = next(n for n in names if "CD7-" in n)
    s1 = comp.filter((pl.col("sample_id") == "S1") & (pl.col("cell_type") == cd7neg))
    s2 = comp.filter((pl.col("sample_id") == "S2") & (pl.col("cell_type") == cd7neg))
    assert s1.get_column("fraction")[0] == 0.0
    assert s2.get_column("fraction")[0] == pytest.approx(0.5, abs=0.02)


def test_flowsom_subsamples_per_sample():
    ev = _events(n=500)
    res = flowsom_clusters(ev, params=FlowSomParams(("CD3", "CD7"), n_metaclusters=3,
                                                    xdim=3, ydim=3, per_sample=100))
    assert res.events.group_by("sample_id").len().get_column("len").to_list() == [100, 100]
    with pytest.raises(ValueError, match="two markers"):
        flowsom_clusters(ev, params=FlowSomParams(("CD3",)))


def test_metacluster_names():
    name = metacluster_names(np.array([9.0, 0.0, 5.0]), markers=["CD3", "CD7", "CD4"],
                             lo=np.zeros(3), hi=np.full(3, 10.0), number=4)
    assert name == "MC4 CD3+ CD7-"


def test_gate_plot_bivariate_and_histogram():
    df = pl.DataFrame({"x": [0.1, 0.5, 0.9], "y": [0.2, 0.6, 0.8],
                       "inside": [False, True, True]})
    poly = {"kind": "polygon", "x": [0.3, 1.0, 1.0, 0.3], "y": [0.3, 0.3, 1.0, 1.0]}
    fig = figs.gate_plot(df, shape=poly, count=2, parent_count=3, title="/A",
                         labels={"x": "FITC-A CD3 (logicle)", "y": "PE-A CD7"})
    assert isinstance(fig, go.Figure)
    assert [t.type for t in fig.data] == ["scattergl", "scattergl", "scatter"]
    assert len(fig.data[2].x) == 5                      # closed outline
    assert fig.layout.xaxis.title.text == "FITC-A CD3 (logicle)"
    assert "66.67% of parent" in fig.layout.annotations[0].text
    hist = figs.gate_plot(df.drop("y"), y=None, shape={"kind": "rectangle", "min": [0.4],
                                                         "max": [None]},
                          count=2, parent_count=3)
    assert [t.type for t in hist.data] == ["bar", "bar", "scatter"]   # one line: open above
    assert hist.layout.yaxis.title.text == "events"


def test_gate_outline_shapes():
    rect = figs.gate_outline({"kind": "rectangle", "min": [1, None], "max": [2, 5]},
                             x_range=(0, 10), y_range=(-1, 9))
    assert rect == [([1, 2, 2, 1, 1], [-1, -1, 5, 5, -1])]
    ell = figs.gate_outline({"kind": "ellipse", "center": [0, 0], "covariance": [[4, 0], [0, 1]],
                             "distance_square": 1.0}, x_range=(-5, 5), y_range=(-5, 5))
    xs, ys = ell[0]
    assert max(xs) == pytest.approx(2.0) and max(ys) == pytest.approx(1.0, abs=1e-3)
    quad = figs.gate_outline({"kind": "quadrant", "dividers": [[3.0], [4.0]]},
                             x_range=(0, 10), y_range=(0, 8))
    assert quad == [([3.0, 3.0], [0, 8]), ([0, 10], [4.0, 4.0])]


def test_small_multiples_share_one_scale_and_show_percentages():
    df = pl.DataFrame({"x": [0.1, 0.5, 2.0, 3.0], "inside": [False, True, False, True],
                       "panel": ["D0", "D0", "D28", "D28"]})
    stats = pl.DataFrame({"panel": ["D0", "D28"], "count": [1, 1], "parent_count": [2, 4]})
    shape = {"kind": "rectangle", "min": [0.4], "max": [None]}
    fig = figs.gate_small_multiples(df, y=None, facet_col="panel",
                                    shapes={"D0": shape, "D28": shape}, stats=stats)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["D0: 50.00% (1)", "D28: 25.00% (1)"]
    assert fig.layout.xaxis.range == fig.layout.xaxis2.range


def test_cluster_heatmap():
    med = pl.DataFrame({"metacluster": [1, 2], "n_events": [30, 70], "CD3": [1.0, 4.0],
                        "CD7": [3.0, 0.5], "name": ["MC1 CD7+", "MC2 CD3+"]})
    fig = figs.cluster_heatmap(med, markers=["CD3", "CD7"])
    assert fig.data[0].type == "heatmap" and list(fig.data[0].x) == ["CD3", "CD7"]
    assert fig.data[0].y[1] == "MC2 CD3+ (70.0%)"
    assert np.asarray(fig.data[0].z).max() == 1.0
