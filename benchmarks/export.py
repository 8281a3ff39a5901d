"""Figure export and slide-deck timings with one long-lived kaleido export server.

    .venv/bin/python benchmarks/export.py                    # the demo study
    .venv/bin/python benchmarks/export.py --study DIR --repeat 7

Measures: server start plus first export (cold); warm PNG/SVG/PDF export of one figure (median
of --repeat; a simple line figure and every standard figure of the study); a large WebGL
scatter (100k points) in each format; and a 20-slide deck (standard figures repeated to 20)
as PPTX and PDF, figures already built, server warm.
Targets: warm export of one figure < 0.5 s; 20-slide deck < 20 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from _timing import median_time

from components import deck, export
from data_loaders import load_study

ROOT = Path(__file__).resolve().parent.parent


def _median(fn: Callable[[], object], repeat: int) -> float:
    return median_time(fn, repeat=repeat)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", default=str(ROOT / "sample_data" / "demo"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--slides", type=int, default=20)
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores)")

    line = go.Figure([go.Scatter(x=list(range(0, 90, 7)), y=np.linspace(0.1, 3, 13) ** 1.5,
                                 mode="lines+markers", name=f"P{i}") for i in range(5)],
                     layout={"template": "cart", "title": "ANC", "xaxis_title": "Day"})
    t0 = time.perf_counter()
    export.start_export_server()
    export.export_figure(line, "png")
    print(f"cold: server start + first PNG          {time.perf_counter() - t0:6.2f} s")

    prov = export.Provenance(study_id="bench", content_hash="0" * 64)
    for fmt in export.FIGURE_FORMATS:
        s = _median(lambda f=fmt: export.export_figure(line, f, provenance=prov), args.repeat)
        print(f"warm: line figure {fmt.upper():3s} (5 traces)           {s:6.2f} s")

    study = load_study(args.study)
    slides = deck.standard_slides(study, on_skip=lambda m: print(f"  note: {m}"))
    warm = []
    for sl in slides:
        s = _median(lambda f=sl.fig: export.export_figure(f, "png", provenance=prov),
                    args.repeat)
        warm.append(s)
        print(f"warm: PNG {sl.key:28s}           {s:6.2f} s")
    if warm:
        print(f"warm: PNG over {len(warm)} standard figures: median {statistics.median(warm):.2f}"
              f" s, max {max(warm):.2f} s")

    rng = np.random.default_rng(0)
    n = 100_000
    big = go.Figure(go.Scattergl(x=rng.normal(size=n), y=rng.normal(size=n), mode="markers",
                                 marker={"size": 3, "color": rng.normal(size=n),
                                         "showscale": True}),
                    layout={"template": "cart", "title": "100k cells"})
    for fmt in export.FIGURE_FORMATS:
        t0 = time.perf_counter()
        data = export.export_figure(big, fmt, provenance=prov)
        print(f"large WebGL {fmt.upper():3s} (100k points)            "
              f"{time.perf_counter() - t0:6.2f} s  {len(data) / 1e6:5.1f} MB")

    if not slides:
        print("no standard figures: deck timings skipped")
        return
    many = [slides[i % len(slides)] for i in range(args.slides)]
    title = deck.title_slide(study)
    sprov = export.Provenance.of(study)
    for fmt in ("pptx", "pdf", "zip"):
        t0 = time.perf_counter()
        data = deck.build_deck(many, fmt, title=title, provenance=sprov)
        print(f"deck: {len(many)} figure slides + title, {fmt:4s}        "
              f"{time.perf_counter() - t0:6.2f} s  {len(data) / 1e6:5.1f} MB")
    export.stop_export_server()
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
