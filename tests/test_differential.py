"""The comparison engine: windows, groups, exact/permutation/asymptotic p-values against scipy,
effect sizes, the too-few-patients path, planted effects of the demo and of a larger generated
cohort, a permuted control, pydeseq2 against a direct run, and the `compare` command."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from analysis import differential as dif
from analysis.cohort import NON_RESPONDER, RESPONDER

ROOT = Path(__file__).resolve().parent.parent
IFN_PROTEINS = ("IFNG", "CXCL9", "CXCL10")


@pytest.fixture(scope="module")
def cohort20(tmp_path_factory):
    """20 generated patients (same generator as the demo): enough for real p-values."""
    from data_loaders import load_study
    from sample_data.generate import generate_study

    path = generate_study(tmp_path_factory.mktemp("cohort20"), patients=20, cells=0, seed=7)
    return load_study(path)


# ---- windows and values ------------------------------------------------------------------------
def test_parse_window_named_custom_and_invalid():
    assert dif.parse_window("d28") == dif.WINDOWS["D28"]
    assert (dif.WINDOWS["M3"].lo, dif.WINDOWS["M3"].hi) == (76, 104)
    w = dif.parse_window("20:40")
    assert (w.lo, w.hi, w.centre) == (20, 40, 30)
    for bad in ("M7", "40:20", "a:b"):
        with pytest.raises(ValueError, match="window"):
            dif.parse_window(bad)


def test_window_values_takes_sample_closest_to_centre():
    values = pl.DataFrame({
        "subject_id": ["P1"] * 5 + ["P2"] * 2, "sample_id": list("abcdefg"),
        "day": [-20, -3, 24, 27, 31, 25, 31], "timepoint": [None] * 7,
        "feature": ["X"] * 7, "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})
    d28 = dif.window_values(values, window="D28").sort("subject_id")
    assert d28.get_column("sample_id").to_list() == ["d", "f"]   # 27 beats 31; P2 tie -> earlier
    base = dif.window_values(values, window="baseline")
    assert base.get_column("sample_id").to_list() == ["b"]       # closest to day 0 from below


# ---- statistics against scipy ------------------------------------------------------------------
def test_exact_p_values_equal_scipy_for_small_groups():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 9))
    in_a = np.array([True] * 4 + [False] * 5)
    res = dif.compare_matrix(x, in_a=in_a, in_b=~in_a)
    want = [stats.mannwhitneyu(r[in_a], r[~in_a], method="exact").pvalue for r in x]
    np.testing.assert_allclose(res["p_value"], want, rtol=1e-12)
    assert set(res["test"]) == {"Mann-Whitney exact"}


def test_tied_small_groups_use_exact_permutation_like_scipy():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=(12, 9)).astype(float)
    in_a = np.array([True] * 4 + [False] * 5)
    res = dif.compare_matrix(x, in_a=in_a, in_b=~in_a)

    def ranksum(u, v, axis=-1):
        return stats.rankdata(np.concatenate([u, v], axis=axis), axis=axis)[
            ..., :u.shape[axis]].sum(axis=axis)

    for i, row in enumerate(x):
        if len(np.unique(row)) == len(row):
            continue
        want = stats.permutation_test((row[in_a], row[~in_a]), ranksum, n_resamples=np.inf,
                                      permutation_type="independent", vectorized=True).pvalue
        assert res["p_value"][i] == pytest.approx(want, rel=1e-12)
        assert res["test"][i] == "permutation (all splits)"


def test_large_groups_use_normal_approximation_like_scipy():
    rng = np.random.default_rng(9)
    x = np.round(rng.normal(size=(30, 50)), 1)           # rounding makes ties
    x[0, :] = 1.0                                         # all tied: p = 1
    in_a = np.zeros(50, bool)
    in_a[:22] = True
    res = dif.compare_matrix(x, in_a=in_a, in_b=~in_a)
    want = [stats.mannwhitneyu(r[in_a], r[~in_a], method="asymptotic").pvalue for r in x[1:]]
    np.testing.assert_allclose(res["p_value"][1:], want, rtol=1e-9)
    assert res["p_value"][0] == 1.0
    assert res["test"][1] == "Mann-Whitney (normal approx.)"


def test_missing_values_handled_per_feature():
    x = np.array([[1.0, 2.0, 3.0, np.nan, 10.0, 11.0, 12.0],
                  [1.0, 2.0, 3.0, 4.0, 10.0, 11.0, np.nan]])
    in_a = np.array([True] * 4 + [False] * 3)
    res = dif.compare_matrix(x, in_a=in_a, in_b=~in_a)
    assert res["n_a"].tolist() == [3, 4] and res["n_b"].tolist() == [3, 2]
    assert res["p_value"][0] == pytest.approx(
        stats.mannwhitneyu([1, 2, 3], [10, 11, 12], method="exact").pvalue)
    assert res["p_value"][1] == pytest.approx(
        stats.mannwhitneyu([1, 2, 3, 4], [10, 11], method="exact").pvalue)


def test_effect_sizes_by_hand():
    a, b = np.array([5.0, 6.0, 9.0]), np.array([1.0, 2.0, 6.0, 3.0])
    x = np.concatenate([a, b])[None, :]
    in_a = np.array([True] * 3 + [False] * 4)
    res = dif.compare_matrix(x, in_a=in_a, in_b=~in_a)
    sp = np.sqrt(((3 - 1) * a.var(ddof=1) + (4 - 1) * b.var(ddof=1)) / 5)
    g = (a.mean() - b.mean()) / sp * (1 - 3 / (4 * 7 - 9))
    pairs = [np.sign(i - j) for i in a for j in b]
    assert res["hedges_g"][0] == pytest.approx(g)
    assert res["cliffs_delta"][0] == pytest.approx(np.mean(pairs))
    assert res["mean_a"][0] == pytest.approx(a.mean()) and res["median_b"][0] == 2.5


def test_too_few_patients_gives_values_but_no_test():
    x = np.array([[1.0, 2.0, 3.0, 9.0], [1.0, 2.0, 3.0, 4.0]])
    in_a = np.array([True, True, True, False])
    res = dif.compare_matrix(x, in_a=in_a, in_b=~in_a)
    assert np.isnan(res["p_value"]).all()
    assert all("fewer than 2 patients" in r for r in res["reason"])
    assert res["mean_b"].tolist() == [9.0, 4.0]
    strict = dif.compare_matrix(np.array([[1.0, 2.0, 3.0, 8.0, 9.0]]),
                                in_a=np.array([True, True, True, False, False]),
                                in_b=np.array([False, False, False, True, True]), min_n=3)
    assert np.isnan(strict["p_value"][0]) and "fewer than 3" in strict["reason"][0]


def test_too_few_patients_in_compare(demo_study):
    res = dif.compare(demo_study, layer="proteomics", window="D28",
                      groups=(["SAA-001", "SAA-002"], ["SAA-004"]))
    assert res.height == 100
    assert res.get_column("p_value").null_count() == 100
    assert res.get_column("q_value").null_count() == 100
    assert res.get_column("reason").drop_nulls().unique().to_list() == [
        "fewer than 2 patients in a group: no test"]
    row = res.filter(pl.col("feature") == "CXCL10").row(0, named=True)
    assert row["values_b"].startswith("SAA-004 ") and row["mean_b"] is not None
    assert (row["n_group_a"], row["n_group_b"]) == (2, 1)


def test_fisher_for_presence_features():
    x = np.array([[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    in_a = np.array([True] * 4 + [False] * 4)
    res = dif.compare_matrix(x, in_a=in_a, in_b=~in_a, binary=np.array([True]))
    assert res["p_value"][0] == pytest.approx(stats.fisher_exact([[4, 0], [0, 4]])[1])
    assert res["prop_diff"][0] == 1.0 and res["test"][0] == "Fisher exact"


def test_q_values_are_benjamini_hochberg(cohort20):
    from statsmodels.stats.multitest import multipletests

    res = dif.compare(cohort20, layer="proteomics", window="D28")
    tested = res.filter(pl.col("p_value").is_not_null())
    want = multipletests(tested.get_column("p_value").to_numpy(), method="fdr_bh")[1]
    np.testing.assert_allclose(tested.get_column("q_value").to_numpy(), want)
    p = res.get_column("p_value").drop_nulls().to_list()
    assert p == sorted(p)                                            # sorted by p


# ---- groups ----------------------------------------------------------------------------------
def test_group_choices(demo_study):
    frame, a, b = dif.assign_groups(demo_study)
    assert (a, b) == (RESPONDER, NON_RESPONDER) and frame.height == 5
    _, a, b = dif.assign_groups(demo_study, group_column="sex")
    assert {a, b} == {"F", "M"}
    frame, a, b = dif.assign_groups(demo_study, group_column="age")
    assert a.startswith("age > ") and frame.height == 5
    frame, a, b = dif.assign_groups(demo_study, groups=(["SAA-001"], ["SAA-002", "SAA-003"]),
                                    subjects=["SAA-001", "SAA-002"])
    assert frame.get_column("subject_id").to_list() == ["SAA-001", "SAA-002"]
    with pytest.raises(ValueError, match="both groups"):
        dif.assign_groups(demo_study, groups=(["SAA-001"], ["SAA-001"]))
    with pytest.raises(ValueError, match="no column 'nope'"):
        dif.assign_groups(demo_study, group_column="nope")
    three = pl.DataFrame({"subject_id": ["a", "b", "c"], "arm": ["x", "y", "z"]})
    with pytest.raises(ValueError, match="has 3 values"):
        dif.assign_groups(demo_study, groups=three, group_column="arm")
    _, a, b = dif.assign_groups(demo_study, groups=three, group_column="arm", group_a="z",
                                group_b="x")
    assert (a, b) == ("z", "x")
    assert "sex" in dif.grouping_columns(demo_study)
    assert dif.group_values(demo_study, column="diagnosis") == ["SAA", "vSAA"]


def test_change_from_baseline_needs_a_later_window(demo_study):
    with pytest.raises(ValueError, match="after baseline"):
        dif.compare(demo_study, layer="tcr", window="baseline", change_from_baseline=True)
    res = dif.compare(demo_study, layer="tcr", window="M3", change_from_baseline=True)
    row = res.filter(pl.col("feature") == "top10_share").row(0, named=True)
    assert row["cliffs_delta"] == -1.0 and row["log2fc"] is None
    assert "change from the baseline value" in row["window_rule"]


# ---- planted effects -------------------------------------------------------------------------
def test_demo_ifn_gamma_proteins_fall_in_responders(demo_study):
    """n = 3 vs 2: the exact p cannot go below 0.2, so direction, size and rank are tested."""
    d28 = dif.compare(demo_study, layer="proteomics", window="D28")
    top = d28.head(5).get_column("feature").to_list()
    assert set(IFN_PROTEINS) <= set(top)
    for f in IFN_PROTEINS:
        row = d28.filter(pl.col("feature") == f).row(0, named=True)
        assert row["cliffs_delta"] == -1.0 and row["log2fc"] < -1.5
        assert row["p_value"] == pytest.approx(0.2) and row["n_group_a"] == 3
        assert "smallest possible two-sided p is 0.2" in row["note"]
    base = dif.compare(demo_study, layer="proteomics", window="baseline")
    gap = base.filter(pl.col("feature").is_in(IFN_PROTEINS)).get_column("log2fc").abs()
    assert gap.max() < 1.0                                     # equal before infusion


def test_demo_interferon_genes_higher_in_non_responders(demo_study):
    from sample_data.generate import ISG_GENES

    d28 = dif.compare(demo_study, layer="rna", window="D28", features=ISG_GENES)
    assert d28.height == len(ISG_GENES)
    assert (d28.get_column("log2fc") < 0).all()
    assert d28.get_column("log2fc").median() < -1.5
    base = dif.compare(demo_study, layer="rna", window="baseline", features=ISG_GENES)
    assert abs(base.get_column("log2fc").median()) < 0.7


def test_demo_clone_contraction_and_growing_clones(demo_study):
    m3 = dif.compare(demo_study, layer="tcr", window="M3")
    top10 = m3.filter(pl.col("feature") == "top10_share").row(0, named=True)
    assert top10["cliffs_delta"] == -1.0 and top10["median_a"] < 0.6 * top10["median_b"]
    muts = dif.compare(demo_study, layer="mutations", window="baseline")
    dnmt3a = muts.filter(pl.col("feature") == "DNMT3A (present)").row(0, named=True)
    assert dnmt3a["effect"] == -1.0 and dnmt3a["effect_measure"] == "difference in proportion"
    ifng = dif.compare(demo_study, layer="measurements", window="D28", panel="cytokine")
    row = ifng.filter(pl.col("feature") == "IFNG").row(0, named=True)
    assert row["cliffs_delta"] == -1.0 and row["days"] == "day 28"


def test_larger_cohort_reaches_significance(cohort20):
    prot = dif.compare(cohort20, layer="proteomics", window="D28")
    sig = set(prot.filter(pl.col("q_value") < 0.05).get_column("feature").to_list())
    assert set(IFN_PROTEINS) <= sig
    from sample_data.generate import ISG_GENES

    rna = dif.compare(cohort20, layer="rna", window="D28")
    isg = rna.filter(pl.col("feature").is_in(ISG_GENES))
    assert isg.filter((pl.col("q_value") < 0.05) & (pl.col("effect") < 0)).height >= 10
    tcr = dif.compare(cohort20, layer="tcr", window="M3")
    assert tcr.filter(pl.col("feature") == "top10_share").get_column("p_value")[0] < 0.01


def test_permuted_control_has_no_false_hits(cohort20):
    """Each arm gets half of the responders and half of the non-responders: no true effect."""
    groups, _, _ = dif.assign_groups(cohort20)
    arm_a, arm_b = [], []
    for g in (RESPONDER, NON_RESPONDER):
        ids = groups.filter(pl.col("group") == g).get_column("subject_id").to_list()
        arm_a += ids[0::2]
        arm_b += ids[1::2]
    for layer in ("proteomics", "rna", "tcr"):
        res = dif.compare(cohort20, layer=layer, window="D28", groups=(arm_a, arm_b))
        assert res.get_column("p_value").null_count() < res.height
        assert res.filter(pl.col("q_value") < 0.05).height == 0, layer


# ---- composition (contract of analysis.composition.cell_type_composition) -----------------------
def test_composition_layer_follows_the_contract(demo_study, monkeypatch):
    rows = []
    for sid, resp in (("SAA-001", 1), ("SAA-002", 1), ("SAA-003", 1), ("SAA-004", 0),
                      ("SAA-005", 0)):
        for day, tp in ((-10, "Screening"), (28, "D28")):
            hspc = 0.10 if (resp and day > 0) else 0.04
            rows += [{"sample_id": f"{sid}_{tp}", "subject_id": sid, "day": day,
                      "cell_type": "HSPC", "n_cells": int(hspc * 1000), "fraction": hspc},
                     {"sample_id": f"{sid}_{tp}", "subject_id": sid, "day": day,
                      "cell_type": "CD8 TEM", "n_cells": int((1 - hspc) * 1000),
                      "fraction": 1 - hspc}]
    fake = types.ModuleType("analysis.composition")
    fake.cell_type_composition = lambda study: pl.DataFrame(rows)
    monkeypatch.setitem(sys.modules, "analysis.composition", fake)
    res = dif.compare(demo_study, layer="composition", window="D28")
    hspc = res.filter(pl.col("feature") == "HSPC").row(0, named=True)
    assert hspc["cliffs_delta"] == 1.0 and hspc["n_group_a"] == 3 and hspc["n_group_b"] == 2
    assert hspc["log2fc"] == pytest.approx(np.log2(0.10 / 0.04))
    assert dif.available_layers(demo_study)["composition"] == ""


def test_composition_of_the_demo_when_installed(demo_study):
    pytest.importorskip("analysis.composition")
    res = dif.compare(demo_study, layer="composition", window="D28")
    assert {"HSPC", "CD8 TEM"} <= set(res.get_column("feature").to_list())
    hspc = res.filter(pl.col("feature") == "HSPC").row(0, named=True)
    cd8 = res.filter(pl.col("feature") == "CD8 TEM").row(0, named=True)
    assert hspc["effect"] > 0 and cd8["effect"] < 0          # README: HSPC 10 vs 4.5 %


# ---- pydeseq2 ----------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_deseq2_equals_running_pydeseq2_directly(demo_study):
    import pandas as pd
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    from sample_data.generate import ISG_GENES

    genes = list(ISG_GENES) + demo_study.rna_counts.get_column("gene").to_list()[:40]
    res = dif.compare(demo_study, layer="rna", window="D28", method="deseq2", features=genes)
    ids = [f"SAA-00{i}_D28_RNA" for i in range(1, 6)]
    counts = demo_study.rna_counts.filter(pl.col("gene").is_in(genes))
    x = counts.select(ids).to_numpy().T
    keep = (x >= 10).sum(axis=0) >= 2
    cdf = pd.DataFrame(x[:, keep], index=ids,
                       columns=np.array(counts.get_column("gene").to_list())[keep])
    meta = pd.DataFrame({"group": ["A", "A", "A", "B", "B"]}, index=ids)
    inf = DefaultInference(n_cpus=1)
    dds = DeseqDataSet(counts=cdf, metadata=meta, design="~group", quiet=True, inference=inf)
    dds.deseq2()
    ds = DeseqStats(dds, contrast=["group", "A", "B"], quiet=True, inference=inf)
    ds.summary()
    want = ds.results_df
    got = res.filter(pl.col("p_value").is_not_null()).to_pandas().set_index("feature")
    got = got.loc[want.dropna(subset=["pvalue"]).index]
    # same inputs, same iterative fits: equal up to solver tolerance
    np.testing.assert_allclose(got["effect"], want.dropna(subset=["pvalue"])["log2FoldChange"],
                               rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(got["p_value"], want.dropna(subset=["pvalue"])["pvalue"],
                               rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(got["q_value"], want.dropna(subset=["pvalue"])["padj"],
                               rtol=1e-5, atol=1e-12)
    assert (res.get_column("n_group_a").unique().to_list(),
            res.get_column("n_group_b").unique().to_list()) == ([3], [2])
    assert res.get_column("note")[0].startswith("underpowered: n = 3 vs 2")
    isg = res.filter(pl.col("feature").is_in(ISG_GENES))
    assert isg.get_column("effect").median() < -1.5          # higher in non-responders


def test_deseq2_paired_on_change_from_baseline(demo_study):
    from sample_data.generate import ISG_GENES

    genes = list(ISG_GENES) + demo_study.rna_counts.get_column("gene").to_list()[:40]
    res = dif.compare(demo_study, layer="rna", window="D28", method="deseq2",
                      features=genes, change_from_baseline=True)
    assert "change from baseline" in res.get_column("effect_measure")[0]
    assert "patients paired" in res.get_column("window_rule")[0]
    isg = res.filter(pl.col("feature").is_in(ISG_GENES))
    assert isg.get_column("effect").median() < -1.0
    with pytest.raises(ValueError, match="rna layer only"):
        dif.compare(demo_study, layer="proteomics", window="D28", method="deseq2")


# ---- registry and command line -----------------------------------------------------------------
def test_derived_tables_registered(demo_study):
    from analysis.registry import derived_tables

    tables = derived_tables()
    assert set(tables["comparison"].options) == {"layer", "window", "change_from_baseline"}
    out = tables["comparison"](demo_study, layer="tcr", window="M3")
    assert out.columns[:7] == list(dif.RESULT_COLUMNS)
    assert "repertoire" in tables


def test_compare_command_prints_sorted_csv(demo_dir, capsys):
    import cli

    def run(*args):
        code = cli.main(["compare", "--study", str(demo_dir), *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = run("--layer", "proteomics", "--window", "D28")
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "feature,n_group_a,n_group_b,effect,effect_measure,p_value,q_value"
    assert len(lines) == 101 and lines[1].split(",")[0] in IFN_PROTEINS
    p = [float(line.split(",")[5]) for line in lines[1:] if line.split(",")[5]]
    assert p == sorted(p)
    code, out, _ = run("--layer", "tcr", "--window", "M3", "--change-from-baseline",
                       "--groups", "response_group")
    assert code == 0 and out.splitlines()[1].split(",")[0] in ("top10_share", "clonality")
    code, _, err = run("--layer", "tcr", "--window", "M9")
    assert code == 2 and "unknown window" in err and "Traceback" not in err


@pytest.mark.parametrize("change", [False, True])
def test_rna_matrix_path_agrees_with_patient_values(demo_study, change):
    genes = ["STAT1", "MX1", "RPL3", "HBB"]
    res = dif.compare(demo_study, layer="rna", window="M3", features=genes,
                      change_from_baseline=change).sort("feature")
    long = dif.patient_values(demo_study, layer="rna", window="M3", features=genes,
                              change_from_baseline=change)
    want = (long.filter(pl.col("group") == RESPONDER).group_by("feature")
            .agg(pl.col("value").mean()).sort("feature"))
    np.testing.assert_allclose(res.get_column("mean_a").to_numpy(),
                               want.get_column("value").to_numpy(), rtol=1e-12)
    assert res.get_column("days").unique().to_list() == ["day 90"]
    assert res.get_column("values_b")[0].startswith("SAA-004 ")


def test_value_labels_name_the_scale(demo_study):
    assert dif.value_label(demo_study, layer="proteomics", feature="IFNG") == "IFNG (NPX)"
    assert "10^9/L" in dif.value_label(demo_study, layer="measurements", feature="ANC")
    assert dif.value_label(demo_study, layer="mutations", feature="PIGA (present)") == \
        "PIGA (1 = detected)"


# ---- the FDR family: group-defining counts out, optionally across windows ---------------------
_FAMILY_PATIENTS = "subject_id,response_override\nR1,CR\nR2,PR\nR3,CR\nN1,NR\nN2,NR\nN3,NR\n"


def _family_study(write_study):
    from data_loaders import load_study

    rows = []
    d28 = {"ANC": ([2.0, 2.5, 3.0], [0.1, 0.2, 0.3], "10^9/L"),
           "PLT": ([120, 130, 140], [10, 12, 15], "10^9/L"),
           "IL6": ([50, 60, 70], [5, 6, 7], "pg/mL"),
           "CRP": ([10, 20, 30], [15, 1, 2], "mg/L")}
    d14 = {"IL6": ([10, 20, 30], [15, 1, 2], "pg/mL"),
           "CRP": ([10, 20, 30], [1, 5, 25], "mg/L")}
    for day, table in ((28, d28), (14, d14)):
        for analyte, (r, n, unit) in table.items():
            for sid, v in zip(["R1", "R2", "R3", "N1", "N2", "N3"], r + n, strict=True):
                rows.append(f"{sid},{day},{analyte},{v},{unit}")
    meas = "subject_id,day,analyte,value,unit\n" + "\n".join(rows) + "\n"
    return load_study(write_study(patients=_FAMILY_PATIENTS, measurements=meas))


def test_group_defining_counts_are_marked_and_out_of_the_fdr_family(write_study):
    """3 responders vs 3 non-responders at D28. ANC, PLT and IL6 separate perfectly: exact
    p = 2 / C(6, 3) = 0.1; CRP has one swapped pair (U = 1): p = 2 * 2 / 20 = 0.2. ANC and PLT
    define the response groups: marked, tested, no q. BH over IL6 and CRP only:
    q = (min(0.1 * 2 / 1, 0.2), 0.2 * 2 / 2) = (0.2, 0.2). The old family held all four:
    q(IL6) = 0.1 * 4 / 3 = 0.133."""
    from analysis.rules import DEFAULT_RULES

    study = _family_study(write_study)
    res = dif.compare(study, layer="measurements", window="D28")
    rows = {r["feature"]: r for r in res.iter_rows(named=True)}
    assert rows["ANC"]["p_value"] == pytest.approx(0.1) and rows["ANC"]["q_value"] is None
    assert rows["ANC"]["defines_groups"] is True and rows["PLT"]["defines_groups"] is True
    assert rows["ANC"]["note"].startswith("defines the groups: not in the FDR family")
    assert rows["IL6"]["defines_groups"] is False
    assert rows["IL6"]["q_value"] == pytest.approx(0.2)
    assert rows["CRP"]["p_value"] == pytest.approx(0.2) and rows["CRP"]["q_value"] == pytest.approx(0.2)
    assert rows["IL6"]["fdr_family"] == "BH within D28: 2 tests"
    inside = dif.compare(study, layer="measurements", window="D28",
                         rules=DEFAULT_RULES.with_(defining_in_fdr=True))
    q = dict(inside.select("feature", "q_value").iter_rows())
    assert q["IL6"] == pytest.approx(0.1 * 4 / 3) and q["ANC"] == pytest.approx(0.1 * 4 / 3)
    # grouped by something other than the response, counts do not define the groups
    split = dif.compare(study, layer="measurements", window="D28",
                        groups=(["R1", "N1", "R2"], ["N2", "R3", "N3"]))
    assert not split.get_column("defines_groups").any()


def test_bh_across_all_windows(write_study):
    """With fdr_across_windows the family is every test of every window: D28 IL6 0.1, CRP 0.2;
    D14 IL6 0.2 (one swap), CRP 0.4 (U = 2: 2 * 4 / 20). Sorted 0.1, 0.2, 0.2, 0.4, m = 4:
    q = min over j >= i of p_j * 4 / j: 0.4 -> 0.4; 0.2 * 4 / 3 = 0.267 for ranks 1-3.
    Within D28 alone both q are 0.2."""
    from analysis.rules import DEFAULT_RULES

    study = _family_study(write_study)
    across = DEFAULT_RULES.with_(fdr_across_windows=True)
    d28 = dif.compare(study, layer="measurements", window="D28", rules=across)
    q28 = dict(d28.select("feature", "q_value").iter_rows())
    assert q28["IL6"] == pytest.approx(0.8 / 3) and q28["CRP"] == pytest.approx(0.8 / 3)
    assert q28["ANC"] is None                    # still out of the family
    assert d28.filter(pl.col("feature") == "IL6").item(0, "fdr_family").startswith(
        "BH across 2 windows (D14, D28): 4 tests")
    d14 = dif.compare(study, layer="measurements", window="D14", rules=across)
    q14 = dict(d14.select("feature", "q_value").iter_rows())
    assert q14["IL6"] == pytest.approx(0.8 / 3) and q14["CRP"] == pytest.approx(0.4)
    course = dif.feature_windows(study, layer="measurements", feature="CRP", rules=across)
    assert course.select("window", "q_value").rows() == [("D14", pytest.approx(0.4)),
                                                         ("D28", pytest.approx(0.4))]
