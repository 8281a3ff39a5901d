"""Clinical figure factories: trace count and type, axis types, titles; standard figures."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
import pytest

from analysis.vocab import DayWindow
from components.figures.clinical import (
    EVENT_STYLE,
    counts_by_group,
    counts_by_patient,
    km_plot,
    orr_plot,
    response_heatmap,
    swimmer_plot,
)

LANES = pl.DataFrame({"subject_id": ["A", "B", "C"], "end": [300, 500, 100],
                      "best_response": ["NR", "PR", "CR"],
                      "response_group": ["Non-responder", "Responder", "Responder"]})
EVENTS = pl.DataFrame({"subject_id": ["A", "B", "B", "C", "A"], "day": [28, 28, 5, 3, 250],
                       "kind": ["NR", "PR", "CRS G2", "RBC transfusion", "Death"],
                       "label": ["a", "b", "c", "d", "e"]})


def test_swimmer_traces_and_order():
    fig = swimmer_plot(LANES, EVENTS)
    types = [t.type for t in fig.data]
    assert types.count("bar") == 2                       # one per response group
    assert types.count("scatter") == 5                   # NR, PR, CRS, RBC transfusion, Death
    assert fig.layout.yaxis.type == "category"
    # longest follow-up on top (the last category is drawn at the top)
    assert list(fig.layout.yaxis.categoryarray) == ["C", "A", "B"]
    by_resp = swimmer_plot(LANES, EVENTS, sort_by="response")
    assert list(by_resp.layout.yaxis.categoryarray) == ["A", "B", "C"]
    crs = next(t for t in fig.data if t.name == "CRS grade 2")
    assert crs.marker.symbol == "diamond" and list(crs.text) == ["c"]


def test_swimmer_legend_below_grades_encoded_progression_not_nr_colour():
    events = pl.concat([EVENTS, pl.DataFrame({
        "subject_id": ["A", "C", "A"], "day": [5, 4, 200],
        "kind": ["CRS G3", "CRS G1", "Progression"], "label": ["f", "g", "h"]})])
    fig = swimmer_plot(LANES, events)
    # below the plot, in rows: never a scroll box beside a short plot
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.yref == "container"
    assert fig.layout.legend.yanchor == "bottom" and fig.layout.margin.b >= 94
    crs = {t.name: t.marker.color for t in fig.data if (t.name or "").startswith("CRS")}
    assert list(crs) == ["CRS grade 1", "CRS grade 2", "CRS grade 3"]
    assert len(set(crs.values())) == 3                  # the grade is the fill
    prog = next(t for t in fig.data if t.name == "Progression")
    nr = next(t for t in fig.data if t.name == "NR")
    assert prog.marker.color != nr.marker.color


def test_log_axes_are_labelled_at_decades():
    from components.theme import label_decades

    fig = counts_by_patient(SERIES, analytes=["ANC"], log_y=True)
    for ax in (fig.layout.yaxis, label_decades(go.Figure().update_yaxes(type="log")).layout.yaxis):
        assert ax.type == "log" and ax.dtick == 1 and ax.exponentformat == "power"
        assert ax.minor.dtick == "D1"


SERIES = pl.DataFrame({
    "subject_id": ["A", "A", "B", "B", "A", "B"], "day": [0, 28, 0, 28, 0, 28],
    "analyte": ["ANC", "ANC", "ANC", "ANC", "PLT", "PLT"],
    "value": [0.1, 1.2, 0.2, 0.3, 10.0, 50.0]})
TX = pl.DataFrame({"subject_id": ["A", "B"], "day": [3, 5], "product": ["RBC", "PLT"]})


def test_counts_by_patient_traces_axes_and_rug():
    fig = counts_by_patient(SERIES, analytes=["ANC", "PLT"], transfusions=TX, log_y=True,
                            ref_lines={"ANC": [(0.5, "severe")]},
                            marks=[(-5, -3, "LD"), (0, 0, "infusion")])
    assert len(fig.data) == 4 + 2                        # 2 patients x 2 counts + RBC/PLT rug
    assert all(t.type == "scatter" for t in fig.data)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert fig.layout.yaxis3.type == "category"          # the rug row
    rug = [t for t in fig.data if t.name.endswith("transfusion")]
    assert {t.name for t in rug} == {"RBC transfusion", "PLT transfusion"}
    shapes = [s.type for s in fig.layout.shapes]
    # the LD span is drawn on each of the 3 rows; infusion and reference lines are lines
    assert shapes.count("rect") == 3 and shapes.count("line") >= 2
    lin = counts_by_patient(SERIES, analytes=["ANC"])
    assert len(lin.data) == 2 and lin.layout.yaxis.type == "linear"


def test_counts_highlight_and_shade():
    fig = counts_by_patient(SERIES, analytes=["ANC"], highlight=["A"], shade=DayWindow(10, 30))
    widths = {t.name: (t.line.width, t.opacity) for t in fig.data}
    assert widths["A"][0] > widths["B"][0] and widths["B"][1] < 1
    assert any(s.type == "rect" and s.x0 == 10 and s.x1 == 30 for s in fig.layout.shapes)


def test_counts_by_group_ribbons():
    summ = pl.DataFrame({"analyte": ["ANC"] * 4, "response_group": ["Responder"] * 2 +
                         ["Non-responder"] * 2, "day": [0, 28, 0, 28],
                         "median": [0.2, 1.5, 0.2, 0.3], "q1": [0.1, 1.0, 0.1, 0.2],
                         "q3": [0.3, 2.0, 0.3, 0.4], "n": [3, 3, 2, 2]})
    fig = counts_by_group(summ, analytes=["ANC"])
    assert len(fig.data) == 4                            # ribbon + median per group
    assert [t.fill for t in fig.data].count("toself") == 2


def test_response_heatmap_categories():
    df = pl.DataFrame({"subject_id": ["A", "A", "B"], "timepoint": ["D28", "M3", "D28"],
                       "category": ["PR", "CR", "NR"], "rule": ["r1", "r2", "r3"]})
    fig = response_heatmap(df, subjects=["A", "B"], timepoints=["D28", "M3"])
    assert len(fig.data) == 1 and fig.data[0].type == "heatmap"
    assert [list(r) for r in fig.data[0].z] == [[1, 0], [2, 4]]      # B at M3: not assessed
    assert "r3" in fig.data[0].customdata[1][0]
    assert fig.layout.xaxis.type == "category"


def test_km_plot_numbers_at_risk_row():
    from analysis.outcomes import kaplan_meier

    surv = pl.DataFrame({"time": [10.0, 20.0, 30.0, 40.0], "event": [1, 0, 1, 0],
                         "group": ["a", "a", "b", "b"]})
    km = kaplan_meier(surv, group="group", at_times=[0, 20, 40])
    fig = km_plot(km.curve, km.at_risk, censored=km.censored, note="HSCT censored")
    text_traces = [t for t in fig.data if t.mode == "text"]
    assert len(text_traces) == 2 and list(text_traces[0].text) == ["2", "1", "0"]
    assert len(fig.data) == 2 * 4                        # band, curve, censor ticks, at risk
    assert fig.data[1].line.shape == "hv"
    assert "HSCT censored" in fig.layout.title.text
    assert fig.layout.yaxis2.type == "category"


def test_orr_plot_error_bars():
    t = pl.DataFrame({"landmark": ["D28", "Best"], "orr": [0.2, 0.6], "ci_low": [0.01, 0.15],
                      "ci_high": [0.7, 0.95], "n": [5, 5], "responders": [1, 3]})
    fig = orr_plot(t)
    assert len(fig.data) == 1 and fig.data[0].type == "bar"
    assert list(fig.data[0].y) == pytest.approx([20.0, 60.0])
    assert list(fig.data[0].error_y.array) == pytest.approx([50.0, 35.0])
    assert list(fig.data[0].text) == ["1/5", "3/5"]


def test_standard_figures_build_on_demo(demo_study):
    from analysis.cohort import Cohort
    from views.deck import DECK

    keys = [s.key for s in DECK]
    assert keys[:4] == ["swimmer", "blood_counts", "orr", "survival"]
    for entry in DECK[:4]:
        spec = entry.build(demo_study, Cohort())
        assert spec is not None and isinstance(spec.fig, go.Figure) and spec.fig.data, entry.key


def test_patient_colours_avoid_the_rug_and_yellow_and_the_two_blues_are_apart():
    from components.theme import PATIENT_PALETTE, PLT_RUG_COLOR, patient_colors

    five = list(patient_colors([f"P{i}" for i in range(5)]).values())
    assert len(set(five)) == 5
    assert PLT_RUG_COLOR not in PATIENT_PALETTE and "#F0E442" not in PATIENT_PALETTE
    assert EVENT_STYLE["PLT transfusion"][1] == PLT_RUG_COLOR
    assert "#56B4E9" not in five                       # sky blue only from the sixth patient


def test_count_labels_do_not_merge():
    fig = counts_by_patient(SERIES, analytes=["ANC"], marks=[(-5, -2, "lymphodepletion"),
                                                               (0, 0, "infusion")],
                            ref_lines={"ANC": [(0.5, "severe"), (0.2, "very severe")]})
    notes = {a.text: a for a in fig.layout.annotations}
    assert notes["lymphodepletion"].xanchor == "right" and notes["infusion"].xanchor == "left"
    # threshold labels at the right end, the neighbour stepped left: never on one spot
    spots = {a.text: (a.x, a.xanchor) for a in fig.layout.annotations
             if "severe" in (a.text or "")}
    assert len(set(spots.values())) == 2, spots


def test_micro_sign_on_screen_and_labels_for_table_headers():
    from components.theme import column_label, display_unit, display_units

    assert display_unit("CAR transgene (copies/ug gDNA)") == "CAR transgene (copies/µg gDNA)"
    assert display_unit("cells/uL") == "cells/µL" and display_unit("debug plug") == "debug plug"
    fig = go.Figure(go.Scatter(x=[1], y=[1], name="Flow (cells/uL)"))
    fig.update_layout(title="qPCR (copies/ug gDNA)")
    fig.update_yaxes(title_text="copies/ug gDNA")
    display_units(fig)
    assert fig.layout.title.text == "qPCR (copies/µg gDNA)"
    assert fig.layout.yaxis.title.text == "copies/µg gDNA" and fig.data[0].name.endswith("µL)")
    assert column_label("subject_id") == "Patient" and column_label("auc_0_28") == "AUC0-28"
    assert column_label("geo_cv_pct") == "Geometric CV (%)"
    assert column_label("n_nonexpanders") == "n nonexpanders"
    assert column_label("CAR_QPCR") == "CAR_QPCR"


def test_km_at_risk_rows_show_whole_labels_and_numbers():
    """Group names label the at-risk rows in full (automargin, not cut to "esponder"), the
    numbers are not clipped at the row edge, and the row grows with the groups."""
    import polars as pl

    from components.figures.clinical import km_plot

    curve = pl.DataFrame({"group": ["Responder", "Responder", "Non-responder", "Non-responder"],
                          "time": [0, 400, 0, 421], "survival": [1.0, 1.0, 1.0, 0.5],
                          "ci_low": [1.0, 1.0, 1.0, 0.1], "ci_high": [1.0, 1.0, 1.0, 0.9]})
    risk = pl.DataFrame({"group": ["Responder", "Non-responder"] * 2, "time": [0, 0, 360, 360],
                         "at_risk": [3, 2, 3, 2]})
    fig = km_plot(curve, risk)
    texts = [t for t in fig.data if t.mode == "text"]
    assert len(texts) == 2 and all(t.cliponaxis is False for t in texts)
    axis = fig.layout.yaxis2
    assert list(axis.categoryarray) == ["Responder", "Non-responder"]
    assert axis.automargin is True and list(axis.range) == [1.5, -0.5]
    assert fig.layout.margin.l >= 120


def test_count_thresholds_labelled_at_the_right_and_stepped_apart(demo_study):
    """Threshold labels sit at the right end (the early days are crowded), neighbouring ones
    stepped apart so "severe <0.5" and "very severe <0.2" do not print over each other."""
    from views import blood_counts as vbc

    fig = vbc.counts(demo_study).fig
    by_text = {a.text: a for a in fig.layout.annotations}
    low, mid = by_text["very severe <0.2"], by_text["severe <0.5"]
    assert low.xanchor == mid.xanchor == "right"
    assert low.xref == mid.xref == "x domain" and low.x != mid.x
    assert min(low.x, mid.x) > 0.5
