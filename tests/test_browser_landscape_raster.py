"""Real browser on a generated study of 1.2 million cells: the Immune landscape draws the raster
of every cell; a box-zoom and a pan dragged with the mouse come back to the server (the chart's
`plotly_relayout`, components/chart_events.py) and the page draws a new raster for that
window; zooming further gives points with hover; a double-click returns to every cell; a box
selection takes cells from every cell.
Screenshots of each step go to test-results/landscape-raster/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, start_streamlit, stop_streamlit

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = 1_200_000
SHOTS = ROOT / "test-results" / "landscape-raster"
_STATE = """() => {
  const gd = document.querySelector('.st-key-il-embedding .js-plotly-plot');
  if (!gd || !gd.layout) return null;
  const img = (gd.layout.images || [])[0];
  return {image: img ? img.source.length + ':' + img.source.slice(-64) : null,
          image_x: img ? [img.x, img.x + img.sizex] : null,
          x: gd.layout.xaxis.range.map(Number), y: gd.layout.yaxis.range.map(Number),
          points: (gd._fullData || []).reduce((n, t) => n + (t.customdata ? (t._length || 0) : 0), 0)};
}"""


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from sample_data.many_cells import write_many_cells

    folder = tmp_path_factory.mktemp("raster-browser") / "syn"
    write_many_cells(folder, cells=CELLS, genes=40, nnz=5, patients=20)
    proc, url = start_streamlit(folder)
    yield url
    stop_streamlit(proc)


def _drag(page: object, box: dict, frac: tuple[float, float, float, float]) -> None:
    x0, y0 = box["x"] + box["width"] * frac[0], box["y"] + box["height"] * frac[1]
    x1, y1 = box["x"] + box["width"] * frac[2], box["y"] + box["height"] * frac[3]
    page.mouse.move(x0, y0)          # type: ignore[attr-defined]
    page.mouse.down()                # type: ignore[attr-defined]
    for k in range(1, 11):
        page.mouse.move(x0 + (x1 - x0) * k / 10, y0 + (y1 - y0) * k / 10)  # type: ignore
    page.mouse.up()                  # type: ignore[attr-defined]


def _wait_for(page: object, test: str, timeout: float = 90_000) -> dict:
    page.wait_for_function(f"() => {{ const s = ({_STATE})(); return s && ({test}); }}",  # type: ignore
                           timeout=timeout)
    return page.evaluate(_STATE)     # type: ignore[attr-defined]


def _idle(page: object) -> None:
    """Wait until the script run the last gesture started has finished and the chart has
    settled (a drag during a rerun can land on a chart about to be replaced)."""
    page.wait_for_timeout(500)                                         # type: ignore
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden",  # type: ignore
                                                            timeout=90_000)
    page.wait_for_timeout(1_000)                                       # type: ignore


def _shot(page: object, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = SHOTS / f"{name}.png"
    page.locator(".st-key-il-embedding").first.screenshot(path=str(out))  # type: ignore
    return out


def test_box_zoom_redraws_the_raster_then_points_then_resets(big_server: str, page) -> None:
    page.goto(f"{big_server}/immune_landscape", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Immune landscape").first.wait_for(timeout=90_000)
    first = _wait_for(page, "s.image !== null", timeout=180_000)
    page.get_by_text(f"All {CELLS:,} cells drawn as a raster").first.wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Show every cell").is_disabled()
    _idle(page)
    _shot(page, "1-every-cell")
    plot = page.locator(".st-key-il-embedding .js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    plot.hover()
    plot.locator("[data-attr='dragmode'][data-val='zoom']").first.click()
    area = plot.locator(".nsewdrag").first.bounding_box()
    assert area is not None

    # 1. a box-zoom over the right part: a new raster drawn for that window
    _drag(page, area, (0.55, 0.3, 0.95, 0.7))
    zoomed = _wait_for(page, f"s.image !== null && s.image !== {first['image']!r}")
    assert zoomed["x"][1] - zoomed["x"][0] < 0.5 * (first["x"][1] - first["x"][0])
    assert zoomed["image_x"] == pytest.approx(zoomed["x"], rel=1e-6, abs=1e-6)
    page.get_by_text("in this window (of 1,200,000)").first.wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Show every cell").is_enabled()
    _idle(page)
    _shot(page, "2-zoomed-raster")

    # 2. pan (the pan tool, dragged left): the raster of the window moved right
    plot.locator("[data-attr='dragmode'][data-val='pan']").first.click()
    area = plot.locator(".nsewdrag").first.bounding_box()
    _drag(page, area, (0.6, 0.5, 0.4, 0.5))
    panned = _wait_for(page, f"s.image !== null && s.image !== {zoomed['image']!r} && "
                       f"s.image_x[0] > {zoomed['x'][0]!r}")
    shift = panned["x"][0] - zoomed["x"][0]
    assert shift > 0 and panned["x"][1] - zoomed["x"][1] == pytest.approx(shift, rel=1e-3)
    assert panned["image_x"] == pytest.approx(panned["x"], rel=1e-6, abs=1e-6)
    _idle(page)
    _shot(page, "2b-panned-raster")
    assert page.evaluate("() => document.querySelector('.st-key-il-embedding "
                         ".js-plotly-plot')._fullLayout.dragmode") == "pan"   # kept
    plot.locator("[data-attr='dragmode'][data-val='zoom']").first.click()
    state = panned

    # 3. zoom further until the window holds few enough cells: points with hover
    for _ in range(4):
        area = plot.locator(".nsewdrag").first.bounding_box()
        before = state["x"]
        _drag(page, area, (0.4, 0.4, 0.6, 0.6))
        state = _wait_for(page, f"Math.abs(s.x[0] - ({before[0]!r})) > 1e-9 && "
                          "(s.image !== null || s.points > 0)")
        _idle(page)
        state = page.evaluate(_STATE)
        if state["points"]:
            break
    assert state["image"] is None and 0 < state["points"] <= 50_000
    page.get_by_text("as points; double-click").first.wait_for(timeout=30_000)
    _idle(page)
    area = plot.locator(".nsewdrag").first.bounding_box()
    for dx in (0.5, 0.45, 0.55, 0.4, 0.6):             # hover: the cell's patient and type
        page.mouse.move(area["x"] + area["width"] * dx, area["y"] + area["height"] * 0.5)
        if plot.locator(".hoverlayer .hovertext").count():
            break
        page.wait_for_timeout(500)
    hover = plot.locator(".hoverlayer .hovertext").first
    hover.wait_for(timeout=10_000)
    assert re.search(r"P0\d\d", hover.text_content() or "")
    _shot(page, "3-points")

    # 4. double-click: autorange, back to the raster of every cell
    area = plot.locator(".nsewdrag").first.bounding_box()
    page.mouse.dblclick(area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
    reset = _wait_for(page, "s.image !== null && s.points === 0")
    assert reset["x"] == pytest.approx(first["x"], rel=1e-6)
    page.get_by_text(f"All {CELLS:,} cells drawn as a raster").first.wait_for(timeout=30_000)
    assert page.get_by_role("button", name="Show every cell").is_disabled()
    _shot(page, "4-reset")
    _idle(page)

    # 5. a box selection on the raster: cells from every cell, in data coordinates
    plot.locator("[data-attr='dragmode'][data-val='select']").first.click()
    area = plot.locator(".nsewdrag").first.bounding_box()
    _drag(page, area, (0.62, 0.4, 0.9, 0.6))
    heading = page.get_by_role("heading", name=re.compile(r"Selection: [\d,]+ cells"))
    heading.first.wait_for(timeout=90_000)
    n = int(re.sub(r"\D", "", heading.first.inner_text()))
    assert 10_000 < n < CELLS / 2
    assert page.evaluate(_STATE)["image"] is not None        # a selection does not zoom
    assert page.locator("[data-testid='stException']").count() == 0
