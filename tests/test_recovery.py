"""Recovery days (3 consecutive counts, platelet transfusions, transfusion independence) and
CTCAE v5 cytopenia grades at their exact thresholds."""

from __future__ import annotations

import polars as pl
import pytest

from analysis.recovery import (
    count_summary,
    ctcae_grades,
    recovery_days,
    recovery_table,
    worst_grades,
)


def series(analyte: str, pairs: list[tuple[int, float]], subject: str = "P1") -> pl.DataFrame:
    return pl.DataFrame([(subject, d, analyte, float(v)) for d, v in pairs],
                        schema={"subject_id": pl.String, "day": pl.Int64, "analyte": pl.String,
                                "value": pl.Float64}, orient="row")


def tx(*days: int, product: str = "PLT", subject: str = "P1") -> pl.DataFrame:
    return pl.DataFrame({"subject_id": [subject] * len(days), "day": list(days),
                         "product": [product] * len(days)},
                        schema={"subject_id": pl.String, "day": pl.Int64, "product": pl.String})


def rec(m: pl.DataFrame, **kw) -> dict:
    return recovery_days(m, **kw).row(0, named=True)


def test_anc_recovery_first_of_three():
    m = series("ANC", [(1, 0.1), (3, 0.6), (5, 0.7), (7, 0.8), (9, 1.0)])
    assert rec(m)["anc_recovery_day"] == 3


def test_anc_two_consecutive_only_is_not_recovery():
    m = series("ANC", [(1, 0.1), (3, 0.6), (5, 0.7), (7, 0.3), (9, 0.6), (11, 0.9)])
    assert rec(m)["anc_recovery_day"] is None


def test_anc_threshold_is_inclusive_and_counts_before_nadir_are_ignored():
    m = series("ANC", [(0, 0.8), (1, 0.7), (2, 0.6), (3, 0.2), (5, 0.5), (7, 0.5), (9, 0.5)])
    assert rec(m)["anc_recovery_day"] == 5
    never_low = series("ANC", [(1, 0.9), (3, 1.0), (5, 1.1)])
    assert rec(never_low)["anc_recovery_day"] == 1


def test_exactly_the_window_of_free_days_is_independence():
    m = series("ANC", [(0, 0.1), (56, 1.0)])
    end = pl.DataFrame({"subject_id": ["P1"], "end": [56]})
    assert rec(m, transfusions=tx(0, product="RBC"), follow_up=end,
               ti_window=56)["transfusion_independence_day"] == 1


def test_plasma_does_not_break_transfusion_independence():
    m = series("ANC", [(0, 0.1), (200, 1.0)])
    end = pl.DataFrame({"subject_id": ["P1"], "end": [200]})
    given = pl.concat([tx(10, product="RBC"), tx(80, product="OTHER")])
    r = rec(m, transfusions=given, follow_up=end, ti_window=56)
    assert r["transfusion_independence_day"] == 11


def test_platelet_transfusion_the_day_before_disqualifies():
    m = series("PLT", [(0, 10), (5, 25), (12, 30), (14, 35), (16, 40)])
    assert rec(m, transfusions=tx())["plt_recovery_day"] == 5
    assert rec(m, transfusions=tx(4))["plt_recovery_day"] == 12      # day 5 is supported
    # 7 days before, inclusive: a transfusion on day 5 also rules out day 12
    assert rec(m, transfusions=tx(5))["plt_recovery_day"] is None
    # an RBC transfusion does not matter for platelets
    assert rec(m, transfusions=tx(4, product="RBC"))["plt_recovery_day"] == 5


def test_transfusion_independence_and_last_transfusions():
    m = series("ANC", [(0, 0.1), (100, 1.0)])
    both = pl.concat([tx(10, 20), tx(15, product="RBC")])
    end = pl.DataFrame({"subject_id": ["P1"], "end": [100]})
    r = rec(m, transfusions=both, follow_up=end, ti_window=56)
    assert (r["transfusion_independence_day"], r["last_plt_transfusion_day"],
            r["last_rbc_transfusion_day"]) == (21, 20, 15)
    # days 21..100 are 80 transfusion-free days: enough for an 80-day window, not for 81
    assert rec(m, transfusions=both, follow_up=end, ti_window=80)[
        "transfusion_independence_day"] == 21
    assert rec(m, transfusions=both, follow_up=end, ti_window=81)[
        "transfusion_independence_day"] is None
    assert rec(m, transfusions=tx(-10), follow_up=end)["transfusion_independence_day"] == 0
    assert rec(m, transfusions=None, follow_up=end)["transfusion_independence_day"] is None


@pytest.mark.parametrize(("analyte", "value", "grade"), [
    ("ANC", 2.0, 0), ("ANC", 1.99, 1), ("ANC", 1.5, 1), ("ANC", 1.49, 2), ("ANC", 1.0, 2),
    ("ANC", 0.99, 3), ("ANC", 0.5, 3), ("ANC", 0.49, 4),
    ("PLT", 150, 0), ("PLT", 149, 1), ("PLT", 75, 1), ("PLT", 74.9, 2), ("PLT", 50, 2),
    ("PLT", 49.9, 3), ("PLT", 25, 3), ("PLT", 24.9, 4),
    ("HGB", 120, 0), ("HGB", 119, 1), ("HGB", 100, 1), ("HGB", 99, 2), ("HGB", 80, 2),
    ("HGB", 79, 3), ("HGB", 40, 3),
    ("ALC", 1.0, 0), ("ALC", 0.8, 1), ("ALC", 0.79, 2), ("ALC", 0.5, 2), ("ALC", 0.49, 3),
    ("ALC", 0.2, 3), ("ALC", 0.19, 4),
])
def test_ctcae_v5_thresholds(analyte, value, grade):
    g = ctcae_grades(series(analyte, [(10, value)]))
    assert g["grade"].to_list() == [grade]


def test_ctcae_sex_specific_haemoglobin_and_lln_override():
    m = series("HGB", [(1, 125)])
    sex = pl.DataFrame({"subject_id": ["P1"], "sex": ["M"]})
    assert ctcae_grades(m, sex=sex)["grade"][0] == 1
    assert ctcae_grades(m)["grade"][0] == 0
    assert ctcae_grades(series("ANC", [(1, 1.9)]), lln={"ANC": 1.8})["grade"][0] == 0


def test_worst_grades_per_window_boundaries():
    """Windows start on day 1 after infusion: the day-0 value (ANC 0.1, grade 4, the
    lymphodepletion nadir) is in none of them."""
    g = ctcae_grades(series("ANC", [(0, 0.1), (1, 1.2), (28, 0.3), (29, 0.8), (90, 1.6),
                                    (91, 0.4)]))
    w = worst_grades(g)
    assert w.select("window", "worst_grade", "worst_day").rows() == [
        ("D1-28", 4, 28), ("D29-90", 3, 29), (">D90", 4, 91)]


def test_count_summary_is_patient_level():
    m = pl.concat([series("ANC", [(1, 1.0), (2, 3.0)], "A"), series("ANC", [(1, 2.0)], "B")])
    groups = pl.DataFrame({"subject_id": ["A", "B"], "response_group": ["R", "R"]})
    s = count_summary(m, groups=groups, bin_days=7)
    assert s.row(0, named=True) == {"analyte": "ANC", "response_group": "R", "day": 0,
                                    "median": 2.0, "q1": 2.0, "q3": 2.0, "n": 2}


def test_demo_recovery(demo_study):
    r = recovery_table(demo_study)
    assert r.columns[:4] == ["subject_id", "anc_recovery_day", "plt_recovery_day",
                             "transfusion_independence_day"]
    d = {row["subject_id"]: row for row in r.iter_rows(named=True)}
    for sid in ("SAA-001", "SAA-002", "SAA-003"):
        assert d[sid]["anc_recovery_day"] is not None
        assert d[sid]["transfusion_independence_day"] is not None
    assert d["SAA-005"]["anc_recovery_day"] is None
    assert d["SAA-005"]["transfusion_independence_day"] is None


def test_cli_recovery_prints_empty_where_not_reached(demo_dir, capsys):
    import cli

    assert cli.main(["table", "--study", str(demo_dir), "recovery", "--ti-window", "28"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        "subject_id,anc_recovery_day,plt_recovery_day,transfusion_independence_day")
    assert lines[-1].startswith("SAA-005,,,")


def test_neutrophil_recovery_under_g_csf_does_not_count():
    """ANC 0.3 on day 1, 0.6 on days 3, 5 and 7 under filgrastim (days 2-5, support to day
    12), then 0.6 on days 14, 16, 18. Old rule: recovery on day 3; the G-CSF-supported run
    does not count, so recovery is the first unsupported run: day 14."""
    from analysis.rules import DEFAULT_RULES
    from analysis.support import support_intervals

    m = series("ANC", [(1, 0.3), (3, 0.6), (5, 0.6), (7, 0.6), (14, 0.6), (16, 0.6), (18, 0.6)])
    events = pl.DataFrame({"subject_id": ["P1"], "day": [2], "end_day": [5],
                           "category": ["growth_factor"], "term": ["G-CSF"]})
    gcsf = support_intervals(events, rules=DEFAULT_RULES)
    assert rec(m)["anc_recovery_day"] == 3
    assert rec(m, gcsf=gcsf)["anc_recovery_day"] == 14
