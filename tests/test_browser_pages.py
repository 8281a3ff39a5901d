"""Real browser: `streamlit run app.py` on the demo, every page opened in headless Chromium
shows its title and at least one chart, and no Streamlit error box."""

from __future__ import annotations

import pytest

from tests.test_app_pages import FIGURE_PAGES

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("file", "title"), FIGURE_PAGES, ids=[p[0] for p in FIGURE_PAGES])
def test_page_renders_in_chromium(app_server, page, file, title):
    from pathlib import Path

    page.goto(f"{app_server}/{Path(file).stem}", wait_until="domcontentloaded")
    page.get_by_role("heading", name=title).first.wait_for(timeout=45_000)
    if file.endswith("cytometry.py"):
        # the demo has FCS files but no gate file: the gate tabs say so, FlowSOM still draws
        page.get_by_text("but no gate file").first.wait_for(timeout=45_000)
        page.get_by_role("tab", name="FlowSOM clusters").click()
    page.locator(".js-plotly-plot .main-svg").filter(visible=True).first.wait_for(timeout=45_000)
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlertContentError']").count() == 0 or \
        file.endswith("data_quality.py")


def test_deep_link_on_a_fresh_server_runs_through_app(page):
    """A shared link to a page is often the first request after a restart: it must get the
    app's navigation and sidebar, not Streamlit's bare pages/ folder mode."""
    from tests.conftest import DEMO, start_streamlit

    proc, url = start_streamlit(DEMO)
    try:
        page.goto(f"{url}/data_quality?days=0:90", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Data & quality").first.wait_for(timeout=45_000)
        assert page.get_by_text("No study is loaded").count() == 0
        assert page.get_by_text("Responders vs non-responders").count() >= 1  # app navigation
        assert "days=0%3A90" in page.url or "days=0:90" in page.url
    finally:
        proc.terminate()
        proc.wait(10)
