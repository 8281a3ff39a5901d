"""AppTest runs of the Blood counts page: on the demo (why each response is what it is), with a
focus set elsewhere, and with the rule settings."""

from __future__ import annotations

from analysis.vocab import DayWindow


def _texts(at, kind: str) -> str:
    return " ".join(str(e.value) for e in getattr(at, kind))


def _frames(at) -> str:
    return " ".join(df.value.to_string() for df in at.dataframe)


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
    at.session_state[FOCUS_KEY] = Focus(subjects=("SAA-002",), days=DayWindow(14, 28),
                                       label="lassoed cells", study_key=demo_study.cache_key)
    at.run()
    assert not at.exception
    assert "lassoed cells: SAA-002, days 14..28" in _texts(at, "info")
    at.button(key="bc-clear-focus").click().run()
    assert not at.exception
    assert "lassoed cells" not in _texts(at, "info")

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


def test_a_link_keeps_the_study_rules_it_was_made_with(app_page, tmp_path):
    """The transfusion-free window starts from study.toml's [rules]; a link always carries it
    (also at that default), so the study's rule changing later does not change what the link
    opens."""
    import shutil
    from pathlib import Path

    from analysis.rules import Rules

    demo = Path(__file__).resolve().parent.parent / "sample_data" / "demo"
    study = tmp_path / "demo"
    shutil.copytree(demo, study, ignore=shutil.ignore_patterns(".cache"))
    at = app_page("pages/blood_counts.py", study=study)
    assert not at.exception, [e.value for e in at.exception]
    made_with = Rules().ti_window
    assert at.number_input(key="bc-ti").value == made_with
    link = {k: at.query_params[k] for k in at.query_params}
    assert link.get("bc-ti") in (str(made_with), [str(made_with)])
    for key in ("bc-vw", "bc-retic"):
        assert key in link, key
    responses = _frames(at)
    other = 28 if made_with != 28 else 56
    with (study / "study.toml").open("a", encoding="utf-8") as fh:
        fh.write(f"\n[rules]\nti_window = {other}\n")
    assert app_page("pages/blood_counts.py", study=study).number_input(
        key="bc-ti").value == other                      # a fresh view follows the rule
    opened = app_page("pages/blood_counts.py", study=study, query=link)
    assert not opened.exception, [e.value for e in opened.exception]
    assert opened.number_input(key="bc-ti").value == made_with
    assert _frames(opened) == responses
