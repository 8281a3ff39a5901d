"""Real browser: on the Patient page a click on a bulk-RNA sample in the Samples lane opens
Responders vs non-responders on that sample's layer and window, with its patient as the
focus (marked in the heatmap and the course)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def _rna_trace(demo_study) -> tuple[int, int, str, int]:
    """(subplot number, index of the bulk-RNA sample trace among the scatter traces of that
    subplot, its first sample_id and that sample's day), from the view the page draws."""
    from views import patient as vp

    fig = vp.timeline(demo_study, params=vp.PatientParams("SAA-004")).fig
    for t in fig.data:
        cd = t.customdata
        if t.type == "scatter" and cd is not None and len(cd) and not isinstance(cd[0], float) \
                and cd[0][0] == "sample" and cd[0][2] == "rna":
            axis = t.yaxis
            same = [u for u in fig.data if u.type == "scatter" and u.yaxis == axis]
            return int(axis[1:] or 1), same.index(t), cd[0][1], int(t.x[0])
    raise AssertionError("no bulk-RNA sample trace")


def test_click_on_an_rna_sample_opens_compare_on_its_layer_and_window(app_server, page,
                                                                       demo_study):
    from views import compare as cv

    n, k, sample_id, day = _rna_trace(demo_study)
    window = cv.window_of_day(day)
    assert sample_id.startswith("SAA-004_") and window is not None
    page.goto(f"{app_server}/patient?patient=SAA-004", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Patient").first.wait_for(timeout=45_000)
    subplot = page.locator(f".js-plotly-plot .subplot.x{n}y{n}").first
    subplot.wait_for(timeout=60_000)
    subplot.scroll_into_view_if_needed()
    point = subplot.locator(".scatterlayer .trace").nth(k).locator("path.point").first
    point.wait_for(timeout=30_000)
    point.click(force=True)
    page.get_by_role("heading", name="Responders vs non-responders").first.wait_for(
        timeout=60_000)
    assert re.search(r"/compare", page.url)
    page.get_by_text(re.compile(rf"Focus: sample {re.escape(sample_id)}")).first.wait_for(
        timeout=60_000)
    # the link of the view says the layer the focus chose; the window it chose is the
    # widget's first option, so a short link may leave it out: the link still reopens it
    page.wait_for_function("() => location.search.includes('cmp-layer=rna')", timeout=30_000)
    assert "cmp-window=" not in page.url or f"cmp-window={window}" in page.url
    fresh = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    again = fresh.new_page()
    again.goto(page.url, wait_until="domcontentloaded")
    again.get_by_role("heading", name="Responders vs non-responders").first.wait_for(
        timeout=60_000)
    chosen = again.get_by_test_id("stSelectbox").filter(has_text="Window").first
    chosen.wait_for(timeout=60_000)
    assert chosen.get_by_role("combobox").input_value() == window
    fresh.close()
    # the heatmap marks the focus patient's row
    page.wait_for_function("() => [...document.querySelectorAll('.ytick text')]"
                           ".some(e => e.textContent.includes('▶ SAA-004'))", timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
