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


def test_baseline_and_derived_vs_recorded_rules_are_shown_apart_from_their_grids(demo_study):
    """The grids leave out the rule text (and, for baseline, what the rule restates); the
    wrapped tables below them name each row's rule; the CSV (spec.data) keeps every column."""
    params = vbc.TableParams(rules_for(demo_study))
    base = vbc.baseline_view(demo_study, params=params)
    assert set(vbc.BASELINE_GRID) <= set(base.data.columns)
    shown = [c for c in base.data.columns if c not in vbc.BASELINE_GRID]
    assert "rule" not in shown and {"anc", "plt", "retic", "hgb", "severity"} <= set(shown)
    rules = vbc.baseline_rules(base)
    assert rules.columns == ["Patient", "Baseline severity: rule"]
    assert rules.get_column("Patient").to_list() == base.data.get_column("subject_id").to_list()
    # what the grid leaves out is in the rule: each criterion count's day, the support
    first = base.data.row(0, named=True)
    assert f"ANC {first['anc']:g} (day {first['anc_day']}" in rules.item(0, 1)
    cmp = vbc.derived_vs_recorded(demo_study)
    text = vbc.compare_rules(cmp)
    assert text.columns == ["Patient", "Day", "Derived response: rule"]
    assert text.height == cmp.data.height and "rule" in cmp.data.columns
    assert text.item(0, 2) == cmp.data.item(0, "rule")


def test_baseline_rule_names_the_haemoglobin_and_its_transfusion_the_grid_leaves_out(
        demo_study):
    base = vbc.baseline_view(demo_study, params=vbc.TableParams(rules_for(demo_study)))
    assert {"hgb_day", "hgb_supported"} <= set(vbc.BASELINE_GRID)
    rows = base.data.select("hgb", "hgb_day", "hgb_supported", "rule").rows(named=True)
    assert any(r["hgb_supported"] for r in rows) and not all(r["hgb_supported"] for r in rows)
    for r in rows:
        hgb = r["rule"].split("HGB ", 1)[1].split(" (not a criterion)", 1)[0]
        assert hgb.startswith(f"{r['hgb']:g} (day {r['hgb_day']}")
        assert ("supported: RBC transfusion" in hgb) == r["hgb_supported"]
