"""Real browser: `streamlit run app.py` on the demo, every page opened in headless Chromium
shows its title and at least one chart, and no Streamlit error box."""

from __future__ import annotations

import pytest

from tests.test_app_pages import PAGES

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("file", "title"), PAGES, ids=[p[0] for p in PAGES])
def test_page_renders_in_chromium(app_server, page, file, title):
    from pathlib import Path

    page.goto(f"{app_server}/{Path(file).stem}", wait_until="domcontentloaded")
    page.get_by_role("heading", name=title).first.wait_for(timeout=45_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=45_000)
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlertContentError']").count() == 0 or \
        file.endswith("data_quality.py")
