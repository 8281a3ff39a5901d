"""Marker genes of every cell type against all other cells over a whole converted store (the
Immune landscape's "Marker genes of every cell type" job, views/markers.py), then the same
table read back by a second process, as a second session or app process gets it.

    .venv/bin/python benchmarks/group_markers.py \
        [--study /tmp/sc_scale/cells_1000000_2000_60] [--out /tmp/group_markers]
        [--dask --workers 1 2]

--study is a study benchmarks/sc_scale.py generated and converted; it is linked (hard links,
nothing copied) into --out so its job cache there is this benchmark's own. Each step runs in
a fresh process: "job" loads the study and runs the job (CART_JOBS=inline: in that process;
--dask: on a local cluster of each --workers count, whose start-up and warm-up are timed
apart; the job's pass over the store is split into pieces of views.markers.PIECE_CELLS
cells summed on the workers), "second session" loads the study and reads the stored table
through the view. Peak RSS is each process's own (with --dask the workers' memory is not in
it). The job cache is emptied before each job run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_RUN = """
import json, os, resource, time
out = {{"load_average_start": os.getloadavg()[0]}}
t0 = time.perf_counter()
from data_loaders import load_study
import jobs
from views import markers as mk
s = load_study({study!r})
out["load_s"] = time.perf_counter() - t0
params = mk.GroupMarkersParams()
{body}
out["load_average_end"] = os.getloadavg()[0]
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""

JOB = """
from jobs.cluster import client
if os.environ.get("CART_JOBS") != "inline":
    t = time.perf_counter()
    c = client()
    c.wait_for_workers(int(os.environ["CART_JOB_WORKERS"]), timeout=300)
    c.run(lambda: __import__("views.markers") and None)     # imports on every worker
    out["cluster_start_s"] = time.perf_counter() - t
t1 = time.perf_counter()
h = jobs.submit(mk.run_group_markers, s, params=params, progress=jobs.progress, study=s)
table = h.result()
out["job_s"] = time.perf_counter() - t1
out["cells"] = int(s.single_cell.n_obs)
out["groups"] = table.get_column("group").n_unique()
out["rows"] = table.height
out["top_genes"] = {g: table.filter(table["group"] == g)["gene"].head(3).to_list()
                    for g in table.get_column("group").unique().sort().head(3)}
"""

SECOND = """
t1 = time.perf_counter()
spec = mk.group_markers(s, params=params)
out["stored_table_s"] = time.perf_counter() - t1
out["rows"] = spec.data.height
"""


def _step(study: Path, body: str, *, env: dict[str, str]) -> dict:
    got = subprocess.run([sys.executable, "-c", _RUN.format(study=str(study), body=body)],
                         capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if got.returncode:
        raise SystemExit(got.stderr[-3000:])
    return json.loads(got.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", type=Path, default=Path("/tmp/sc_scale/cells_1000000_2000_60"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/group_markers"))
    ap.add_argument("--dask", action="store_true", help="run the job on a local cluster")
    ap.add_argument("--workers", type=int, nargs="+", default=[1],
                    help="--dask: worker counts to compare, side by side (1)")
    args = ap.parse_args(argv)
    if not (args.study / "single_cell.store.zarr").is_dir():
        raise SystemExit(f"{args.study}: no converted store; run benchmarks/sc_scale.py first")
    mine = args.out / args.study.name
    if not mine.is_dir():
        args.out.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-al", str(args.study), str(mine)], check=True)
    for workers in (args.workers if args.dask else [1]):
        shutil.rmtree(mine / ".cache" / "jobs", ignore_errors=True)
        env = {**os.environ, "CART_JOBS": "dask" if args.dask else "inline",
               "CART_JOB_WORKERS": str(workers), "PYTHONPATH": str(ROOT)}
        where = f"local cluster, {workers} worker(s)" if args.dask else "inline"
        print(f"job ({where}):", json.dumps(_step(mine, JOB, env=env)), flush=True)
    print("second session:", json.dumps(_step(mine, SECOND, env=env)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
