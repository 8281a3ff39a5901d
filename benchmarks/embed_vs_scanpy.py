"""`cli.py embed` (HVG -> randomized PCA -> UMAP, cached) against scanpy's pp.pca +
pp.neighbors + tl.umap on the same 100,000 cells x 2,000 genes.

    python3 -m venv /tmp/scanpy-venv && /tmp/scanpy-venv/bin/pip install scanpy "scipy<1.14"
    # (scanpy 1.11 calls csr_array.getnnz, removed in newer scipy)
    .venv/bin/python benchmarks/embed_vs_scanpy.py [--cells 100000] [--genes 2000]

scanpy is not a dependency of the app: it runs from its own throwaway environment
(--scanpy-python). Both sides get the same log-normalised matrix and 30 PCs / 15 neighbours.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

_SCANPY = r"""
import json, time
import scanpy as sc
t0 = time.perf_counter()
a = sc.read_h5ad({path!r})
t1 = time.perf_counter()
sc.pp.pca(a, n_comps=30)
t2 = time.perf_counter()
sc.pp.neighbors(a, n_neighbors=15, n_pcs=30)
t3 = time.perf_counter()
sc.tl.umap(a, min_dist=0.3)
t4 = time.perf_counter()
print(json.dumps({{"read": t1 - t0, "pca": t2 - t1, "neighbors": t3 - t2, "umap": t4 - t3,
                  "total": t4 - t0}}))
"""


def make_study(folder: Path, *, cells: int, genes: int, seed: int = 0) -> Path:
    """A study folder with patients.csv and a log-normalised cells x genes .h5ad (12 cell
    states with their own marker genes, Poisson counts)."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "single_cell.h5ad"
    if path.exists():
        return folder
    rng = np.random.default_rng(seed)
    k = 12
    base = np.exp(rng.normal(-1.5, 1.0, genes))
    prof = np.tile(base, (k, 1))
    for i in range(k):
        prof[i, rng.choice(genes, 40, replace=False)] *= rng.uniform(5, 20, 40)
    prof /= prof.sum(axis=1, keepdims=True)
    state = rng.integers(0, k, cells)
    blocks = []
    for lo in range(0, cells, 10_000):
        hi = min(lo + 10_000, cells)
        c = sp.csr_matrix(rng.poisson(prof[state[lo:hi]] * 1500).astype(np.float32))
        tot = np.asarray(c.sum(axis=1)).ravel()
        c.data = np.log1p(c.data * np.repeat(1e4 / tot, np.diff(c.indptr))).astype(np.float32)
        blocks.append(c)
    x = sp.vstack(blocks, format="csr")
    subjects = np.array([f"P{i + 1}" for i in range(20)])
    obs = pd.DataFrame({"subject_id": subjects[np.arange(cells) % 20],
                        "day": np.where(np.arange(cells) % 2, 28, -7),
                        "cell_type": [f"state{s}" for s in state]},
                       index=[f"c{i}" for i in range(cells)])
    ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"G{j}" for j in range(genes)])) \
        .write_h5ad(path)
    (folder / "patients.csv").write_text("subject_id\n" + "\n".join(subjects) + "\n")
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=100_000)
    ap.add_argument("--genes", type=int, default=2_000)
    ap.add_argument("--out", default="/tmp/embed_bench")
    ap.add_argument("--scanpy-python", default="/tmp/scanpy-venv/bin/python")
    args = ap.parse_args()
    folder = make_study(Path(args.out) / f"c{args.cells}_g{args.genes}", cells=args.cells,
                        genes=args.genes)
    print(f"{args.cells:,} cells x {args.genes:,} genes in {folder}; load average "
          f"{os.getloadavg()[0]:.1f}")
    cmd = [sys.executable, "cli.py", "embed", "--study", str(folder), "--n-top-genes",
           str(args.genes), "--force"]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
    ours = time.perf_counter() - t
    print(f"python {' '.join(cmd[1:])}: {ours:.1f} s (incl. gene store, imports and numba "
          "compilation)")
    t = time.perf_counter()
    subprocess.run(cmd[:-1], cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
    print(f"same command again (cache hit): {time.perf_counter() - t:.1f} s")
    if not Path(args.scanpy_python).exists():
        print(f"scanpy environment {args.scanpy_python} not found: comparison skipped")
        return 0
    code = _SCANPY.format(path=str(folder / "single_cell.h5ad"))
    t = time.perf_counter()
    out = subprocess.run([args.scanpy_python, "-c", code], capture_output=True, text=True,
                         check=True)
    wall = time.perf_counter() - t
    res = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"scanpy pp.pca + pp.neighbors + tl.umap: {wall:.1f} s wall incl. imports "
          f"(read {res['read']:.1f}, pca {res['pca']:.1f}, neighbors {res['neighbors']:.1f}, "
          f"umap {res['umap']:.1f})")
    print(f"ratio cli.py embed / scanpy: {ours / wall:.2f}; load average "
          f"{os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
