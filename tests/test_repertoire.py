"""TCR repertoire metrics, baseline clone tracking and Morisita-Horn overlap on hand-built
clone tables, and the planted clone contraction of the demo."""

from __future__ import annotations

import math

import polars as pl
import pytest

from analysis import repertoire as rep


def _tcr(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"sample_id": pl.String, "junction_aa": pl.String,
                                      "count": pl.Int64}, orient="row")


SAMPLES = pl.DataFrame({"sample_id": ["S0", "S1", "S2"], "subject_id": ["P1", "P1", "P1"],
                        "day": [-7, 28, 90], "timepoint": ["Screening", "D28", "M3"]})


def test_metrics_by_hand():
    tcr = _tcr([("S0", "CASSA", 5), ("S0", "CASSB", 3), ("S0", "CASSC", 2),
                ("S1", "CASSA", 7)])
    m = rep.repertoire_metrics(tcr).sort("sample_id")
    s0 = m.row(0, named=True)
    p = [0.5, 0.3, 0.2]
    h = -sum(x * math.log(x) for x in p)
    assert s0["total_count"] == 10 and s0["richness"] == 3
    assert s0["shannon"] == pytest.approx(h)
    assert s0["clonality"] == pytest.approx(1 - h / math.log(3))
    assert s0["simpson"] == pytest.approx(1 - sum(x * x for x in p))
    assert s0["top10_share"] == pytest.approx(1.0)
    s1 = m.row(1, named=True)
    assert s1["richness"] == 1 and s1["shannon"] == 0 and s1["clonality"] is None


def test_even_repertoire_and_top10_share():
    tcr = _tcr([("S0", f"C{i:02d}F", 1) for i in range(20)])
    m = rep.repertoire_metrics(tcr).row(0, named=True)
    assert m["clonality"] == pytest.approx(0.0, abs=1e-12)
    assert m["top10_share"] == pytest.approx(0.5)
    assert m["simpson"] == pytest.approx(1 - 20 * (1 / 20) ** 2)


def test_rows_of_one_clonotype_are_summed_and_filters_apply():
    tcr = pl.DataFrame({
        "sample_id": ["S0"] * 5, "junction_aa": ["CASSA", "CASSA", "CASSB", "CAVX", "CASSZ"],
        "count": [2, 3, 5, 100, 50], "locus": ["TRB", "TRB", "TRB", "TRA", "TRB"],
        "productive": [True, True, True, True, False]})
    clones = rep.clonotypes(tcr)
    assert clones.select("clonotype", "count").rows() == [("CASSA", 5.0), ("CASSB", 5.0)]
    assert rep.clonotypes(tcr, locus=None, productive_only=False).height == 4


def test_morisita_horn_identical_disjoint_and_by_hand():
    tcr = _tcr([("S0", "A", 4), ("S0", "B", 1), ("S1", "A", 8), ("S1", "B", 2),
                ("S2", "C", 3)])
    ov = rep.morisita_overlap(tcr, samples=SAMPLES)
    get = {(r["sample_a"], r["sample_b"]): r["morisita_horn"] for r in ov.iter_rows(named=True)}
    assert get[("S0", "S0")] == pytest.approx(1.0)
    assert get[("S0", "S1")] == pytest.approx(1.0)          # same frequencies, other depth
    assert get[("S0", "S2")] == pytest.approx(0.0)
    tcr2 = _tcr([("S0", "A", 3), ("S0", "B", 1), ("S1", "A", 1), ("S1", "B", 1)])
    x, y = [3, 1], [1, 1]
    dx, dy = sum(v * v for v in x) / 16, sum(v * v for v in y) / 4
    want = 2 * (3 * 1 + 1 * 1) / ((dx + dy) * 4 * 2)
    ov2 = rep.morisita_overlap(tcr2, samples=SAMPLES)
    assert ov2.filter((pl.col("sample_a") == "S0") & (pl.col("sample_b") == "S1")) \
        .get_column("morisita_horn")[0] == pytest.approx(want)
    assert ov.height == 9 and ov2.height == 4


def test_top_clone_tracking_follows_baseline_clones():
    tcr = _tcr([("S0", "A", 6), ("S0", "B", 3), ("S0", "C", 1),
                ("S1", "A", 1), ("S1", "D", 9), ("S2", "B", 5), ("S2", "E", 5)])
    tr = rep.top_clone_tracking(tcr, samples=SAMPLES, top=2)
    assert tr.filter(pl.col("day") == -7).sort("rank").select("clonotype", "frequency").rows() \
        == [("A", 0.6), ("B", 0.3), (rep.OTHER, pytest.approx(0.1))]
    d28 = dict(tr.filter(pl.col("day") == 28).select("clonotype", "frequency").rows())
    assert d28 == {"A": 0.1, "B": 0.0, rep.OTHER: pytest.approx(0.9)}
    sums = tr.group_by("sample_id").agg(pl.col("frequency").sum()).get_column("frequency")
    assert all(v == pytest.approx(1.0) for v in sums)


def test_empty_tables_give_empty_frames():
    empty = _tcr([])
    assert rep.repertoire_metrics(empty).height == 0
    assert rep.top_clone_tracking(empty, samples=SAMPLES).height == 0
    assert rep.morisita_overlap(empty, samples=SAMPLES).height == 0


def test_demo_clone_contraction_in_responders(demo_study):
    table = rep.repertoire_table(demo_study)
    assert {"subject_id", "day", "timepoint", *rep.METRICS} <= set(table.columns)
    m12 = table.filter(pl.col("timepoint") == "M12")
    share = dict(m12.select("subject_id", "top10_share").rows())
    assert share["SAA-001"] < 0.25 and share["SAA-005"] > 0.3
    tr = rep.top_clone_tracking(demo_study, top=10)
    top = (tr.filter((pl.col("subject_id") == "SAA-001") & (pl.col("rank") <= 10))
           .group_by("day").agg(pl.col("frequency").sum()).sort("day"))
    assert top.get_column("frequency")[-1] < 0.5 * top.get_column("frequency")[0]
