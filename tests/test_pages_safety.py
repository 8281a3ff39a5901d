"""AppTest runs of the Cytokines & safety page: on the demo, the CRS window and rule settings,
and a study without cytokines (the page says what is missing)."""

from __future__ import annotations

import json

import pytest

SAFETY = "pages/safety.py"

NO_CYTOKINES = {
    "measurements": "subject_id,day,analyte,value,unit,lloq\n"
                    "P1,0,CAR_QPCR,0,copies/ug gDNA,50\nP1,7,CAR_QPCR,5000,copies/ug gDNA,50\n"
                    "P1,14,CAR_QPCR,800,copies/ug gDNA,50\nP1,28,CAR_QPCR,30,copies/ug gDNA,50\n"
                    "P2,0,CAR_QPCR,0,copies/ug gDNA,50\nP2,10,CAR_QPCR,900,copies/ug gDNA,50\n",
}


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


@pytest.fixture
def no_cytokine_study(write_study):
    return write_study(**NO_CYTOKINES)


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

def test_safety_page_says_what_is_missing(app_page, no_cytokine_study):
    at = app_page(SAFETY, study=no_cytokine_study)
    assert not at.exception, [e.value for e in at.exception]
    info = " ".join(i.value for i in at.info)
    assert "No cytokine measurements" in info and "IL6" in info
    assert "No events table" in info
    assert "No vitals" in info and "TEMP" in info

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
