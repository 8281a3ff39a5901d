"""Overview, Blood counts and Outcomes pages (AppTest): on the demo, with interactions by widget
key, with a focus set elsewhere, and on a study without transfusions or responses."""

from __future__ import annotations

import pytest

PATIENTS = """subject_id,age,sex
P1,34,M
P2,51,F
"""
MEAS = """subject_id,day,analyte,value,unit
P1,0,ANC,0.2,10^9/L
P1,0,PLT,10,10^9/L
P1,28,ANC,0.8,10^9/L
P1,28,PLT,30,10^9/L
P1,28,HGB,90,g/L
P2,28,ANC,0.1,10^9/L
P2,28,PLT,8,10^9/L
"""


def _texts(at, kind: str) -> str:
    return " ".join(str(e.value) for e in getattr(at, kind))


def _frames(at) -> str:
    return " ".join(df.value.to_string() for df in at.dataframe)


def test_overview_on_demo(app_page):
    at = app_page("pages/overview.py")
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Overview"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Patients"] == "5" and metrics["ORR (best)"].startswith("60%")
    assert "Responder (n=3)" in _frames(at)
    at.radio(key="ov-sort").set_value("response").run()
    assert not at.exception


def test_blood_counts_on_demo_shows_why(app_page):
    at = app_page("pages/blood_counts.py")
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Blood counts"
    text = _frames(at)
    for sid in ("SAA-001", "SAA-002", "SAA-003", "SAA-004", "SAA-005"):
        assert sid in text
    assert "no longer severe" in text and "still severe" in text
    assert "disagreement" in _texts(at, "success") + _texts(at, "warning")
    at.radio(key="bc-criteria").set_value("BSH").run()
    at.radio(key="bc-view").set_value("group median + IQR").run()
    at.toggle(key="bc-log").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]


def test_blood_counts_honours_focus(app_page, demo_study):
    from components.session import FOCUS_KEY, Focus

    at = app_page("pages/blood_counts.py")
    at.session_state[FOCUS_KEY] = Focus(subjects=("SAA-002",), day_min=14, day_max=28,
                                       label="lassoed cells", study_key=demo_study.cache_key)
    at.run()
    assert not at.exception
    assert "lassoed cells: SAA-002, days 14..28" in _texts(at, "info")
    at.button(key="bc-clear-focus").click().run()
    assert not at.exception
    assert "lassoed cells" not in _texts(at, "info")


def test_outcomes_on_demo(app_page):
    at = app_page("pages/outcomes.py")
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Outcomes"
    assert "Best" in _frames(at)
    at.radio(key="out-endpoint").set_value("OS_HSCT_CENSORED").run()
    assert "sensitivity analysis" in _texts(at, "caption")
    at.radio(key="out-endpoint").set_value("PFS").run()
    assert "Definition. PFS: the first of progression" in _texts(at, "caption")
    assert any("Rules used" in e.label for e in at.expander)
    at.toggle(key="out-by-group").set_value(True).run()
    at.radio(key="out-source").set_value("recorded").run()
    assert not at.exception, [e.value for e in at.exception]
    # the default split is the landmark analysis (day 90): groups by response up to it
    assert "Landmark analysis at day 90 (recorded responses)" in _texts(at, "caption")
    assert "Response by day 90" in _frames(at)
    at.radio(key="out-split").set_value("best").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Responder" in _frames(at)


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/blood_counts.py",
                                  "pages/outcomes.py"])
def test_pages_explain_missing_transfusions_and_responses(app_page, write_study, page):
    folder = write_study(patients=PATIENTS, measurements=MEAS)
    at = app_page(page, study=folder)
    assert not at.exception, [e.value for e in at.exception]
    info = _texts(at, "info")
    if page.endswith("overview.py"):
        assert "transfusions" in info
    elif page.endswith("blood_counts.py"):
        assert "No transfusions are recorded" in info and "No recorded responses" in info
    else:
        assert "No recorded responses" in info


def test_blood_counts_rules_baseline_and_icaht(app_page):
    at = app_page("pages/blood_counts.py")
    assert not at.exception, [e.value for e in at.exception]
    heads = [h.value for h in at.subheader]
    assert "Baseline" in heads and "Haematotoxicity (ICAHT)" in heads
    assert any(e.label == "Rules used" for e in at.expander)
    at.selectbox(key="bc-retic").set_value(20.0).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(e.label == "Rules used (1 changed from the defaults)" for e in at.expander)
    assert "retic_threshold = 20.0" in " ".join(c.value for c in at.code)


def test_orr_table_headers_are_labels_even_where_the_page_sets_a_format(app_page):
    """The ORR table formats orr/ci_low/ci_high as percent through its own column config; the
    header must still be the label ("95% CI low"), and response categories keep capitals (CR,
    not "Cr"). The CSV keeps the column names."""
    import json

    at = app_page("pages/outcomes.py")
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["ci_low"]["label"] == "95% CI low"
    assert columns["ci_low"]["type_config"]["format"] == "percent"
    assert columns["cr"]["label"] == "CR" and columns["nr"]["label"] == "NR"
