"""Hostile-but-valid clinical situations on tiny hand-made studies: each gives the clinically
right answer, or NE with the reason, never a silent wrong category."""

from __future__ import annotations

import polars as pl

UNITS = {"ANC": "10^9/L", "PLT": "10^9/L", "RETIC": "10^9/L", "HGB": "g/L"}
PATIENTS = "subject_id,sex,diagnosis,last_contact_day,hsct_day,death_day\n"
LD = "P1,-5,-3,lymphodepletion,Flu/Cy,\nP1,0,,infusion,CAR-T,\n"


def _study(write_study, patients: str, rows, *, events: str | None = LD,
           responses: str | None = None):
    from data_loaders import load_study

    meas = "subject_id,day,analyte,value,unit\n" + "".join(
        f"{s},{d},{a},{v},{UNITS[a]}\n" for s, d, vals in rows for a, v in vals.items())
    files = {"patients": PATIENTS + patients, "measurements": meas}
    if events is not None:
        files["events"] = "subject_id,day,end_day,category,term,product\n" + events
    if responses is not None:
        files["responses"] = "subject_id,day,response,criteria\n" + responses
    return load_study(write_study(**files))


SEVERE = {"ANC": 0.3, "PLT": 10, "RETIC": 10, "HGB": 80}


# ---- HSCT recorded only as an event --------------------------------------------------------
def test_recovery_stops_at_an_hsct_recorded_only_as_an_event(write_study):
    """HSCT is an event on day 30 (patients.hsct_day empty). ANC 0.2 and PLT 5 every 3 days
    from day 1 to day 37, then ANC 1.0 and PLT 50 from day 40: the first 3 consecutive ANC >=
    0.5 start on day 40 - the graft's recovery, after the HSCT. The CAR-T's account ends on
    day 29, so neither neutrophil nor platelet recovery is reached (the old code read only
    patients.hsct_day and reported recovery on day 40)."""
    from analysis.recovery import recovery_table

    rows = [("P1", -10, SEVERE)] + [
        ("P1", d, {"ANC": 0.2, "PLT": 5} if d < 40 else {"ANC": 1.0, "PLT": 50})
        for d in range(1, 80, 3)]
    study = _study(write_study, "P1,M,SAA,300,,\n", rows,
                   events=LD + "P1,30,,hsct,allogeneic HSCT,\n")
    r = recovery_table(study).row(0, named=True)
    assert (r["anc_recovery_day"], r["plt_recovery_day"]) == (None, None)


# ---- sex not recorded ----------------------------------------------------------------------
def test_bsh_cr_without_sex_says_which_normal_haemoglobin_was_used():
    """BSH CR needs HGB normal for sex (>= 120 g/L women, >= 130 men), ANC > 1.5, PLT > 150.
    Day 90: ANC 2, PLT 200, RETIC 80, HGB 125; last transfusion day -20 (110 d free >= 56).
    A woman: 125 >= 120 -> CR. A man: 125 < 130 -> PR (no longer severe, transfusion
    independent). Sex not recorded: the male limit is used (PR), and the rule text must say so
    - the old text read "not CR (HGB 125 < 130)" with no word that sex was unknown."""
    from analysis.response import assess_responses

    m = pl.DataFrame([("P1", 90, a, float(v)) for a, v in
                      {"ANC": 2, "PLT": 200, "RETIC": 80, "HGB": 125}.items()],
                     schema={"subject_id": pl.String, "day": pl.Int64, "analyte": pl.String,
                             "value": pl.Float64}, orient="row")
    tx = pl.DataFrame({"subject_id": ["P1"], "day": [-20], "product": ["RBC"]})

    def run(sex):
        pts = pl.DataFrame({"subject_id": ["P1"], "day": [90], "sex": [sex]},
                           schema={"subject_id": pl.String, "day": pl.Int64, "sex": pl.String})
        return assess_responses(m, pts, transfusions=tx, criteria="BSH").row(0, named=True)

    assert run("F")["category"] == "CR"
    assert run("M")["category"] == "PR"
    assert "sex not recorded" not in run("M")["rule"]
    r = run(None)
    assert r["category"] == "PR", r["rule"]
    assert "HGB 125 < 130" in r["rule"]
    assert "sex not recorded: HGB judged against the male normal (130 g/L; 120 for women)" \
        in r["rule"]


# ---- ICAHT: what is missing is named -------------------------------------------------------
def test_early_icaht_ne_names_the_days_without_a_count():
    """No ANC on day 0 or in the 7 days before (last pre-infusion count day -10); first counts
    on days 28 and 30 (ANC 0.6, above 0.5), follow-up to day 400. Days 0-27 have no count,
    so the early grade is NE - but the window is observed to day 30, so the old text "not fully
    observed (to day 30)" pointed at the wrong gap. It must say the ANC is missing before
    day 28."""
    from analysis.haematotox import icaht_from_counts

    anc = pl.DataFrame({"subject_id": ["P1"] * 3, "day": [-10, 28, 30],
                        "value": [0.3, 0.6, 0.6]})
    r = icaht_from_counts(anc, pl.DataFrame({"subject_id": ["P1"], "end": [400]})) \
        .row(0, named=True)
    assert r["early_grade"] is None
    assert "no ANC before day 28 (none on day 0 or in the 7 days before)" in r["early_rule"]
    assert "observed only to" not in r["early_rule"]


# ---- two assessments on the same day -------------------------------------------------------
def test_two_assessments_on_one_day_count_as_the_worse_in_either_order():
    """P1 has two recorded assessments on day 28 that disagree (PR and NR) and nothing else;
    P2 has a single CR on day 28. Followed to day 400. A disputed assessment does not make a
    responder: P1 is NR at D28 and as best response, whatever the order of the rows, so D28
    ORR = 1/2 (P2) and best ORR = 1/2. The old code took whichever row the sort left first."""
    from analysis.outcomes import orr_table

    fu = pl.DataFrame({"subject_id": ["P1", "P2"], "end": [400, 400]})
    for order in (["PR", "NR"], ["NR", "PR"]):
        resp = pl.DataFrame({"subject_id": ["P1", "P1", "P2"], "day": [28, 28, 28],
                             "category": [*order, "CR"]})
        t = orr_table(resp, subjects=["P1", "P2"], follow_up=fu)
        d28 = t.filter(pl.col("landmark") == "D28").row(0, named=True)
        best = t.filter(pl.col("landmark") == "Best").row(0, named=True)
        assert (d28["responders"], d28["nr"], d28["n"]) == (1, 1, 2), order
        assert (best["responders"], best["nr"], best["n"]) == (1, 1, 2), order


# ---- follow-up ending at or just before a landmark -----------------------------------------
def test_follow_up_ending_on_or_just_before_a_landmark(write_study):
    """M3 is day 90 (tolerance +/-14 d, count window +/-7 d). Baseline SAA on day -10.
    P1: last contact day 90, CR-level counts on day 90 (ANC 1.2, HGB 110, PLT 120) -> M3 CR.
    P2: last contact day 85, CR-level counts on day 84: the M3 visit was done (84 is within
    the count window of day 90), so M3 is CR - the old code dropped the day-90 assessment
    (after the end of follow-up) and called M3 "not reached" for a patient who was assessed.
    P3: last contact day 85, no counts after day 28 (PR-level then): M3 not reached (left out
    of n), never a NE counted against the cohort. M3: n = 2, responders 2, not_reached 1."""
    from analysis.outcomes import orr

    cr = {"ANC": 1.2, "HGB": 110, "PLT": 120, "RETIC": 80}
    pr = {"ANC": 0.6, "HGB": 90, "PLT": 30, "RETIC": 80}
    rows = [(p, -10, SEVERE) for p in ("P1", "P2", "P3")] + [
        ("P1", 28, pr), ("P1", 90, cr), ("P2", 28, pr), ("P2", 84, cr), ("P3", 28, pr)]
    ev = "".join(f"{p},-5,-3,lymphodepletion,Flu/Cy,\n{p},0,,infusion,CAR-T,\n"
                 for p in ("P1", "P2", "P3"))
    study = _study(write_study, "P1,M,SAA,90,,\nP2,F,SAA,85,,\nP3,M,SAA,85,,\n", rows,
                   events=ev)
    m3 = orr(study).filter(pl.col("landmark") == "M3").row(0, named=True)
    assert (m3["n"], m3["responders"], m3["cr"], m3["not_reached"], m3["ne"]) == (2, 2, 2, 1, 0)


def test_compare_recorded_takes_the_record_of_the_same_criteria_on_a_shared_day():
    """Day 28 derived NIH CR. Two records that day: BSH PR and NIH CR (an investigator
    scoring both criteria). The comparison is with the NIH record (CR, agree), in either row
    order; the old code took whichever row the sort left first. Without a record of the same
    criteria, the worse record is taken (NR before PR)."""
    from analysis.response import compare_recorded

    der = pl.DataFrame({"subject_id": ["P1"], "day": [28], "category": ["CR"],
                        "rule": ["CR: ..."], "criteria": ["NIH"]})
    for order in ([("PR", "BSH"), ("CR", "NIH")], [("CR", "NIH"), ("PR", "BSH")]):
        rec = pl.DataFrame({"subject_id": ["P1", "P1"], "day": [28, 28],
                            "response": [o[0] for o in order],
                            "criteria": [o[1] for o in order]})
        r = compare_recorded(der, rec).row(0, named=True)
        assert (r["recorded"], r["recorded_criteria"], r["agree"]) == ("CR", "NIH", True)
    for order in (["PR", "NR"], ["NR", "PR"]):
        rec = pl.DataFrame({"subject_id": ["P1", "P1"], "day": [28, 28], "response": order,
                            "criteria": ["local", "local"]})
        assert compare_recorded(der, rec).row(0, named=True)["recorded"] == "NR"


# ---- the CAR-T's account after an HSCT, a study without events, a patient without counts ---
def test_hsct_on_day_60_then_death_on_day_200(write_study):
    """HSCT day 60, death day 200, PR-level counts on day 28 (ANC 0.6, PLT 25, RETIC 70),
    graft-level counts on day 90. OS: event on day 200 (every death). OS censored at HSCT:
    censored on day 60. EFS: event on day 60 (HSCT). PFS: death on day 200 (HSCT neither ends
    nor censors PFS). Responses: D28 PR; M3 and M6 NE "after HSCT on day 60" (the day-90
    counts are the graft's). ORR: D28 1/1; M3, M6, M12 failures (0/1). Swimmer: died after
    HSCT."""
    from analysis.outcomes import orr, swimmer_lanes
    from analysis.response import derived_responses
    from analysis.survival import survival_data

    rows = [("P1", -10, SEVERE), ("P1", 28, {"ANC": 0.6, "PLT": 25, "RETIC": 70, "HGB": 90}),
            ("P1", 90, {"ANC": 2, "PLT": 200, "RETIC": 80, "HGB": 130})]
    study = _study(write_study, "P1,M,SAA,,60,200\n", rows)
    got = {e: survival_data(study, endpoint=e).select("time", "event", "reason").row(0)
           for e in ("OS", "OS_HSCT_CENSORED", "EFS", "PFS")}
    assert got == {"OS": (200.0, 1, "death"), "OS_HSCT_CENSORED": (60.0, 0, "censored at HSCT"),
                   "EFS": (60.0, 1, "HSCT"), "PFS": (200.0, 1, "death")}
    d = derived_responses(study)
    assert d.select("day", "category").rows() == [(28, "PR"), (90, "NE"), (180, "NE")]
    assert d["rule"][1] == "NE: after HSCT on day 60"
    o = orr(study)
    assert o.select("landmark", "responders", "n", "failures").rows() == [
        ("D28", 1, 1, 0), ("M3", 0, 1, 1), ("M6", 0, 1, 1), ("M12", 0, 1, 1), ("Best", 1, 1, 0)]
    groups = pl.DataFrame({"subject_id": ["P1"], "best_response": ["PR"],
                           "response_group": ["Responder"]})
    assert swimmer_lanes(study, groups=groups)["status"].to_list() == ["died after HSCT"]


def test_study_without_events_and_patient_without_counts(write_study):
    """No events table: transfusions are unknown, not "none". P1 (PR-level counts on day 28)
    is NIH PR with "transfusions not recorded"; BSH needs transfusion independence, so BSH is
    NE with that reason. P2 has no counts at all: baseline NE, every assessment NE "no ANC,
    HGB, PLT or RETIC", best response NE, ICAHT NE "no ANC", recovery empty; nothing
    crashes."""
    from analysis.baseline import baseline
    from analysis.haematotox import icaht_table
    from analysis.recovery import recovery_table
    from analysis.response import best_response, derived_responses

    rows = [("P1", -10, SEVERE), ("P1", 28, {"ANC": 0.6, "PLT": 25, "RETIC": 70, "HGB": 90})]
    study = _study(write_study, "P1,M,SAA,100,,\nP2,F,SAA,100,,\n", rows, events=None)
    nih = derived_responses(study, days="28").sort("subject_id")
    assert nih["category"].to_list() == ["PR", "NE"]
    assert nih["rule"][0].endswith("transfusions not recorded")
    assert nih["rule"][1] == "NE: no ANC, HGB, PLT or RETIC within +/-7 d of day 28"
    bsh = derived_responses(study, days="28", criteria="BSH").sort("subject_id")
    assert bsh["category"].to_list() == ["NE", "NE"]
    assert "transfusions are not recorded" in bsh["rule"][0]
    assert baseline(study).sort("subject_id")["severity"].to_list() == ["SAA", "NE"]
    assert best_response(study).sort("subject_id")["best_response"].to_list() == ["PR", "NE"]
    ic = icaht_table(study).sort("subject_id").row(1, named=True)
    assert ic["early_grade"] is None and ic["early_rule"] == "NE: no ANC in days 0-30"
    rec = recovery_table(study).sort("subject_id").row(1, named=True)
    assert rec["anc_recovery_day"] is None and rec["plt_recovery_day"] is None


# ---- transfusion products as recorded ------------------------------------------------------
def test_transfusion_products_as_clinics_write_them():
    """A red-cell transfusion recorded as "Packed cells 2 units", "PRC" or "Whole blood", a
    platelet one as "Thrombocyte concentrate", or product "blood product" with term
    "platelets", breaks transfusion independence; the old reader saw OTHER (like plasma) and
    called the patient transfusion independent. FFP and albumin stay OTHER."""
    from analysis.response import transfusion_events

    ev = pl.DataFrame({
        "subject_id": ["P1"] * 7, "day": list(range(7)), "category": ["transfusion"] * 7,
        "term": ["Packed cells 2 units", "PRC", "Whole blood", "Thrombocyte concentrate",
                 "platelets", "FFP", "Albumin 20%"],
        "product": [None, None, None, None, "blood product", None, None]},
        schema={"subject_id": pl.String, "day": pl.Int64, "category": pl.String,
                "term": pl.String, "product": pl.String})
    assert transfusion_events(ev)["product"].to_list() == [
        "RBC", "RBC", "RBC", "PLT", "PLT", "OTHER", "OTHER"]


def test_a_transfusion_without_a_product_breaks_transfusion_independence():
    """Day 80: an event "Blood transfusion 2 units" with no product. In aplastic anaemia that
    is red cells or platelets, so BSH transfusion independence (no transfusion in the 56 d up
    to day 90) is not met: day 90 with ANC 0.9, PLT 40, RETIC 70 (no longer severe) is NR "not
    transfusion independent", and the rule names the unrecorded product. The old reader
    filed it with plasma (OTHER) and gave PR. A plasma transfusion (FFP) still does not
    count."""
    from analysis.response import assess_responses, transfusion_events

    ev = pl.DataFrame({"subject_id": ["P1", "P1", "P1"], "day": [80, 81, 82],
                       "category": ["transfusion"] * 3,
                       "term": ["Blood transfusion 2 units", "Transfusion", "FFP"],
                       "product": [None, None, None]},
                      schema={"subject_id": pl.String, "day": pl.Int64, "category": pl.String,
                              "term": pl.String, "product": pl.String})
    tx = transfusion_events(ev)
    assert tx["product"].to_list() == ["UNSPECIFIED", "UNSPECIFIED", "OTHER"]
    m = pl.DataFrame([("P1", 90, a, float(v)) for a, v in
                      {"ANC": 0.9, "PLT": 40, "RETIC": 70, "HGB": 95}.items()],
                     schema={"subject_id": pl.String, "day": pl.Int64, "analyte": pl.String,
                             "value": pl.Float64}, orient="row")
    pts = pl.DataFrame({"subject_id": ["P1"], "day": [90]})
    r = assess_responses(m, pts, transfusions=tx, criteria="BSH").row(0, named=True)
    assert r["category"] == "NR", r["rule"]
    assert "not transfusion independent" in r["rule"]
    assert "product not recorded 2" in r["rule"]
    only_ffp = tx.filter(pl.col("product") == "OTHER")
    assert assess_responses(m, pts, transfusions=only_ffp, criteria="BSH") \
        .row(0, named=True)["category"] == "PR"


# ---- landmark analysis: the landmark day itself --------------------------------------------
def test_landmark_leaves_out_an_event_on_the_landmark_day():
    """Landmark day 90. P1 dies on day 90 after a PR on day 28: not event-free past the
    landmark, so not in the at-risk set (the old rule, time >= 90, kept it as a death at time
    0 of the responders' curve, i.e. survival 0 from the start of the landmark curve). P2 is
    censored on day 90: kept with time 0 (it adds nothing but is not an event). P3 dies on day
    91: kept, event at time 1."""
    from analysis.survival import landmark

    surv = pl.DataFrame({"subject_id": ["P1", "P2", "P3"], "time": [90.0, 90.0, 91.0],
                         "event": [1, 0, 1]})
    resp = pl.DataFrame({"subject_id": ["P1", "P2", "P3"], "day": [28, 28, 28],
                         "category": ["PR", "PR", "PR"]})
    lm = landmark(surv, resp, day=90).sort("subject_id")
    assert lm["landmark_group"].to_list() == [None, "Response by day 90", "Response by day 90"]
    assert lm["landmark_note"][0] == "event on or before day 90"
    assert lm["time"].to_list() == [90.0, 0.0, 1.0]
