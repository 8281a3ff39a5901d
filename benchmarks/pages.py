"""Server-side time of every page (AppTest), cold and on rerun, plot payload and peak memory.

    .venv/bin/python benchmarks/pages.py --study DIR [--pages overview,kinetics] [--json OUT]

One process per study. The study is loaded first (its time is reported as `load_s`); then for
each page of app.PAGES whose file exists: the analysis caches (`session.cached_view`,
st.cache_data, a study's clonotypes) are cleared and the page is opened
("cold": everything but the loaded Study is computed), then
the same page is run again with nothing changed ("rerun": what a widget click costs at least).
Payload is the summed size of the plotly figure JSON the page sends to the browser. Peak RSS is
the process maximum after all pages. Streamlit's own time to send messages to a browser and the
browser's drawing time are not included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

import argparse
import ast
import json
import os
import resource
import time
from pathlib import Path

from _checkout import test_helper

ROOT = Path(__file__).resolve().parent.parent


def real_navigation() -> None:
    """AppTest re-runs app.py (sidebar + st.navigation) on every run, like a server does
    (tools/apptest.py explains why this is needed in streamlit 1.67)."""
    test_helper("tools/apptest.py").real_navigation()


def app_pages() -> list[tuple[str, str, str, str]]:
    """app.PAGES, read from app.py without running it (importing app.py starts the app)."""
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PAGES"
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError("app.py has no PAGES list")


def _payload(at: AppTest) -> tuple[int, int]:
    charts = at.get("plotly_chart")
    return len(charts), sum(len(c.proto.spec) for c in charts)


def clear_analysis_caches() -> None:
    import streamlit as st

    from components import session

    # cold pages: empty the app's own cache of view results too
    session.clear_views()
    from analysis import repertoire

    if hasattr(repertoire, "study_clonotypes"):   # a study's clonotypes, made once
        repertoire.study_clonotypes.cache_clear()
    st.cache_data.clear()


def measure_pages(study: Path, pages: list[str] | None = None, *, timeout: float = 900
                  ) -> dict:
    """Load `study`, then time each existing page cold and on rerun; figures as a dict."""
    os.environ["STUDY_DIR"] = str(study)
    os.environ.pop("STUDIES_ROOT", None)
    real_navigation()
    from streamlit.testing.v1 import AppTest

    t0 = time.perf_counter()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()   # loads the study (cached for the process) and shows the default page
    first = time.perf_counter() - t0
    rows = []
    for _section, file, title, _icon in app_pages():
        stem = Path(file).stem
        if not (ROOT / file).exists() or (pages and stem not in pages):
            continue
        clear_analysis_caches()
        t = time.perf_counter()
        at.switch_page(file).run()
        cold = time.perf_counter() - t
        error = str(at.exception[0].message)[:200] if at.exception else ""
        n_fig, size = _payload(at)
        t = time.perf_counter()
        at.run()
        rerun = time.perf_counter() - t
        error = error or (str(at.exception[0].message)[:200] if at.exception else "")
        rows.append({"page": stem, "title": title, "cold_s": round(cold, 3),
                     "rerun_s": round(rerun, 3), "figures": n_fig, "payload_kb":
                     round(size / 1024, 1), "error": error})
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"study": str(study), "first_run_s": round(first, 3), "pages": rows,
            "peak_rss_mb": round(rss)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", default=str(ROOT / "sample_data" / "demo"))
    ap.add_argument("--pages", default="", help="comma-separated page file stems (default all)")
    ap.add_argument("--json", help="write the figures to this file as JSON")
    args = ap.parse_args()
    res = measure_pages(Path(args.study), [p for p in args.pages.split(",") if p] or None)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    print(f"{res['study']}: first run {res['first_run_s']:.2f} s, peak RSS "
          f"{res['peak_rss_mb']:,} MB")
    for r in res["pages"]:
        print(f"  {r['title']:32s} cold {r['cold_s']:7.2f} s  rerun {r['rerun_s']:6.2f} s  "
              f"{r['figures']:2d} fig {r['payload_kb']:9.1f} kB  {r['error']}")


if __name__ == "__main__":
    main()
