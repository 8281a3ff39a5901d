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


def _legend_order(fig: go.Figure) -> list[str]:
    """Shaded episodes as the legend lists them: by legendrank, then in drawing order."""
    shown = [s for s in fig.layout.shapes if s.showlegend]
    return [s.name for s in sorted(shown, key=lambda s: s.legendrank or 1000)]


def test_grade_legend_lists_grades_in_order_not_as_first_drawn():
    df = pl.DataFrame({"subject_id": ["P1", "P2", "P3", "P4"] * 2, "day": [0] * 4 + [5] * 4,
                       "analyte": "IL6", "value": [2.0, 3, 4, 5, 50, 60, 70, 80]})
    eps = pl.DataFrame({"subject_id": ["P1", "P2", "P3", "P4"],
                        "kind": ["CRS", "ICANS", "CRS", "CRS"], "start": [1, 2, 1, 2],
                        "end": [3, 4, 3, 4], "grade": [2, 1, 1, 3]})
    fig = fs.cytokine_panels(df, eps, facet="subject_id", facet_order=("P1", "P2", "P3", "P4"))
    assert _legend_order(fig) == ["CRS grade 1", "CRS grade 2", "CRS grade 3", "ICANS grade 1"]
    # after the patients' lines (plotly ranks traces at 1000)
    assert all(s.legendrank > 1000 for s in fig.layout.shapes if s.showlegend)


def test_within_decade_ticks_label_values_inside_the_data():
    assert fs.within_decade_ticks(2.48, 7.88) == [3.0, 5.0, 7.0]
    assert fs.within_decade_ticks(0.52, 1.51) == [0.5, 0.7, 1.0]
    assert fs.within_decade_ticks(0.6, 1.0) == [0.6, 0.7, 0.8, 0.9, 1.0]
    assert fs.within_decade_ticks(1583, 7094) == [2000.0, 3000.0, 5000.0, 7000.0]
    assert fs.within_decade_ticks(3.75, 30.99) == [5.0, 10.0, 20.0]


def test_a_log_panel_within_a_decade_gets_readable_ticks_without_minor_ones():
    """A panel spanning under one decade (crossing a power of ten or not) is labelled inside
    its data, minor ticks off; a panel over decades keeps the decade labels."""
    df = pl.DataFrame({"subject_id": "P1", "day": [0, 5] * 3,
                       "analyte": ["TNFA", "TNFA", "IL2", "IL2", "IL6", "IL6"],
                       "value": [2.5, 7.9, 0.52, 1.51, 2.0, 900.0]})
    fig = fs.cytokine_panels(df, facet_order=("TNFA", "IL2", "IL6"))
    for axis, ticks in ((fig.layout.yaxis, [3.0, 5.0, 7.0]), (fig.layout.yaxis2, [0.5, 0.7, 1.0])):
        assert axis.tickmode == "array" and list(axis.tickvals) == ticks
        assert list(axis.ticktext) == [f"{v:g}" for v in ticks]
        assert axis.minor.ticks == ""
    assert fig.layout.yaxis3.tickmode is None and fig.layout.yaxis3.dtick == 1


def test_matched_panels_share_one_tick_rule_from_all_their_values():
    df = pl.DataFrame({"subject_id": ["P1", "P1", "P2", "P2"], "day": [0, 5] * 2,
                       "analyte": "IL6", "value": [2.0, 4.0, 3.0, 9.0]})
    fig = fs.cytokine_panels(df, facet="subject_id", facet_order=("P1", "P2"), match_y=True)
    assert fig.layout.yaxis2.matches == "y"
    assert list(fig.layout.yaxis.tickvals) == list(fig.layout.yaxis2.tickvals) == \
        [2.0, 3.0, 5.0, 7.0]
    wide = df.with_columns(pl.when(pl.col("value") == 9.0).then(90.0).otherwise(pl.col("value"))
                           .alias("value"))
    fig = fs.cytokine_panels(wide, facet="subject_id", facet_order=("P1", "P2"), match_y=True)
    assert fig.layout.yaxis.tickvals is None and fig.layout.yaxis.dtick == 1


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
