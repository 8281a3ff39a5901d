"""Real browser: on the Patient page a click on a single-cell sample in the Samples lane opens
the Immune landscape with that sample's patient and day as the shared focus."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


def _single_cell_trace(demo_study) -> tuple[int, int, str]:
    """(subplot number, index of the single-cell sample trace among the scatter traces of that
    subplot, its first sample_id), from the same view the page draws."""
    from views import patient as vp

    fig = vp.timeline(demo_study, params=vp.PatientParams("SAA-001")).fig
    for t in fig.data:
        cd = t.customdata
        if t.type == "scatter" and cd is not None and len(cd) and not isinstance(cd[0], float) \
                and cd[0][0] == "sample" \
                and cd[0][2] == "scrna":
            axis = t.yaxis
            same = [u for u in fig.data if u.type == "scatter" and u.yaxis == axis]
            n = int(axis[1:] or 1)
            return n, same.index(t), cd[0][1]
    raise AssertionError("no single-cell sample trace")


def test_click_on_a_sample_opens_the_focused_single_cell_view(app_server, page, demo_study):
    n, k, sample_id = _single_cell_trace(demo_study)
    page.goto(f"{app_server}/patient?patient=SAA-001", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Patient").first.wait_for(timeout=45_000)
    subplot = page.locator(f".js-plotly-plot .subplot.x{n}y{n}").first
    subplot.wait_for(timeout=60_000)
    subplot.scroll_into_view_if_needed()
    point = subplot.locator(".scatterlayer .trace").nth(k).locator("path.point").first
    point.wait_for(timeout=30_000)
    point.click(force=True)
    page.get_by_role("heading", name="Immune landscape").first.wait_for(timeout=60_000)
    assert re.search(r"/immune_landscape", page.url)
    # the embedding is coloured by the shared focus (legend "in focus" / "other"): this
    # sample's patient and day
    page.wait_for_function("() => [...document.querySelectorAll('.legendtext')]"
                           ".some(e => e.textContent === 'in focus')", timeout=60_000)
    assert sample_id.startswith("SAA-001_")
    assert page.locator("[data-testid='stException']").count() == 0
