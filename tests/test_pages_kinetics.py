"""AppTest runs of the Kinetics page: on the demo, with interactions by widget key, with a focus
set by another page, with the rule settings, and on studies that lack data (the page says what
is missing)."""

from __future__ import annotations

import json

import pytest

from analysis.vocab import DayWindow

KIN = "pages/kinetics.py"

NO_CYTOKINES = {
    "measurements": "subject_id,day,analyte,value,unit,lloq\n"
                    "P1,0,CAR_QPCR,0,copies/ug gDNA,50\nP1,7,CAR_QPCR,5000,copies/ug gDNA,50\n"
                    "P1,14,CAR_QPCR,800,copies/ug gDNA,50\nP1,28,CAR_QPCR,30,copies/ug gDNA,50\n"
                    "P2,0,CAR_QPCR,0,copies/ug gDNA,50\nP2,10,CAR_QPCR,900,copies/ug gDNA,50\n",
}


def _text(at) -> str:
    parts = [e.value for kind in ("info", "caption", "markdown", "warning", "success")
             for e in getattr(at, kind)]
    return " ".join(str(p) for p in parts)


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


@pytest.fixture
def no_cytokine_study(write_study):
    return write_study(**NO_CYTOKINES)


def test_kinetics_page_on_demo(app_page):
    at = app_page(KIN)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Kinetics"
    charts = _charts(at)
    assert len(charts) >= 5          # curves, concordance, CD7 readouts, 2 exposure strips
    curve = charts[0]
    assert curve["layout"]["yaxis"]["type"] == "log"
    assert any(t["name"].startswith("below LLOQ") for t in curve["data"])
    params = at.dataframe[0].value
    assert list(params.columns[:7]) == ["subject_id", "assay", "cmax", "tmax", "auc_0_28",
                                        "tlast", "fold_expansion"]
    assert params["tmax"].between(7, 14).all()          # peaks around day 7-14
    assert "Spearman rho" in _text(at)

def test_kinetics_toggles_and_options(app_page):
    at = app_page(KIN)
    at.radio(key="kin-assay").set_value("CAR_PCT").run()
    assert not at.exception
    assert set(at.dataframe[0].value["assay"]) == {"CAR_PCT"}
    at.radio(key="kin-view").set_value("Geometric mean by response group").run()
    assert not at.exception
    names = {t["name"] for t in _charts(at)[0]["data"]}
    assert names <= {"Responder", "Non-responder", "Not evaluable"} and "Responder" in names
    at.number_input(key="kin-auc-end").set_value(14).run()
    at.selectbox(key="kin-blq-trailing").set_value("drop").run()
    assert not at.exception
    assert "auc_0_14" in at.dataframe[0].value.columns
    at.radio(key="kin-exposure").set_value("auc_0_14").run()
    assert not at.exception

def test_kinetics_honours_focus(app_page, demo_study):
    from components.session import FOCUS_KEY, Focus

    at = app_page(KIN)
    at.session_state[FOCUS_KEY] = Focus(("SAA-002",), DayWindow(7, 28), "cells lassoed",
                                       demo_study.cache_key)
    at.run()
    assert not at.exception
    assert any("cells lassoed: SAA-002, days 7..28" in i.value for i in at.info)
    curve = _charts(at)[0]
    faded = {t["name"]: t.get("opacity", 1) for t in curve["data"]}
    assert faded["SAA-002"] == 1 and faded["SAA-001"] < 1
    assert any(s.get("x0") == 7 and s.get("x1") == 28 for s in curve["layout"]["shapes"])
    at.button(key="kin-clear-focus").click().run()
    assert not at.exception
    assert at.session_state[FOCUS_KEY] is None
    assert not any("cells lassoed" in i.value for i in at.info)

def test_kinetics_page_on_sparse_study(app_page, no_cytokine_study):
    at = app_page(KIN, study=no_cytokine_study)
    assert not at.exception, [e.value for e in at.exception]
    info = " ".join(i.value for i in at.info)
    assert "needs both qPCR" in info and "No CD7-specific readouts" in info
    assert len(at.dataframe[0].value) == 2

def test_kinetics_page_without_car_t(app_page, write_study):
    at = app_page(KIN, study=write_study(
        measurements="subject_id,day,analyte,value,unit\nP1,0,ANC,0.3,10^9/L\n"))
    assert not at.exception
    assert "no CAR-T measurements" in at.info[0].value

def test_kinetics_page_rules_and_non_expanders(app_page):
    at = app_page(KIN)
    assert not at.exception, [e.value for e in at.exception]
    summary = next(df.value for df in at.dataframe if "n_nonexpanders" in df.value.columns)
    assert summary["note"].str.startswith("geometric mean of").all()
    assert any(e.label.startswith("Rules used") for e in at.expander)
    at.selectbox(key="kin-nonexp").set_value("half_lloq").run()
    at.checkbox(key="kin-impute0").check().run()
    assert not at.exception
    assert any(e.label == "Rules used (2 changed from the defaults)" for e in at.expander)
