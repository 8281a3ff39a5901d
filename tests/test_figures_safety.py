"""Figure factories of the Cytokines & safety page (components/figures/safety.py): episode
shading by grade, grade incidence, adverse events and the heatmap."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from analysis import toxicity as tox
from components.figures import safety as fs
from components.theme import GRADE_COLORS


def test_cytokine_panels_shade_episodes_by_grade():
    df = pl.DataFrame({"subject_id": ["P1"] * 6, "day": [0, 3, 6] * 2,
                       "analyte": ["IL6"] * 3 + ["CRP"] * 3,
                       "value": [2.0, 80, 5, 10, 150, 20]})
    eps = pl.DataFrame({"subject_id": ["P1", "P1", "P2"], "kind": ["CRS", "ICANS", "CRS"],
                        "start": [2, 4, 1], "end": [5, 5, 3], "grade": [2, 1, 3]})
    fig = fs.cytokine_panels(df, eps, facet_order=("IL6", "CRP"), title="P1")
    assert len(fig.data) == 2 and all(isinstance(t, go.Scatter) for t in fig.data)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(rects) == 4                       # CRS + ICANS in each of 2 panels; not P2's
    crs = [s for s in rects if s.name == "CRS grade 2"]
    assert crs[0].fillcolor == GRADE_COLORS[2] and (crs[0].x0, crs[0].x1) == (1.5, 5.5)
    icans = [s for s in rects if s.name == "ICANS grade 1"]
    assert icans[0].y0 > 0.5                     # ICANS as a band along the top
    assert sum(bool(s.showlegend) for s in rects) == 2

def test_peak_grade_incidence_ae_and_heatmap():
    peaks = pl.DataFrame({"subject_id": ["A", "B"], "analyte": ["IL6", "IL6"],
                          "peak_value": [100.0, 10], "crs_max_grade": [2, 0]})
    fig = fs.peak_vs_grade(peaks)
    assert len(fig.data) == 2 and fig.layout.yaxis.type == "log"
    crs = pl.DataFrame({"subject_id": list("ABC"), "crs_max_grade": [1, 2, 2],
                        "icans_max_grade": [0, 0, 1]})
    fig = fs.grade_incidence_bars(tox.grade_incidence(crs))
    assert [t.name for t in fig.data] == ["grade 1", "grade 2"]
    assert all(isinstance(t, go.Bar) for t in fig.data) and fig.layout.barmode == "stack"
    ae = pl.DataFrame({"term": ["Nausea", "Fever"], "grade_1": [1, 0], "grade_2": [0, 0],
                       "grade_3": [1, 2], "grade_4": [0, 0], "grade_5": [0, 0]})
    fig = fs.adverse_event_bars(ae)
    assert [t.name for t in fig.data] == ["grade 1", "grade 3"]
    assert fig.data[0].orientation == "h"
    daily = pl.DataFrame({"subject_id": ["A", "A"], "day": [1, 2], "derived_grade": [1, 2],
                          "recorded_grade": [0, 2]})
    fig = fs.astct_heatmap(daily)
    assert isinstance(fig.data[0], go.Heatmap) and fig.data[0].text[0][1] == "r2"
