"""Real browser: a box selection dragged on the embedding in headless Chromium comes back to
the server and the page shows where the selected cells come from and their marker genes."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def test_box_selection_on_embedding_shows_summary(app_server, page):
    page.goto(f"{app_server}/immune_landscape", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Immune landscape").first.wait_for(timeout=45_000)
    plot = page.locator(".js-plotly-plot").first
    plot.locator(".main-svg").first.wait_for(timeout=45_000)
    plot.scroll_into_view_if_needed()
    plot.hover()
    plot.locator("[data-attr='dragmode'][data-val='select']").first.click()
    box = plot.locator(".nsewdrag").first.bounding_box()
    assert box is not None
    x0, y0 = box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.15
    x1, y1 = box["x"] + box["width"] * 0.85, box["y"] + box["height"] * 0.85
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(x0 + (x1 - x0) * k / 10, y0 + (y1 - y0) * k / 10)
    page.mouse.up()
    heading = page.get_by_role("heading", name=re.compile(r"Selection: [\d,]+ cells"))
    heading.first.wait_for(timeout=60_000)
    n = int(re.sub(r"\D", "", heading.first.inner_text()))
    assert 0 < n <= 20_000
    page.get_by_text("Top 25 marker genes").first.wait_for(timeout=60_000)
    assert page.get_by_text(re.compile(r"From patients SAA-00\d")).count() >= 1
    assert page.locator("[data-testid='stException']").count() == 0
