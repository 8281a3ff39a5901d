"""AppTest runs of the Overview page on the demo."""

from __future__ import annotations


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
