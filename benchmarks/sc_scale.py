"""Single-cell scale: a generated study of 10 million cells x 2,000 genes converted to the
chunked store, the Immune landscape's embedding drawn as a raster (cold, colour by a gene,
peak memory), and a lasso of 5,000 cells -> top-25 marker genes over 1 million cells.

    .venv/bin/python benchmarks/sc_scale.py --out /tmp/sc_scale            # both parts
    .venv/bin/python benchmarks/sc_scale.py --out /tmp/sc_scale --only markers

Studies are generated under --out once (sample_data/many_cells.py; never commit them) and
converted with `python cli.py convert` (timed, in its own process). Each measured step runs in
a fresh process, so "cold" includes imports, loading the study and any compilation on first
use, and the peak RSS is that process's own. The study's .cache is emptied before the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_RUN = """
import json, resource, sys, time
t_start = time.perf_counter()
STUDY = {study!r}
import os
out = {{"load_average_start": os.getloadavg()[0]}}
{body}
out["load_average_end"] = os.getloadavg()[0]
out["total_s"] = time.perf_counter() - t_start
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out, default=str))
"""

LANDSCAPE = """
from data_loaders import load_study
from views import landscape as lv, landscape_raster as lr
t0, c0 = time.perf_counter(), time.process_time()
s = load_study(STUDY)
out["store"] = type(s.single_cell).__name__
out["load_s"] = time.perf_counter() - t0
p = lv.LandscapeParams(lv.RNA, lv.bases(s)[0])
t1 = time.perf_counter()
spec = lr.raster(s, params=lr.RasterParams(p))
out["raster_s"] = time.perf_counter() - t1
out["landscape_cold_s"] = time.perf_counter() - t0
out["landscape_cold_cpu_s"] = time.process_time() - c0
out["cells"] = int(spec.data.get_column("cells_in_window").sum())
out["png_kb"] = len(spec.fig.layout.images[0].source) / 1024
t2 = time.perf_counter()
lr.raster(s, params=lr.RasterParams(p))
out["same_view_again_s"] = time.perf_counter() - t2
for gene in ("G0005", "G1500"):
    t3, c3 = time.perf_counter(), time.process_time()
    g = lr.raster(s, params=lr.RasterParams(lv.LandscapeParams(lv.RNA, p.basis, "Gene", gene)))
    out[f"colour_by_{gene}_s"] = time.perf_counter() - t3
    out[f"colour_by_{gene}_cpu_s"] = time.process_time() - c3
t4 = time.perf_counter()
z = lr.raster(s, params=lr.zoomed(lr.RasterParams(p), x_range=(9.5, 10.5), y_range=(-0.3, 0.3)))
out["zoom_to_points_s"] = time.perf_counter() - t4
out["zoom_points"] = z.data.height
"""

MARKERS = """
import numpy as np
from data_loaders import load_study
from views import landscape as lv, landscape_raster as lr
s = load_study(STUDY)
out["store"] = type(s.single_cell).__name__
p = lr.RasterParams(lv.LandscapeParams(lv.RNA, lv.bases(s)[0]))
def lasso(cx, cy, r):
    a = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    return {"selection": {"lasso": [{"x": list(cx + r * np.cos(a)), "y": list(cy + r * np.sin(a))}],
                           "box": []}}
for k, (cx, cy) in enumerate([(10.0, 0.0), (-10.0, 0.0)]):
    t0, c0 = time.perf_counter(), time.process_time()
    cells = lr.selected_in(s, params=p, event=lasso(cx, cy, 0.45))
    t1 = time.perf_counter()
    spec = lv.selection_markers(s, params=lv.SelectionParams(lv.RNA, cells))
    t2 = time.perf_counter()
    name = "first" if k == 0 else "after"
    out[f"{name}_cells"] = len(cells)
    out[f"{name}_lasso_s"] = t1 - t0
    out[f"{name}_markers_s"] = t2 - t1
    out[f"{name}_total_s"] = t2 - t0
    out[f"{name}_cpu_s"] = time.process_time() - c0
    out[f"{name}_top3"] = spec.data.get_column("gene").head(3).to_list()
"""


def _step(study: Path, body: str) -> dict:
    code = _RUN.format(study=str(study), body=body)
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=False)
    if got.returncode:
        raise SystemExit(got.stderr[-3000:])
    return json.loads(got.stdout.strip().splitlines()[-1])


def _prepare(out: Path, *, cells: int, genes: int, nnz: int) -> Path:
    from sample_data.many_cells import write_many_cells

    study = out / f"cells_{cells}_{genes}_{nnz}"
    if not (study / "single_cell.h5ad").is_file():
        t0 = time.perf_counter()
        path = write_many_cells(study, cells=cells, genes=genes, nnz=nnz)
        print(f"generated {path} ({path.stat().st_size / 1e9:.2f} GB) in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    shutil.rmtree(study / ".cache", ignore_errors=True)
    if not (study / "single_cell.store.zarr").is_dir():
        code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                f"r = subprocess.run([sys.executable, 'cli.py', 'convert', '--study', "
                f"{str(study)!r}], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
                "print(r.returncode, time.perf_counter() - t, "
                "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
        got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=ROOT, check=True).stdout.split()
        if got[0] != "0":
            raise SystemExit(f"cli.py convert failed on {study}")
        size = sum(p.stat().st_size for p in (study / "single_cell.store.zarr").rglob("*")
                   if p.is_file())
        print(f"cli.py convert --study {study}: {float(got[1]):.0f} s, peak RSS "
              f"{float(got[2]):.0f} MB, store {size / 1e9:.2f} GB", flush=True)
    return study


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/sc_scale"))
    ap.add_argument("--only", choices=["landscape", "markers"], default=None)
    ap.add_argument("--cells", type=int, default=10_000_000)
    ap.add_argument("--nnz", type=int, default=20, help="detected genes per cell (10M study)")
    ap.add_argument("--marker-cells", type=int, default=1_000_000)
    ap.add_argument("--marker-nnz", type=int, default=60)
    ap.add_argument("--with-h5ad", action="store_true",
                    help="also run the markers step on the .h5ad itself (no converted store: "
                    "the gene-column cache is built on first use), side by side")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "landscape"):
        study = _prepare(args.out, cells=args.cells, genes=2000, nnz=args.nnz)
        print(f"landscape, {args.cells:,} cells x 2,000 genes ({args.nnz} per cell):",
              json.dumps(_step(study, LANDSCAPE)), flush=True)
    if args.only in (None, "markers"):
        study = _prepare(args.out, cells=args.marker_cells, genes=2000, nnz=args.marker_nnz)
        print(f"markers, {args.marker_cells:,} cells x 2,000 genes ({args.marker_nnz} per "
              "cell):", json.dumps(_step(study, MARKERS)), flush=True)
        if args.with_h5ad:
            plain = study.parent / f"{study.name}_h5ad_only"
            plain.mkdir(exist_ok=True)
            for name in ("single_cell.h5ad", "study.toml"):
                if not (plain / name).exists():
                    os.link(study / name, plain / name)   # a hard link: inside the folder
            shutil.rmtree(plain / ".cache", ignore_errors=True)
            print("markers, the same .h5ad without the converted store:",
                  json.dumps(_step(plain, MARKERS)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
