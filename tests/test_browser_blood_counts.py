"""Real browser: the Blood counts page's ICAHT, Derived vs recorded and Baseline tables fit a
1400 px wide page (no sideways scrolling in their grids); the rule behind each grade, response
or severity is shown as wrapped text below its grid."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.browser

# the data grid's scroller: wider content than its box means a sideways scroll bar
_OVERFLOW = """el => {
    const s = el.querySelector('.dvn-scroller');
    return s ? [s.scrollWidth, s.clientWidth] : null;
}"""


def test_the_icaht_table_fits_a_1400_px_page(app_server, page):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{app_server}/blood_counts", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Blood counts", exact=True).first.wait_for(
        timeout=45_000)
    heading = page.get_by_role("heading", name="Haematotoxicity (ICAHT)")
    heading.wait_for(timeout=90_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    heading.scroll_into_view_if_needed()
    time.sleep(1.0)
    grid = page.locator("xpath=//*[self::h2 or self::h3][contains(., 'Haematotoxicity')]"
                        "/following::*[@data-testid='stDataFrame'][1]")
    grid.wait_for(timeout=30_000)
    grid.scroll_into_view_if_needed()
    time.sleep(0.5)
    scroll, box = grid.evaluate(_OVERFLOW)
    assert scroll <= box + 1, f"the ICAHT grid scrolls sideways: {scroll} px in {box} px"
    # on a narrow page the same grid does scroll (so the check can see it)
    page.set_viewport_size({"width": 760, "height": 1000})
    time.sleep(1.5)
    scroll, box = grid.evaluate(_OVERFLOW)
    assert scroll > box + 1, (scroll, box)
    rules = page.locator("[data-testid='stTable']").filter(has_text="Early ICAHT (days 0-30)")
    assert rules.count() == 1
    assert "grade" in rules.first.inner_text()


@pytest.mark.parametrize(("key", "rule_header"), [
    ("bc-compare", "Derived response: rule"),
    ("bc-baseline", "Baseline severity: rule")])
def test_the_derived_vs_recorded_and_baseline_tables_fit_a_1400_px_page(app_server, page, key,
                                                                         rule_header):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{app_server}/blood_counts", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Blood counts", exact=True).first.wait_for(
        timeout=45_000)
    page.get_by_role("heading", name="Haematotoxicity (ICAHT)").wait_for(timeout=90_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    # the grid is the one just above its rule text
    rules = page.locator("[data-testid='stTable']").filter(has_text=rule_header)
    rules.first.wait_for(timeout=30_000)
    assert rules.count() == 1
    assert "SAA-001" in rules.first.inner_text()
    grid = page.locator(f"xpath=//*[@data-testid='stTable'][contains(., '{rule_header}')]"
                        "/preceding::*[@data-testid='stDataFrame'][1]")
    grid.wait_for(timeout=30_000)
    grid.scroll_into_view_if_needed()
    time.sleep(1.0)
    scroll, box = grid.evaluate(_OVERFLOW)
    assert scroll <= box + 1, f"the {key} grid scrolls sideways: {scroll} px in {box} px"
