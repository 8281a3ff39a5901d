"""Load test of the shared-server recipe: concurrent browser sessions through nginx.

    .venv/bin/python benchmarks/load_test.py [--sessions 10] [--processes 1]

Starts the deploy/ recipe on loopback ports (deploy/local.py: TLS, basic auth, cookie-sticky
nginx in front of `streamlit run app.py` with STUDIES_ROOT holding a copy of the demo study,
de-identified mode on), then drives N browser contexts of one headless Chromium at once, each
visiting every page of app.PAGES through the sidebar navigation (one Streamlit session per
context). Prints:

- errors: pages that showed a Streamlit exception, a script error or never rendered;
- page latency: from the navigation click (or first load) to the page's title being shown,
  median and p95 over all visits;
- RSS of the app process(es): after one warm session, after all N sessions, and the growth
  per extra session ((RSS_N - RSS_1) / (N - 1)); target under 60 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from deploy import local

ROOT = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    from playwright.async_api import Browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def _pages() -> list[tuple[str, str]]:
    import ast

    tree = ast.parse((ROOT / "app.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PAGES":
            return [(title, Path(file).stem) for _, file, title, _ in
                    ast.literal_eval(node.value) if (ROOT / file).exists()]
    raise SystemExit("app.py has no PAGES list")


def _rss_mb(site: local.Site) -> float:
    total = 0
    for app in site.apps.values():
        proc = psutil.Process(app.proc.pid)
        total += proc.memory_info().rss + sum(c.memory_info().rss
                                              for c in proc.children(recursive=True))
    return total / 2**20


async def _session(browser: Browser, site: local.Site, pages: list[tuple[str, str]], index: int,
                   latencies: list[float], errors: list[str], timeout_ms: int) -> None:
    context = await browser.new_context(
        ignore_https_errors=True, viewport={"width": 1400, "height": 900},
        http_credentials={"username": local.USER, "password": local.PASSWORD})
    context.set_default_timeout(timeout_ms)
    context.set_default_navigation_timeout(timeout_ms)
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"session {index}: script error {exc}"))
    for i, (title, _slug) in enumerate(pages):
        t0 = time.perf_counter()
        try:
            if i == 0:
                await page.goto(site.url("/"))
            else:
                nav = page.locator('[data-testid="stSidebarNav"]')
                await nav.get_by_role("link", name=title, exact=True).click(timeout=timeout_ms)
            await page.get_by_role("heading", name=title, exact=True).first.wait_for(
                timeout=timeout_ms)
            # wait until the run is over (no "Running..." status widget)
            await page.locator('[data-testid="stStatusWidget"]').wait_for(
                state="hidden", timeout=timeout_ms)
            latencies.append(time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - a timeout is an error of this visit; go on
            errors.append(f"session {index}: {title}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:160]}")
            continue
        n_exc = await page.locator('[data-testid="stException"]').count()
        if n_exc:
            errors.append(f"session {index}: {title}: {n_exc} exception(s) on the page")
    return context


async def run(sessions: int, processes: int, timeout_ms: int) -> dict:
    from playwright.async_api import async_playwright

    pages = _pages()
    tmp = Path(tempfile.mkdtemp(prefix="cart-load-"))
    studies = tmp / "studies"
    shutil.copytree(ROOT / "sample_data" / "demo", studies / "demo")
    try:
        with local.running_site(tmp, studies, processes=processes) as site:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                rss_start = _rss_mb(site)
                # one warm session: the study is loaded and every page computed once
                warm_lat: list[float] = []
                warm_err: list[str] = []
                first = await _session(browser, site, pages, 0, warm_lat, warm_err,
                                       timeout_ms)
                await asyncio.sleep(1)
                rss_one = _rss_mb(site)
                latencies: list[float] = []
                errors: list[str] = list(warm_err)
                t0 = time.perf_counter()
                contexts = await asyncio.gather(*[
                    _session(browser, site, pages, i, latencies, errors, timeout_ms)
                    for i in range(1, sessions)])
                wall = time.perf_counter() - t0
                await asyncio.sleep(1)
                rss_all = _rss_mb(site)
                for c in [first, *contexts]:
                    await c.close()
                await browser.close()
            views = sum(len(a.views()) for a in site.apps.values())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lat = sorted(latencies)
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] if lat else float("nan")
    return {
        "sessions": sessions, "processes": processes, "pages": len(pages),
        "visits": len(lat), "expected_visits": (sessions - 1) * len(pages),
        "errors": errors, "access_log_views": views,
        "latency_median_s": statistics.median(lat) if lat else float("nan"),
        "latency_p95_s": p95, "latency_max_s": lat[-1] if lat else float("nan"),
        "warm_session_latency_median_s": statistics.median(warm_lat) if warm_lat else None,
        "wall_s": wall, "rss_start_mb": rss_start, "rss_one_session_mb": rss_one,
        "rss_all_sessions_mb": rss_all,
        "rss_growth_per_extra_session_mb": (rss_all - rss_one) / max(1, sessions - 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--processes", type=int, default=1, help="app processes behind nginx")
    p.add_argument("--timeout", type=float, default=120, help="seconds per page visit")
    args = p.parse_args(argv)
    missing = local.tools_missing()
    if missing:
        print(f"error: install {', '.join(missing)}", file=sys.stderr)
        return 1
    r = asyncio.run(run(args.sessions, args.processes, int(args.timeout * 1000)))
    print(f"sessions {r['sessions']} (1 warm + {r['sessions'] - 1} concurrent), "
          f"app processes {r['processes']}, pages {r['pages']}")
    print(f"visits {r['visits']}/{r['expected_visits']} in {r['wall_s']:.1f} s; "
          f"access-log page views {r['access_log_views']}")
    print(f"page latency (concurrent sessions): median {r['latency_median_s']:.2f} s, "
          f"p95 {r['latency_p95_s']:.2f} s, max {r['latency_max_s']:.2f} s; "
          f"warm single session median {r['warm_session_latency_median_s']:.2f} s")
    print(f"RSS: start {r['rss_start_mb']:.0f} MB, one session {r['rss_one_session_mb']:.0f} MB,"
          f" {r['sessions']} sessions {r['rss_all_sessions_mb']:.0f} MB; growth per extra "
          f"session {r['rss_growth_per_extra_session_mb']:.1f} MB (target < 60)")
    print(f"errors: {len(r['errors'])}")
    for e in r["errors"][:20]:
        print(f"  {e}")
    return 0 if not r["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
