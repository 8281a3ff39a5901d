"""Cold and warm `load_study` time and peak memory, for the demo and a large generated cohort.

    .venv/bin/python benchmarks/load_study.py                 # demo + 200 patients / 300k cells
    .venv/bin/python benchmarks/load_study.py --only-demo
    .venv/bin/python benchmarks/load_study.py --study DIR     # any folder

"Cold" is the first load in a fresh process (imports done beforehand, files possibly in the OS
page cache); "warm" is a second load in the same process. Peak RSS is the process maximum.
Targets: demo cold < 1.5 s; 200 patients / 300k cells < 10 s; peak memory < 3 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, resource, sys, time
from data_loaders import load_study
import anndata, polars  # imports are not part of the load
t0 = time.perf_counter(); s = load_study({path!r}); cold = time.perf_counter() - t0
n_cells = s.adata.n_obs if s.has("single_cell") else 0
t0 = time.perf_counter(); load_study({path!r}); warm = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"cold_s": cold, "warm_s": warm, "peak_rss_mb": rss,
                  "patients": len(s.subject_ids), "measurement_rows": s.measurements.height,
                  "cells": n_cells, "errors": len(s.report.errors)}}))
"""


def measure(path: Path) -> dict:
    """Run one cold+warm load in a fresh interpreter and return its figures."""
    out = subprocess.run([sys.executable, "-c", _CHILD.format(path=str(path))],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _report(name: str, r: dict) -> None:
    print(f"{name:34s} cold {r['cold_s']:6.2f} s   warm {r['warm_s']:6.2f} s   "
          f"peak RSS {r['peak_rss_mb']:7.0f} MB   {r['patients']} patients, "
          f"{r['measurement_rows']:,} measurement rows, {r['cells']:,} cells")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", help="measure this folder only")
    ap.add_argument("--only-demo", action="store_true")
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--cells", type=int, default=300_000)
    args = ap.parse_args()
    if args.study:
        _report(Path(args.study).name, measure(Path(args.study)))
        return
    _report("demo (5 patients, 20k cells)", measure(ROOT / "sample_data" / "demo"))
    if args.only_demo:
        return
    from sample_data.generate import generate_study

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = generate_study(Path(tmp) / "large", patients=args.patients, cells=args.cells,
                              seed=11)
        print(f"(generated {args.patients} patients / {args.cells:,} cells in "
              f"{time.perf_counter() - t0:.0f} s)")
        _report(f"{args.patients} patients, {args.cells:,} cells", measure(path))


if __name__ == "__main__":
    main()
