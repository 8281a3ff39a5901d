"""components.session: the one cache of view results (keyed by view, study version, cohort,
params and focus), the page context and a patient opened from another page."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pytest

from analysis.cohort import Cohort, Focus
from analysis.vocab import DayWindow
from components import session

CALLS: list[tuple] = []


@dataclass(frozen=True)
class P:
    n: float = 1
    names: tuple[str, ...] = ()


def view(study, *, cohort, params, focus=None):
    CALLS.append((cohort, params, focus))
    return {"n": params.n, "focus": focus}


def view_without_focus(study, *, cohort, params):
    CALLS.append((cohort, params))
    return params.n


@pytest.fixture(autouse=True)
def fresh():
    session.clear_views()
    CALLS.clear()


def test_cached_view_computes_once_per_input(demo_study):
    first = session.cached_view(view, demo_study, cohort=Cohort(), params=P(2))
    assert session.cached_view(view, demo_study, cohort=Cohort(), params=P(2)) is first
    assert len(CALLS) == 1
    session.cached_view(view, demo_study, cohort=Cohort(days=DayWindow(0, None)), params=P(2))
    session.cached_view(view, demo_study, cohort=Cohort(), params=P(3))
    session.cached_view(view, demo_study, cohort=Cohort(), params=P(2.0))  # 2 and 2.0 differ
    session.cached_view(view, demo_study, cohort=Cohort(), params=P(2, ("a",)))
    assert len(CALLS) == 5


def test_cached_view_keys_by_view_and_focus(demo_study):
    focus = Focus(("SAA-001",), DayWindow(0, 28), "cells", demo_study.cache_key)
    got = session.cached_view(view, demo_study, cohort=Cohort(), params=P(), focus=focus)
    assert got["focus"] == focus
    assert session.cached_view(view, demo_study, cohort=Cohort(), params=P())["focus"] is None
    # a view that takes no focus is called without one
    assert session.cached_view(view_without_focus, demo_study, cohort=Cohort(), params=P(4)) == 4
    assert len(CALLS) == 3


def test_view_key_names_view_and_study_version(demo_study):
    key = session.view_key(view, demo_study, cohort=Cohort(), params=P())
    assert key.startswith(f"{__name__}.view|{demo_study.cache_key}|")
    assert key != session.view_key(view_without_focus, demo_study, cohort=Cohort(), params=P())


def test_params_holding_a_frame_are_refused(demo_study):
    @dataclass(frozen=True)
    class Bad:
        table: pl.DataFrame

    with pytest.raises(TypeError, match=r"params\.table holds a DataFrame"):
        session.cached_view(view, demo_study, cohort=Cohort(), params=Bad(pl.DataFrame()))


def test_page_context_says_n_of_n(demo_study):
    groups = pl.DataFrame({"subject_id": demo_study.subject_ids})
    ctx = session.PageContext(demo_study, Cohort(), groups, tuple(demo_study.subject_ids[:2]), {})
    assert ctx.size() == f"2 of {len(demo_study.subject_ids)} patients"


def test_focus_describes_itself():
    assert Focus(("A", "B"), DayWindow(7, None), "cells lassoed").describe() == \
        "cells lassoed: A, B, days 7.."


def study_helper(study):
    CALLS.append("helper")
    return len(study.subject_ids)


def test_a_study_level_helper_is_cached_too(demo_study):
    n = session.cached_view(study_helper, demo_study)
    assert n == len(demo_study.subject_ids)
    # cohort and params it does not take do not split its cache
    assert session.cached_view(study_helper, demo_study, cohort=Cohort(days="3:")) == n
    assert CALLS == ["helper"]


def with_options(study, *, per_sample, population=""):
    CALLS.append((per_sample, population))
    return per_sample


def test_a_helper_with_keyword_options_takes_them_as_params(demo_study):
    assert session.cached_view(with_options, demo_study, params={"per_sample": 5}) == 5
    assert session.cached_view(with_options, demo_study, params={"per_sample": 5}) == 5
    session.cached_view(with_options, demo_study, params={"per_sample": 5, "population": "T"})
    assert CALLS == [(5, ""), (5, "T")]


def test_clicked_patient_from_customdata_or_the_trace():
    import plotly.graph_objects as go

    fig = go.Figure([go.Scatter(x=[1], y=[1], name="SAA-001", legendgroup="SAA-001"),
                     go.Scatter(x=[1], y=[2], name="SAA-002")])
    ids = ("SAA-001", "SAA-002")

    def event(**point):
        return {"selection": {"points": [point]}}

    assert session.clicked_patient(event(customdata=["SAA-002", "x"]), subjects=ids) == "SAA-002"
    assert session.clicked_patient(event(curve_number=1), subjects=ids, fig=fig) == "SAA-002"
    assert session.clicked_patient(event(legendgroup="SAA-001"), subjects=ids) == "SAA-001"
    assert session.clicked_patient(event(x=120, y="SAA-002"), subjects=ids) == "SAA-002"
    # a group's trace, a patient outside the cohort, nothing clicked
    assert session.clicked_patient(event(customdata="Responder"), subjects=ids) is None
    assert session.clicked_patient(event(customdata="SAA-009"), subjects=ids) is None
    assert session.clicked_patient({"selection": {"points": []}}, subjects=ids) is None


def test_a_long_selection_is_keyed_by_a_digest_that_still_tells_selections_apart(demo_study):
    cells = tuple(f"cell-{i}" for i in range(150_000))
    key = session.view_key(view, demo_study, cohort=Cohort(), params=P(1, cells))
    assert len(key) < 2_000                      # one digest, not 150,000 item keys
    assert key == session.view_key(view, demo_study, cohort=Cohort(), params=P(1, cells))
    other = cells[:-1] + ("cell-x",)
    assert key != session.view_key(view, demo_study, cohort=Cohort(), params=P(1, other))
    assert key != session.view_key(view, demo_study, cohort=Cohort(), params=P(1, cells[:-1]))
    session.cached_view(view, demo_study, cohort=Cohort(), params=P(1, cells))
    session.cached_view(view, demo_study, cohort=Cohort(), params=P(1, cells))
    session.cached_view(view, demo_study, cohort=Cohort(), params=P(1, other))
    assert len(CALLS) == 2
