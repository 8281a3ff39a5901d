"""Opening a large scanpy-processed .h5ad: time and peak memory of inspecting it (the import's
proposal), loading the study, and the first reads the Immune landscape page makes.

    .venv/bin/python benchmarks/import_h5ad.py --out /tmp/h4_bench      # writes the file once

The file is generated under --out (never commit it) the way a scanpy tutorial leaves it:
X = the highly variable genes scaled and centred (dense float32, negative values), .raw = the
log-normalised matrix of all genes (CSR), obs patient/sample/timepoint labels/leiden/n_genes/
total_counts (categoricals), obsm X_pca and X_umap. Default 1,000,000 cells, 2,000 genes in
.raw (60 detected per cell), 500 in X. Each step runs in a fresh process, so cold means cold
(imports included) and the peak RSS is that step's own.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STEPS = {
    "inspect (propose_single_cell)": """
from data_loaders.importers.single_cell import propose_single_cell
p = propose_single_cell(FILE)
out = {"errors": [f["message"] for f in p["findings"] if f["severity"] == "error"],
       "lognorm": p.get("lognorm"), "obs": p.get("obs")}
""",
    "load_study (validate)": """
from data_loaders import load_study
s = load_study(STUDY)
out = {"ok": s.report.ok, "patients": len(s.subject_ids)}
""",
    "cell table (obs, canonical columns)": """
from data_loaders import load_study
from analysis import embedding as emb
s = load_study(STUDY)
t0 = time.perf_counter(); cells = emb.cell_table(s); step = time.perf_counter() - t0
out = {"cells": cells.height, "days": sorted(set(cells["day"].drop_nulls())), "step_s": step}
""",
    "content hash of the file (once; remembered by size and mtime)": """
from data_loaders import load_study
from analysis import embedding as emb
s = load_study(STUDY)
t0 = time.perf_counter(); bases = emb.available_bases(s); step = time.perf_counter() - t0
out = {"bases": bases, "step_s": step}
""",
    "drawn cells (X_umap + 150k subsample)": """
from data_loaders import load_study
from analysis import embedding as emb
s = load_study(STUDY)
t0 = time.perf_counter()
bases = emb.available_bases(s)
d = emb.drawn_cells(s, basis=bases[0], max_points=150_000)
out = {"basis": bases[0], "drawn": d.frame.height, "step_s": time.perf_counter() - t0}
""",
    "first gene colour (builds the gene store from .raw)": """
from data_loaders import load_study
from analysis import embedding as emb
s = load_study(STUDY)
t0 = time.perf_counter(); v = emb.gene_vector(s, gene="G0001"); first = time.perf_counter() - t0
t0 = time.perf_counter(); v = emb.gene_vector(s, gene="G0002"); second = time.perf_counter() - t0
out = {"first_s": first, "next_gene_s": second, "min": float(v.min())}
""",
    "gene colour, store built (one gene)": """
from data_loaders import load_study
from analysis import embedding as emb
s = load_study(STUDY)
t0 = time.perf_counter(); v = emb.gene_vector(s, gene="G0003"); step = time.perf_counter() - t0
out = {"step_s": step}
""",
    "marker genes of 10,000 selected cells (store built)": """
import numpy as np
from data_loaders import load_study
from analysis import embedding as emb
from analysis.markers import rank_markers
s = load_study(STUDY)
t0 = time.perf_counter(); index = emb.read_marker_index(s); read = time.perf_counter() - t0
mask = np.zeros(index.n_cells, dtype=bool); mask[::100] = True
t0 = time.perf_counter(); top = rank_markers(index, selected=mask, top=25)
out = {"read_index_s": read, "rank_s": time.perf_counter() - t0, "genes": top.height}
""",
}

_RUN = r"""
import json, resource, sys, time
from pathlib import Path
FILE, STUDY = Path({file!r}), Path({study!r})
t_start = time.perf_counter()
{body}
out["total_s"] = time.perf_counter() - t_start
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out, default=str))
"""


def generate(path: Path, *, cells: int, genes: int, hvg: int, nnz: int, seed: int = 0) -> None:
    """Write the scanpy-shaped .h5ad chunk by chunk (anndata's on-disk encoding)."""
    import h5py
    import numpy as np
    import pandas as pd
    from anndata.io import write_elem

    rng = np.random.default_rng(seed)
    n_pat, labels = 200, np.array(["Baseline", "D14", "Day 28", "M3"])
    patient = rng.integers(0, n_pat, cells)
    visit = rng.integers(0, len(labels), cells)
    obs = pd.DataFrame({
        "patient": pd.Categorical([f"P{p:03d}" for p in range(n_pat)])[patient],
        "sample": pd.Categorical([f"P{p:03d}_{t}" for p, t in zip(patient, labels[visit],
                                                                  strict=True)]),
        "timepoint": pd.Categorical(labels[visit]),
        "leiden": pd.Categorical(rng.integers(0, 20, cells).astype(str)),
        "n_genes": np.full(cells, nnz), "total_counts": rng.integers(800, 6000, cells)},
        index=pd.Index([f"cell{i:07d}" for i in range(cells)]))
    names = [f"G{j:04d}" for j in range(genes)]
    chunk = 50_000
    tmp = path.with_suffix(".part")
    with h5py.File(tmp, "w") as f:
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        write_elem(f, "obs", obs)
        write_elem(f, "var", pd.DataFrame({"highly_variable": True}, index=names[:hvg]))
        x = f.create_dataset("X", shape=(cells, hvg), dtype="f4", chunks=(4096, hvg))
        x.attrs["encoding-type"], x.attrs["encoding-version"] = "array", "0.2.0"
        raw = f.create_group("raw")
        raw.attrs["encoding-type"], raw.attrs["encoding-version"] = "raw", "0.1.0"
        rx = raw.create_group("X")
        rx.attrs["encoding-type"], rx.attrs["encoding-version"] = "csr_matrix", "0.1.0"
        rx.attrs["shape"] = np.array([cells, genes])
        data = rx.create_dataset("data", shape=(cells * nnz,), dtype="f4", chunks=(1 << 20,))
        idx = rx.create_dataset("indices", shape=(cells * nnz,), dtype="i4", chunks=(1 << 20,))
        rx.create_dataset("indptr", data=np.arange(cells + 1, dtype=np.int64) * nnz)
        write_elem(raw, "var", pd.DataFrame(index=names))
        write_elem(raw, "varm", {})
        stride = genes // nnz
        for lo in range(0, cells, chunk):
            hi = min(lo + chunk, cells)
            m = hi - lo
            x[lo:hi] = rng.standard_normal((m, hvg), dtype=np.float32).clip(-3, 10)
            cols = rng.integers(0, stride, (m, nnz)) + np.arange(nnz) * stride
            data[lo * nnz:hi * nnz] = rng.uniform(0.3, 4.0, m * nnz).astype(np.float32)
            idx[lo * nnz:hi * nnz] = cols.ravel().astype(np.int32)
        write_elem(f, "obsm", {"X_pca": rng.standard_normal((cells, 30), dtype=np.float32),
                               "X_umap": rng.standard_normal((cells, 2), dtype=np.float32)})
        for key in ("layers", "obsp", "varm", "varp", "uns"):
            write_elem(f, key, {})
    tmp.replace(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/h4_bench"))
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--genes", type=int, default=2000)
    ap.add_argument("--hvg", type=int, default=500)
    ap.add_argument("--nnz", type=int, default=60, help="detected genes per cell in .raw")
    args = ap.parse_args()
    study = args.out / f"study_{args.cells}"
    study.mkdir(parents=True, exist_ok=True)
    path = study / "cells.h5ad"
    if not path.is_file():
        t0 = time.perf_counter()
        generate(path, cells=args.cells, genes=args.genes, hvg=args.hvg, nnz=args.nnz)
        print(f"generated {path} ({path.stat().st_size / 1e9:.2f} GB) in "
              f"{time.perf_counter() - t0:.0f} s")
    print(f"{args.cells:,} cells; X {args.hvg} scaled genes (dense), .raw {args.genes} genes "
          f"log-normalised ({args.nnz} per cell)")
    shutil.rmtree(study / ".cache", ignore_errors=True)     # every run starts cold
    for name, body in STEPS.items():
        code = _RUN.format(root=str(ROOT), file=str(path), study=str(study), body=body)
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=ROOT)
        wall = time.perf_counter() - t0
        if res.returncode:
            print(f"{name}: FAILED\n{res.stderr[-2000:]}")
            return 1
        out = json.loads(res.stdout.strip().splitlines()[-1])
        rss = out.pop("peak_rss_mb")
        total = out.pop("total_s")
        print(f"{name}: {total:.2f} s in-process ({wall:.2f} s with interpreter start), "
              f"peak RSS {rss:,.0f} MB; {json.dumps(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
