"""HSCT marks on time axes (components.figures.marks): the per-patient and cohort cytokine
panels and the Patient timeline draw a dash-dot line at each HSCT, across every panel."""

from __future__ import annotations

import polars as pl

from analysis.vocab import DayWindow
from components.figures.cytokines import cohort_cytokine_panels
from components.figures.marks import add_day_marks
from components.figures.safety import cytokine_panels


def _hsct_lines(fig) -> list:
    return [s for s in fig.layout.shapes if s.line.dash == "dashdot"]


def _frame() -> pl.DataFrame:
    rows = [(a, d, v) for a in ("IL6", "CRP") for d, v in ((0, 5.0), (7, 50.0), (150, 9.0))]
    return pl.DataFrame({"subject_id": "P1", "analyte": [r[0] for r in rows],
                         "day": [r[1] for r in rows], "value": [r[2] for r in rows]})


def test_cytokine_panels_mark_the_hsct_in_every_panel():
    fig = cytokine_panels(_frame(), marks=[(121.0, 121.0, "HSCT P1")], x_range=(-7, 200))
    lines = _hsct_lines(fig)
    assert len(lines) == 2 and {s.x0 for s in lines} == {121.0}      # one per panel
    assert [a.text for a in fig.layout.annotations if a.text == "HSCT P1"] == ["HSCT P1"]
    # outside the days shown: no line and no floating label
    off = cytokine_panels(_frame(), marks=[(121.0, 121.0, "HSCT P1")], x_range=(-7, 28))
    assert _hsct_lines(off) == [] and "HSCT P1" not in [a.text for a in off.layout.annotations]


def test_cohort_cytokine_panels_take_marks():
    fig = cohort_cytokine_panels(_frame(), marks=[(121.0, 121.0, "HSCT P1")])
    assert {s.x0 for s in _hsct_lines(fig)} == {121.0}


def test_spans_are_not_drawn_as_lines():
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]))
    add_day_marks(fig, [(-5.0, -3.0, "lymphodepletion"), (2.0, 2.0, "HSCT A")])
    assert [s.x0 for s in fig.layout.shapes] == [2.0]


def test_demo_patient_timeline_and_cohort_cytokines_mark_saa004_hsct(demo_study):
    from views import patient as vp
    from views import safety as sv

    spec = vp.timeline(demo_study, params=vp.PatientParams(subject_id="SAA-004"))
    lines = _hsct_lines(spec.fig)
    assert lines and {s.x0 for s in lines} == {121.0}
    assert len(lines) >= 4                       # across the lanes, not only the course lane
    none = vp.timeline(demo_study, params=vp.PatientParams(subject_id="SAA-001"))
    assert _hsct_lines(none.fig) == []
    p = sv.CohortCytokineParams(analytes=("IL6",), days=DayWindow(-7, 150))
    cyto = sv.cohort_cytokines(demo_study, params=p)
    assert {s.x0 for s in _hsct_lines(cyto.fig)} == {121.0}
    assert "Dash-dot line: an HSCT" in cyto.caption
    assert sv.hsct_marks(demo_study, subjects=["SAA-004"]) == [(121.0, 121.0, "HSCT SAA-004")]
    assert sv.hsct_marks(demo_study, subjects=["SAA-001"]) == []
