"""views/landscape_composition.py on the demo: each composition view drawn for the cohort
(every cell counted), its chart key on the page."""

from __future__ import annotations

import pytest

from analysis.cohort import Cohort
from views import landscape_composition as lc


@pytest.mark.parametrize("view", lc.COMPOSITION_VIEWS)
def test_composition_views_on_the_cohort(demo_study, view):
    spec = lc.composition(demo_study, params=lc.CompositionParams(view))
    assert spec.fig.data and spec.data.height
    assert spec.view == "views.landscape_composition.composition"
    two = Cohort(subjects=tuple(demo_study.subject_ids[:2]))
    narrowed = lc.composition(demo_study, cohort=two, params=lc.CompositionParams(view))
    assert set(narrowed.data.get_column("subject_id")) <= set(two.subjects)


def test_every_view_has_its_chart_key():
    assert set(lc.COMPOSITION_KEYS) == set(lc.COMPOSITION_VIEWS)
