"""Real browser: the Import page from uploaded files to a saved study, which then opens."""

from __future__ import annotations

import pytest

from tests.test_cli_import import make_export

pytestmark = pytest.mark.browser


def test_import_page_uploads_to_a_saved_study_that_opens(app_server, page, tmp_path):
    from tests.conftest import start_streamlit

    src = make_export(tmp_path)
    page.goto(f"{app_server}/import_data", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Import data").first.wait_for(timeout=45_000)
    page.get_by_text("Upload files").click()
    files = [src / "labs.xlsx", src / "patients.csv", src / "cytokines.csv"]
    page.locator("input[type=file]").set_input_files([str(f) for f in files])
    page.get_by_role("heading", name="Preview").wait_for(timeout=60_000)
    page.get_by_role("heading", name="Validation report").wait_for(timeout=30_000)
    target = tmp_path / "from_browser"
    name = page.get_by_label("Study name")
    name.fill(str(target))
    name.press("Enter")
    page.get_by_text(f"writes {target}").wait_for(timeout=30_000)
    assert not target.exists()                              # nothing written before Save
    page.get_by_role("button", name="Save study").click()
    page.get_by_text("Saved from_browser: 3 patients").wait_for(timeout=60_000)
    assert (target / "study.toml").is_file()
    assert page.locator("[data-testid='stException']").count() == 0

    proc, url = start_streamlit(target)
    try:
        page.goto(f"{url}/blood_counts", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Blood counts").first.wait_for(timeout=45_000)
        page.get_by_text("3 patients").first.wait_for(timeout=30_000)
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=45_000)
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        proc.terminate()
        proc.wait(10)
