"""The SAA response engine: every branch of NIH and BSH on hand-built counts, the value and
transfusion windows, NE when a needed count is missing, and the demo's truth."""

from __future__ import annotations

import polars as pl
import pytest

from analysis.response import (
    assess_responses,
    assessment_days,
    baseline_severity,
    best_of,
    best_response,
    compare_recorded,
    comparison_summary,
    derived_responses,
    label_timepoints,
    parse_days,
    reference_lines,
)
from analysis.rules import DEFAULT_RULES

UNITS = {"ANC": "10^9/L", "PLT": "10^9/L", "RETIC": "10^9/L", "HGB": "g/L"}


def counts(by_day: dict[int, dict[str, float]], subject: str = "P1") -> pl.DataFrame:
    rows = [(subject, d, a, float(v)) for d, vals in by_day.items() for a, v in vals.items()]
    return pl.DataFrame(rows, schema={"subject_id": pl.String, "day": pl.Int64,
                                      "analyte": pl.String, "value": pl.Float64}, orient="row")


def tx(*days_products: tuple[int, str], subject: str = "P1") -> pl.DataFrame:
    return pl.DataFrame([(subject, d, p) for d, p in days_products],
                        schema={"subject_id": pl.String, "day": pl.Int64, "product": pl.String},
                        orient="row")


NO_TX = tx()


def assess(by_day, *, day=28, transfusions=NO_TX, criteria="NIH", sex=None, ne_reason=None,
           **kw) -> dict:
    pts = pl.DataFrame({"subject_id": ["P1"], "day": [day], "sex": [sex],
                        "ne_reason": [ne_reason]},
                       schema={"subject_id": pl.String, "day": pl.Int64, "sex": pl.String,
                               "ne_reason": pl.String})
    out = assess_responses(counts(by_day), pts, transfusions=transfusions, criteria=criteria,
                           **kw)
    assert out.height == 1
    return out.row(0, named=True)


# ---- NIH -----------------------------------------------------------------------------------
def test_nih_cr():
    r = assess({28: {"ANC": 1.2, "HGB": 110, "PLT": 120, "RETIC": 80}})
    assert r["category"] == "CR"
    assert r["rule"].startswith("CR: ANC 1.2 >= 1, HGB 110 >= 100, PLT 120 >= 100")


def test_nih_cr_thresholds_are_inclusive():
    assert assess({28: {"ANC": 1.0, "HGB": 100, "PLT": 100}})["category"] == "CR"
    assert assess({28: {"ANC": 0.99, "HGB": 100, "PLT": 100}})["category"] == "PR"


def test_nih_pr_rule_text_names_counts_and_transfusion_free_days():
    r = assess({28: {"ANC": 0.9, "PLT": 31, "HGB": 85, "RETIC": 70}},
               transfusions=tx((-35, "RBC")))
    assert r["category"] == "PR"
    assert r["rule"] == ("PR: no longer severe (ANC 0.9 >= 0.5, PLT 31 >= 20, RETIC 70 >= 60); "
                         "not CR (ANC 0.9 < 1, HGB 85 < 100, PLT 31 < 100); transfusion-free 63 d")
    assert (r["anc"], r["plt"], r["hgb"], r["retic"]) == (0.9, 31.0, 85.0, 70.0)
    assert r["transfusion_independent"] is True and r["severe"] is False


def test_nih_pr_does_not_need_transfusion_independence():
    r = assess({28: {"ANC": 0.9, "PLT": 31, "HGB": 85, "RETIC": 70}},
               transfusions=tx((20, "PLT"), (25, "RBC")))
    assert r["category"] == "PR"
    assert "2 transfusion(s) in the 56-d window (RBC 1, PLT 1; last on day 25)" in r["rule"]
    assert r["transfusion_independent"] is False


def test_nih_nr_still_severe_with_two_of_three():
    r = assess({28: {"ANC": 0.3, "PLT": 12, "HGB": 80, "RETIC": 90}})
    assert r["category"] == "NR"
    assert r["rule"].startswith("NR: still severe (ANC 0.3 < 0.5, PLT 12 < 20)")
    r = assess({28: {"ANC": 0.1, "PLT": 12, "HGB": 80, "RETIC": 90}})
    assert r["rule"].startswith("NR: still very severe")


def test_retic_threshold_is_an_option():
    by_day = {28: {"ANC": 0.3, "PLT": 25, "HGB": 80, "RETIC": 40}}
    assert assess(by_day)["category"] == "NR"                         # RETIC 40 < 60
    assert assess(by_day, retic_threshold=20)["category"] == "PR"     # classic manual count


# ---- BSH -----------------------------------------------------------------------------------
def test_bsh_cr_needs_strictly_above_and_sex_specific_hgb():
    ok = {28: {"ANC": 1.6, "HGB": 125, "PLT": 160, "RETIC": 80}}
    assert assess(ok, criteria="BSH", sex="F")["category"] == "CR"
    assert assess(ok, criteria="BSH", sex="M")["category"] == "PR"    # men need >= 130
    edge = {28: {"ANC": 1.5, "HGB": 140, "PLT": 160, "RETIC": 80}}
    r = assess(edge, criteria="BSH", sex="M")
    assert r["category"] == "PR" and "ANC 1.5 <= 1.5" in r["rule"]


@pytest.mark.parametrize(("tx_day", "expected"), [(-29, "PR"), (-28, "PR"), (-27, "NR"),
                                                  (28, "NR")])
def test_bsh_transfusion_window_edges(tx_day, expected):
    """Window (day - 56, day]: a transfusion exactly 56 days before is outside."""
    r = assess({28: {"ANC": 0.9, "PLT": 31, "HGB": 85, "RETIC": 70}}, criteria="BSH",
               transfusions=tx((tx_day, "PLT")))
    assert r["category"] == expected
    if expected == "NR":
        assert "but not transfusion independent" in r["rule"]


def test_bsh_ti_window_parameter():
    by_day = {28: {"ANC": 0.9, "PLT": 31, "HGB": 85, "RETIC": 70}}
    assert assess(by_day, criteria="BSH", transfusions=tx((0, "RBC")))["category"] == "NR"
    assert assess(by_day, criteria="BSH", transfusions=tx((0, "RBC")),
                  ti_window=28)["category"] == "PR"


def test_bsh_without_transfusion_records_is_not_evaluable():
    r = assess({28: {"ANC": 0.9, "PLT": 31, "HGB": 85, "RETIC": 70}}, criteria="BSH",
               transfusions=None)
    assert r["category"] == "NE" and "transfusions are not recorded" in r["rule"]
    # NIH decides without them
    assert assess({28: {"ANC": 0.9, "PLT": 31, "HGB": 85}},
                  transfusions=None)["category"] == "PR"


def test_bsh_nr_when_still_severe():
    r = assess({28: {"ANC": 0.2, "PLT": 5, "HGB": 70, "RETIC": 10}}, criteria="BSH")
    assert r["category"] == "NR" and r["rule"].startswith("NR: still severe")


# ---- windows and missing counts ------------------------------------------------------------
def test_no_counts_in_window_is_ne():
    r = assess({0: {"ANC": 1.5, "HGB": 120, "PLT": 150}})
    assert r["category"] == "NE"
    assert r["rule"] == "NE: no ANC, HGB, PLT or RETIC within +/-7 d of day 28"


def test_value_window_edges_and_nearest_value():
    assert assess({35: {"ANC": 1.5, "HGB": 120, "PLT": 150}})["category"] == "CR"
    assert assess({36: {"ANC": 1.5, "HGB": 120, "PLT": 150}})["category"] == "NE"
    assert assess({36: {"ANC": 1.5, "HGB": 120, "PLT": 150}},
                  value_window=8)["category"] == "CR"
    # the assessment-day count wins over a later one inside the window
    r = assess({28: {"ANC": 0.2, "PLT": 10, "HGB": 80}, 33: {"ANC": 1.5, "HGB": 120, "PLT": 150}})
    assert r["category"] == "NR" and r["anc"] == 0.2


def test_missing_count_needed_for_severity_is_ne():
    r = assess({28: {"ANC": 0.3, "HGB": 90}})
    assert r["category"] == "NE"
    assert r["rule"].startswith("NE: severity cannot be judged (PLT, RETIC missing")


def test_missing_hgb_when_cr_is_possible_is_ne_but_not_when_cr_failed():
    r = assess({28: {"ANC": 1.5, "PLT": 150, "RETIC": 80}})
    assert r["category"] == "NE" and "CR cannot be judged (HGB missing)" in r["rule"]
    assert assess({28: {"ANC": 0.8, "PLT": 150, "RETIC": 80}})["category"] == "PR"


def test_ne_reason_forces_ne():
    r = assess({28: {"ANC": 1.5, "HGB": 120, "PLT": 150}}, ne_reason="after HSCT on day 20")
    assert (r["category"], r["rule"]) == ("NE", "NE: after HSCT on day 20")


def test_same_day_duplicates_are_averaged():
    m = pl.concat([counts({28: {"ANC": 0.4, "PLT": 30, "HGB": 80}}),
                   counts({28: {"ANC": 0.8}})])
    out = assess_responses(m, pl.DataFrame({"subject_id": ["P1"], "day": [28]}),
                           transfusions=NO_TX)
    assert out["anc"][0] == pytest.approx(0.6)


def test_unknown_criteria_raises():
    with pytest.raises(ValueError, match="criteria"):
        assess({28: {"ANC": 1.0}}, criteria="EBMT")


def test_best_of_and_compare_recorded():
    derived = pl.DataFrame({"subject_id": ["A", "A", "B"], "day": [28, 90, 28],
                            "category": ["PR", "CR", "NR"], "rule": ["r1", "r2", "r3"]})
    best = best_of(derived)
    assert best.filter(pl.col("subject_id") == "A").row(0) == ("A", "CR", 90, "r2")
    derived = derived.with_columns(criteria=pl.lit("NIH"))
    recorded = pl.DataFrame({"subject_id": ["A", "A", "B", "B"], "day": [28, 90, 28, 180],
                             "response": ["PR", "PR", "NR", "PR"], "criteria": "NIH"})
    cmp = compare_recorded(derived, recorded)
    assert cmp.filter(pl.col("agree") == False).select("subject_id", "day").rows() == \
        [("A", 90)]  # noqa: E712
    assert cmp.filter((pl.col("subject_id") == "B") & (pl.col("day") == 180))["agree"][0] \
        is None


def test_compare_recorded_compares_like_with_like():
    """BSH-derived vs NIH-recorded is not a disagreement, nor is a record without criteria:
    only records on the derived criteria (aliases such as "Townsley" included) are counted,
    and the summary says how many were set apart and why."""
    derived = pl.DataFrame({"subject_id": ["A", "A", "A", "B"], "day": [28, 90, 180, 28],
                            "category": ["NR", "NR", "CR", "PR"], "rule": "r",
                            "criteria": "BSH"})
    recorded = pl.DataFrame({"subject_id": ["A", "A", "A", "B"], "day": [28, 90, 180, 28],
                             "response": ["PR", "PR", "PR", "CR"],
                             "criteria": ["NIH", None, "Camitta", "local scheme"]})
    cmp = compare_recorded(derived, recorded)
    rows = {(r["subject_id"], r["day"]): r for r in cmp.iter_rows(named=True)}
    assert rows[("A", 28)]["agree"] is None
    assert rows[("A", 28)]["compared"] == "different criteria (NIH recorded, BSH derived): not compared"
    assert rows[("A", 90)]["agree"] is None
    assert rows[("A", 90)]["compared"] == "criteria not recorded: not compared"
    assert rows[("A", 180)]["agree"] is False          # Camitta is BSH: a real disagreement
    assert rows[("A", 180)]["compared"] == "same criteria (BSH)"
    assert rows[("B", 28)]["agree"] is None
    text = comparison_summary(cmp)
    assert text.startswith("Derived vs recorded: 1 disagreement(s) over 1 assessment(s)")
    assert "3 recorded assessment(s) not compared: 1 without recorded criteria, 2 recorded " \
        "with other criteria" in text
    # NIH-derived against the same records: the NIH one is compared (NR vs PR: disagrees)
    nih = compare_recorded(derived.with_columns(criteria=pl.lit("NIH")), recorded)
    assert nih.filter(pl.col("agree").is_not_null()).select("subject_id", "day").rows() == \
        [("A", 28)]


def test_parse_days_and_labels():
    assert parse_days("90, 28;180") == (28, 90, 180)
    assert parse_days("") is None and parse_days(None) is None
    with pytest.raises(ValueError):
        parse_days("D28")
    lab = label_timepoints(pl.DataFrame({"day": [28, 90, 45]}))
    assert lab["timepoint"].to_list() == ["D28", "M3", "D45"]
    lines = reference_lines(criteria="BSH")
    assert (1.5, "BSH CR >1.5") in lines["ANC"] and (150.0, "BSH CR >150") in lines["PLT"]


# ---- studies -------------------------------------------------------------------------------
def test_demo_best_responses_match_truth(demo_study):
    best = best_response(demo_study)
    assert best.columns == ["subject_id", "best_response", "best_response_day", "criteria"]
    got = dict(best.select("subject_id", "best_response").rows())
    assert {k: got[k] in ("CR", "PR") for k in got} == {
        "SAA-001": True, "SAA-002": True, "SAA-003": True, "SAA-004": False, "SAA-005": False}
    assert got["SAA-004"] == "NR" and got["SAA-005"] == "NR"


def test_demo_derived_agrees_with_recorded(demo_study):
    cmp = compare_recorded(derived_responses(demo_study), demo_study.responses)
    assert cmp.height >= 10 and cmp["agree"].drop_nulls().all()
    assert cmp["agree"].drop_nulls().len() >= 10
    # the demo records NIH responses: BSH-derived ones are set apart, none is a disagreement
    bsh = compare_recorded(derived_responses(demo_study, criteria="BSH"), demo_study.responses)
    assert bsh["agree"].drop_nulls().len() == 0
    assert bsh.filter(pl.col("compared").str.starts_with("different criteria (NIH recorded, "
                                                          "BSH derived)")).height >= 10


def test_demo_response_groups_come_from_derived_nih(demo_study):
    from analysis.cohort import response_groups

    g = response_groups(demo_study)
    assert g.columns == ["subject_id", "best_response", "response_group", "group_source"]
    assert set(g["group_source"]) == {"derived NIH"}
    assert g.filter(pl.col("response_group") == "Responder")["subject_id"].to_list() == \
        ["SAA-001", "SAA-002", "SAA-003"]


PATIENTS = """subject_id,sex,last_contact_day,hsct_day,response_override
P1,M,400,,
P2,F,100,60,
P3,F,400,,CR
P4,M,400,,
"""
MEAS = "subject_id,day,analyte,value,unit\n" + "".join(
    f"{s},{d},{a},{v},{UNITS[a]}\n" for s, d, vals in [
        ("P1", 28, {"ANC": 1.2, "HGB": 110, "PLT": 120}),
        ("P2", 28, {"ANC": 0.2, "PLT": 5, "RETIC": 10}),
        ("P2", 90, {"ANC": 2.0, "HGB": 130, "PLT": 200}),
        ("P3", 28, {"ANC": 0.2, "PLT": 5, "RETIC": 10})]
    for a, v in vals.items())


def test_study_level_rules(write_study):
    from analysis.cohort import response_groups
    from data_loaders import load_study

    study = load_study(write_study(patients=PATIENTS, measurements=MEAS,
                                   responses="subject_id,day,response\nP4,30,PR\n"))
    days = assessment_days(study)
    # P2: follow-up ends at 100 (no M6/M12); P4 keeps its recorded day only
    assert days.filter(pl.col("subject_id") == "P2")["day"].to_list() == [28, 90]
    assert days.filter(pl.col("subject_id") == "P4")["day"].to_list() == [30]
    d = derived_responses(study)
    p2 = d.filter(pl.col("subject_id") == "P2")
    assert p2["category"].to_list() == ["NR", "NE"]        # day 90 is after the HSCT
    assert p2["rule"][1] == "NE: after HSCT on day 60"
    g = dict(response_groups(study).select("subject_id", "group_source").rows())
    assert g == {"P1": "derived NIH", "P2": "derived NIH", "P3": "override", "P4": "recorded"}
    assert derived_responses(study, days="28")["day"].unique().to_list() == [28]


def test_baseline_severity(write_study):
    from data_loaders import load_study

    meas = ("subject_id,day,analyte,value,unit\nP1,-2,ANC,0.1,10^9/L\nP1,-2,PLT,10,10^9/L\n"
            "P1,-2,RETIC,15,10^9/L\nP2,0,ANC,0.4,10^9/L\nP2,0,PLT,50,10^9/L\n"
            "P2,0,RETIC,90,10^9/L\n")
    sev = baseline_severity(load_study(write_study(measurements=meas)))
    assert dict(sev.select("subject_id", "severity").rows()) == {"P1": "vSAA", "P2": "NSAA"}


def test_baseline_severity_never_uses_counts_after_infusion(write_study):
    from data_loaders import load_study

    # PLT was not drawn on day -1; the day +3 value (after lymphodepletion) must not stand in
    meas = ("subject_id,day,analyte,value,unit\nP1,-10,ANC,0.3,10^9/L\nP1,-1,ANC,0.3,10^9/L\n"
            "P1,-10,PLT,50,10^9/L\nP1,3,PLT,5,10^9/L\nP1,-10,RETIC,80,10^9/L\n")
    sev = baseline_severity(load_study(write_study(measurements=meas)))
    row = sev.filter(pl.col("subject_id") == "P1").row(0, named=True)
    assert row["severity"] == "NSAA" and row["plt"] == 50


def test_plasma_transfusion_does_not_break_independence(write_study):
    from data_loaders import load_study

    # severe at baseline (day -10: ANC 0.3, PLT 10), no longer severe on day 90
    meas = ("subject_id,day,analyte,value,unit\nP1,-10,ANC,0.3,10^9/L\nP1,-10,PLT,10,10^9/L\n"
            "P1,90,ANC,0.9,10^9/L\nP1,90,PLT,40,10^9/L\n"
            "P1,90,RETIC,80,10^9/L\nP1,90,HGB,95,g/L\n")
    events = "subject_id,day,category,term,product\nP1,80,transfusion,Fresh frozen plasma,FFP\n"
    study = load_study(write_study(measurements=meas, events=events))
    r = derived_responses(study, criteria="BSH", days="90").row(0, named=True)
    assert r["category"] == "PR", r["rule"]


def test_cli_tables(demo_dir, capsys):
    import cli

    assert cli.main(["table", "--study", str(demo_dir), "best_response"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == \
        "subject_id,best_response,best_response_day,criteria"
    assert cli.main(["table", "--study", str(demo_dir), "responses", "--criteria", "BSH",
                     "--ti-window", "28"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("subject_id,day,category,rule,")
    assert {ln.split(",")[2] for ln in lines[1:]} <= {"CR", "PR", "NR", "NE"}
    assert cli.main(["table", "--study", str(demo_dir), "responses"]) == 0
    assert capsys.readouterr().out.startswith("subject_id,day,response")   # recorded table


# ---- support windows, baseline, non-severe PR, HSCT ----------------------------------------
def test_platelet_count_one_day_after_a_platelet_transfusion_never_makes_pr():
    """Day 28: ANC 0.3 (< 0.5, severe), PLT 24, RETIC 80 (>= 60); a platelet transfusion on
    day 27. The old engine counted PLT 24 >= 20 as recovered: 1 severe criterion -> PR. With
    a 7-day platelet support window, PLT 24 is 1 day after the transfusion, so it cannot meet
    "PLT >= 20": 2 severe criteria (ANC, supported PLT) -> NR, and the rule names it."""
    r = assess({28: {"ANC": 0.3, "PLT": 24, "RETIC": 80, "HGB": 80}},
               transfusions=tx((27, "PLT")))
    assert r["category"] == "NR", r["rule"]
    assert "PLT 24 supported" in r["rule"]
    assert "PLT 24 (PLT transfusion on day 27)" in r["rule"]
    assert r["plt_supported"] is True


def test_nearest_unsupported_count_in_the_window_is_taken():
    """Same patient, but PLT 25 was also measured on day 35, 8 days after the transfusion of
    day 27 (outside the 7-day support window) and within the +/-7 d count window of day 28:
    that count is used -> 1 severe criterion (ANC) -> NIH PR, with PLT's own day shown."""
    r = assess({28: {"ANC": 0.3, "PLT": 24, "RETIC": 80, "HGB": 80}, 35: {"PLT": 25}},
               transfusions=tx((27, "PLT")))
    assert r["category"] == "PR", r["rule"]
    assert "PLT 25 (day 35) >= 20" in r["rule"]
    assert (r["plt"], r["plt_day"], r["plt_supported"]) == (25.0, 35, False)


def test_supported_counts_never_make_cr():
    """ANC 1.2, HGB 110, PLT 120 on day 28 would be NIH CR, but PLT 120 is 1 day after a
    platelet transfusion: not CR; still no longer severe (ANC 1.2, RETIC 80) -> PR."""
    r = assess({28: {"ANC": 1.2, "HGB": 110, "PLT": 120, "RETIC": 80}},
               transfusions=tx((27, "PLT")))
    assert r["category"] == "PR"
    assert "not CR (PLT 120 supported)" in r["rule"]
    # a red-cell transfusion 20 days before holds the haemoglobin up (28-day window)
    r = assess({28: {"ANC": 1.2, "HGB": 110, "PLT": 120, "RETIC": 80}},
               transfusions=tx((8, "RBC")))
    assert r["category"] == "PR" and "HGB 110 (RBC transfusion on day 8)" in r["rule"]
    assert assess({28: {"ANC": 1.2, "HGB": 110, "PLT": 120, "RETIC": 80}},
                  transfusions=tx((8, "RBC")), rules=DEFAULT_RULES.with_(
                      rbc_support_days=14))["category"] == "CR"


def test_neutrophils_under_g_csf_are_supported():
    """Day 28: ANC 0.6 (would be >= 0.5), PLT 10 (< 20), RETIC 80. Filgrastim days 20-26: the
    ANC is 2 days after the last dose (7-day window), so it counts as not recovered: 2 severe
    criteria -> NR (the old engine: 1 criterion -> PR)."""
    from analysis.support import support_intervals

    events = pl.DataFrame({"subject_id": ["P1"], "day": [20], "end_day": [26],
                           "category": ["medication"], "term": ["Filgrastim 5 ug/kg"],
                           "product": ["g_csf"]})
    sup = support_intervals(events, rules=DEFAULT_RULES)
    pts = pl.DataFrame({"subject_id": ["P1"], "day": [28]})
    r = assess_responses(counts({28: {"ANC": 0.6, "PLT": 10, "RETIC": 80}}), pts,
                         transfusions=NO_TX, support=sup).row(0, named=True)
    assert r["category"] == "NR", r["rule"]
    assert "ANC 0.6 (Filgrastim 5 ug/kg days 20-26)" in r["rule"]
    growth = events.with_columns(pl.lit("growth_factor").alias("category"),
                                 pl.lit(None, dtype=pl.String).alias("product"))
    assert support_intervals(growth, rules=DEFAULT_RULES)["end"].to_list() == [33]


LD_PATIENTS = """subject_id,sex,diagnosis,last_contact_day,hsct_day
P1,M,,400,
"""


def _study(write_study, meas_rows, *, events="", patients=LD_PATIENTS, toml=None):
    from data_loaders import load_study

    meas = "subject_id,day,analyte,value,unit\n" + "".join(
        f"P1,{d},{a},{v},{UNITS[a]}\n" for d, vals in meas_rows for a, v in vals.items())
    ev = "subject_id,day,end_day,category,term,product\nP1,-5,-3,lymphodepletion,Flu/Cy,\n" \
        + events
    files = {"patients": patients, "measurements": meas, "events": ev}
    if toml:
        files["study.toml"] = toml
    return load_study(write_study(**files))


def test_baseline_comes_from_screening_not_from_after_lymphodepletion(write_study):
    """Screening (day -12): ANC 0.4, PLT 12, RETIC 30 -> 3 criteria (0.4 < 0.5, 12 < 20,
    30 < 60), ANC >= 0.2 -> SAA. Lymphodepletion starts day -5; on days -3 and 0 the counts
    are ANC 0.1, PLT 5, RETIC 4 (vSAA level, made by fludarabine/cyclophosphamide). Baseline
    is the screening: SAA; the old rule (last counts up to day 0) said vSAA."""
    from analysis.baseline import baseline

    after = {"ANC": 0.1, "PLT": 5, "RETIC": 4}
    study = _study(write_study, [(-12, {"ANC": 0.4, "PLT": 12, "RETIC": 30, "HGB": 80}),
                                 (-3, after), (0, after)])
    b = baseline(study).row(0, named=True)
    assert (b["severity"], b["anc"], b["anc_day"], b["plt_day"]) == ("SAA", 0.4, -12, -12)
    assert "before lymphodepletion (starts day -5)" in b["rule"]
    assert baseline_severity(study)["severity"].to_list() == ["SAA"]
    # a count on the first lymphodepletion day only with baseline_on_ld_day
    study = _study(write_study, [(-12, {"ANC": 0.4, "PLT": 12, "RETIC": 30}),
                                 (-5, {"ANC": 0.15})], toml="[rules]\nbaseline_on_ld_day = true\n")
    assert baseline(study).row(0, named=True)["severity"] == "vSAA"
    # outside the screening window: no baseline count at all
    study = _study(write_study, [(-40, {"ANC": 0.4, "PLT": 12, "RETIC": 30})])
    assert baseline(study).row(0, named=True)["severity"] == "NE"


def test_baseline_marrow_rule_and_agreement(write_study):
    """Counts ANC 0.3, PLT 10 (2 criteria). Cellularity 40% with 20% residual cells -> marrow
    criterion met (25-50% with < 30%) -> SAA, agreeing with a recorded SAA; 40% with 35%
    residual -> NSAA (disagrees); 40% without a residual -> NE; 60% -> NSAA."""
    from analysis.baseline import baseline

    def sev(cell, resid):
        pts = ("subject_id,sex,diagnosis,marrow_cellularity_pct,marrow_residual_pct\n"
               f"P1,F,SAA,{cell},{resid}\n")
        row = baseline(_study(write_study, [(-10, {"ANC": 0.3, "PLT": 10, "RETIC": 80})],
                              patients=pts)).row(0, named=True)
        return row["severity"], row["agrees"]

    assert sev(40, 20) == ("SAA", True)
    assert sev(40, 35) == ("NSAA", False)
    assert sev(40, "") == ("NE", None)
    assert sev(60, "") == ("NSAA", False)
    assert sev(10, "") == ("SAA", True)


def test_non_severe_baseline_with_unchanged_counts_is_never_pr(write_study):
    """Baseline (day -10): ANC 0.8, PLT 40, RETIC 70, HGB 90 -> no severe criterion -> NSAA.
    Day 90: the same counts. The old NIH rule called this PR ("no longer severe"). Under the
    BSH non-severe rule: no lineage doubled (0.8 -> 0.8, 40 -> 40, 90 -> 90), none normalised
    (ANC < 2.0, PLT < 150, HGB < 130), no rise from a severe level, no transfusion
    independence gained (none recorded) -> NR."""
    base = {"ANC": 0.8, "PLT": 40, "RETIC": 70, "HGB": 90}
    study = _study(write_study, [(-10, base), (90, base)])
    r = derived_responses(study, days="90").row(0, named=True)
    assert r["category"] == "NR", r["rule"]
    assert r["rule"].startswith("NR: not severe at baseline (NSAA)")
    # PLT doubled (40 -> 85 >= 80): PR under the BSH non-severe rule
    study = _study(write_study, [(-10, base), (90, {**base, "PLT": 85})])
    r = derived_responses(study, days="90").row(0, named=True)
    assert r["category"] == "PR" and "PLT 85 >= 2 x baseline 40" in r["rule"]
    # the study may declare such assessments not evaluable instead
    study = _study(write_study, [(-10, base), (90, {**base, "PLT": 85})],
                   toml='[rules]\nnonsevere_pr = "ne"\n')
    assert derived_responses(study, days="90")["category"].to_list() == ["NE"]


def test_non_severe_rise_from_a_severe_level():
    """Baseline ANC 0.3 (< 0.5) in an NSAA patient (PLT 40, RETIC 70, HGB 90): on day 90
    ANC 0.85 is a rise of 0.55 > 0.5 -> PR; ANC 0.75 rises only 0.45 but 0.75 >= 2 x 0.3 = 0.6
    is a doubling -> PR; ANC 0.55 (+0.25, < 0.6) with unchanged PLT and HGB -> NR."""
    baseline = pl.DataFrame({"subject_id": ["P1"], "severity": ["NSAA"], "anc": [0.3],
                             "plt": [40.0], "hgb": [90.0], "transfusion_dependent": [False]})

    def cat(anc):
        pts = pl.DataFrame({"subject_id": ["P1"], "day": [90]})
        r = assess_responses(counts({90: {"ANC": anc, "PLT": 40, "RETIC": 70, "HGB": 90}}),
                             pts, transfusions=NO_TX, baseline=baseline).row(0, named=True)
        return r["category"], r["rule"]

    assert cat(0.85)[0] == "PR" and "ANC 0.85 > baseline 0.3 + 0.5" in cat(0.85)[1]
    assert cat(0.75)[0] == "PR" and "ANC 0.75 >= 2 x baseline 0.3" in cat(0.75)[1]
    assert cat(0.55)[0] == "NR"


def test_counts_after_hsct_never_decide_an_earlier_assessment(write_study):
    """HSCT on day 60. Day 56 assessment: the only counts within +/-7 d are from day 62, the
    graft's (CR-level). The old engine took them (CR); now they are left out -> NE (no counts
    in the window)."""
    pts = "subject_id,sex,diagnosis,last_contact_day,hsct_day\nP1,M,SAA,400,60\n"
    study = _study(write_study, [(-10, {"ANC": 0.3, "PLT": 10, "RETIC": 10}),
                                 (62, {"ANC": 2.0, "HGB": 130, "PLT": 200, "RETIC": 90})],
                   patients=pts)
    r = derived_responses(study, days="56").row(0, named=True)
    assert r["category"] == "NE", r["rule"]
    assert derived_responses(study, days="62")["rule"].to_list() == ["NE: after HSCT on day 60"]


def test_demo_baseline_is_the_screening_and_matches_the_diagnosis(demo_study):
    """Demo (sample_data/README.md): lymphodepletion on day -5, so baseline is the screening
    visit (day -14..-10); derived severity equals the recorded diagnosis for all five."""
    from analysis.baseline import baseline

    b = baseline(demo_study)
    assert b["severity"].to_list() == ["SAA", "SAA", "vSAA", "SAA", "vSAA"]
    assert b["agrees"].to_list() == [True] * 5
    assert b["anc_day"].max() < -5


def test_demo_d28_orr_with_the_classic_reticulocyte_cut_off(demo_study):
    """README truth: NIH D28 ORR 1/5 with RETIC < 60, 3/5 with RETIC < 20."""
    from analysis.outcomes import orr
    from analysis.rules import rules_for

    def d28(retic):
        t = orr(demo_study, rules=rules_for(demo_study).with_(retic_threshold=retic))
        r = t.filter(pl.col("landmark") == "D28").row(0, named=True)
        return r["responders"], r["n"]

    assert d28(60) == (1, 5) and d28(20) == (3, 5)


def test_count_tie_rule():
    """Day 28 has no count; day 25 (ANC 0.3, PLT 10: severe) and day 31 (ANC 1.2, HGB 110,
    PLT 120: CR) are both 3 days away. Default count_tie = earlier -> day 25 -> NR;
    count_tie = later -> day 31 -> CR."""
    by_day = {25: {"ANC": 0.3, "PLT": 10, "HGB": 80}, 31: {"ANC": 1.2, "HGB": 110, "PLT": 120}}
    assert assess(by_day)["category"] == "NR"
    assert assess(by_day, rules=DEFAULT_RULES.with_(count_tie="later"))["category"] == "CR"


def test_support_of_an_earlier_longer_course_still_counts():
    """G-CSF days 1-30 (supports to day 37) and days 20-21 (to day 28). An ANC on day 33
    follows the later course's window but is still inside the first: supported, named after
    the first course; day 38 is free."""
    from analysis.support import mark_supported, support_intervals

    events = pl.DataFrame({"subject_id": ["P1", "P1"], "day": [1, 20], "end_day": [30, 21],
                           "category": ["growth_factor"] * 2, "term": ["G-CSF A", "G-CSF B"]})
    iv = support_intervals(events, rules=DEFAULT_RULES)
    c = pl.DataFrame({"subject_id": ["P1", "P1"], "analyte": ["ANC", "ANC"], "day": [33, 38],
                      "value": [1.0, 1.0]})
    out = mark_supported(c, iv).sort("day")
    assert out["supported"].to_list() == [True, False]
    assert out["support"].to_list() == ["G-CSF A days 1-30", None]


def test_supported_baseline_platelets_do_not_make_a_patient_non_severe(write_study):
    """Screening day -12: ANC 0.3 (< 0.5), PLT 25, RETIC 80; a platelet transfusion on day
    -13. PLT 25 is 1 day after it, so it does not show platelets above 20: ANC and PLT are
    severe -> SAA (counting PLT 25 as >= 20 would leave 1 criterion -> NSAA)."""
    from analysis.baseline import baseline

    study = _study(write_study, [(-12, {"ANC": 0.3, "PLT": 25, "RETIC": 80})],
                   events="P1,-13,-13,transfusion,PLT transfusion,PLT\n")
    b = baseline(study).row(0, named=True)
    assert (b["severity"], b["plt_supported"]) == ("SAA", True)
    assert "PLT 25 (day -12, supported: PLT transfusion on day -13)" in b["rule"]


def test_hsct_recorded_only_as_an_event_ends_the_account(write_study):
    """No patients.hsct_day, but an hsct event on day 60: the day-90 assessment is NE."""
    study = _study(write_study, [(-10, {"ANC": 0.3, "PLT": 10, "RETIC": 10}),
                                 (90, {"ANC": 2.0, "HGB": 130, "PLT": 200, "RETIC": 90})],
                   events="P1,60,60,hsct,Allogeneic HSCT,\n")
    assert derived_responses(study, days="90")["rule"].to_list() == ["NE: after HSCT on day 60"]
