"""Every page runs headless (AppTest) on the demo study without an exception, and the cohort
filter round-trips through the URL."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _pages() -> list[tuple[str, str]]:
    import ast

    tree = ast.parse((ROOT / "app.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PAGES":
            rows = ast.literal_eval(node.value)
            return [(file, title) for _, file, title, _ in rows]
    raise AssertionError("app.py has no PAGES list")


PAGES = _pages()
# pages that show no figure of the study (the Import page works on files, not on the study)
NO_FIGURES = ("pages/import_data.py",)
FIGURE_PAGES = [p for p in PAGES if p[0] not in NO_FIGURES]


@pytest.mark.parametrize(("file", "title"), PAGES, ids=[p[0] for p in PAGES])
def test_page_runs_on_demo(app_page, file, title):
    at = app_page(file)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title and at.title[0].value, f"{file} shows no title"


@pytest.mark.parametrize(("file", "title"), FIGURE_PAGES, ids=[p[0] for p in FIGURE_PAGES])
def test_every_figure_offers_its_data(app_page, file, title):
    """DESIGN.md section 4: every figure downloads as PNG, SVG, PDF and its data as CSV."""
    at = app_page(file)
    charts = len(at.get("plotly_chart"))
    labels = [b.label for b in at.get("download_button")]
    assert charts >= 1
    for label in ("PNG", "SVG", "PDF", "Data (CSV)"):
        assert labels.count(label) == charts, (label, labels)


def test_default_page_is_first(app_page):
    at = app_page()
    assert not at.exception
    assert at.title[0].value == PAGES[0][1]


def test_cohort_filter_reads_and_writes_url(app_page, demo_study):
    first = demo_study.subject_ids[0]
    at = app_page("pages/data_quality.py", query={"patients": first, "days": "0:90"})
    assert not at.exception
    assert at.multiselect(key="f-patients").value == [first]
    assert at.slider(key="f-days").value == (0, 90)
    at.multiselect(key="f-patients").set_value([]).run()
    assert "patients" not in at.query_params
    assert at.query_params["days"] == ["0:90"] or at.query_params["days"] == "0:90"


def test_unknown_query_values_are_ignored(app_page):
    at = app_page("pages/data_quality.py", query={"patients": "NOPE,../../etc",
                                                   "groups": "Martians", "days": "x:y"})
    assert not at.exception
    assert at.multiselect(key="f-patients").value == []


def test_broken_study_shows_report_not_exception(app_page, write_study):
    folder = write_study(measurements="subject_id,day,analyte,value,unit\nP1,0,ANC,x,10^9/L\n",
                         events=b"\x00\x00binary")
    at = app_page("pages/data_quality.py", study=folder)
    assert not at.exception
    text = " ".join(df.value.to_string() for df in at.dataframe)
    assert "value is not a number" in text and "not a text file" in text


def test_changed_study_file_is_picked_up_without_restart(app_page, write_study):
    import os

    folder = write_study()
    at = app_page("pages/data_quality.py", study=folder)
    assert at.metric[0].label == "Patients" and at.metric[0].value == "2"
    p = folder / "patients.csv"
    p.write_text(p.read_text() + "P3,44,F,2025-03-01,\n")
    st_ = p.stat()
    os.utime(p, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))
    at.run()
    assert not at.exception
    assert at.metric[0].value == "3"


@pytest.mark.parametrize("days", ["9999:", ":-9999", "600:-600", "-5000:5000"])
def test_days_outside_the_study_are_clamped(app_page, days):
    at = app_page("pages/data_quality.py", query={"days": days})
    assert not at.exception
    lo, hi = at.slider(key="f-days").value
    assert at.slider(key="f-days").min <= lo <= hi <= at.slider(key="f-days").max


# ---- a study without transfusions or responses --------------------------------------------
SPARSE_PATIENTS = """subject_id,age,sex
P1,34,M
P2,51,F
"""


SPARSE_MEASUREMENTS = """subject_id,day,analyte,value,unit
P1,0,ANC,0.2,10^9/L
P1,0,PLT,10,10^9/L
P1,28,ANC,0.8,10^9/L
P1,28,PLT,30,10^9/L
P1,28,HGB,90,g/L
P2,28,ANC,0.1,10^9/L
P2,28,PLT,8,10^9/L
"""


def _texts_of(at, kind: str) -> str:
    return " ".join(str(e.value) for e in getattr(at, kind))


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/blood_counts.py",
                                  "pages/outcomes.py"])
def test_pages_explain_missing_transfusions_and_responses(app_page, write_study, page):
    folder = write_study(patients=SPARSE_PATIENTS, measurements=SPARSE_MEASUREMENTS)
    at = app_page(page, study=folder)
    assert not at.exception, [e.value for e in at.exception]
    info = _texts_of(at, "info")
    if page.endswith("overview.py"):
        assert "transfusions" in info
    elif page.endswith("blood_counts.py"):
        assert "No transfusions are recorded" in info and "No recorded responses" in info
    else:
        assert "No recorded responses" in info
