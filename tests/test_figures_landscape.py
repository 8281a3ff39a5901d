"""Landscape figure factories: expressing cells drawn last, cell-type labels at the median,
colourbar titles with units, volcano, violin and dot plot structure."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest

from components.figures import landscape as figs


def _cells(n: int = 300) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    types = np.array(["B", "NK", "T"])[np.arange(n) % 3]
    centre = {"B": (0, 0), "NK": (10, 0), "T": (0, 10)}
    x = np.array([centre[t][0] for t in types]) + rng.normal(0, 1, n)
    y = np.array([centre[t][1] for t in types]) + rng.normal(0, 1, n)
    expr = np.where(rng.random(n) < 0.3, rng.gamma(2, 1, n), 0.0)
    expr[5] = np.nan
    return pl.DataFrame({"cell": np.arange(n), "x": x, "y": y, "cell_type": types,
                         "expression": expr})


def test_continuous_colour_draws_expressing_cells_last_with_units():
    df = _cells()
    fig = figs.embedding_scatter(df, color="expression", continuous=True,
                                 colorbar_title="CD7<br>ln(1+CP10k)")
    tr = fig.data[0]
    vals = np.asarray(tr.marker.color, dtype=float)
    assert np.isnan(vals[0])                                 # missing first (underneath)
    finite = vals[np.isfinite(vals)]
    assert np.all(np.diff(finite) >= 0)
    assert finite[-1] == pytest.approx(np.nanmax(df["expression"]), rel=1e-6)
    cells = np.asarray(tr.customdata)
    assert df.filter(pl.col("cell") == int(cells[-1]))["expression"][0] == \
        pytest.approx(finite[-1], rel=1e-6)
    assert tr.marker.colorbar.title.text == "CD7<br>ln(1+CP10k)"


def test_labels_at_the_median_of_each_cell_type():
    df = _cells()
    fig = figs.embedding_scatter(df, color="cell_type", labels="cell_type")
    notes = {a.text: (a.x, a.y) for a in fig.layout.annotations}
    assert set(notes) == {"B", "NK", "T"}
    nk = df.filter(pl.col("cell_type") == "NK")
    assert notes["NK"] == (nk["x"].median(), nk["y"].median())
    assert not figs.embedding_scatter(df, color="cell_type").layout.annotations


def test_volcano_colours_significant_genes_and_names_the_top():
    df = pl.DataFrame({"gene": ["A", "B", "C", "D"], "log2fc": [2.0, -3.0, 0.1, None],
                       "p_value": [1e-6, 1e-4, 0.5, 0.1], "q_value": [1e-5, 0.01, 0.8, 0.3]})
    fig = figs.volcano_figure(df, top_labels=2)
    assert [t.name for t in fig.data] == ["not significant: 1", "up (q < 0.1): 1",
                                          "down (q < 0.1): 1"]
    assert [a.text for a in fig.layout.annotations] == ["A", "B"]
    assert fig.data[1].y[0] == pytest.approx(6.0)


def test_violin_one_trace_per_group_and_panel_and_dot_plot_sizes():
    rng = np.random.default_rng(1)
    df = pl.DataFrame({"cell_type": ["T", "NK"] * 50, "value": rng.random(100),
                       "response_group": ["Responder"] * 60 + ["Non-responder"] * 40,
                       "feature": ["CD7"] * 50 + ["GZMB"] * 50})
    fig = figs.violin_figure(df, color="response_group", facet_col="feature",
                             category_orders={"response_group": ["Responder",
                                                                 "Non-responder"]},
                             labels={"value": "ln(1+CP10k)"})
    assert all(isinstance(t, go.Violin) for t in fig.data)
    assert len(fig.data) == 3            # CD7: R only; GZMB: R and NR
    assert fig.layout.yaxis.title.text == "ln(1+CP10k)"
    summ = pl.DataFrame({"feature": ["CD7", "CD7"], "group": ["T | R", "NK | R"],
                         "mean": [1.0, 0.2], "fraction": [1.0, 0.25]})
    dots = figs.dot_plot(summ, colorbar_title="mean<br>ln(1+CP10k)")
    sizes = list(dots.data[0].marker.size)
    assert sizes[0] > sizes[1] and dots.data[0].marker.colorbar.title.text.endswith("CP10k)")
    assert [t.name for t in dots.data[1:]] == ["25% of cells", "50% of cells", "100% of cells"]


def test_composition_bars_label_each_sample_and_keep_the_legend_outside():
    """Each bar names its patient and sample (no clipped two-level axis), patients are
    separated by lines, and the legend sits right of the plot with room for every type."""
    import polars as pl

    from components.figures.landscape import composition_bars

    rows = [(p, tp, d, ct, f) for p, base in (("SAA-001", 0), ("SAA-002", 1))
            for tp, d in (("Screening", -12), ("D28", 28), ("M3", 90))
            for ct, f in ((f"type {k}", 1 / 12) for k in range(12))]
    comp = pl.DataFrame(rows, schema=["subject_id", "sample_label", "day", "cell_type",
                                      "fraction"], orient="row").with_columns(n_cells=pl.lit(10))
    fig = composition_bars(comp)
    assert len(fig.data) == 12
    assert list(fig.layout.xaxis.categoryarray) == [
        "SAA-001<br>Screening", "SAA-001<br>D28", "SAA-001<br>M3",
        "SAA-002<br>Screening", "SAA-002<br>D28", "SAA-002<br>M3"]
    assert not isinstance(fig.data[0].x[0], (list, tuple))        # one level, not clipped
    assert [s.x0 for s in fig.layout.shapes] == [2.5]              # between the patients
    assert fig.layout.legend.x >= 1.0 and fig.layout.legend.xanchor == "left"
    assert fig.layout.height >= 21 * 12 + 190                      # room for 12 entries
    many = composition_bars(pl.concat([comp.with_columns(
        subject_id=pl.lit(f"P{i:03d}")) for i in range(20)]))
    assert many.layout.xaxis.tickangle == -90
    assert many.layout.xaxis.categoryarray[0] == "P000 Screening"
