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
