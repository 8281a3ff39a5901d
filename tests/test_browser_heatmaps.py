"""Real browser: a click on a patient's cell of a per-patient heatmap (Blood counts' responses
per assessment, the Cytokines & safety page's ASTCT grades from vitals) opens the Patient page
on that patient, as a click on the per-patient curves and swimmer lanes does. A heatmap cell
cannot be selected in plotly; components/clickable.py gives the cells click targets."""

from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.browser

# the pixel centre of a heatmap cell (row, column), from the figure's own axes
_CELL = """(el, [row, col]) => {
    const gd = el.closest('.js-plotly-plot');
    const heat = gd._fullData.find(t => t.type === 'heatmap');
    const xa = gd._fullLayout[(heat.xaxis || 'x').replace('x', 'xaxis')];
    const ya = gd._fullLayout[(heat.yaxis || 'y').replace('y', 'yaxis')];
    const box = gd.getBoundingClientRect();
    return {x: box.left + xa._offset + xa.d2p(heat.x[col]),
            y: box.top + ya._offset + ya.d2p(heat.y[row]),
            patient: heat.y[row]};
}"""


def _settle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    time.sleep(1.0)


@pytest.mark.parametrize(("path", "title"), [
    ("blood_counts", "Blood counts"),
    ("safety", "Cytokines & safety"),
], ids=["responses per assessment", "ASTCT grades"])
def test_click_on_a_heatmap_cell_opens_its_patient(app_server, page, demo_study, path, title):
    page.goto(f"{app_server}/{path}", wait_until="domcontentloaded")
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=45_000)
    figure = page.locator(".js-plotly-plot").filter(has=page.locator(".hm image")).first
    figure.wait_for(timeout=60_000)
    _settle(page)
    figure.scroll_into_view_if_needed()
    time.sleep(0.5)
    cell = figure.locator(".main-svg").first.evaluate(_CELL, [2, 0])
    assert cell["patient"] in demo_study.subject_ids
    page.mouse.move(cell["x"], cell["y"])
    time.sleep(0.3)
    # the hover is the heatmap's own text (the target repeats it)
    hover = page.locator(".hoverlayer .hovertext").first
    hover.wait_for(timeout=10_000)
    assert cell["patient"] in hover.text_content()
    page.mouse.click(cell["x"], cell["y"])
    page.get_by_role("heading", name="Patient", exact=True).first.wait_for(timeout=60_000)
    page.wait_for_function("() => location.pathname.endsWith('/patient')", timeout=45_000)
    _settle(page)
    # the address bar takes the patient when the page's last run writes its options (it can
    # follow the first drawing by a few seconds): a link copied then reopens this patient
    page.wait_for_function("() => /[?&]patient=/.test(location.search)", timeout=30_000)
    opened = re.search(r"[?&]patient=([^&]+)", page.url).group(1)
    assert opened == cell["patient"]
    assert page.get_by_role("combobox", name="Patient", exact=True).input_value() == opened
    assert page.locator("[data-testid='stException']").count() == 0
