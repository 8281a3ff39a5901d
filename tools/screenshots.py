"""Full-height screenshots of every page of the app, and the layout checks behind them.

    python tools/screenshots.py [--out DIR] [--study DIR] [--width 1600]

starts `streamlit run app.py` on a free loopback port (the demo study unless --study), opens each
page of app.py's PAGES in headless Chromium (Debian's /usr/bin/chromium driven by Playwright),
waits until the page has finished running, sets the viewport height to the main block's
scrollHeight (Streamlit scrolls inside its main block, so a plain full-page shot would show one
screen), writes DIR/NN_<page>.png and stops the app. It prints one line per page with the
layout problems found (`layout_problems`): an element wider than the main panel, or a figure
legend that plotly had to put in a scroll box. tests/test_browser_layout.py runs the same checks.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "sample_data" / "demo"
DEFAULT_OUT = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
MAX_HEIGHT = 30_000   # px; Chromium refuses larger captures


def pages() -> list[tuple[str, str]]:
    """(file, title) of every page in app.py's navigation, in its order."""
    tree = ast.parse((ROOT / "app.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PAGES":
            return [(file, title) for _, file, title, _ in ast.literal_eval(node.value)]
    raise SystemExit("app.py has no PAGES list")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(study: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on 127.0.0.1 and a free port; returns the process and its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
         str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env={**os.environ, "STUDY_DIR": str(study)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"streamlit did not answer on {url} within 90 s")


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


# The element that scrolls: Streamlit's main section; its content block is the panel width.
_MAIN = "document.querySelector('[data-testid=\"stMain\"]')"
_BLOCK = "document.querySelector('[data-testid=\"stMainBlockContainer\"]')"


def settle(page: Page, *, title: str, timeout: float = 120.0) -> None:
    """Wait for the page's title, then until Streamlit stops running and the content height
    has been the same for two seconds (figures and tables are drawn after the script ends)."""
    page.get_by_role("heading", name=title).first.wait_for(timeout=timeout * 1000)
    deadline, last, stable_since = time.time() + timeout, None, time.time()
    while time.time() < deadline:
        running = page.evaluate(
            "document.querySelector('[data-testid=\"stApp\"]')"
            "?.getAttribute('data-test-script-state') !== 'notRunning'"
            " || !!document.querySelector('[data-testid=\"stSpinner\"]')")
        h = page.evaluate(f"({_MAIN} || document.body).scrollHeight")
        if running or h != last:
            last, stable_since = h, time.time()
        elif time.time() - stable_since >= 2.0:
            return
        time.sleep(0.5)


def fit_to_content(page: Page, *, width: int) -> int:
    """Set the viewport to `width` x the main block's scrollHeight; returns that height."""
    for _ in range(3):   # the layout can grow once more when the viewport changes
        h = int(page.evaluate(f"({_MAIN} || document.body).scrollHeight"))
        h = min(max(h, 600), MAX_HEIGHT)
        if page.viewport_size["height"] == h:
            break
        page.set_viewport_size({"width": width, "height": h})
        page.wait_for_timeout(700)
    return h


_PROBLEMS_JS = """() => {
  const block = __BLOCK__, main = __MAIN__;
  if (!block) return ['no main block'];
  const out = [], lim = block.getBoundingClientRect().right + 1;
  const name = el => (el.closest('[data-testid]')?.getAttribute('data-testid') || el.tagName)
      + (el.closest('.stElementContainer')?.className.match(/st-key-[^ ]+/)?.[0] || '');
  if (main && main.scrollWidth > main.clientWidth + 1)
    out.push(`main panel scrolls sideways: ${main.scrollWidth} > ${main.clientWidth} px`);
  for (const el of block.querySelectorAll(
      '.stElementContainer, .js-plotly-plot, [data-testid="stDataFrame"], table, img')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > lim)
      out.push(`${name(el)} is wider than the main panel (right edge ${Math.round(r.right)}`
               + ` > ${Math.round(lim)} px)`);
  }
  block.querySelectorAll('.js-plotly-plot').forEach((plot, i) => {
    plot.querySelectorAll('g.legend rect.scrollbar').forEach(sb => {
      const h = parseFloat(sb.getAttribute('height') || '0');
      const w = parseFloat(sb.getAttribute('width') || '0');
      if (h > 0 && w > 0) out.push(`figure ${i + 1} (${name(plot)}): legend in a scroll box`);
    });
    let p = plot.parentElement;
    while (p && p !== block) {
      const s = getComputedStyle(p);
      if (/(auto|scroll)/.test(s.overflowY) && p.scrollHeight > p.clientHeight + 1
          && plot.querySelector('g.legend')) {
        out.push(`figure ${i + 1} (${name(plot)}): inside a scroll box`);
        break;
      }
      p = p.parentElement;
    }
  });
  return out;
}""".replace("__BLOCK__", _BLOCK).replace("__MAIN__", _MAIN)


def layout_problems(page: Page) -> list[str]:
    """Elements wider than the main panel, a sideways-scrolling main panel, and figure legends
    in a scroll box (plotly's legend scrollbar, or a scrolling container around the figure)."""
    return list(page.evaluate(_PROBLEMS_JS))


def visit(page: Page, url: str, file: str, title: str, *, width: int) -> tuple[int, list[str]]:
    page.set_viewport_size({"width": width, "height": 1000})
    page.goto(f"{url}/{Path(file).stem}", wait_until="domcontentloaded")
    settle(page, title=title)
    h = fit_to_content(page, width=width)
    settle(page, title=title, timeout=30)
    return h, layout_problems(page)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help=f"folder for the PNG files (default {DEFAULT_OUT.relative_to(ROOT)})")
    ap.add_argument("--study", type=Path, default=DEMO, help="study folder (default the demo)")
    ap.add_argument("--width", type=int, default=1600, help="viewport width in px")
    ap.add_argument("--page", action="append", default=[],
                    help="only this page (file stem, e.g. kinetics); repeatable")
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: install Debian's chromium (apt-get install "
                         "chromium)")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    todo = [(i, f, t) for i, (f, t) in enumerate(pages(), 1)
            if not args.page or Path(f).stem in args.page]
    proc, url = start_app(args.study)
    n_bad = 0
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                         headless=True)
            ctx = browser.new_context(viewport={"width": args.width, "height": 1000})
            page = ctx.new_page()
            for i, file, title in todo:
                t0 = time.time()
                h, problems = visit(page, url, file, title, width=args.width)
                out = args.out / f"{i:02d}_{Path(file).stem}.png"
                page.screenshot(path=str(out), full_page=False)
                n_bad += bool(problems)
                print(f"{out}  {args.width}x{h}  {time.time() - t0:.0f} s"
                      + "".join(f"\n    {p}" for p in problems), flush=True)
            browser.close()
    finally:
        stop_app(proc)
    print(f"{len(todo)} pages, {n_bad} with layout problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
