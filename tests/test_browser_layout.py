"""Real browser, every page at 1600 px: sized to its full content (Streamlit scrolls inside its
main block), no element is wider than the main panel and no figure legend sits in a scroll box
(plotly's legend scrollbar hides entries: HSCT, progression and death went unexplained on the
swimmer plot that way). The checks are those of `make screenshots` (tools/screenshots.py)."""

from __future__ import annotations

import pytest

from tools import screenshots as shots

pytestmark = pytest.mark.browser

PAGES = shots.pages()


@pytest.fixture
def wide_page(browser):
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()


@pytest.mark.parametrize(("file", "title"), PAGES, ids=[p[0] for p in PAGES])
def test_page_layout_at_full_height(app_server, wide_page, file, title):
    height, problems = shots.visit(wide_page, app_server, file, title, width=1600)
    assert height >= 600
    assert wide_page.viewport_size["height"] == height
    assert problems == [], f"{file}: " + "; ".join(problems)


def test_layout_check_sees_a_legend_in_a_scroll_box_and_a_wide_element(app_server, wide_page):
    """The checks can fail: a page with a too-wide element and a scrolled legend is caught."""
    wide_page.goto(f"{app_server}/data_quality", wait_until="domcontentloaded")
    shots.settle(wide_page, title="Data & quality")
    wide_page.evaluate("""() => {
      const block = document.querySelector('[data-testid="stMainBlockContainer"]');
      const d = document.createElement('div');
      d.className = 'stElementContainer'; d.style.width = '5000px'; d.textContent = 'x';
      block.appendChild(d);
      const svg = block.querySelector('.js-plotly-plot .main-svg')
        || block.appendChild(document.createElementNS('http://www.w3.org/2000/svg', 'svg'));
      const host = svg.closest('.js-plotly-plot') || block;
      const g = document.createElementNS('http://www.w3.org/2000/svg', 'g');
      g.setAttribute('class', 'legend');
      const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      r.setAttribute('class', 'scrollbar'); r.setAttribute('width', '6');
      r.setAttribute('height', '40'); g.appendChild(r); svg.appendChild(g);
      host.classList.add('js-plotly-plot');
    }""")
    problems = shots.layout_problems(wide_page)
    assert any("wider than the main panel" in p for p in problems), problems
    assert any("legend in a scroll box" in p for p in problems), problems
