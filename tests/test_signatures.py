"""Signature scores: the mean z and AUCell-style rank scores on hand-checked arrays, the
pseudobulk score, GMT parsing with line-numbered errors, the shipped sets' sources, the planted
interferon signature on the demo (lower in responders after infusion) and the CLI tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from analysis import signatures as sig
from analysis.cohort import response_groups
from data_loaders.gene_sets import parse_gmt, shipped_gene_sets, typed_gene_set

IFN_SETS = ("IFNG_RESPONSE_AYERS2017", "IFNG_RESPONSE_HALLMARK_SUBSET",
            "TYPE_I_IFN_SCORE_RICE2013")


def test_mean_z_is_the_mean_of_gene_z_scores_and_skips_constant_genes():
    rng = np.random.default_rng(0)
    x = rng.poisson(1.0, (30, 5)).astype(float)
    x[:, 4] = 2.0                                   # no spread: left out
    got, used = sig.mean_z_scores(sp.csr_matrix(x), sets=[np.array([0, 1]), np.array([2, 4]),
                                                          np.array([4])])
    z = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1)
    assert np.allclose(got[:, 0], z[:, [0, 1]].mean(1), atol=1e-6)
    assert np.allclose(got[:, 1], z[:, 2], atol=1e-6)
    assert used.tolist() == [2, 1, 0] and np.isnan(got[:, 2]).all()


def test_aucell_rank_score_by_hand():
    # cell 0: genes ranked 3 > 1 > 0 (gene 2 zero); cell 1: only gene 2 expressed
    x = sp.csr_matrix(np.array([[1.0, 2.0, 0.0, 5.0], [0.0, 0.0, 3.0, 0.0]]))
    got = sig.aucell_scores(x, sets=[np.array([3, 0]), np.array([2])], max_rank=2)
    # cell 0, set {3, 0}: gene 3 rank 0 -> 2, gene 0 rank 2 (>= max_rank) -> 0; / (2 * 2)
    assert got[0].tolist() == pytest.approx([0.5, 0.0])
    assert got[1].tolist() == pytest.approx([0.0, 1.0])


def test_pseudobulk_score_is_the_mean_z_of_log_cpm():
    counts = np.array([[10, 0, 90], [20, 20, 60], [5, 5, 90]])
    got = sig.pseudobulk_scores(counts, sets=[np.array([0, 1])])
    lc = np.log2(counts / counts.sum(1, keepdims=True) * 1e6 + 1)
    z = (lc - lc.mean(0)) / lc.std(0)
    assert np.allclose(got[:, 0], z[:, :2].mean(1))


def test_gmt_errors_name_the_line_and_typed_lists_split():
    with pytest.raises(ValueError, match="my.gmt line 2: .*2 tab-separated"):
        parse_gmt("A\tdesc\tCD3E\nB\tonly two\n", name="my.gmt")
    with pytest.raises(ValueError, match="line 2: set 'A' appears twice"):
        parse_gmt("A\td\tX\nA\td\tY\n", name="x")
    assert parse_gmt("\n# comment\nA\td\tX\tY\tX\n")[0].genes == ("X", "Y")
    assert typed_gene_set("CD3E, cd8a\nGZMB").genes == ("CD3E", "cd8a", "GZMB")
    with pytest.raises(ValueError, match="at least one gene"):
        typed_gene_set(" , ")


def test_shipped_sets_cite_their_source():
    sets = {g.name: g for g in shipped_gene_sets()}
    assert {"IFNG_RESPONSE_AYERS2017", "CYTOTOXICITY", "EXHAUSTION", "MEMORY_STEMNESS",
            "TREG", "PROLIFERATION"} <= set(sets)
    for g in sets.values():
        assert len(g.genes) >= 5, g.name
        assert any(str(y) in g.source for y in range(1990, 2030)), g.name   # cites a year
        assert ("complete" in g.source) or ("subset" in g.source.lower()) or \
            ("curated" in g.source.lower()), g.name
    assert sets["IFNG_RESPONSE_AYERS2017"].genes == ("IFNG", "STAT1", "IDO1", "CXCL9",
                                                      "CXCL10", "HLA-DRA")


@pytest.mark.parametrize("method", ["mean_z", "aucell", "pseudobulk"])
def test_interferon_signature_falls_in_responders_on_the_demo(demo_study, method):
    """Planted (sample_data/README.md): ISGs x2 at Screening in everyone, then x4 in
    non-responders and x0.8 in responders after infusion."""
    sets = [g for g in shipped_gene_sets() if g.name in IFN_SETS]
    scores = sig.study_pseudobulk_scores(demo_study, gene_sets=sets) if method == \
        "pseudobulk" else sig.sample_scores(demo_study, gene_sets=sets, method=method)
    groups = response_groups(demo_study).select("subject_id", "response_group")
    s = scores.join(groups, on="subject_id")
    for name in IFN_SETS:
        d28 = s.filter((pl.col("signature") == name) & (pl.col("day") == 28))
        r = d28.filter(pl.col("response_group") == "Responder").get_column("score")
        nr = d28.filter(pl.col("response_group") == "Non-responder").get_column("score")
        assert r.len() == 3 and nr.len() == 2
        assert r.max() < nr.min(), (name, method)
        base = s.filter((pl.col("signature") == name) & (pl.col("day") < 0)
                        & (pl.col("response_group") == "Responder")).sort("subject_id")
        assert (d28.filter(pl.col("response_group") == "Responder").sort("subject_id")
                .get_column("score") < base.get_column("score")).all(), (name, method)
    cmp = sig.compare_signatures(scores, groups=response_groups(demo_study), window="D28")
    row = cmp.filter(pl.col("signature") == "TYPE_I_IFN_SCORE_RICE2013").row(0, named=True)
    assert row["n_a"] == 3 and row["n_b"] == 2 and row["cliffs_delta"] == -1.0
    assert row["p_value"] == pytest.approx(0.2)        # the smallest p 3 vs 2 can give


def test_cell_scores_report_missing_genes(demo_study):
    got = sig.cell_scores(demo_study, gene_sets=[
        g for g in shipped_gene_sets() if g.name == "TYPE_I_IFN_SCORE_RICE2013"])
    row = got.sets.row(0, named=True)
    assert row["missing"] == "SIGLEC1" and row["n_used"] == 5 and row["n_genes"] == 6
    assert got.cells.height == demo_study.single_cell.n_obs
    assert got.cells.get_column("TYPE_I_IFN_SCORE_RICE2013").dtype == pl.Float32


def test_cli_signature_tables(demo_study, capsys, tmp_path):
    import cli

    gmt = tmp_path / "mine.gmt"
    gmt.write_text("ISG_MINI\ttest set\tISG15\tMX1\tIFIT3\n")
    assert cli.main(["table", "--study", str(demo_study.path), "signatures",
                     "--gene-sets", str(gmt), "--cell-type", "CD8 TEM"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("sample_id,subject_id,day,signature,score,n_cells,n_used,method")
    assert len(lines) == 1 + 15 and all(",ISG_MINI," in ln for ln in lines[1:])
    assert cli.main(["table", "--study", str(demo_study.path), "signature_comparison",
                     "--method", "pseudobulk"]) == 0
    assert capsys.readouterr().out.startswith("signature,window,n_a,n_b,")
