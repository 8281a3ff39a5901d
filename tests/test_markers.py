"""Marker ranking: planted markers come first, statistics agree with scipy's Mann-Whitney U,
and the prepared index gives the same answer as the plain matrix for either side."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import mannwhitneyu

from analysis.markers import MARKER_COLUMNS, marker_index, rank_markers


def _planted(seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    n, g = 600, 80
    lam = np.full((n, g), 0.6)
    sel = np.zeros(n, dtype=bool)
    sel[:90] = True
    lam[:90, [5, 17, 42]] = 4.0          # planted markers of the selection
    lam[90:, 60] = 4.0                   # higher in the rest: must not rank on top
    counts = rng.poisson(lam)
    x = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4).astype(np.float32)
    return sp.csr_matrix(x), sel, [f"G{i}" for i in range(g)]


def test_planted_markers_rank_first_with_positive_fold_change():
    x, sel, genes = _planted()
    res = rank_markers(x, selected=sel, genes=genes, top=25)
    assert tuple(res.columns) == MARKER_COLUMNS
    assert res.height == 25
    assert set(res.get_column("gene").head(3)) == {"G5", "G17", "G42"}
    top = res.head(3)
    assert (top.get_column("log2_fold_change") > 1).all()
    assert (top.get_column("fdr") < 1e-10).all()
    assert "G60" not in res.get_column("gene").to_list()
    assert res.get_column("rank").to_list() == list(range(1, 26))


def test_statistics_match_scipy_mann_whitney():
    x, sel, genes = _planted(1)
    res = rank_markers(x, selected=sel, genes=genes, top=0)
    dense = x.toarray().astype(np.float64)   # scipy keeps float32 (p underflows to 0)
    for j in (5, 17, 30, 60):
        ref = mannwhitneyu(dense[sel, j], dense[~sel, j], alternative="two-sided",
                           method="asymptotic", use_continuity=False)
        row = res.filter(res.get_column("gene") == f"G{j}")
        assert row.get_column("u_statistic")[0] == pytest.approx(ref.statistic)
        # same z up to rounding; in the far tail p differs by rounding of z only
        assert np.log(row.get_column("p_value")[0]) == pytest.approx(np.log(ref.pvalue),
                                                                     rel=1e-3)


def test_index_and_both_sides_agree_with_plain_matrix():
    x, sel, genes = _planted(2)
    index = marker_index(x, genes=genes)
    for mask in (sel, ~sel):            # small selection, and one larger than the rest
        a = rank_markers(x, selected=mask, genes=genes, top=0).sort("gene")
        b = rank_markers(index, selected=mask, top=0).sort("gene")
        for col in ("u_statistic", "p_value", "mean_selected", "pct_rest"):
            assert np.allclose(a.get_column(col).to_numpy(), b.get_column(col).to_numpy())
    dense = rank_markers(x.toarray(), selected=sel, genes=genes, top=5)
    assert dense.get_column("gene").to_list() == \
        rank_markers(index, selected=sel, top=5).get_column("gene").to_list()


def test_rejects_empty_sides_and_negative_values():
    x, sel, genes = _planted()
    with pytest.raises(ValueError):
        rank_markers(x, selected=np.zeros(x.shape[0], dtype=bool), genes=genes)
    with pytest.raises(ValueError):
        rank_markers(-x.toarray() - 1, selected=sel, genes=genes)


def test_marker_p_values_are_labelled_exploratory_with_patients():
    """600 cells from 3 patients (P0, P1, P2 in turn); the selection is cells 0-89, which
    belong to all 3 patients; the rest (510 cells) to the same 3. The cell-level p-values are
    labelled exploratory with 3 vs 3 patients. Selecting every cell of P0 gives 1 vs 2."""
    from analysis.markers import EXPLORATORY

    x, sel, genes = _planted()
    patients = np.array([f"P{i % 3}" for i in range(x.shape[0])])
    res = rank_markers(x, selected=sel, genes=genes, top=5, patients=patients)
    r = res.row(0, named=True)
    assert (r["n_cells_selected"], r["n_patients_selected"], r["n_patients_rest"]) == (90, 3, 3)
    assert r["evidence"] == EXPLORATORY + " (3 vs 3 patients)"
    one = np.zeros(x.shape[0], dtype=bool)
    one[::3] = True
    r = rank_markers(x, selected=one, genes=genes, top=1, patients=patients).row(0, named=True)
    assert (r["n_patients_selected"], r["n_patients_rest"]) == (1, 2)
    plain = rank_markers(x, selected=sel, genes=genes, top=1).row(0, named=True)
    assert plain["n_patients_selected"] is None and plain["evidence"] == EXPLORATORY
    with pytest.raises(ValueError, match="patients has"):
        rank_markers(x, selected=sel, genes=genes, patients=patients[:10])


def test_gene_only_in_the_selection_has_a_finite_fold_change():
    """A gene expressed only in the selected cells (1.911, 0.809, 0.123): the rest's sum is
    total - selected, computed in single precision, and comes out -9.7e-08 (mean -3.2e-08).
    The mean of the rest must be 0, not negative, so log2 fold change is finite (no NaN)."""
    x = np.zeros((6, 2), dtype=np.float64)
    x[:3, 0] = [1.911, 0.809, 0.123]
    x[:, 1] = [1, 2, 3, 1, 2, 3]
    sel = np.zeros(6, dtype=bool)
    sel[:3] = True
    res = rank_markers(sp.csr_matrix(x), selected=sel, genes=["ONLY_SEL", "FLAT"], top=0)
    row = res.filter(res.get_column("gene") == "ONLY_SEL")
    assert row.get_column("mean_rest").item() >= 0.0
    assert np.isfinite(row.get_column("log2_fold_change").item())
    assert row.get_column("log2_fold_change").item() > 5


def test_every_group_against_the_rest_matches_one_selection_at_a_time(monkeypatch):
    """rank_groups reads the matrix once for all groups (in blocks: 250 cells here, so the
    600 cells take three passes); each group's table is rank_markers of its own mask, with
    patients counted the same way. Unlabelled cells stay in every rest; a group is ordered
    by name."""
    import analysis.markers as markers
    from analysis.markers import GROUP_COLUMNS, rank_groups

    monkeypatch.setattr(markers, "_BLOCK_ROWS", 250)
    x, sel, genes = _planted(3)
    index = marker_index(x, genes=genes)
    labels = np.array(["T"] * 90 + ["B"] * 300 + ["NK"] * 200 + [None] * 10, dtype=object)
    patients = np.array([f"P{i % 3}" for i in range(x.shape[0])])
    patients[90:390] = "P9"                       # every B cell from one patient, only B
    seen: list[float] = []
    res = rank_groups(index, labels=labels, top=10, patients=patients,
                      progress=lambda f, m: seen.append(f))
    assert tuple(res.columns) == GROUP_COLUMNS
    assert res.get_column("group").unique(maintain_order=True).to_list() == ["B", "NK", "T"]
    assert len(seen) == 4 and seen == sorted(seen) and seen[-1] == 1.0
    for name in ("B", "NK", "T"):
        mask = labels == name
        want = rank_markers(index, selected=mask, top=10, patients=patients)
        got = res.filter(res.get_column("group") == name)
        assert got.get_column("gene").to_list() == want.get_column("gene").to_list()
        assert got.get_column("n_cells_group").unique().to_list() == [int(mask.sum())]
        for col in ("u_statistic", "p_value", "fdr", "mean_rest", "pct_selected"):
            assert np.allclose(got.get_column(col).to_numpy(), want.get_column(col).to_numpy())
        for col in ("n_patients_selected", "n_patients_rest", "evidence"):
            assert got.get_column(col).to_list() == want.get_column(col).to_list()
    t = res.filter(res.get_column("group") == "T")
    assert set(t.get_column("gene").head(3)) == {"G5", "G17", "G42"}
    b = res.filter(res.get_column("group") == "B").row(0, named=True)
    assert (b["n_patients_selected"], b["n_patients_rest"]) == (1, 3)   # P9 not in B's rest


def test_a_label_on_every_cell_has_no_rest_and_is_left_out():
    from analysis.markers import rank_groups

    x, _, genes = _planted()
    res = rank_groups(marker_index(x, genes=genes), labels=["all"] * x.shape[0])
    assert res.height == 0 and "group" in res.columns
    with pytest.raises(ValueError, match="labels has 3 entries"):
        rank_groups(marker_index(x, genes=genes), labels=["a", "b", "c"])
