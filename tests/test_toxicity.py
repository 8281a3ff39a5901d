"""Toxicity (analysis.toxicity): ASTCT 2019 CRS grade from vitals at every boundary, recorded
CRS/ICANS summaries, adverse-event counts, cytokine peaks and the derived tables."""

from __future__ import annotations

import polars as pl
import pytest

from analysis import toxicity as tox
from analysis.registry import derived_tables
from analysis.rules import DEFAULT_RULES


def vitals(*days: dict, subject: str = "P1") -> pl.DataFrame:
    """One dict per day: {"day": d, "TEMP": .., "SBP": .., "O2_LPM": .., "VASOPRESSORS": ..}."""
    rows = []
    for d in days:
        for analyte, value in d.items():
            if analyte != "day":
                rows.append({"subject_id": subject, "day": d["day"], "analyte": analyte,
                             "value": float(value)})
    return pl.DataFrame(rows, schema={"subject_id": pl.String, "day": pl.Int64,
                                      "analyte": pl.String, "value": pl.Float64})


def grade(**vals) -> int | None:
    out = tox.astct_daily_grades(vitals({"day": 1, **vals}))
    return out.item(0, "derived_grade")


@pytest.mark.parametrize(("vals", "expected"), [
    ({"TEMP": 37.9, "SBP": 80, "O2_LPM": 10}, 0),          # no fever -> no CRS grade
    ({"TEMP": 38.0, "SBP": 120, "O2_LPM": 0}, 1),          # fever alone -> 1
    ({"TEMP": 38.0, "SBP": 90}, 1),                        # SBP 90 is not hypotension
    ({"TEMP": 38.0, "SBP": 89}, 2),                        # SBP < 90, no vasopressor -> 2
    ({"TEMP": 38.0, "SBP": 89, "VASOPRESSORS": 0}, 2),
    ({"TEMP": 38.5, "SBP": 85, "VASOPRESSORS": 1}, 3),     # one vasopressor -> 3
    ({"TEMP": 38.5, "SBP": 110, "VASOPRESSORS": 1}, 3),    # on a vasopressor even if SBP ok
    ({"TEMP": 38.5, "VASOPRESSORS": 2}, 4),                # multiple vasopressors -> 4
    ({"TEMP": 38.5, "O2_LPM": 0.5}, 2),                    # any low-flow O2 -> 2
    ({"TEMP": 38.5, "O2_LPM": 6}, 2),                      # 6 L/min is still low-flow
    ({"TEMP": 38.5, "O2_LPM": 6.1}, 3),                    # > 6 L/min high-flow -> 3
    ({"TEMP": 38.5, "SBP": 85, "O2_LPM": 8}, 3),           # worse of hypotension/hypoxia
    ({"TEMP": 38.5, "VASOPRESSORS": 2, "O2_LPM": 3}, 4),
])
def test_astct_grade_boundaries(vals, expected):
    assert grade(**vals) == expected


def test_no_temperature_is_not_derivable():
    out = tox.astct_daily_grades(vitals({"day": 1, "TEMP": 38.5}, {"day": 2, "SBP": 80}))
    assert out.get_column("derived_grade").to_list() == [1, None]
    assert out.item(1, "basis") == "no temperature recorded"
    assert tox.astct_daily_grades(vitals({"day": 1, "SBP": 80})).height == 0


def test_day_worst_values_and_basis():
    v = pl.concat([vitals({"day": 2, "TEMP": 37.2, "SBP": 120}),
                   vitals({"day": 2, "TEMP": 38.6, "SBP": 84, "O2_LPM": 2})])
    out = tox.astct_daily_grades(v).row(0, named=True)
    assert (out["temp_max"], out["sbp_min"], out["derived_grade"]) == (38.6, 84.0, 2)
    assert out["basis"] == "fever 38.6 C; SBP 84.0; O2 2.0 L/min (low-flow)"


def test_before_from_day_is_ignored():
    v = vitals({"day": -3, "TEMP": 39.0}, {"day": 1, "TEMP": 36.8})
    out = tox.astct_daily_grades(v)
    assert out.get_column("day").to_list() == [1]


def test_masked_fever_carry_option():
    v = vitals({"day": 1, "TEMP": 38.9, "SBP": 120}, {"day": 2, "TEMP": 37.0, "SBP": 82},
               {"day": 4, "TEMP": 37.0, "SBP": 82})
    plain = tox.astct_daily_grades(v).get_column("derived_grade").to_list()
    carried = tox.astct_daily_grades(v, fever_carry_days=1).get_column("derived_grade").to_list()
    assert plain == [1, 0, 0]
    assert carried == [1, 2, 0]           # day 4 is beyond the 1-day carry


EVENTS_SCHEMA = {"subject_id": pl.String, "day": pl.Int64, "category": pl.String,
                 "end_day": pl.Int64, "term": pl.String, "grade": pl.Int64}


def events(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=EVENTS_SCHEMA, orient="row")


def test_comparison_flags_disagreement():
    v = pl.concat([vitals({"day": 1, "TEMP": 38.5}, {"day": 2, "TEMP": 38.8, "SBP": 85},
                          {"day": 3, "TEMP": 37.0}, subject="P1"),
                   vitals({"day": 1, "TEMP": 38.3}, {"day": 2, "TEMP": 37.0}, subject="P2"),
                   vitals({"day": 1, "TEMP": 38.2}, subject="P3"),
                   vitals({"day": 1, "TEMP": 38.4}, subject="P4")])
    ev = events(("P1", 1, "crs", 2, "Cytokine release syndrome", 1),
                ("P2", 1, "crs", 1, "Cytokine release syndrome", 1),
                ("P4", 1, "crs", 1, "Cytokine release syndrome", 2))
    out = tox.astct_comparison(v, events=ev)
    rows = {r["subject_id"]: r for r in out.iter_rows(named=True)}
    assert rows["P1"]["crs_derived_max_grade"] == 2 and rows["P1"]["crs_recorded_max_grade"] == 1
    assert rows["P1"]["crs_grade_agrees"] is False
    assert rows["P1"]["note"].startswith("derived grade higher")
    assert rows["P2"]["crs_grade_agrees"] is True and rows["P2"]["disagreement_days"] == ""
    # fever on day 1 without any recorded CRS: disagreement on that day
    assert rows["P3"]["crs_recorded_max_grade"] == 0 and rows["P3"]["disagreement_days"] == "1"
    assert rows["P4"]["crs_grade_agrees"] is False
    assert rows["P4"]["note"].startswith("recorded grade higher")


def test_crs_summary_max_grade_onset_duration():
    ev = events(("P1", 2, "crs", 4, "CRS", 1), ("P1", 9, "crs", 10, "CRS", 2),
                ("P1", 5, "icans", 5, "ICANS", 1), ("P2", 3, "infection", 9, "CMV", 2))
    out = tox.crs_summary(ev, subjects=["P1", "P2", "P3"])
    assert tuple(out.columns[:5]) == ("subject_id", "crs_max_grade", "crs_onset_day",
                                      "crs_duration_days", "icans_max_grade")
    p1, p2, _ = out.rows(named=True)
    assert (p1["crs_max_grade"], p1["crs_onset_day"], p1["crs_duration_days"],
            p1["crs_episodes"]) == (2, 2, 5, 2)
    assert (p1["icans_max_grade"], p1["icans_duration_days"]) == (1, 1)
    assert (p2["crs_max_grade"], p2["crs_onset_day"]) == (0, None)
    unknown = tox.crs_summary(ev.clear(), subjects=["P1"], events_recorded=False)
    assert unknown.item(0, "crs_max_grade") is None


def test_grade_incidence():
    crs = pl.DataFrame({"subject_id": list("ABCDE"), "crs_max_grade": [0, 1, 1, 2, 3],
                        "icans_max_grade": [0, 0, 0, 0, 1]})
    inc = tox.grade_incidence(crs)
    row = inc.filter((pl.col("kind") == "CRS") & (pl.col("grade") == "1")).row(0, named=True)
    assert (row["n"], row["n_patients"], row["pct"]) == (2, 5, 40.0)
    anyg = inc.filter((pl.col("kind") == "CRS") & (pl.col("grade") == "any (>=1)"))
    assert anyg.item(0, "n") == 4
    assert inc.filter((pl.col("kind") == "ICANS") & (pl.col("grade") == ">=3")).item(0, "n") == 0


def test_onset_and_duration_among_patients_with_the_syndrome():
    crs = pl.DataFrame({"subject_id": list("ABC"), "crs_max_grade": [0, 1, 2],
                        "crs_onset_day": [None, 2, 6], "crs_duration_days": [None, 3, 5],
                        "icans_max_grade": [0, 0, 0], "icans_onset_day": [None] * 3,
                        "icans_duration_days": [None] * 3},
                       schema_overrides={"icans_onset_day": pl.Int64,
                                         "icans_duration_days": pl.Int64})
    out = tox.onset_duration(crs)
    r = out.row(0, named=True)
    assert (r["kind"], r["n_with"], r["onset_median"], r["onset_min"], r["onset_max"]) == \
        ("CRS", 2, 4.0, 2, 6)
    assert (r["duration_median"], r["duration_min"], r["duration_max"]) == (4.0, 3, 5)
    assert out.row(1, named=True)["n_with"] == 0


def test_adverse_event_counts_by_worst_grade():
    ev = events(("P1", 5, "adverse_event", 6, "Nausea", 1),
                ("P1", 20, "adverse_event", 21, "Nausea", 3),     # P1 counted once, worst 3
                ("P2", 7, "adverse_event", 8, "Nausea", 2),
                ("P3", 30, "infection", 40, "CMV reactivation", 2),
                ("P3", 1, "adverse_event", 2, "Headache", None),
                ("P1", 0, "infusion", 0, "CD7 CAR-T", None))      # not an adverse event
    out = tox.adverse_event_summary(ev, n_patients=4)
    nausea = out.filter(pl.col("term") == "Nausea").row(0, named=True)
    assert (nausea["n_patients"], nausea["pct"]) == (2, 50.0)
    assert (nausea["grade_1"], nausea["grade_2"], nausea["grade_3"]) == (0, 1, 1)
    assert (nausea["grade_3plus"], nausea["grade_3plus_pct"]) == (1, 25.0)
    assert out.filter(pl.col("term") == "Headache").item(0, "grade_unknown") == 1
    assert "CD7 CAR-T" not in out.get_column("term").to_list()
    assert out.get_column("term").to_list()[0] == "Nausea"      # most patients first
    severe = tox.adverse_event_summary(ev, n_patients=4, min_grade=3)
    assert severe.get_column("term").to_list() == ["Nausea"]
    cmv = tox.adverse_event_summary(ev, n_patients=4, term_contains=" cmv ")
    assert cmv.get_column("term").to_list() == ["CMV reactivation"]
    only_inf = tox.adverse_event_summary(ev, n_patients=4, categories=("infection",))
    assert only_inf.get_column("term").to_list() == ["CMV reactivation"]
    assert tox.adverse_event_summary(ev.clear(), n_patients=4).height == 0


def test_infections_listed_with_day():
    ev = events(("P3", 30, "infection", 40, "CMV reactivation", 2),
                ("P1", 12, "infection", 15, "Pneumonia", 3),
                ("P1", 5, "adverse_event", 6, "Nausea", 1))
    assert tox.infections(ev).select("subject_id", "day", "term").rows() == [
        ("P1", 12, "Pneumonia"), ("P3", 30, "CMV reactivation")]


def test_cytokine_peak_and_day():
    m = pl.DataFrame({"subject_id": ["P1"] * 5, "day": [-5, 1, 3, 5, 40],
                      "analyte": ["IL6"] * 5, "value": [2.0, 10, 80, 20, 500],
                      "unit": ["pg/mL"] * 5})
    r = tox.cytokine_peaks(m).row(0, named=True)
    assert (r["peak_value"], r["peak_day"], r["baseline"]) == (80.0, 3, 2.0)
    assert r["fold_over_baseline"] == pytest.approx(40.0) and r["n"] == 3


def test_demo_tables(demo_study):
    crs = tox.crs_table(demo_study)
    assert tuple(crs.columns[:5]) == ("subject_id", "crs_max_grade", "crs_onset_day",
                                      "crs_duration_days", "icans_max_grade")
    assert crs.height == len(demo_study.subject_ids)
    # the demo's vitals are made to agree with its recorded grades (sample_data/README.md)
    assert crs.get_column("crs_grade_agrees").all()
    assert crs.get_column("crs_max_grade").max() == 3
    assert crs.get_column("icans_max_grade").gt(0).sum() <= 1
    tables = derived_tables()
    for name in ("kinetics", "crs", "cytokine_peaks", "adverse_events", "crs_daily"):
        assert name in tables
    ae = tables["adverse_events"](demo_study)
    assert ae.get_column("pct").max() <= 100


def test_missing_tables_give_empty_frames(write_study):
    from data_loaders import load_study

    study = load_study(write_study(
        measurements="subject_id,day,analyte,value,unit\nP1,7,CAR_QPCR,100,copies/ug gDNA\n"))
    crs = tox.crs_table(study)
    assert crs.get_column("crs_max_grade").null_count() == 2      # no events: unknown, not 0
    assert tox.crs_daily_table(study).height == 0
    assert tox.cytokine_peaks_table(study).height == 0
    assert tox.adverse_events_table(study).height == 0


def test_cli_table_crs(demo_dir, capsysbinary):
    import cli

    assert cli.main(["table", "--study", str(demo_dir), "crs"]) == 0
    lines = capsysbinary.readouterr().out.decode().splitlines()
    assert lines[0].startswith("subject_id,crs_max_grade,crs_onset_day,crs_duration_days,"
                               "icans_max_grade")
    assert len(lines) == 6


# ---- where CRS can be: window, infections, masked fever ---------------------------------------
EV7 = {**EVENTS_SCHEMA, "product": pl.String}


def events7(*rows: tuple) -> pl.DataFrame:
    """(subject, day, category, end_day, term, grade, product)"""
    return pl.DataFrame(list(rows), schema=EV7, orient="row")


def test_febrile_neutropenia_on_day_33_is_not_crs():
    """Day 2: 38.4 C (CRS grade 1, inside the day 0-14 window). Day 33: febrile neutropenia
    (infection event days 32-36), 39.1 C and SBP 85. The old rule graded any febrile day after
    infusion: 39.1 C + SBP < 90 = "CRS grade 2" on day 33. Now day 33 is outside the window
    and an infection day without a CRS record: not graded, and the reason says both."""
    v = vitals({"day": 2, "TEMP": 38.4, "SBP": 118}, {"day": 33, "TEMP": 39.1, "SBP": 85})
    ev = events7(("P1", 32, "infection", 36, "Febrile neutropenia", 3, None))
    daily = tox.astct_daily_grades(v, events=ev)
    d2, d33 = daily.rows(named=True)
    assert (d2["derived_grade"], d2["graded"]) == (1, True)
    assert d33["derived_grade"] is None and d33["graded"] is False
    assert d33["reason"].startswith("outside the CRS window (days 0-14")
    comp = tox.astct_comparison(v, events=ev)
    assert comp.item(0, "crs_derived_max_grade") == 1
    # a longer window still never grades the infection's fever
    late = tox.astct_daily_grades(v, events=ev, rules=DEFAULT_RULES.with_(crs_window_end=60))
    assert late.item(1, "derived_grade") is None
    assert late.item(1, "reason") == ("documented infection without a CRS record: Febrile "
                                      "neutropenia (days 32-36)")


def test_infection_day_with_a_recorded_crs_episode_is_graded():
    """Day 5: pneumonia (days 4-8) and a recorded CRS episode days 5-6; 38.8 C and 1
    vasopressor = grade 3 (the recorded CRS makes the day gradeable). Day 7: pneumonia only,
    38.5 C: not graded (infection without a CRS record, although inside days 0-14 and within
    the 1-day margin of the episode)."""
    v = vitals({"day": 5, "TEMP": 38.8, "VASOPRESSORS": 1}, {"day": 7, "TEMP": 38.5})
    ev = events7(("P1", 4, "infection", 8, "Pneumonia", 3, None),
                 ("P1", 5, "crs", 6, "Cytokine release syndrome", 3, None))
    out = tox.astct_daily_grades(v, events=ev).get_column("derived_grade").to_list()
    assert out == [3, None]


def test_recorded_episode_extends_the_window():
    """CRS recorded days 20-22 (late onset): day 21 is outside days 0-14 but inside the
    episode (margin 1: days 19-23), so 38.6 C and SBP 84 grade 2; day 25 is outside both."""
    v = vitals({"day": 21, "TEMP": 38.6, "SBP": 84}, {"day": 25, "TEMP": 38.6, "SBP": 84})
    ev = events7(("P1", 20, "crs", 22, "CRS", 2, None))
    daily = tox.astct_daily_grades(v, events=ev)
    assert daily.get_column("derived_grade").to_list() == [2, None]
    assert daily.item(0, "reason") == "around recorded CRS days 20-22"


def test_masked_fever_after_tocilizumab_grades_the_vasopressor():
    """Day 1: 38.9 C (CRS, grade 1). Day 2: tocilizumab 8 mg/kg. Day 3: 37.1 C (fever masked)
    and 1 vasopressor. ASTCT: after tocilizumab fever is no longer required, so day 3 is grade
    3 (one vasopressor). The old default (no carry) graded day 3 as 0. Day 4: 36.9 C, no
    hypotension or hypoxia: 0. Without the medication event, or with crs_masked_fever off, day
    3 stays 0."""
    v = vitals({"day": 1, "TEMP": 38.9, "SBP": 112}, {"day": 3, "TEMP": 37.1, "VASOPRESSORS": 1},
               {"day": 4, "TEMP": 36.9, "SBP": 115})
    ev = events7(("P1", 2, "medication", 2, "Tocilizumab 8 mg/kg", None, "tocilizumab"))
    daily = tox.astct_daily_grades(v, events=ev)
    assert daily.get_column("derived_grade").to_list() == [1, 3, 0]
    assert daily.get_column("fever_masked").to_list() == [False, True, True]
    assert daily.item(1, "basis") == "fever not required after tocilizumab day 2; 1 vasopressor"
    assert tox.astct_daily_grades(v).get_column("derived_grade").to_list() == [1, 0, 0]
    off = DEFAULT_RULES.with_(crs_masked_fever=False)
    assert tox.astct_daily_grades(v, events=ev, rules=off) \
        .get_column("derived_grade").to_list() == [1, 0, 0]


def test_steroid_from_the_term_masks_fever_and_only_after_crs():
    """Dexamethasone recorded without a product class (the class comes from the term). P1:
    fever on day 2, dexamethasone day 3, day 4 afebrile on 3 L/min O2 -> grade 2. P2:
    dexamethasone on day 1 before any CRS (no fever, no episode): day 4 afebrile on 3 L/min O2
    stays 0 (there is no CRS whose fever could be masked)."""
    v = pl.concat([vitals({"day": 2, "TEMP": 38.3}, {"day": 4, "TEMP": 37.0, "O2_LPM": 3},
                          subject="P1"),
                   vitals({"day": 2, "TEMP": 37.0}, {"day": 4, "TEMP": 37.0, "O2_LPM": 3},
                          subject="P2")])
    ev = events7(("P1", 3, "medication", 3, "Dexamethasone 10 mg", None, None),
                 ("P2", 1, "medication", 1, "Dexamethasone 10 mg", None, None))
    out = tox.astct_daily_grades(v, events=ev)
    assert out.filter(pl.col("subject_id") == "P1").get_column("derived_grade").to_list() == [1, 2]
    assert out.filter(pl.col("subject_id") == "P2").get_column("derived_grade").to_list() == [0, 0]


def test_crs_daily_says_why_each_day_was_or_was_not_graded(write_study):
    from data_loaders import load_study

    meas = ("subject_id,day,analyte,value,unit\nP1,-2,TEMP,38.5,C\nP1,3,TEMP,38.2,C\n"
            "P1,30,TEMP,38.9,C\n")
    study = load_study(write_study(measurements=meas))
    daily = tox.crs_daily_table(study)
    assert daily.get_column("day").to_list() == [3, 30]       # before infusion: not listed
    assert daily.get_column("reason").to_list() == [
        "in the CRS window (days 0-14)",
        "outside the CRS window (days 0-14, recorded CRS episodes +/- 1 d)"]
    wide = tox.crs_daily_table(study, rules=DEFAULT_RULES.with_(crs_window_end=30))
    assert wide.get_column("derived_grade").to_list() == [1, 1]
