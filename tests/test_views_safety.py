"""Cohort cytokines and CRS treatment (views.safety): alignment to infusion and to CRS onset,
patient-level group summaries with n per time point, and the Safety page's block by widget key."""

from __future__ import annotations

import polars as pl

from analysis.vocab import DayWindow
from views import safety as sv


def test_alignment_to_crs_onset(demo_study):
    p = sv.CohortCytokineParams(analytes=("IL6",), align="crs_onset", days=DayWindow(-3, 10))
    data = sv.aligned_cytokines(demo_study, params=p)
    # SAA-005 has no CRS (sample_data/README.md): left out of the onset-aligned view
    assert set(data.get_column("subject_id")) == {"SAA-001", "SAA-002", "SAA-003", "SAA-004"}
    # SAA-003's CRS starts on day 1: its rel_day 0 is study day 1
    s3 = data.filter(pl.col("subject_id") == "SAA-003")
    assert (s3.get_column("day") - s3.get_column("rel_day")).unique().to_list() == [1]
    assert data.get_column("rel_day").is_between(-3, 10).all()
    spec = sv.cohort_cytokines(demo_study, params=p)
    assert "1 of 5 patient(s) without a recorded CRS episode left out" in spec.caption
    assert spec.fig.layout.xaxis.title.text == "Day from CRS onset"
    assert spec.fig.layout.yaxis.type == "log"
    assert len(spec.fig.data) == 4                  # one curve per patient


def test_group_summary_counts_patients_per_time_point(demo_study):
    p = sv.CohortCytokineParams(analytes=("IL6", "CRP"), show="groups", days=DayWindow(0, 28))
    data = sv.aligned_cytokines(demo_study, params=p)
    summary = sv.cytokine_group_summary(data)
    d7 = summary.filter((pl.col("analyte") == "IL6") & (pl.col("rel_day") == 7))
    n = dict(zip(d7.get_column("response_group"), d7.get_column("n"), strict=True))
    assert n == {"Responder": 3, "Non-responder": 2}
    one = data.filter((pl.col("analyte") == "IL6") & (pl.col("rel_day") == 7)
                      & (pl.col("response_group") == "Responder"))
    assert d7.filter(pl.col("response_group") == "Responder").get_column("median").item() == \
        one.get_column("value").median()
    spec = sv.cohort_cytokines(demo_study, params=p)
    # per panel and group: an IQR band and a median line whose text is n
    medians = [t for t in spec.fig.data if t.mode == "lines+markers+text"]
    assert len(medians) == 4 and all(t.text for t in medians)


def test_crs_treatments_follow_the_medications(demo_study):
    t = sv.crs_treatments(demo_study).data
    s3 = t.filter((pl.col("subject_id") == "SAA-003") & (pl.col("episode") == "CRS")).row(
        0, named=True)
    assert (s3["grade"], s3["tocilizumab_doses"]) == (3, 2)
    assert "Dexamethasone" in s3["corticosteroids"]
    s2 = t.filter(pl.col("subject_id") == "SAA-002").row(0, named=True)
    assert s2["tocilizumab_doses"] == 0 and s2["corticosteroids"] is None


def test_safety_page_cohort_block(app_page):
    at = app_page("pages/safety.py")
    assert not at.exception
    at.radio(key="saf-coh-show").set_value("groups").run()
    at.radio(key="saf-coh-align").set_value("crs_onset").run()
    assert not at.exception
    assert any("without a recorded CRS episode" in c.value for c in at.caption)


def test_a_panel_per_patient_shades_that_patients_crs(demo_study):
    p = sv.CohortCytokineParams(analytes=("IL6",), show="panels")
    spec = sv.cohort_cytokines(demo_study, params=p)
    titles = [a.text for a in spec.fig.layout.annotations if a.text.startswith("SAA-")]
    assert titles == [f"SAA-00{i}" for i in range(1, 6)]          # one panel per patient
    assert {t.name for t in spec.fig.data} == set(titles)          # one curve in each
    layout = spec.fig.layout
    # one scale for the patients, one axis title under the middle panel, a legend of grades
    assert {layout[f"yaxis{i}"].matches for i in range(2, 6)} == {"y"}
    assert [layout[f"xaxis{i or ''}"].title.text for i in range(6) if i != 1] == \
        ["", "", "Day from CAR-T infusion", "", ""]
    assert not any(t.showlegend for t in spec.fig.data)
    crs = [s for s in spec.fig.layout.shapes if (s.name or "").startswith("CRS grade")]
    # SAA-005 has no CRS (sample_data/README.md): four patients' episodes shaded, each in its
    # own panel (SAA-003's grade-3 CRS among them)
    assert len({s.xref for s in crs}) == 4 and any(s.name == "CRS grade 3" for s in crs)
    assert spec.fig.layout.yaxis.type == "log" and "CRS episodes" in spec.caption
    # aligned to CRS onset the episodes move with the curves: each starts at rel_day 0
    onset = sv.cohort_cytokines(demo_study, params=sv.CohortCytokineParams(
        analytes=("IL6",), show="panels", align="crs_onset"))
    starts = {s.xref: s.x0 for s in onset.fig.layout.shapes if (s.name or "").startswith("CRS")}
    assert len(starts) == 4 and set(starts.values()) == {-0.5}
    # several analytes: a row per patient, a panel per analyte
    two = sv.cohort_cytokines(demo_study, params=sv.CohortCytokineParams(
        analytes=("IL6", "CRP"), show="panels"))
    assert sum(a.text.startswith("SAA-001 · ") for a in two.fig.layout.annotations) == 2


def test_the_deck_cytokine_analyte_is_the_first_measured(demo_study, write_study):
    from data_loaders import load_study

    assert sv.slide_analyte(demo_study) == "IL6"
    crp_only = load_study(write_study(
        measurements="subject_id,day,analyte,value,unit\nP1,0,CRP,12,mg/L\n"))
    assert sv.slide_analyte(crp_only) == "CRP"
    none = load_study(write_study(
        measurements="subject_id,day,analyte,value,unit\nP1,0,ANC,0.2,10^9/L\n"))
    assert sv.slide_analyte(none) is None


def test_the_cytokine_window_needs_both_ends():
    import pytest

    with pytest.raises(ValueError, match="days :28: the cytokine figures need a first"):
        sv.CohortCytokineParams(days=DayWindow(None, 28))
    with pytest.raises(ValueError, match="need a first and a last day"):
        sv.PatientCytokineParams(patient="SAA-001", days=DayWindow(0, None))
    assert sv.PatientCytokineParams(patient="SAA-001").days == DayWindow(-7, 28)
