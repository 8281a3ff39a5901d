"""Immune landscape at scale: server-side page run (AppTest) cold and on rerun, the embedding's
plot payload, peak RSS, and the time until the embedding is visible in headless Chromium.

    .venv/bin/python cli.py sample --out /tmp/c300k --patients 200 --cells 300000   # once
    .venv/bin/python benchmarks/landscape.py --study /tmp/c300k [--no-browser]

Each measurement runs in a fresh process so cold means cold (imports, study load, obs read).
Targets (issue "Immune landscape"): cold < 3 s, rerun < 0.5 s, payload < 5 MB, RSS < 4 GB,
visible in the browser < 8 s after navigation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_APPTEST = r"""
import json, os, resource, sys, time
os.environ["STUDY_DIR"] = {study!r}
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({app!r}, default_timeout=600)
at.run()                                   # sidebar + default page (loads the study)
t = time.perf_counter()
at.switch_page("pages/immune_landscape.py").run()
cold = time.perf_counter() - t
assert not at.exception, [e.value for e in at.exception]
reruns = []
for _ in range(5):
    t = time.perf_counter(); at.run(); reruns.append(time.perf_counter() - t)
t = time.perf_counter()
at.selectbox(key="il-color").set_value("Gene").run()
gene = time.perf_counter() - t
t = time.perf_counter(); at.run(); gene_rerun = time.perf_counter() - t
caption = next(c.value for c in at.caption if c.value.startswith("Showing"))
import numpy as np
at.session_state["il-selection"] = ("Single-cell RNA", np.arange(0, 300_000, 60))
t = time.perf_counter(); at.run(); sel_first = time.perf_counter() - t
assert not at.exception, [e.value for e in at.exception]
at.session_state["il-selection"] = ("Single-cell RNA", np.arange(7, 300_000, 60))
t = time.perf_counter(); at.run(); sel_next = time.perf_counter() - t
print(json.dumps({{"sel_first_s": sel_first, "sel_next_s": sel_next, "cold_s": cold, "rerun_s": sorted(reruns)[2], "gene_first_s": gene,
                  "gene_rerun_s": gene_rerun, "caption": caption,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

_PAYLOAD = r"""
import json, sys, time
import plotly.io as pio
from data_loaders import load_study
from analysis import embedding as emb
from components.figures.landscape import embedding_scatter
study = load_study({study!r})
t = time.perf_counter()
basis = emb.available_bases(study)[0]
drawn = emb.drawn_cells(study, basis=basis, max_points=150_000)
fig = embedding_scatter(drawn.frame, color="cell_type")
spec = pio.to_json(fig, validate=False)
print(json.dumps({{"points": drawn.frame.height, "cells": drawn.n_total,
                  "payload_mb": len(spec.encode()) / 1e6, "build_s": time.perf_counter() - t}}))
"""


def _python(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _browser(study: Path) -> float:
    from _checkout import test_helper
    from playwright.sync_api import sync_playwright

    conftest = test_helper("tests/conftest.py")

    proc, url = conftest.start_streamlit(study)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=conftest.CHROMIUM,
                                        args=conftest.CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # warm the server once (study load, obs read) as a returning user would find it
            page.goto(f"{url}/immune_landscape", wait_until="domcontentloaded")
            page.locator(".js-plotly-plot .scatterlayer, .js-plotly-plot canvas").first \
                .wait_for(timeout=180_000)
            page.goto("about:blank")
            t = time.perf_counter()
            page.goto(f"{url}/immune_landscape", wait_until="domcontentloaded")
            page.locator(".js-plotly-plot .legendtext").first.wait_for(timeout=180_000)
            page.locator(".js-plotly-plot canvas").first.wait_for(state="attached",
                                                                   timeout=180_000)
            visible = time.perf_counter() - t
            browser.close()
        return visible
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", default="/tmp/c300k")
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    study = Path(args.study).resolve()
    fmt = {"root": str(ROOT), "study": str(study), "app": str(ROOT / "app.py")}
    print(f"study {study}; load average {os.getloadavg()[0]:.1f}")
    pay = _python(_PAYLOAD.format(**fmt))
    print(f"plot payload: {pay['payload_mb']:.2f} MB for {pay['points']:,} of "
          f"{pay['cells']:,} cells (built in {pay['build_s']:.2f} s)")
    res = _python(_APPTEST.format(**fmt))
    print(f"page server-side (AppTest): cold {res['cold_s']:.2f} s, rerun {res['rerun_s']:.3f} s "
          f"(median of 5); colour by gene: first {res['gene_first_s']:.2f} s, rerun "
          f"{res['gene_rerun_s']:.3f} s")
    print(f"  {res['caption']}")
    print(f"selection of 5,000 cells -> summary + top-25 markers over all cells: first "
          f"{res['sel_first_s']:.2f} s (reads the gene store), next {res['sel_next_s']:.2f} s")
    print(f"peak RSS of the AppTest process: {res['peak_rss_mb']:.0f} MB")
    if not args.no_browser:
        print(f"headless Chromium: embedding visible {_browser(study):.2f} s after navigation")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
