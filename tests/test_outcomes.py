"""Outcomes: exact binomial intervals, ORR denominators, survival data rules, Kaplan-Meier
against lifelines' own result, Table 1 and the study summary."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from analysis.outcomes import (
    baseline_table,
    clopper_pearson,
    kaplan_meier,
    orr,
    orr_table,
    study_summary,
    survival_data,
    swimmer_events,
    swimmer_lanes,
)


@pytest.mark.parametrize(("k", "n"), [(3, 5), (0, 5), (5, 5), (1, 12)])
def test_clopper_pearson_matches_scipy_exact(k, n):
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert clopper_pearson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_orr_denominators():
    resp = pl.DataFrame({
        "subject_id": ["A", "A", "B", "C", "D"],
        "day": [28, 180, 30, 28, 28],
        "category": ["PR", "CR", "NR", "PR", "NE"],
    })
    follow = pl.DataFrame({"subject_id": ["A", "B", "C", "D", "E"],
                           "end": [400, 400, 100, 400, 60]})
    fail = pl.DataFrame({"subject_id": ["A", "B", "C", "D", "E"],
                         "day": [None, None, 60, None, None]}, schema={
        "subject_id": pl.String, "day": pl.Int64})
    t = orr_table(resp, subjects=["A", "B", "C", "D", "E"], follow_up=follow, failures=fail)
    rows = {r["landmark"]: r for r in t.iter_rows(named=True)}
    # D28: A PR, B NR (day 30 within 14 d), C PR, D NE, E not assessed but followed -> NE
    assert (rows["D28"]["n"], rows["D28"]["responders"], rows["D28"]["n_assessed"]) == (5, 2, 3)
    # M6: A CR; B and D followed (NE); C failed at day 60 (counted); E left before M6 (left out)
    assert (rows["M6"]["n"], rows["M6"]["responders"], rows["M6"]["cr"]) == (4, 1, 1)
    assert rows["Best"]["n"] == 5 and rows["Best"]["responders"] == 2
    lo, hi = clopper_pearson(2, 5)
    assert (rows["Best"]["ci_low"], rows["Best"]["ci_high"]) == pytest.approx((lo, hi))


def test_demo_orr_and_summary(demo_study):
    from analysis.cohort import response_groups

    t = orr(demo_study)
    best = t.filter(pl.col("landmark") == "Best").row(0, named=True)
    assert (best["n"], best["responders"]) == (5, 3)
    assert t["landmark"].to_list() == ["D28", "M3", "M6", "M12", "Best"]
    rec = orr(demo_study, criteria="recorded")
    assert rec.filter(pl.col("landmark") == "Best")["responders"][0] == 3
    s = study_summary(demo_study, groups=response_groups(demo_study))
    assert (s.patients, s.responders, s.orr) == (5, 3, 0.6)
    assert s.median_follow_up_days and s.median_follow_up_days > 300


def test_survival_data_hsct_choice(demo_study):
    cens = {r["subject_id"]: r for r in survival_data(demo_study, endpoint="OS", hsct="censor")
            .iter_rows(named=True)}
    event = {r["subject_id"]: r for r in survival_data(demo_study, endpoint="OS", hsct="event")
             .iter_rows(named=True)}
    assert (cens["SAA-004"]["event"], cens["SAA-004"]["reason"]) == (0, "censored at HSCT")
    assert event["SAA-004"]["event"] == 1 and cens["SAA-004"]["time"] == 121
    assert cens["SAA-005"]["event"] == 1 and cens["SAA-005"]["reason"] == "death"
    pfs = {r["subject_id"]: r for r in survival_data(demo_study, endpoint="PFS")
           .iter_rows(named=True)}
    assert pfs["SAA-005"]["reason"] == "progression" and pfs["SAA-005"]["time"] == 268
    with pytest.raises(ValueError):
        survival_data(demo_study, endpoint="EFS")


def test_kaplan_meier_matches_lifelines_on_waltons():
    from lifelines import KaplanMeierFitter
    from lifelines.datasets import load_waltons

    df = load_waltons()
    km = kaplan_meier(pl.from_pandas(df), time="T", event="E", group="group",
                      at_times=[0, 20, 40, 60])
    for name, g in df.groupby("group"):
        ref = KaplanMeierFitter().fit(g["T"], g["E"])
        ours = km.curve.filter(pl.col("group") == name)
        np.testing.assert_allclose(ours["survival"].to_numpy(),
                                   ref.survival_function_.iloc[:, 0].to_numpy())
        np.testing.assert_allclose(ours["ci_low"].to_numpy(),
                                   ref.confidence_interval_.iloc[:, 0].to_numpy())
        summ = km.summary.filter(pl.col("group") == name).row(0, named=True)
        assert summ["median"] == ref.median_survival_time_
        assert summ["n"] == len(g) and summ["events"] == int(g["E"].sum())
        risk = km.at_risk.filter(pl.col("group") == name)["at_risk"].to_list()
        assert risk == [int((g["T"] >= t).sum()) for t in (0, 20, 40, 60)]
    # and against a product-limit estimate written out by hand
    g = df[df["group"] == "control"]
    times = np.sort(g.loc[g["E"] == 1, "T"].unique())
    s, manual = 1.0, []
    for t in times:
        s *= 1 - ((g["T"] == t) & (g["E"] == 1)).sum() / (g["T"] >= t).sum()
        manual.append(s)
    ours = km.curve.filter(pl.col("group") == "control").filter(pl.col("time").is_in(times))
    np.testing.assert_allclose(ours["survival"].to_numpy(), manual)


def test_kaplan_meier_empty_and_unreached_median():
    empty = kaplan_meier(pl.DataFrame(schema={"time": pl.Float64, "event": pl.Int64}))
    assert empty.curve.height == 0 and empty.summary.height == 0
    km = kaplan_meier(pl.DataFrame({"time": [10.0, 20.0, 30.0], "event": [1, 0, 0]}))
    assert km.summary["median"][0] is None            # S stays at 2/3: not reached
    assert km.censored["time"].to_list() == [20.0, 30.0]
    assert km.censored["survival"].to_list() == pytest.approx([2 / 3, 2 / 3])
    km = kaplan_meier(pl.DataFrame({"time": [10.0, 20.0, 30.0], "event": [0, 1, 0]}))
    assert km.summary["median"][0] == 20.0            # S(20) = 1/2


def test_baseline_table_on_demo(demo_study):
    from analysis.cohort import response_groups

    t = baseline_table(demo_study.patients, groups=response_groups(demo_study))
    assert t.columns == ["characteristic", "Overall (n=5)", "Responder (n=3)",
                         "Non-responder (n=2)"]
    chars = t["characteristic"].to_list()
    for needle in ("Age", "Sex", "Severity", "Disease duration", "Prior", "PNH", "Dose"):
        assert any(c.startswith(needle) for c in chars), needle


def test_baseline_table_counts_age_bands_when_deidentified(demo_study):
    from analysis.cohort import response_groups
    from data_loaders.deid import deidentify

    study = deidentify(demo_study)
    t = baseline_table(study.patients, groups=response_groups(study))
    ages = t.filter(pl.col("characteristic").str.starts_with("Age"))
    assert ages.height >= 1 and all("(range)" not in c for c in ages["characteristic"])
    assert sum(int(v.split()[0]) for v in ages["Overall (n=5)"]) == 5


def test_swimmer_data_on_demo(demo_study):
    from analysis.cohort import response_groups
    from analysis.response import derived_responses

    lanes = swimmer_lanes(demo_study, groups=response_groups(demo_study))
    assert lanes.height == 5 and lanes.filter(pl.col("status") == "died")["subject_id"] \
        .to_list() == ["SAA-005"]
    ev = swimmer_events(demo_study, responses=derived_responses(demo_study))
    kinds = set(ev["kind"])
    assert {"HSCT", "Death", "Progression", "RBC transfusion", "PLT transfusion"} <= kinds
    assert any(k.startswith("CRS G") for k in kinds)
