"""ICAHT (EHA/EBMT, Rejeski et al., Blood 2023) and CTCAE windows after infusion, on hand-made
counts with the day arithmetic written out."""

from __future__ import annotations

import polars as pl
import pytest

from analysis.haematotox import early_grade, icaht_from_counts

UNITS = {"ANC": "10^9/L", "PLT": "10^9/L", "HGB": "g/L", "ALC": "10^9/L"}


def daily(values: dict[int, float], subject: str = "P1") -> pl.DataFrame:
    return pl.DataFrame({"subject_id": [subject] * len(values), "day": list(values),
                         "value": [float(v) for v in values.values()]},
                        schema={"subject_id": pl.String, "day": pl.Int64, "value": pl.Float64})


def grade(values: dict[int, float], end: int = 400) -> dict:
    out = icaht_from_counts(daily(values), pl.DataFrame({"subject_id": ["P1"], "end": [end]}))
    return out.row(0, named=True)


@pytest.mark.parametrize(("d500", "d100", "expected"), [
    (0, 0, 0), (1, 0, 1), (6, 0, 1), (7, 0, 2), (13, 0, 2), (14, 0, 3), (30, 0, 3),
    (31, 0, 4), (7, 7, 3), (13, 13, 3), (14, 14, 4), (8, 6, 2)])
def test_early_grade_table(d500, d100, expected):
    """Rejeski 2023: G1 <= 0.5 for < 7 d; G2 7-13 d; G3 >= 14 d or <= 0.1 for >= 7 d;
    G4 never above 0.5 in days 0-30 (31 days) or <= 0.1 for >= 14 d."""
    assert early_grade(d500, d100) == expected


def test_early_icaht_counts_days_between_samples():
    """ANC 0.3 on days 0, 3, 6, 9; 0.8 from day 10 on (sampled every 2 days to day 40).
    A count stands until the next: days 0-9 are <= 0.5 -> 10 days -> grade 2."""
    vals = {0: 0.3, 3: 0.3, 6: 0.3, 9: 0.3} | {d: 0.8 for d in range(10, 41, 2)}
    r = grade(vals)
    assert (r["days_anc_le_0_5"], r["days_anc_le_0_1"], r["early_grade"]) == (10, 0, 2)
    assert r["early_rule"].startswith("grade 2: ANC <= 0.5 on 10 d")


def test_non_stable_recovery_counts_towards_duration():
    """Days 0-2 ANC 0.3 (3 d), days 3-4 ANC 0.7 (2 d above: shorter than 3 -> not a stable
    recovery), days 5-7 ANC 0.3 (3 d), then 1.0. Counted: 3 + 2 + 3 = 8 d -> grade 2;
    without the non-stable rule it would be 6 d -> grade 1."""
    vals = {0: 0.3, 1: 0.3, 2: 0.3, 3: 0.7, 4: 0.7, 5: 0.3, 6: 0.3, 7: 0.3} | \
        {d: 1.0 for d in range(8, 41)}
    r = grade(vals)
    assert (r["days_anc_le_0_5"], r["early_grade"]) == (8, 2)
    from analysis.rules import DEFAULT_RULES

    out = icaht_from_counts(daily(vals), pl.DataFrame({"subject_id": ["P1"], "end": [400]}),
                            rules=DEFAULT_RULES.with_(icaht_stable_recovery_days=1))
    assert out.row(0, named=True)["early_grade"] == 1


def test_profound_neutropenia_and_never_above():
    """ANC 0.05 on days 0-7 (8 d <= 0.1) then 2.0: 8 d <= 0.5 alone would be grade 2, but
    >= 7 d <= 0.1 -> grade 3. ANC 0.4 on every day 0-30 (never above 0.5) -> grade 4."""
    r = grade({d: 0.05 for d in range(8)} | {d: 2.0 for d in range(8, 41)})
    assert (r["days_anc_le_0_1"], r["early_grade"]) == (8, 3)
    r = grade({d: 0.4 for d in range(0, 41)})
    assert (r["days_anc_le_0_5"], r["early_grade"]) == (31, 4)


def test_early_icaht_not_fully_observed_is_ne():
    """Follow-up ends on day 19 (e.g. the day before an HSCT on day 20): ANC 0.3 on days
    0-19 = 20 d -> at least grade 3, but grade 4 (never above 0.5 to day 30) cannot be ruled
    out -> NE with the grade so far."""
    r = grade({d: 0.3 for d in range(0, 20)}, end=19)
    assert r["early_grade"] is None
    assert ("not fully observed (observed only to day 19 (end of follow-up or HSCT)); at "
            "least grade 3") in r["early_rule"]


def test_late_icaht_needs_non_transient_neutropenia():
    """After day 30: ANC 0.8 (day 40), 0.9 (day 50), 0.4 (day 60), 2.0 (day 70). <= 1.0 on
    3 measurements (>= 2) -> grade 2; <= 0.5 only once (transient) -> not grade 3."""
    vals = {d: 1.0 for d in range(0, 31)} | {40: 0.8, 50: 0.9, 60: 0.4, 70: 2.0}
    r = grade(vals)
    assert (r["late_grade"], r["late_nadir"], r["late_nadir_day"]) == (2, 0.4, 60)
    assert grade({d: 1.0 for d in range(0, 31)})["late_grade"] is None


def test_icaht_table_stops_at_hsct(write_study):
    """HSCT on day 20: the ANC 0.3 of days 0-19 counts, the graft's 0.05 on days 20-30 does
    not; follow-up ends on day 19, so early ICAHT is NE (at least grade 3)."""
    from analysis.haematotox import icaht_table
    from data_loaders import load_study

    pts = "subject_id,sex,last_contact_day,hsct_day\nP1,M,400,20\n"
    meas = "subject_id,day,analyte,value,unit\n" + "".join(
        f"P1,{d},ANC,{0.3 if d < 20 else 0.05},10^9/L\n" for d in range(-10, 31))
    r = icaht_table(load_study(write_study(patients=pts, measurements=meas))).row(0, named=True)
    assert r["early_grade"] is None and r["days_anc_le_0_1"] == 0
    assert r["baseline_anc"] == 0.3


def test_ctcae_windows_start_after_infusion_stop_at_hsct_and_show_baseline(write_study):
    """Lymphodepletion day -5, HSCT day 40. ANC 0.3 on day -10 (baseline, grade 4); 0.1 on
    day 0 (the lymphodepletion nadir: in no window); 0.8 on day 10 (grade 3); 0.1 on day 45
    (the graft's: excluded). Old code: D0-28 grade 4 from day 0, D29-90 grade 4 from day 45."""
    from analysis.recovery import cytopenia_grades
    from data_loaders import load_study

    pts = "subject_id,sex,last_contact_day,hsct_day\nP1,M,400,40\n"
    meas = ("subject_id,day,analyte,value,unit\nP1,-10,ANC,0.3,10^9/L\nP1,0,ANC,0.1,10^9/L\n"
            "P1,10,ANC,0.8,10^9/L\nP1,45,ANC,0.1,10^9/L\n")
    events = "subject_id,day,end_day,category\nP1,-5,-3,lymphodepletion\n"
    g = cytopenia_grades(load_study(write_study(patients=pts, measurements=meas,
                                                events=events)))
    rows = g.filter(pl.col("term") == "Neutrophil count decreased") \
        .select("window", "worst_grade", "worst_day").rows()
    assert rows == [("Baseline", 4, -10), ("D1-28", 3, 10)]


def test_cli_table_icaht(demo_dir, capsys):
    import cli

    assert cli.main(["table", "--study", str(demo_dir), "icaht", "--rule",
                     "icaht_late_min_measurements=1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("subject_id,baseline_anc,early_grade,days_anc_le_0_5")
    assert len(lines) == 6
