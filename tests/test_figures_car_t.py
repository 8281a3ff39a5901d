"""Figure factories of the kinetics and safety pages: trace count and type, axis types, titles,
shapes (LLOQ line, episode shading) and the standard deck figures."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
import pytest

from analysis import kinetics as kin
from analysis import toxicity as tox
from analysis.cohort import Cohort
from components.figures import kinetics as fk
from components.figures import safety as fs
from components.theme import GRADE_COLORS
from views.deck import slide


def _series() -> pl.DataFrame:
    raw = pl.DataFrame({
        "subject_id": ["A"] * 4 + ["B"] * 4, "analyte": ["CAR_QPCR"] * 8,
        "day": [0, 7, 14, 28] * 2, "value": [0.0, 1000, 400, 20, 0, 300, 100, 60],
        "lloq": [50.0] * 8, "unit": ["copies/ug gDNA"] * 8})
    return kin.prepare_series(raw)


def test_kinetics_curve_traces_log_axis_blq_and_lloq():
    fig = fk.kinetics_curve(_series(), title="qPCR", y_title="copies/ug gDNA")
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert names == ["A", "B", "below LLOQ (drawn at LLOQ/2)"]
    assert all(isinstance(t, go.Scatter) for t in fig.data)
    assert fig.layout.yaxis.type == "log" and fig.layout.title.text == "qPCR"
    assert fig.layout.yaxis.title.text == "copies/ug gDNA"
    a = fig.data[0]
    assert list(a.marker.symbol) == ["circle-open", "circle", "circle", "circle-open"]
    assert list(a.y) == [25.0, 1000.0, 400.0, 25.0]          # BLQ at LLOQ/2
    assert list(fig.data[2].y) == [25.0, 25.0, 25.0]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].y0 == 50
    # the LLOQ label sits at log10(50) on the log axis (not at 10^50)
    assert fig.layout.annotations[0].y == pytest.approx(1.69897, rel=1e-4)


def test_kinetics_curve_highlight_shade_and_linear():
    fig = fk.kinetics_curve(_series(), highlight=["B"], shade=(7, 14), log_y=False)
    assert fig.layout.yaxis.type == "linear"
    assert fig.data[0].opacity == 0.25 and fig.data[1].opacity == 1.0
    assert fig.data[1].line.width > fig.data[0].line.width
    assert any(s.type == "rect" and s.x0 == 7 and s.x1 == 14 for s in fig.layout.shapes)


def test_group_curve_figure_has_no_blq_trace():
    s = kin.with_groups(_series(), groups=pl.DataFrame({
        "subject_id": ["A", "B"], "best_response": ["CR", "NR"],
        "response_group": ["Responder", "Non-responder"]}))
    fig = fk.kinetics_curve(kin.group_curve(s), y="geo_mean", color="response_group", blq=None)
    assert [t.name for t in fig.data] == ["Non-responder", "Responder"]


def test_empty_frames_give_empty_figures():
    empty = kin.prepare_series(pl.DataFrame(schema={"subject_id": pl.String,
                                                    "analyte": pl.String, "day": pl.Int64,
                                                    "value": pl.Float64}))
    assert len(fk.kinetics_curve(empty).data) == 0
    assert len(fk.readout_panels(empty).data) == 0
    assert len(fs.cytokine_panels(pl.DataFrame(schema={"subject_id": pl.String,
                                                       "analyte": pl.String,
                                                       "day": pl.Int64,
                                                       "value": pl.Float64})).data) == 0


def test_readout_panels_share_x_and_log_facet():
    df = pl.DataFrame({"subject_id": ["A", "A", "B", "B"], "day": [0, 7, 0, 7],
                       "assay": ["CD7NEG_T_PCT", "NK_ABS"] * 2, "value": [5.0, 50, 6, 40]})
    fig = fk.readout_panels(df, facet_order=("CD7NEG_T_PCT", "NK_ABS"), log_facets=("NK_ABS",),
                            titles={"NK_ABS": "NK cells (cells/uL)"}, x_range=(-5, 30))
    assert len(fig.data) == 4
    assert fig.layout.yaxis.type == "linear" and fig.layout.yaxis2.type == "log"
    assert fig.layout.yaxis2.title.text == "cells/uL"
    assert fig.layout.xaxis.matches == "x2" or fig.layout.xaxis2.matches == "x"
    assert tuple(fig.layout.xaxis.range) == (-5, 30)


def test_concordance_and_exposure_strip():
    pairs = pl.DataFrame({"subject_id": ["A", "A", "B"], "day": [7, 14, 7],
                          "x": [100.0, 50, 10], "y": [5.0, 2, 0.05],
                          "x_blq": [False, False, True], "y_blq": [False, False, True]})
    fig = fk.concordance_scatter(pairs, title="rho")
    assert len(fig.data) == 2 and fig.layout.xaxis.type == "log"
    assert fig.layout.yaxis.type == "log" and list(fig.data[1].marker.symbol) == ["circle-open"]
    er = pl.DataFrame({"subject_id": ["A", "B", "C"], "cmax": [10.0, 20, 5],
                       "response_group": ["Responder", "Responder", "Non-responder"]})
    fig = fk.exposure_strip(er, category_order=("Responder", "Non-responder", "Not evaluable"))
    assert len(fig.data) == 3 and all(t.mode == "markers" for t in fig.data)
    assert list(fig.layout.xaxis.ticktext) == ["Responder", "Non-responder"]
    assert fig.layout.yaxis.type == "log"


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


def test_standard_figures_on_demo(demo_study):
    for key in ("kinetics", "cytokines", "crs_ae"):
        spec = slide(key).build(demo_study, Cohort())
        assert spec is not None and spec.key == key and len(spec.fig.data) > 0
        assert spec.data is not None and spec.data.height > 0
    spec = slide("kinetics").build(demo_study, Cohort(subjects=("SAA-001",)))
    assert [t.name for t in spec.fig.data][0] == "SAA-001"
    assert spec.fig.layout.yaxis.type == "log"


def test_standard_figures_skip_missing_data(write_study):
    from data_loaders import load_study

    study = load_study(write_study(
        measurements="subject_id,day,analyte,value,unit\nP1,0,ANC,0.2,10^9/L\n"))
    for key in ("kinetics", "cytokines", "crs_ae"):
        assert slide(key).build(study, Cohort()) is None


def test_car_vs_qpcr_draws_below_lloq_as_the_kinetics_page_does():
    import polars as pl

    from components.figures.landscape import car_vs_qpcr_figure

    car = pl.DataFrame({"subject_id": ["A"], "day": [28], "car_pct_of_t": [5.0]})
    qpcr = pl.DataFrame({"subject_id": ["A", "A"], "analyte": ["CAR_QPCR"] * 2,
                         "day": [28, 90], "value": [500.0, 20.0], "lloq": [50.0, 50.0]})
    fig = car_vs_qpcr_figure(car, qpcr)
    q = next(t for t in fig.data if t.xaxis == "x2")
    assert list(q.y) == [500.0, 25.0]                      # BLQ at LLOQ/2, not at 20
    assert list(q.marker.symbol) == ["circle", "circle-open"]
    assert any(s.y0 == 50.0 for s in fig.layout.shapes)
