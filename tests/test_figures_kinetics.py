"""Figure factories of the Kinetics page (components/figures/kinetics.py): trace count and type,
axis types, titles, the LLOQ line and BLQ points, facets, and empty frames."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
import pytest

from analysis import kinetics as kin
from analysis.vocab import DayWindow
from components.figures import kinetics as fk
from components.figures import safety as fs


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
    fig = fk.kinetics_curve(_series(), highlight=["B"], shade=DayWindow(7, 14), log_y=False)
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


def test_exposure_strip_keeps_a_long_test_line_within_a_half_width_column():
    """The test detail is a subtitle wrapped at SUBTITLE_WRAP characters, broken after its
    colon and never inside "p = 0.2"; the title stays short; strips side by side get the same
    top margin."""
    import polars as pl

    er = pl.DataFrame({"subject_id": ["A", "B"], "cmax": [10.0, 20],
                       "response_group": ["Responder", "Non-responder"]})
    long = "Responder n=3 vs Non-responder n=2: U = 6, p = 0.2"
    fig = fk.exposure_strip(er, title="Cmax by best response group", subtitle=long)
    assert fig.layout.title.text == "Cmax by best response group"
    lines = fig.layout.title.subtitle.text.split("<br>")
    assert lines == ["Responder n=3 vs Non-responder n=2:", "U = 6, p = 0.2"]
    assert all(len(line) <= fk.SUBTITLE_WRAP for line in lines)
    short = fk.exposure_strip(er, title="Cmax by CRS max grade", subtitle="rho = 0.46, p = 0.4")
    assert short.layout.title.subtitle.text == "rho = 0.46, p = 0.4"
    assert short.layout.margin.t == fig.layout.margin.t
    plain = fk.exposure_strip(er, title="t")
    assert plain.layout.title.text == "t" and not plain.layout.title.subtitle.text


def test_car_vs_qpcr_draws_below_lloq_as_the_kinetics_page_does():
    import polars as pl

    from components.figures.landscape import car_vs_qpcr_figure

    car = pl.DataFrame({"subject_id": ["A"], "day": [28], "car_pct_of_t": [5.0]})
    qpcr = pl.DataFrame({"subject_id": ["A", "A"], "analyte": ["CAR_QPCR"] * 2,
                         "day": [28, 90], "value": [500.0, 20.0], "lloq": [50.0, 50.0]})
    fig = car_vs_qpcr_figure(car, kin.prepare_series(qpcr))
    q = next(t for t in fig.data if t.xaxis == "x2")
    assert list(q.y) == [500.0, 25.0]                      # BLQ at LLOQ/2, not at 20
    assert list(q.marker.symbol) == ["circle", "circle-open"]
    assert any(s.y0 == 50.0 for s in fig.layout.shapes)
