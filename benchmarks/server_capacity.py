"""Server CPU seconds per warm page view, for every page, from the server process's own
accounting; and the sessions per core that implies.

    .venv/bin/python benchmarks/server_capacity.py [--study DIR] [--views 3] [--think 30]

Starts `streamlit run app.py` on a copy of the study (default: the demo) on a loopback port,
with the shared server's settings that matter for CPU (no file watcher, headless). One
headless Chromium (Playwright) opens every page of app.PAGES once to warm the caches (study
loaded, every page's figures computed), then opens each page `--views` more times, each time
as a new visit (a new Streamlit session: app.py, the sidebar and the page script run, the
figures go out over the websocket). For every view the server's CPU time is read from the
kernel (`psutil.Process(pid).cpu_times()`, user + system, of the Streamlit process only)
just before the navigation and after the page has finished running (title shown, no
"Running" status, then a settle of --settle seconds so the messages are sent). Then the same
pages are opened `--views` times each from the sidebar of one session (a click: a rerun of
app.py and the page in the existing session, what a researcher clicking around costs). The
idle CPU
of the server over the same span (measured before the views) is subtracted. The browser runs
in its own processes and is not counted; nor are the server's child processes (the study-load
worker, a jobs cluster), whose CPU is printed apart.

Sessions per core: one core serves `think / cpu_per_view` sessions that each open a page
every `think` seconds (default 30 s: a researcher reading a figure before the next click).
A Streamlit process runs its sessions' scripts on one core at a time (the GIL), so this is
also the number of such sessions per app process.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def app_pages() -> list[tuple[str, str]]:
    """(title, url path) of app.PAGES, read without running app.py."""
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PAGES":
            return [(title, Path(file).stem) for _, file, title, _ in
                    ast.literal_eval(node.value) if (ROOT / file).exists()]
    raise SystemExit("app.py has no PAGES list")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(study: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    env = {**os.environ, "STUDY_DIR": str(study), "PYTHONPATH": str(ROOT)}
    env.pop("STUDIES_ROOT", None)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                        timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the Streamlit server did not start within 120 s")


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def children_cpu(proc: psutil.Process) -> float:
    total = 0.0
    for c in proc.children(recursive=True):
        try:
            total += cpu_seconds(c)
        except psutil.Error:
            continue
    return total


def _view(page, url: str, title: str, timeout_ms: int) -> list[str]:  # noqa: ANN001
    """Open `url` as a new visit and wait for the page to finish; problems seen."""
    page.goto(url)
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=timeout_ms)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden",
                                                           timeout=timeout_ms)
    n = page.locator('[data-testid="stException"]').count()
    return [f"{title}: {n} exception(s): " + _first_line(page)] if n else []


def _switch(page, title: str, timeout_ms: int) -> list[str]:  # noqa: ANN001
    """Open page `title` from the sidebar of the current session and wait for it."""
    nav = page.locator('[data-testid="stSidebarNav"]')
    link = nav.get_by_role("link", name=title, exact=True)
    more = page.locator('[data-testid="stSidebarNavViewButton"]')
    if not link.count() and more.count():     # the sidebar shows ten pages, then "View more"
        more.first.click(timeout=timeout_ms)
    link.click(timeout=timeout_ms)
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=timeout_ms)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden",
                                                           timeout=timeout_ms)
    n = page.locator('[data-testid="stException"]').count()
    return [f"{title} (sidebar): {n} exception(s): " + _first_line(page)] if n else []


def _first_line(page) -> str:  # noqa: ANN001
    text = page.locator('[data-testid="stException"]').first.inner_text()
    return " ".join(text.split())[:200]


def measure(study: Path, *, views: int, settle: float, timeout_s: float) -> dict:
    from playwright.sync_api import sync_playwright

    pages = app_pages()
    port = _free_port()
    server = start_server(study, port)
    me = psutil.Process(server.pid)
    base = f"http://127.0.0.1:{port}"
    out: dict = {"pages": {}, "errors": []}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            page.set_default_timeout(timeout_s * 1000)
            t0, c0 = time.perf_counter(), cpu_seconds(me)
            for title, slug in pages:                       # warm every cache once
                out["errors"] += _view(page, f"{base}/{slug}", title, int(timeout_s * 1000))
            out["warm_up_wall_s"] = time.perf_counter() - t0
            out["warm_up_cpu_s"] = cpu_seconds(me) - c0
            page.goto("about:blank")
            time.sleep(3)                                   # sessions close
            i0, w0 = cpu_seconds(me), time.perf_counter()
            time.sleep(10)
            idle = (cpu_seconds(me) - i0) / (time.perf_counter() - w0)
            out["idle_cpu_per_s"] = idle
            kids0 = children_cpu(me)
            for title, slug in pages:
                per = []
                for _ in range(views):
                    page.goto("about:blank")
                    time.sleep(0.5)
                    c, w = cpu_seconds(me), time.perf_counter()
                    out["errors"] += _view(page, f"{base}/{slug}", title,
                                           int(timeout_s * 1000))
                    time.sleep(settle)
                    wall = time.perf_counter() - w
                    per.append({"cpu_s": cpu_seconds(me) - c - idle * wall,
                                "wall_s": wall - settle})
                out["pages"][title] = per
            # the same pages opened from the sidebar of one session (a click, no new session)
            out["switch"] = {}
            ms = int(timeout_s * 1000)
            out["errors"] += _view(page, f"{base}/{pages[0][1]}", pages[0][0], ms)
            for k, (title, _) in enumerate(pages):
                other = pages[k - 1][0] if k else pages[1][0]
                per = []
                for _ in range(views):
                    try:
                        out["errors"] += _switch(page, other, ms)
                        time.sleep(0.5)
                        c, w = cpu_seconds(me), time.perf_counter()
                        out["errors"] += _switch(page, title, ms)
                    except Exception as exc:  # noqa: BLE001 - this view is an error; go on
                        out["errors"].append(f"{title} (sidebar): {type(exc).__name__}: "
                                             f"{str(exc).splitlines()[0][:120]}")
                        out["errors"] += _view(page, f"{base}/{pages[0][1]}", pages[0][0], ms)
                        continue
                    time.sleep(settle)
                    wall = time.perf_counter() - w
                    per.append({"cpu_s": cpu_seconds(me) - c - idle * wall,
                                "wall_s": wall - settle})
                if per:
                    out["switch"][title] = per
            out["children_cpu_s"] = children_cpu(me) - kids0
            out["rss_mb"] = me.memory_info().rss / 2**20
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", type=Path, default=ROOT / "sample_data" / "demo")
    p.add_argument("--views", type=int, default=3, help="warm views per page (3)")
    p.add_argument("--think", type=float, default=30.0,
                   help="seconds between one session's page views (30)")
    p.add_argument("--settle", type=float, default=1.0,
                   help="seconds after a page finished, counted in its view (1)")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds per view")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="cart-capacity-"))
    study = tmp / args.study.name
    shutil.copytree(args.study, study, ignore=shutil.ignore_patterns(".cache"))
    try:
        r = measure(study, views=args.views, settle=args.settle, timeout_s=args.timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"study {args.study.name}; {args.views} warm views per page; server CPU = user + "
          f"system of the Streamlit process, idle {r['idle_cpu_per_s'] * 1000:.1f} ms/s "
          "subtracted")
    print(f"warm-up (first view of every page): {r['warm_up_cpu_s']:.1f} CPU s in "
          f"{r['warm_up_wall_s']:.1f} s")
    for label, part in (("new visit (a fresh session opens the page)", "pages"),
                        ("from the sidebar (a click within a session)", "switch")):
        print(f"\n{label}")
        print(f"{'page':34s} {'CPU s/view (median)':>20s} {'min':>7s} {'max':>7s} "
              f"{'wall s':>7s}")
        medians = []
        for title, per in r[part].items():
            cpu = [v["cpu_s"] for v in per]
            med = statistics.median(cpu)
            medians.append(med)
            print(f"{title:34s} {med:20.3f} {min(cpu):7.3f} {max(cpu):7.3f} "
                  f"{statistics.median(v['wall_s'] for v in per):7.2f}")
        mean = statistics.fmean(medians)
        print(f"mean over pages: {mean:.3f} CPU s per warm page view")
        print(f"sessions per core (one view every {args.think:g} s): {args.think / mean:.0f};"
              f" if every view were the costliest page: {args.think / max(medians):.0f}")
    print(f"server child processes used {r['children_cpu_s']:.2f} CPU s during the views; "
          f"server RSS {r['rss_mb']:.0f} MB")
    print(f"errors: {len(r['errors'])}")
    for e in r["errors"][:20]:
        print(f"  {e}")
    return 0 if not r["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
