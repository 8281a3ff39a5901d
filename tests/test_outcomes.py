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
    survival_table,
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


def test_survival_endpoints_on_demo(demo_study):
    """SAA-004: HSCT day 121, alive at 480. SAA-005: progression 268, death 421."""
    def by_id(endpoint):
        return {r["subject_id"]: r for r in survival_data(demo_study, endpoint=endpoint)
                .iter_rows(named=True)}

    os_, cens, efs, pfs = (by_id(e) for e in ("OS", "OS_HSCT_CENSORED", "EFS", "PFS"))
    assert (os_["SAA-004"]["event"], os_["SAA-004"]["time"]) == (0, 480)
    assert (cens["SAA-004"]["event"], cens["SAA-004"]["reason"]) == (0, "censored at HSCT")
    assert cens["SAA-004"]["time"] == 121
    assert (efs["SAA-004"]["event"], efs["SAA-004"]["reason"], efs["SAA-004"]["time"]) == \
        (1, "HSCT", 121)
    assert os_["SAA-005"]["event"] == 1 and os_["SAA-005"]["reason"] == "death"
    assert pfs["SAA-005"]["reason"] == "progression" and pfs["SAA-005"]["time"] == 268
    assert pfs["SAA-004"]["event"] == 0 and pfs["SAA-004"]["time"] == 480
    with pytest.raises(ValueError, match="endpoint must be one of"):
        survival_data(demo_study, endpoint="DFS")


SURV_PATIENTS = """subject_id,last_contact_day,death_day,hsct_day,progression_day
A,300,300,100,
B,400,,,
C,250,,,
D,500,,,
"""


def test_death_after_hsct_is_an_os_event(write_study):
    """A: HSCT on day 100, death on day 300. Standard OS counts the death (the old code could
    only censor A at 100 or count the HSCT as the event). Four patients, one death at 300
    with B (400), D (500) at risk and C censored at 250 before it: at risk at 300 = 3
    (A, B, D), S(300) = 1 - 1/3 = 0.667."""
    from data_loaders import load_study

    study = load_study(write_study(patients=SURV_PATIENTS))
    a = survival_data(study, endpoint="OS").filter(pl.col("subject_id") == "A").row(0, named=True)
    assert (a["time"], a["event"], a["reason"]) == (300, 1, "death")
    sens = survival_data(study, endpoint="OS_HSCT_CENSORED").filter(pl.col("subject_id") == "A")
    assert sens.row(0, named=True)["event"] == 0 and sens["time"][0] == 100
    efs = survival_data(study, endpoint="EFS").filter(pl.col("subject_id") == "A")
    assert (efs["time"][0], efs["reason"][0]) == (100, "HSCT")
    t = survival_table(study, endpoint="OS")
    row = t.filter(pl.col("day") == 300).row(0, named=True)
    assert (row["n_at_risk"], row["events"], row["censored"]) == (3, 1, 0)
    assert row["survival"] == pytest.approx(2 / 3)


def test_survival_table_matches_lifelines(write_study):
    """One row per time with an event or a censoring; values are lifelines' own."""
    from lifelines import KaplanMeierFitter

    from data_loaders import load_study

    study = load_study(write_study(patients=SURV_PATIENTS))
    surv = survival_data(study, endpoint="EFS")
    kmf = KaplanMeierFitter().fit(surv["time"].to_numpy(), surv["event"].to_numpy())
    t = survival_table(study, endpoint="EFS")
    assert t.columns == ["day", "n_at_risk", "events", "censored", "survival", "ci_low",
                         "ci_high"]
    assert t["day"].to_list() == [100.0, 250.0, 400.0, 500.0]
    for r in t.iter_rows(named=True):
        assert r["survival"] == pytest.approx(float(kmf.survival_function_at_times(r["day"]).iloc[0]))
        lo, hi = kmf.confidence_interval_.loc[r["day"]]
        assert (r["ci_low"], r["ci_high"]) == pytest.approx((lo, hi))


def test_cmv_relapse_is_not_progression(write_study):
    """An infection "CMV relapse" on day 50 and nothing else: the old PFS counted any term
    naming relapse as progression (event on day 50); now progression comes only from the
    progression category or patients.progression_day -> B is censored at last contact 400."""
    from data_loaders import load_study

    events = ("subject_id,day,category,term\nB,50,infection,CMV relapse\n"
              "C,200,progression,Clonal evolution to MDS\n")
    study = load_study(write_study(patients=SURV_PATIENTS, events=events))
    pfs = {r["subject_id"]: r for r in survival_data(study, endpoint="PFS").iter_rows(named=True)}
    assert (pfs["B"]["event"], pfs["B"]["time"]) == (0, 400)
    assert (pfs["C"]["event"], pfs["C"]["time"], pfs["C"]["reason"]) == (1, 200, "progression")
    assert (pfs["A"]["event"], pfs["A"]["time"]) == (1, 300)      # death, HSCT ignored


def test_cli_table_survival(write_study, capsys):
    import cli

    folder = write_study(patients=SURV_PATIENTS)
    assert cli.main(["table", "--study", str(folder), "survival", "--endpoint", "OS"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "day,n_at_risk,events,censored,survival,ci_low,ci_high"
    assert lines[1].startswith("250.0,4,0,1,1.0")
    with pytest.raises(SystemExit):     # argparse: invalid choice, with the choices listed
        cli.main(["table", "--study", str(folder), "survival", "--endpoint", "X"])
    assert "OS_HSCT_CENSORED" in capsys.readouterr().err


def test_orr_landmark_beyond_follow_up_is_not_a_non_responder():
    """F was followed to day 80 (alive, no assessment near M3 = day 90 +/- 14). The old table
    counted F at M3 as NE, i.e. a non-responder (80 >= 90 - 14). F has not reached M3: left
    out of n and counted in not_reached. G, followed to 200 without an assessment near M3,
    is NE and counts in n. H, assessed PR on day 85, counts with that assessment.
    M3: n = 2 (G NE, H PR), responders 1, not_reached 1."""
    resp = pl.DataFrame({"subject_id": ["H"], "day": [85], "category": ["PR"]})
    follow = pl.DataFrame({"subject_id": ["F", "G", "H"], "end": [80, 200, 100]})
    t = orr_table(resp, subjects=["F", "G", "H"], follow_up=follow)
    m3 = t.filter(pl.col("landmark") == "M3").row(0, named=True)
    assert (m3["n"], m3["responders"], m3["ne"], m3["not_reached"]) == (2, 1, 1, 1)
    best = t.filter(pl.col("landmark") == "Best").row(0, named=True)
    assert best["n"] == 3           # intent-to-treat: every patient


def test_recorded_cr_after_hsct_is_ne(write_study):
    """P1: HSCT on day 100, recorded NR on day 28 and CR on day 180 (the graft's). The CAR-T's
    best recorded response is NR, not CR: ORR (recorded) best = 0/1, and the response group
    is Non-responder (the old code: CR, Responder)."""
    from analysis.cohort import response_groups
    from analysis.response import recorded_responses
    from data_loaders import load_study

    pts = "subject_id,last_contact_day,hsct_day\nP1,400,100\n"
    study = load_study(write_study(
        patients=pts, responses="subject_id,day,response\nP1,28,NR\nP1,180,CR\n"))
    rec = recorded_responses(study)
    assert rec["category"].to_list() == ["NR", "NE"]
    assert "on or after HSCT on day 100" in rec["rule"][1]
    best = orr(study, criteria="recorded").filter(pl.col("landmark") == "Best").row(0, named=True)
    assert (best["n"], best["responders"]) == (1, 0)
    g = response_groups(study).row(0, named=True)
    assert (g["best_response"], g["response_group"]) == ("NR", "Non-responder")


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


def test_swimmer_marks_hsct_from_patients_table(write_study):
    """P1 has hsct_day 100 in patients.csv and no hsct event: the lane says so and the HSCT is
    marked on day 100."""
    from analysis.cohort import response_groups
    from data_loaders import load_study

    pts = "subject_id,last_contact_day,hsct_day\nP1,300,100\n"
    study = load_study(write_study(patients=pts))
    lanes = swimmer_lanes(study, groups=response_groups(study))
    assert lanes.select("status", "hsct_day").row(0) == ("alive after HSCT", 100)
    ev = swimmer_events(study, responses=pl.DataFrame(
        schema={"subject_id": pl.String, "day": pl.Int64, "category": pl.String}))
    assert ev.filter(pl.col("kind") == "HSCT")["day"].to_list() == [100]


def test_landmark_keeps_patients_at_risk_groups_by_response_before_it_and_resets_time():
    from analysis.survival import landmark

    surv = pl.DataFrame({"subject_id": ["A", "B", "C", "D", "E"],
                         "time": [400.0, 60.0, 300.0, 80.0, 200.0],
                         "event": [0, 1, 1, 0, 0]})
    # C responds only at day 180: in a best-response split it is a responder from day 0
    resp = pl.DataFrame({"subject_id": ["A", "C", "E", "E"], "day": [28, 180, 90, 28],
                         "category": ["PR", "CR", "NR", "NR"]})
    lm = landmark(surv, resp, day=90).sort("subject_id")
    groups = dict(zip(lm["subject_id"], lm["landmark_group"], strict=True))
    assert groups == {"A": "Response by day 90", "B": None, "C": "No response by day 90",
                      "D": None, "E": "No response by day 90"}
    notes = dict(zip(lm["subject_id"], lm["landmark_note"], strict=True))
    assert notes["B"] == "event on or before day 90" and notes["D"] == "follow-up ended before day 90"
    assert lm.filter(pl.col("subject_id") == "A")["time"][0] == 310.0


def test_outcomes_page_landmark_by_default_and_warns_on_best_response(app_page):
    at = app_page("pages/outcomes.py")
    at.toggle(key="out-by-group").set_value(True).run()
    assert not at.exception
    assert any("Landmark analysis at day 90" in c.value for c in at.caption)
    at.radio(key="out-split").set_value("best").run()
    assert not at.exception
    assert any("Immortal-time bias" in w.value for w in at.warning)
