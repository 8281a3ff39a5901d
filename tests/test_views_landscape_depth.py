"""views/landscape_depth.py recipes on the demo: two selections compared with each other, violin and
dot plots by cell type x response group, signatures per patient."""

from __future__ import annotations

import polars as pl
import pytest

from analysis.embedding import cell_table
from data_loaders.gene_sets import shipped_gene_sets
from views import landscape_depth as lv


def test_two_selections_compare_a_with_b_not_with_the_rest(demo_study):
    cells = cell_table(demo_study)
    car = tuple(cells.filter(pl.col("cell_type") == "CAR-T")["cell"].to_list())
    cd8 = tuple(cells.filter(pl.col("cell_type") == "CD8 TEM")["cell"].to_list())
    spec = lv.two_selections(demo_study, params=lv.SelectionPair(car + cd8[:5], cd8,
                                                                 ("CAR-T", "CD8 TEM")))
    top = spec.data.get_column("gene").to_list()
    assert top[0] == "CAR" and "CD7" not in top[:5]
    assert spec.params["left_out_in_both"] == 5 and spec.params["a"] == len(car)
    assert {"mean_CAR-T", "mean_CD8 TEM"} <= set(spec.data.columns)
    assert spec.data["evidence"][0].startswith("exploratory")
    # reversed: the CD8 TEM type markers lead and CAR is not among the genes higher in B
    back = lv.two_selections(demo_study, params=lv.SelectionPair(cd8, car)).data
    assert "CD8B" in back.get_column("gene").to_list()[:3]
    assert "CAR" not in back.get_column("gene").to_list()
    with pytest.raises(ValueError, match="both selections"):
        lv.two_selections(demo_study, params=lv.SelectionPair(car, car))


def test_distribution_violins_by_cell_type_and_group_and_dot_summary(demo_study):
    params = lv.DistributionParams(("CD7", "CAR"))
    violin, dots = lv.violins(demo_study, params=params), lv.dot_plot(demo_study, params=params)
    names = {t.name for t in violin.fig.data}
    assert names == {"Responder", "Non-responder"}
    assert len(violin.fig.data) == 4                      # 2 genes x 2 groups
    assert violin.fig.layout.yaxis.title.text.startswith("log-normalised")
    summ = dots.data
    car = summ.filter((pl.col("feature") == "CAR") & pl.col("group").str.starts_with("CAR-T"))
    other = summ.filter((pl.col("feature") == "CAR") & pl.col("group").str.starts_with("B"))
    assert car["fraction"].min() > 0.9 and other["fraction"].max() < 0.05
    assert violin.data.group_by("feature", "cell_type", "response_group").len()["len"].max() \
        <= 2_000


def test_signature_comparison_view(demo_study):
    params = lv.SignatureParams(shipped_gene_sets(), "mean_z")
    fig = lv.signature_scores(demo_study, params=params)
    table = lv.signature_table(demo_study, params=params)
    row = table.data.filter(pl.col("signature") == "TYPE_I_IFN_SCORE_RICE2013").row(
        0, named=True)
    assert row["mean_a"] < row["mean_b"] and row["n_a"] == 3
    assert {t.name for t in fig.fig.data} == {"Responder", "Non-responder"}


def test_page_options_become_params(demo_study):
    names, first = lv.feature_choices(demo_study, kind="Genes")
    assert first == [g for g in ("CD7", "CD3E", "NKG7", "GZMB", "IFNG") if g in names][:3]
    sig_names, sig_first = lv.feature_choices(demo_study, kind="Signatures")
    assert sig_first == sig_names[:2] == [g.name for g in shipped_gene_sets()][:2]
    p = lv.distribution_params(first, kind="Genes", split="Day window")
    assert (p.features, p.kind, p.split) == (tuple(first), "gene", "window")
    assert lv.distribution_params(sig_first, kind="Signatures").kind == "signature"
    assert lv.cell_selection("cell type", "NK") == lv.CellSelection(cell_type="NK")
    assert lv.cell_selection("CAR status", "CAR+") == lv.CellSelection(car_status="CAR+")
    sel = lv.cell_selection("the current selection", None, cells=[3, 1])
    assert sel.cells == (3, 1) and sel.label == "2 selected cells"
    assert set(lv.DESIGNS.values()) == {"groups", "paired"}
    assert lv.DEFAULT_WINDOW in lv.WINDOW_NAMES
    assert lv.signature_method(demo_study) in lv.SIGNATURE_METHODS
    assert lv.other_names(["a", "b", "c"], "b") == ["a", "c"]
    pair = lv.selection_pair({"x": [1, 2], "y": (3,)}, "y", "x")
    assert pair == lv.SelectionPair((3,), (1, 2), ("y", "x"))
