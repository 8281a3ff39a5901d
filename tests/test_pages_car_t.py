"""AppTest runs of the Kinetics and Cytokines & safety pages: on the demo, with interactions by
widget key, with a focus set by another page, and on studies that lack data (the page says
what is missing)."""

from __future__ import annotations

import json

import pytest

KIN, SAFETY = "pages/kinetics.py", "pages/safety.py"

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
    at.session_state[FOCUS_KEY] = Focus(("SAA-002",), 7, 28, "cells lassoed",
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


def test_safety_page_on_demo(app_page):
    at = app_page(SAFETY)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Cytokines & safety"
    cyto = _charts(at)[0]
    assert cyto["layout"]["yaxis"]["type"] == "log"
    assert any(s.get("name", "").startswith("CRS grade") for s in cyto["layout"]["shapes"])
    assert any("agree" in s.value for s in at.success)

    def ae_table():
        return {tuple(df.value.columns[:2]): df.value for df in at.dataframe}[("category",
                                                                               "term")]

    before = ae_table()
    assert before["pct"].max() <= 100 and before[[f"grade_{g}" for g in (1, 2)]].sum().sum() > 0
    at.selectbox(key="saf-ae-grade").set_value(3).run()
    assert not at.exception
    after = ae_table()
    assert after[[f"grade_{g}" for g in (1, 2)]].sum().sum() == 0
    assert 0 < len(after) < len(before)
    at.selectbox(key="saf-patient").set_value("SAA-003").run()
    assert not at.exception
    shapes = _charts(at)[0]["layout"]["shapes"]
    assert any(s.get("name") == "ICANS grade 1" for s in shapes)


@pytest.fixture
def no_cytokine_study(write_study):
    return write_study(**NO_CYTOKINES)


def test_safety_page_says_what_is_missing(app_page, no_cytokine_study):
    at = app_page(SAFETY, study=no_cytokine_study)
    assert not at.exception, [e.value for e in at.exception]
    info = " ".join(i.value for i in at.info)
    assert "No cytokine measurements" in info and "IL6" in info
    assert "No events table" in info
    assert "No vitals" in info and "TEMP" in info


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


def test_safety_page_crs_window_and_rules(app_page):
    """The CRS rule widgets feed the derived grades: the daily table says why each day was or
    was not graded; a window ending on day 1 leaves the demo's later febrile days ungraded."""
    at = app_page(SAFETY)
    assert not at.exception, [e.value for e in at.exception]

    def daily():
        return next(df.value for df in at.dataframe if "reason" in df.value.columns)

    before = daily()       # the demo's vitals are all within days 0-14; tocilizumab masks fever
    assert before["graded"].all() and before["fever_masked"].any()
    assert any(e.label.startswith("Rules used") for e in at.expander)
    at.number_input(key="saf-crs-window").set_value(1).run()
    assert not at.exception
    after = daily()
    late = after[after["day"] > 1]
    assert len(late) and (~late["graded"] | late["reason"].str.startswith("around")).all()
    assert late[~late["graded"]]["derived_grade"].isna().all()
    at.checkbox(key="saf-masked").uncheck().run()
    assert not at.exception
    assert not daily()["fever_masked"].any()


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
