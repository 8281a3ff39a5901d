"""Blood counts table views: the cohort's patients, captions that state the settings used."""

from __future__ import annotations

from analysis.cohort import Cohort
from analysis.rules import rules_for
from views import blood_counts as vbc


def test_views_keep_the_cohort_and_state_their_settings(demo_study):
    rules = rules_for(demo_study).with_(screening_window=14, plt_support_days=5)
    params = vbc.TableParams(rules)
    cohort = Cohort(subjects=("SAA-002", "SAA-004"))
    for view in (vbc.baseline_view, vbc.recovery_view, vbc.ctcae_view, vbc.icaht_view):
        spec = view(demo_study, cohort=cohort, params=params)
        assert set(spec.data["subject_id"]) == {"SAA-002", "SAA-004"}, spec.key
        assert spec.caption and spec.params == params
    assert "within 14 d" in vbc.baseline_view(demo_study, params=params).caption
    assert "in the 5 d before" in vbc.recovery_view(demo_study, params=params).caption
    assert "PLT within 5 d of a platelet transfusion" in vbc.assessment_note(rules)
    assert vbc.baseline_view(demo_study, params=params).data.height == 5


def test_ctcae_is_a_patient_by_window_grid(demo_study):
    """One row per patient, one column per window, each cell the counts by worst grade."""
    import polars as pl

    spec = vbc.ctcae_view(demo_study, params=vbc.TableParams(rules_for(demo_study)))
    assert spec.data.columns == ["subject_id", "Baseline", "D1-28", "D29-90", ">D90"]
    assert spec.data.height == 5
    row = spec.data.row(0, named=True)
    assert row["subject_id"] == "SAA-001" and row["D1-28"].startswith("G4 ANC")
    grid = vbc.ctcae_grid(pl.DataFrame({
        "subject_id": ["P1"] * 4 + ["P2"] * 4, "window": ["D1-28"] * 8,
        "term": ["Neutrophil count decreased", "Platelet count decreased", "Anemia",
                 "Lymphocyte count decreased"] * 2, "worst_grade": [4, 4, 2, 0, 0, 0, 0, 0]}))
    assert grid.rows() == [("P1", "G4 ANC, PLT; G2 Hb"), ("P2", "none")]
