"""CAR status per cell: the mixture cut, its fallback, the fixed rule, the table on the demo."""

from __future__ import annotations

import numpy as np
import polars as pl

import cli
from analysis import car_status as cs
from analysis.rules import DEFAULT_RULES
from analysis.vocab import DayWindow


def test_mixture_cut_separates_two_populations():
    rng = np.random.default_rng(1)
    neg = rng.poisson(0.3, 5000)
    pos = rng.poisson(30, 800)
    cut, method, _, means, _ = cs.mixture_cut(np.concatenate([neg, pos]))
    assert method == "mixture"
    assert means[0] < 1 < means[1]
    assert 1.0 < cut < np.log1p(30)
    called = cs.call_car(np.concatenate([neg, pos]),
                         cs.car_cut(np.concatenate([neg, pos]), feature="CAR", source="counts"))
    assert called[5000:].mean() > 0.97 and called[:5000].mean() < 0.01


def test_degenerate_mixture_falls_back_to_any_count():
    values = np.zeros(1000)
    values[:5] = 3
    cut = cs.car_cut(values, feature="CAR", source="counts")
    assert cut.method == "fallback" and cut.threshold == 0.0
    assert "only 5 cells" in cut.note
    assert cs.call_car(values, cut).sum() == 5


def test_fixed_threshold_rule():
    rules = DEFAULT_RULES.with_(car_threshold_method="fixed", car_threshold=2.0)
    cut = cs.car_cut(np.array([0, 1, 2, 3, 9]), feature="CAR", source="counts", rules=rules)
    assert cut.method == "fixed"
    assert cs.call_car(np.array([0, 1, 2, 3, 9]), cut).tolist() == [False, False, False,
                                                                   True, True]


def test_feature_pattern():
    pat = DEFAULT_RULES.car_feature
    assert cs.find_car_feature(["CD3E", "CD7-CAR", "CAR"], pattern=pat) == "CAR"
    assert cs.find_car_feature(["CD3E", "cd7-car"], pattern=pat) == "cd7-car"
    assert cs.find_car_feature(["CD3E", "anti-CD7_scFv"], pattern=pat) == "anti-CD7_scFv"
    assert cs.find_car_feature(["CARD11", "CARM1", "CD3E"], pattern=pat) is None


def test_demo_car_cells_are_the_car_t_cells(demo_study):
    table = cs.car_status_table(demo_study)
    assert table.columns[:7] == ["cell_id", "sample_id", "subject_id", "day", "cell_type",
                                 "car_counts", "car_positive"]
    assert table.height == demo_study.single_cell.n_obs
    by_type = table.group_by("cell_type").agg(pl.col("car_positive").mean())
    frac = dict(by_type.iter_rows())
    assert frac["CAR-T"] > 0.95                       # README: about 98 % carry CAR counts
    assert max(v for k, v in frac.items() if k != "CAR-T") == 0.0
    assert table.get_column("method").unique().to_list() == ["mixture"]
    # pre-infusion marrow holds no CAR+ cell
    assert table.filter(pl.col("day") <= 0).get_column("car_positive").sum() == 0


def test_cd7_groups_and_car_markers(demo_study):
    from analysis.embedding import gene_vector

    cells = cs.car_cells(demo_study)
    grouped = cs.cd7_groups(cells, cd7=gene_vector(demo_study, gene="CD7"))
    counts = dict(grouped.group_by("cd7_group").len().iter_rows())
    assert set(counts) >= {"CAR+ T", "CD7+ T", "CD7- T", "CD7+ NK"}
    post = grouped.filter(pl.col("day") > 0)
    pre = grouped.filter(pl.col("day") <= 0)
    share = lambda f: (f.get_column("cd7_group") == "CD7- T").sum() / f.get_column(  # noqa: E731
        "cd7_group").is_in(["CD7+ T", "CD7- T"]).sum()
    assert share(post) > share(pre)                   # CD7 falls after infusion (planted)
    genes = {g: gene_vector(demo_study, gene=g) for g in ("CAR", "IL7R")}
    res = cs.car_marker_comparison(cells, expression=genes, days=DayWindow(1, None))
    car = res.filter(pl.col("gene") == "CAR").row(0, named=True)
    assert car["n_patients"] == 5 and car["difference"] > 0
    assert car["p_value"] == 0.0625                   # 5 of 5 patients, exact: 2 / 2^5


def test_cli_table_car_status(demo_dir, capsys):
    assert cli.main(["table", "car_status", "--study", str(demo_dir)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("cell_id,sample_id,subject_id,day,cell_type,"
                                          "car_counts,car_positive,threshold")


def test_cli_rule_fixes_the_cut(demo_dir, capsys):
    assert cli.main(["table", "car_status", "--study", str(demo_dir), "--rule",
                     "car_threshold_method=fixed", "--rule", "car_threshold=4"]) == 0
    rows = [r.split(",") for r in capsys.readouterr().out.splitlines()[1:]]
    assert {r[8] for r in rows} == {"fixed"} and {r[7] for r in rows} == {"4.0"}
    assert all((float(r[5]) > 4) == (r[6] == "true") for r in rows)


def test_car_channel_of_an_adt_modality(tmp_path):
    import anndata as ad
    import mudata as md
    import pandas as pd
    import scipy.sparse as sp

    from data_loaders import load_study

    rng = np.random.default_rng(0)
    n = 400
    names = [f"c{i}" for i in range(n)]
    obs = pd.DataFrame({"patient": ["P1"] * n, "sample": ["S1"] * n, "day": [28] * n,
                        "cell_type": ["CAR-T"] * 100 + ["CD4 T"] * 300}, index=names)
    gex = ad.AnnData(X=sp.csr_matrix(rng.poisson(1, (n, 4)).astype(np.float32)), obs=obs,
                     var=pd.DataFrame(index=["CD3E", "CD4", "CD8A", "GZMB"]))
    adt_counts = np.column_stack([np.r_[rng.poisson(200, 100), rng.poisson(3, 300)],
                                  rng.poisson(50, n)]).astype(np.float32)
    adt = ad.AnnData(X=adt_counts, obs=pd.DataFrame(index=names),
                     var=pd.DataFrame(index=["anti-CD19_CAR", "CD3_ADT"]))
    folder = tmp_path / "cite"
    folder.mkdir()
    md.MuData({"rna": gex, "prot": adt}).write_h5mu(folder / "cells.h5mu")
    (folder / "patients.csv").write_text("subject_id\nP1\n")
    study = load_study(folder)
    table = cs.car_status_table(study)
    assert table.get_column("feature").unique().to_list() == ["prot:anti-CD19_CAR"]
    called = dict(table.group_by("cell_type").agg(pl.col("car_positive").mean()).iter_rows())
    assert called["CAR-T"] > 0.99 and called["CD4 T"] < 0.01
