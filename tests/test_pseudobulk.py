"""Pseudobulk DESeq2 with the patient as replicate: summing, the filterByExpr rule, pydeseq2
run by hand on the same summed matrix, a permuted-label control, the cache and the CLI table."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from analysis import pseudobulk as pb
from data_loaders import load_study

N_GENES = 40


def _write_cells(folder, *, counts: bool = True, seed: int = 0) -> None:
    import anndata as ad
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows, obs = [], []
    for i in range(6):
        for day in (-5, 28):
            lam = np.full((60, N_GENES), 2.0) * rng.gamma(20, 1 / 20, N_GENES)
            if day == 28 and i >= 3:
                lam[:, 0] *= 6.0          # planted: G0 up in non-responders at D28
            rows.append(rng.poisson(lam))
            kinds = np.where(np.arange(60) < 40, "CD8 T", "B")
            obs += [{"subject_id": f"P{i + 1}", "sample_id": f"P{i + 1}_D{day}", "day": day,
                     "cell_type": k} for k in kinds]
    x = np.vstack(rows).astype(np.float32)
    frame = pd.DataFrame(obs, index=[f"c{j}" for j in range(len(obs))])
    var = pd.DataFrame(index=[f"G{j}" for j in range(N_GENES)])
    if counts:
        a = ad.AnnData(sp.csr_matrix(np.log1p(x / x.sum(1, keepdims=True) * 1e4)), obs=frame,
                       var=var, layers={"counts": sp.csr_matrix(x)})
    else:
        a = ad.AnnData(sp.csr_matrix(np.log1p(x / x.sum(1, keepdims=True) * 1e4)
                                     .astype(np.float32)), obs=frame, var=var)
    a.write_h5ad(folder / "cells.h5ad")


PATIENTS = "subject_id,response_override\n" + "".join(
    f"P{i},{'CR' if i <= 3 else 'NR'}\n" for i in range(1, 7))


@pytest.fixture
def tiny(write_study):
    folder = write_study(patients=PATIENTS)
    _write_cells(folder)
    return folder


def test_sum_by_group_matches_a_loop_and_refuses_non_counts():
    rng = np.random.default_rng(1)
    x = rng.poisson(1.0, (50, 7))
    codes = rng.integers(-1, 3, 50)
    got = pb.sum_by_group(sp.csr_matrix(x), codes=codes, n_groups=3)
    want = np.stack([x[codes == k].sum(0) for k in range(3)])
    assert got.dtype == np.int64 and np.array_equal(got, want)
    with pytest.raises(ValueError, match="not raw counts"):
        pb.sum_by_group(sp.csr_matrix(np.log1p(x) + 0.5), codes=codes, n_groups=3)


def test_filter_by_expr_follows_the_edger_rule():
    # library sizes 1e6, 2e6, 1e6, 2e6: median 1.5e6, CPM cut-off 10 / 1.5e6 * 1e6 = 6.67
    lib = np.array([1e6, 2e6, 1e6, 2e6])
    cpm = np.array([[7, 7, 0, 0],      # two samples reach it: kept (smallest group 2)
                    [7, 0, 0, 0],      # one sample: dropped
                    [100, 100, 100, 100]])
    counts = np.column_stack([cpm[g] * lib / 1e6 for g in range(3)])
    counts = np.column_stack([counts, lib - counts.sum(1)])      # filler gene
    keep = pb.filter_by_expr(counts, group=["a", "a", "b", "b"])
    assert keep[:3].tolist() == [True, False, True]
    tiny = np.array([[1, 0], [1, 0], [1, 0], [1, 0]]) * np.array([[1, 1]])
    assert not pb.filter_by_expr(tiny + np.array([[0, 100]]), group=["a", "a", "b", "b"])[0]
    # min_total_count: every CPM high but 4 reads in total
    assert not pb.filter_by_expr(np.array([[1, 1], [1, 1], [1, 1], [1, 1]]),
                                 group=["a", "a", "b", "b"])[0]


def test_demo_counts_sum_the_count_layer(demo_study):
    import anndata as ad

    sel = pb.CellSelection(cell_type="CD8 TEM")
    got = pb.pseudobulk_counts(demo_study, selection=sel)
    a = ad.read_h5ad(demo_study.single_cell.path)
    first = got.samples.row(0, named=True)
    rows = ((a.obs["sample_id"] == first["sample_id"]) & (a.obs["cell_type"] == "CD8 TEM"))
    want = np.asarray(a.layers["counts"][rows.to_numpy()].sum(0)).ravel()
    assert first["n_cells"] == int(rows.sum())
    assert np.array_equal(got.counts[0], want.astype(np.int64))
    assert list(got.genes) == list(a.var_names)


@pytest.mark.slow
def test_demo_result_equals_pydeseq2_by_hand_and_permuted_labels_give_no_hits(demo_study):
    """The same summed matrix through pydeseq2 directly: identical log2FC and p. Then the
    responder labels permuted (each group mixes responders and non-responders): no gene
    reaches q < 0.1, while the true labels find the planted interferon genes."""
    import pandas as pd
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    from analysis.cohort import response_groups

    params = pb.PseudobulkParams(selection=pb.CellSelection(cell_type="CD8 TEM"), window="D28")
    counts = pb.pseudobulk_counts(demo_study, selection=params.selection)
    used = pb.choose_samples(counts.samples, params=params, groups=response_groups(demo_study))
    assert used.height == 5 and used.get_column("day").to_list() == [28] * 5
    idx = [counts.samples.get_column("sample_id").to_list().index(s)
           for s in used.get_column("sample_id")]
    m = counts.counts[idx]
    cond = used.get_column("condition").to_list()
    keep = pb.filter_by_expr(m, group=cond)
    genes = [g for g, k in zip(counts.genes, keep, strict=True) if k][:200]
    m = m[:, keep][:, :200]
    ours = pb.deseq2_test(m, genes=genes, subjects=used.get_column("subject_id").to_list(),
                          condition=cond)
    frame = pd.DataFrame(m, index=[f"s{i}" for i in range(5)], columns=genes)
    meta = pd.DataFrame({"condition": cond}, index=frame.index)
    inf = DefaultInference(n_cpus=1)
    dds = DeseqDataSet(counts=frame, metadata=meta, design="~condition", quiet=True,
                       inference=inf)
    dds.deseq2()
    ds = DeseqStats(dds, contrast=["condition", "a", "b"], independent_filter=False,
                    quiet=True, inference=inf)
    ds.summary()
    hand = pl.from_pandas(ds.results_df.reset_index(names="gene"))
    both = ours.join(hand, on="gene")
    assert both.height == len(genes)
    assert np.allclose(both["log2fc"], both["log2FoldChange"], rtol=1e-6, equal_nan=True)
    assert np.allclose(both["p_value"], both["pvalue"], rtol=1e-6, equal_nan=True)
    assert np.allclose(both["q_value"].fill_null(np.nan), both["padj"], rtol=1e-6,
                       equal_nan=True)
    hits = ours.filter(pl.col("q_value") < 0.1).get_column("gene").to_list()
    assert {"STAT1", "IFI27"} <= set(hits)              # planted: ISGs lower in responders
    assert ours.filter(pl.col("gene") == "STAT1").get_column("log2fc")[0] < 0
    # permuted labels: {SAA-001, SAA-002, SAA-004} vs {SAA-003, SAA-005}
    perm = ["a" if s in ("SAA-001", "SAA-002", "SAA-004") else "b"
            for s in used.get_column("subject_id")]
    control = pb.deseq2_test(m, genes=genes, subjects=used.get_column("subject_id").to_list(),
                             condition=perm)
    assert control.filter(pl.col("q_value") < 0.1).height == 0


def test_study_test_groups_paired_cache_and_cli(tiny, capsys):
    import cli

    study = load_study(tiny)
    params = pb.PseudobulkParams(selection=pb.CellSelection(cell_type="CD8 T"), window="D28")
    assert pb.cached_result(study, params=params) is None
    seen = []
    res = pb.pseudobulk_de(study, params=params, progress=lambda f, m: seen.append(f))
    assert not res.from_cache and seen and max(seen) == 1.0
    t = res.table
    assert list(t.columns[:2]) == ["gene", "n_a"] and t.row(0, named=True)["gene"] == "G0"
    assert t.get_column("n_a").to_list()[0] == 3 and t.get_column("n_b").to_list()[0] == 3
    assert t.get_column("log2fc")[0] < -1.5          # log2(R / NR): lower in responders
    assert t.get_column("p_value").is_sorted(nulls_last=True)
    again = pb.pseudobulk_de(load_study(tiny), params=params)
    assert again.from_cache and again.table.equals(t)
    paired = pb.pseudobulk_de(study, params=pb.PseudobulkParams(
        selection=pb.CellSelection(cell_type="CD8 T"), design="paired"))
    assert paired.samples.height == 12 and paired.table.get_column("n_a")[0] == 6
    assert cli.main(["table", "--study", str(tiny), "pseudobulk", "--cell-type", "CD8 T",
                     "--window", "D28"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("gene,n_a,n_b,") and out[1].startswith("G0,3,3,")
    assert cli.main(["table", "--study", str(tiny), "pseudobulk", "--cell-type", "CD8 T",
                     "--paired"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split(",")[1] == "6"


def test_too_few_patients_and_no_counts_are_refused(write_study):
    folder = write_study(patients=PATIENTS)
    _write_cells(folder, counts=False)
    study = load_study(folder)
    with pytest.raises(ValueError, match="no raw count matrix.*never sum log-normalised"):
        pb.pseudobulk_de(study)
    folder2 = write_study(patients=PATIENTS)
    _write_cells(folder2)
    with pytest.raises(ValueError, match="at least 2 in each"):
        pb.pseudobulk_de(load_study(folder2), params=pb.PseudobulkParams(min_cells=1000))


def test_selection_mask_combines_criteria():
    cells = pl.DataFrame({"cell": [0, 1, 2, 3], "cell_type": ["A", "A", "B", None],
                          "car_positive": [True, False, True, None]})
    assert pb.CellSelection(cell_type="A").mask(cells).tolist() == [True, True, False, False]
    assert pb.CellSelection(car_status="CAR-").mask(cells).tolist() == [False, True, False,
                                                                        True]
    assert pb.CellSelection(cell_type="A", cells=(1, 2)).mask(cells).tolist() == [
        False, True, False, False]


def test_filters_come_from_the_rule_settings(tiny):
    from analysis.rules import rules_for

    study = load_study(tiny)
    p = pb.params_for(study, rules=rules_for(study).with_(pseudobulk_min_cells=45,
                                                          pseudobulk_min_count=5),
                      window="D28", selection=pb.CellSelection(cell_type="CD8 T"))
    assert (p.min_cells, p.min_count, p.min_total_count) == (45, 5, 15)
    with pytest.raises(ValueError, match="0 and 0 patient"):      # 40 CD8 T cells per sample
        pb.pseudobulk_de(study, params=p)


def test_real_h5mu_counts_in_x_are_summed_per_sample(shared_data, tmp_path):
    """Wu et al. 2020 (200-cell cut): X holds the raw counts; every expressed cell's counts
    land in its sample, and the colour units say they were normalised from counts."""
    import shutil

    from analysis.signatures import expression_units

    folder = tmp_path / "wu"
    folder.mkdir()
    shutil.copy(shared_data / "scrna_tcr" / "wu2020_200.h5mu", folder)
    study = load_study(folder)
    got = pb.pseudobulk_counts(study)
    total = sum(int(b.sum()) for _, _, b in study.single_cell.blocks("counts"))
    assert got.counts.sum() == total and got.samples["n_cells"].sum() == study.single_cell.n_obs
    assert np.array_equal(got.samples["library_size"].to_numpy(), got.counts.sum(axis=1))
    assert "ln(1+CP10k)" in expression_units(study)


def test_cohort_patients_limit_the_test(tiny):
    from analysis.cohort import Cohort
    from views.landscape_depth import cohort_params

    study = load_study(tiny)
    p = cohort_params(study, cohort=Cohort(subjects=("P1", "P2", "P4", "P5")), window="D28")
    assert p.subjects == ("P1", "P2", "P4", "P5")
    counts = pb.pseudobulk_counts(study)
    from analysis.cohort import response_groups

    used = pb.choose_samples(counts.samples, params=p, groups=response_groups(study))
    assert used.get_column("subject_id").to_list() == ["P1", "P2", "P4", "P5"]
    assert cohort_params(study, cohort=Cohort(), window="D28").subjects == ()
