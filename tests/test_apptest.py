"""tools/apptest.py: AppTest runs after the first go through app.py's navigation (as on a
server) with the patch, and fall back to the bare pages/ folder mode without it (the day this
test's second half fails, streamlit has fixed AppTest and the patch can go)."""

from __future__ import annotations

from pathlib import Path

import pytest

APP = '''
import streamlit as st

st.sidebar.write("sidebar of app.py")
st.navigation([st.Page("pages/one.py", title="One", default=True),
               st.Page("pages/two.py", title="Two")]).run()
'''


@pytest.fixture
def tiny_app(tmp_path: Path) -> Path:
    (tmp_path / "pages").mkdir()
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    (tmp_path / "pages" / "one.py").write_text("import streamlit as st\nst.title('One')\n")
    (tmp_path / "pages" / "two.py").write_text("import streamlit as st\nst.title('Two')\n")
    return tmp_path / "app.py"


def _second_run(app: Path) -> tuple[str, list[str]]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(app), default_timeout=30)
    at.run()
    at.switch_page("pages/two.py").run()
    assert not at.exception
    return at.title[0].value, [m.value for m in at.sidebar.markdown]


def test_with_the_patch_every_run_goes_through_app_py(tiny_app):
    from tools.apptest import real_navigation

    undo = real_navigation()
    try:
        title, sidebar = _second_run(tiny_app)
    finally:
        undo()
    assert title == "Two"
    assert sidebar == ["sidebar of app.py"]


def test_without_it_a_rerun_runs_the_page_alone(tiny_app):
    title, sidebar = _second_run(tiny_app)
    assert title == "Two"
    assert sidebar == []     # app.py did not run: no sidebar, no login, no cohort
