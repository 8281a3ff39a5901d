"""Real browser: a link holds the whole view. The address a page shows after a user set its
options (and the cohort) reopens the same view in a fresh browser session; the documented
/overview link works as the first request to a fresh server."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.browser


def _settle(page) -> None:
    """Wait until the script run is over (no running indicator) and the URL is written."""
    page.locator(".js-plotly-plot .main-svg").filter(visible=True).first.wait_for(
        timeout=45_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=45_000)
    time.sleep(1.0)


def _until_url(page, text: str) -> None:
    page.wait_for_function(f"() => location.search.includes({text!r})", timeout=45_000)


def _radio_checked(page, label: str) -> bool:
    return page.get_by_role("radio", name=label).is_checked()


def test_a_link_with_page_options_reopens_the_same_view(app_server, browser):
    first = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = first.new_page()
        page.goto(f"{app_server}/patient", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Patient").first.wait_for(timeout=45_000)
        _settle(page)
        # short links: options at their defaults (the first patient, NIH, every lane) are
        # left out; a fresh session shows them anyway
        assert page.get_by_role("combobox", name="Patient", exact=True).input_value() == \
            "SAA-001"
        assert not re.search(r"patient=|pt-criteria=|pt-lanes=", page.url), page.url
        page.get_by_role("button", name="Next").click()
        _until_url(page, "patient=SAA-002")
        page.get_by_text("BSH", exact=True).click()
        _until_url(page, "pt-criteria=BSH")
        # and a cohort day window through the sidebar slider's keyboard
        slider = page.get_by_role("slider").first
        slider.focus()
        slider.press("ArrowRight")
        _until_url(page, "days=")
        _settle(page)
        url = page.url
    finally:
        first.close()
    assert "patient=SAA-002" in url and "pt-criteria=BSH" in url, url
    assert re.search(r"days=-?\d+(%3A|:)", url), url
    assert "pt-lanes" not in url, url

    second = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = second.new_page()
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("heading", name="Patient").first.wait_for(timeout=45_000)
        _settle(page)
        # the patient picker (a combobox) holds the linked patient
        assert page.get_by_role("combobox", name="Patient", exact=True).input_value() == "SAA-002"
        assert _radio_checked(page, "BSH") and not _radio_checked(page, "NIH")
        assert page.get_by_text(re.compile(r"\d of \d patients")).count() >= 1
        days = re.search(r"days=([^&]+)", url).group(1)
        assert f"days={days}" in page.url      # the cohort came through too
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.get_by_text("not applied").count() == 0
    finally:
        second.close()


def _current_nav(page) -> list[str]:
    """The navigation entries marked as the page shown (their titles)."""
    links = page.locator("[data-testid='stSidebarNavLink'][aria-current='page']")
    return [links.nth(i).inner_text().splitlines()[-1].strip() for i in range(links.count())]


def test_overview_by_its_path_on_a_fresh_server(page):
    """/overview is the documented link; the default page is also served at the root. Both
    open with Overview marked in the navigation, and leave its options at their defaults out
    of the address."""
    from tests.conftest import DEMO, start_streamlit

    proc, url = start_streamlit(DEMO)
    try:
        page.goto(f"{url}/overview?days=0:90", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Overview").first.wait_for(timeout=45_000)
        _settle(page)
        assert page.get_by_text("Page not found").count() == 0
        assert page.get_by_text("No study is loaded").count() == 0
        assert page.get_by_text("Responders vs non-responders").count() >= 1  # app navigation
        assert "days=0%3A90" in page.url or "days=0:90" in page.url
        assert _current_nav(page) == ["Overview"]
        assert "ov-" not in page.url, page.url
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("heading", name="Overview").first.wait_for(timeout=45_000)
        _settle(page)
        assert _current_nav(page) == ["Overview"]
        page.goto(f"{url}/kinetics", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Kinetics").first.wait_for(timeout=45_000)
        _settle(page)
        assert _current_nav(page) == ["Kinetics"]
        # options at a code default are left out; those whose default the study's rules or
        # data give are kept, so the link survives a change of the study's settings
        page.wait_for_function("() => location.search.includes('kin-model=')",
                               timeout=30_000)
        shown = {k for k in parse_qs(urlsplit(page.url).query) if k.startswith("kin-")}
        assert shown == {"kin-impute0", "kin-nonexp", "kin-model"}, page.url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(("path", "title", "mark"), [
    ("kinetics", "Kinetics", ".scatterlayer .trace path.point"),
    ("overview", "Overview", ".barlayer .trace path"),
], ids=["kinetic curves", "swimmer lanes"])
def test_click_on_a_patient_opens_the_patient_page(app_server, page, demo_study, path, title,
                                                   mark):
    """Per-patient figures on other pages (Kinetics: one trace per patient; Overview: one
    swimmer lane per patient): clicking a patient's point or lane opens the Patient page on
    that patient (plotly picks the point closest to the pointer, so the test reads which
    patient that was)."""
    page.goto(f"{app_server}/{path}", wait_until="domcontentloaded")
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=45_000)
    # the first figure of the page drawn with such marks (the curves; the swimmer lanes)
    figure = page.locator(".js-plotly-plot").filter(has=page.locator(mark)).first
    figure.wait_for(timeout=60_000)
    _settle(page)
    figure.scroll_into_view_if_needed()
    figure.locator(mark).nth(3).click(force=True)
    page.get_by_role("heading", name="Patient", exact=True).first.wait_for(timeout=60_000)
    page.wait_for_function("() => location.pathname.endsWith('/patient')", timeout=45_000)
    _settle(page)
    # the link names the patient, unless it is the page's default (the first in study order);
    # the address bar takes it when the page's last run writes its options
    shown = page.get_by_role("combobox", name="Patient", exact=True).input_value()
    assert shown in demo_study.subject_ids
    if shown != demo_study.subject_ids[0]:
        _until_url(page, f"patient={shown}")
    named = re.search(r"[?&]patient=([^&]+)", page.url)
    opened = named.group(1) if named else demo_study.subject_ids[0]
    assert opened == shown
    assert page.locator("[data-testid='stException']").count() == 0
