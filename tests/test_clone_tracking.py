"""Clones across time: reference sample, per-clone Fisher test and classes, dominant-clone
fate by response group, the clone_tracking table; rarefaction; compositional test."""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats

import cli
from analysis import clone_tracking as tr
from analysis import composition as comp
from analysis.cohort import response_groups
from analysis.repertoire import rarefied_metrics, repertoire_metrics
from analysis.rules import DEFAULT_RULES

SAMPLES = pl.DataFrame({"sample_id": ["A0", "A28", "AP", "B0", "B28"],
                        "subject_id": ["A", "A", "A", "B", "B"], "day": [-5, 28, 0, -3, 28],
                        "timepoint": ["Screening", "D28", "Infusion product", "Screening",
                                      "D28"]})


def _counts(rows):
    return pl.DataFrame(rows, schema=["sample_id", "clonotype", "count"], orient="row")


def test_reference_is_the_product_when_present():
    ref = dict(tr.reference_samples(SAMPLES).select("subject_id", "reference_sample")
               .iter_rows())
    assert ref == {"A": "AP", "B": "B0"}
    base = dict(tr.reference_samples(SAMPLES, reference="baseline")
                .select("subject_id", "reference_sample").iter_rows())
    assert base == {"A": "A0", "B": "B0"}
    counts = _counts([("A0", "x", 5.0), ("A0", "y", 5.0), ("AP", "x", 9.0), ("AP", "y", 1.0),
                      ("A28", "x", 1.0), ("A28", "y", 9.0)])
    pairs = tr.clone_changes(counts, SAMPLES, reference="baseline").select(
        "sample_a", "sample_b").unique().sort("sample_b")
    assert pairs.rows() == [("A0", "A28"), ("A0", "AP")]          # the product comes later
    assert tr.clone_changes(counts, SAMPLES).get_column("sample_a").unique().to_list() == \
        ["AP"]


def test_classes_and_fisher_against_scipy():
    counts = _counts([("B0", "big", 300.0), ("B0", "steady", 50.0), ("B0", "gone", 40.0),
                      ("B0", "rest", 610.0),
                      ("B28", "big", 20.0), ("B28", "steady", 48.0), ("B28", "fresh", 60.0),
                      ("B28", "rest", 872.0)])
    ch = tr.clone_changes(counts, SAMPLES.filter(pl.col("subject_id") == "B"))
    got = {r["clonotype"]: r for r in ch.iter_rows(named=True)}
    assert got["big"]["class"] == "contracted"
    assert got["steady"]["class"] == "persistent"
    assert got["gone"]["class"] == "lost" and got["fresh"]["class"] == "new"
    assert got["rest"]["class"] == "expanded"
    p = stats.fisher_exact([[300, 700], [20, 980]])[1]
    assert np.isclose(got["big"]["p_value"], p)
    assert got["big"]["q_value"] >= got["big"]["p_value"]


def test_fdr_setting_changes_the_call():
    counts = _counts([("B0", "x", 12.0), ("B0", "rest", 988.0),
                      ("B28", "x", 4.0), ("B28", "rest", 996.0)])
    strict = tr.clone_changes(counts, SAMPLES, rules=DEFAULT_RULES.with_(clone_fdr=0.001))
    loose = tr.clone_changes(counts, SAMPLES, rules=DEFAULT_RULES.with_(clone_fdr=0.2))
    x = pl.col("clonotype") == "x"
    assert strict.filter(x).item(0, "class") == "persistent"
    assert loose.filter(x).item(0, "class") == "contracted"


def test_demo_dominant_clones_shrink_in_responders(demo_study):
    counts, samples, source = tr.clone_counts(demo_study, source="tcr")
    assert source == "tcr"                              # the bulk repertoire (blood)
    traj = tr.dominant_trajectories(counts, samples)
    assert traj.filter(pl.col("class") == "reference").group_by("subject_id").len() \
        .get_column("len").to_list() == [10] * 5
    fate = tr.dominant_fate(traj, groups=response_groups(demo_study))
    m3 = fate.filter(pl.col("timepoint") == "M3")
    resp = m3.filter(pl.col("response_group") == "Responder").get_column("share_ratio")
    non = m3.filter(pl.col("response_group") == "Non-responder").get_column("share_ratio")
    assert resp.max() < 0.6 < 0.8 < non.min()           # planted: x0.3 at M3 vs persisting
    cmp = tr.fate_comparison(fate)
    row = cmp.filter(pl.col("timepoint") == "M3").row(0, named=True)
    assert row["n_responders"] == 3 and row["n_non_responders"] == 2
    assert row["p_value"] == 0.2 and row["test"] == "Mann-Whitney exact"   # 2 / C(5,2)
    states = tr.clone_states(traj)
    assert states.filter(pl.col("step") == 1).get_column("class").unique().to_list() == \
        ["reference"]


def test_demo_single_cd8_clones_contract_in_responders_and_persist_in_non_responders(
        demo_study):
    """Planted in the demo's per-cell receptors (sample_data/README.md): the dominant
    Screening CD8 clones (the same TRB clones as the bulk expansions) fall to 0.3x at D28 and
    0.15x at M3 of their share in responders and stay in non-responders."""
    counts, samples, source = tr.clone_counts(demo_study)
    assert source == "cells"                            # auto: cells carry receptors
    counts, samples, source = tr.clone_counts(demo_study, source="cells_cd8")
    assert source == "cells_cd8"
    traj = tr.dominant_trajectories(counts, samples)
    ref = traj.filter(pl.col("class") == "reference")
    assert ref.get_column("timepoint").unique().to_list() == ["Screening"]
    assert ref.group_by("subject_id").len().get_column("len").to_list() == [10] * 5
    fate = tr.dominant_fate(traj, groups=response_groups(demo_study))
    assert fate.get_column("share_reference").min() > 0.3      # oligoclonal at baseline
    for tp in ("D28", "M3"):
        at = fate.filter(pl.col("timepoint") == tp)
        resp = at.filter(pl.col("response_group") == "Responder")
        non = at.filter(pl.col("response_group") == "Non-responder")
        assert resp.height == 3 and non.height == 2
        assert resp.get_column("share_ratio").max() < 0.3 < 0.7 < \
            non.get_column("share_ratio").min(), tp
        assert resp.get_column("fraction_contracted_or_lost").min() >= 0.3
        assert non.get_column("fraction_contracted_or_lost").max() == 0.0
    row = tr.fate_comparison(fate).filter(pl.col("timepoint") == "M3").row(0, named=True)
    assert (row["n_responders"], row["n_non_responders"], row["p_value"]) == (3, 2, 0.2)
    # the dominant cell clones are the bulk expansions: their TRB CDR3s are in tcr.csv's top
    from analysis.clonotypes import study_cell_clonotypes

    cells = study_cell_clonotypes(demo_study)
    top = (ref.filter(pl.col("subject_id") == "SAA-001").get_column("clonotype").to_list())
    cdr3 = cells.filter(pl.col("clonotype").is_in(top)).get_column("cdr3_vdj").drop_nulls()
    bulk = demo_study.tcr.join(demo_study.samples.select("sample_id", "subject_id",
                                                           "timepoint"), on="sample_id")
    bulk_top = (bulk.filter((pl.col("subject_id") == "SAA-001")
                            & (pl.col("timepoint") == "Screening"))
                .sort("count", descending=True).head(12).get_column("junction_aa"))
    assert cdr3.n_unique() >= 8 and cdr3.is_in(bulk_top.implode()).all()


def test_cli_table_clone_tracking(demo_dir, capsys):
    assert cli.main(["table", "clone_tracking", "--study", str(demo_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(",")[:3] == ["subject_id", "sample_a", "sample_b"]
    assert "class" in lines[0] and "q_value" in lines[0]
    assert len(lines) > 1000


# ---- rarefaction ------------------------------------------------------------------------------
def test_rarefaction_makes_depths_comparable():
    rng = np.random.default_rng(0)
    freq = rng.dirichlet(np.ones(400))
    deep = rng.multinomial(8000, freq)
    shallow = rng.multinomial(2000, freq)       # the same repertoire sequenced less deeply
    rows = [("deep", f"c{i}", float(c)) for i, c in enumerate(deep) if c] + \
        [("shallow", f"c{i}", float(c)) for i, c in enumerate(shallow) if c]
    clones = _counts(rows).with_columns(
        (pl.col("count") / pl.col("count").sum().over("sample_id")).alias("frequency"))
    raw = dict(repertoire_metrics(pl.DataFrame(rows, schema=["sample_id", "junction_aa",
                                                             "count"], orient="row"),
                                  locus=None).select("sample_id", "richness").iter_rows())
    assert raw["deep"] > raw["shallow"] + 20
    rar = rarefied_metrics(clones, repeats=30)
    rich = rar.filter(pl.col("metric") == "richness")
    assert rich.get_column("depth").unique().to_list() == [2000]
    m = dict(rich.select("sample_id", "mean").iter_rows())
    lo = dict(rich.select("sample_id", "lo").iter_rows())
    hi = dict(rich.select("sample_id", "hi").iter_rows())
    assert abs(m["deep"] - m["shallow"]) < 15
    assert lo["deep"] <= m["deep"] <= hi["deep"]
    assert rar.equals(rarefied_metrics(clones, repeats=30))     # seeded


def test_rarefaction_leaves_out_shallow_samples():
    clones = _counts([("a", "x", 50.0), ("b", "x", 500.0), ("b", "y", 500.0)])
    out = rarefied_metrics(clones, depth=200)
    assert out.filter(pl.col("sample_id") == "a").get_column("rarefied").unique().to_list() \
        == [False]


def test_cli_table_repertoire_rarefied(demo_dir, capsys):
    assert cli.main(["table", "repertoire_rarefied", "--study", str(demo_dir)]) == 0
    assert "rarefied" in capsys.readouterr().out.splitlines()[0]


# ---- composition with uncertainty --------------------------------------------------------------
def test_compositional_test_on_the_demo(demo_study):
    from analysis.embedding import cell_table

    c = comp.composition_of(cell_table(demo_study))
    g = response_groups(demo_study)
    between = comp.compositional_test(c, groups=g, window=comp.DEFAULT_WINDOWS[1])
    assert set(between.get_column("n_a").to_list()) == {3}
    assert set(between.get_column("n_b").to_list()) == {2}
    assert between.get_column("p_value").min() >= 0.2 - 1e-9    # 3 vs 2: p >= 2 / C(5, 2)
    paired = comp.compositional_test(c, groups=g, window=comp.DEFAULT_WINDOWS[0],
                                     window_b=comp.DEFAULT_WINDOWS[1])
    car = paired.filter(pl.col("cell_type") == "CAR-T").row(0, named=True)
    assert car["effect"] > 0 and car["p_value"] == 0.0625       # all 5 patients gain CAR-T
    assert "same patients" in car["comparison"]


def test_clr_is_scale_free():
    c = pl.DataFrame({"sample_id": ["s1"] * 3 + ["s2"] * 3, "subject_id": ["A"] * 3 + ["B"] * 3,
                      "day": [1] * 6, "cell_type": ["x", "y", "z"] * 2,
                      "n_cells": [10, 20, 70, 100, 200, 700]})
    wide = comp._transformed(np.array([[10, 100], [20, 200], [70, 700]], float), "clr", 0)
    assert np.allclose(wide[:, 0], wide[:, 1]) and np.allclose(wide.sum(axis=0), 0)
    assert c.height == 6


def test_vectorised_fisher_equals_scipy():
    from analysis.stats import fisher_counts

    rng = np.random.default_rng(3)
    cases = [(0, 10, 0, 10), (10, 10, 0, 10), (0, 1, 1, 1), (1, 2, 1, 2), (50, 50, 50, 50),
             (0, 5, 7, 1000)]
    for _ in range(600):
        na, nb = rng.integers(1, 30, 2)
        cases.append((rng.integers(0, na + 1), na, rng.integers(0, nb + 1), nb))
    for _ in range(300):
        na, nb = rng.integers(1, 5000, 2)
        lam = rng.choice([1, 10, 100, 1000], 2)
        cases.append((min(na, rng.poisson(lam[0])), na, min(nb, rng.poisson(lam[1])), nb))
    c = np.array(cases)
    got = fisher_counts(c[:, 0], n_a=c[:, 1], b=c[:, 2], n_b=c[:, 3])
    want = [stats.fisher_exact([[x, m - x], [y, q - y]])[1] for x, m, y, q in c]
    assert np.allclose(got, want, rtol=1e-9, atol=1e-15)
