"""Signature scoring of 1,000,000 cells: the mean z-score (default) and the AUCell-style rank
score, on a synthetic sparse matrix shaped like 10x data (2,000 genes, about 150 detected
genes per cell), for the 8 shipped gene sets.

    .venv/bin/python benchmarks/signatures.py [--cells 1000000]
    .venv/bin/python benchmarks/signatures.py --study DIR [--method mean_z|aucell]

mean z reads only the sets' gene columns (as `cell_scores` does from the gene-column store);
AUCell streams blocks of 20,000 cells over every gene (as it does from the store). Matrix
generation is not timed. Prints wall time per method and the process's peak RSS.

With `--study` the scores go through the study path instead: `load_study`, then
`analysis.signatures.cell_scores(study)` reading the single-cell store (the first call builds
the gene-column cache on disk: "cold"; a second call in a fresh Study reads it: "warm"). Make
the study with `python cli.py sample --out DIR --patients 200 --cells 1000000`; a cache left
from an earlier run is removed first unless `--keep-cache`.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import scipy.sparse as sp

N_GENES = 2_000
PER_CELL = 150
BLOCK = 20_000


def _block(rng: np.random.Generator, n: int) -> sp.csr_matrix:
    density = PER_CELL / N_GENES
    m = sp.random(n, N_GENES, density=density, format="csr", dtype=np.float32, rng=rng)
    m.data = np.log1p(rng.poisson(2.0, m.nnz).astype(np.float32) + 1)
    return m


def _study_path(folder: str, method: str, keep_cache: bool) -> int:
    import shutil
    from pathlib import Path

    from analysis.signatures import cell_scores
    from data_loaders import load_study

    cache = Path(folder) / ".cache"
    if cache.exists() and not keep_cache:
        shutil.rmtree(cache)
    t0 = time.perf_counter()
    study = load_study(folder)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    cold = cell_scores(study, method=method)   # type: ignore[arg-type]
    t_cold = time.perf_counter() - t0
    rss_cold = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    warm = cell_scores(load_study(folder), method=method)   # type: ignore[arg-type]
    t_warm = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from analysis.embedding import var_names

    print(f"study {folder}: {study.single_cell.n_obs:,} cells x "
          f"{len(var_names(study)):,} genes, {cold.sets.height} sets, method {method}")
    print(f"load study {t_load:.1f} s")
    print(f"cell_scores cold (builds the gene-column cache): {t_cold:.1f} s, "
          f"peak RSS {rss_cold:,.0f} MiB")
    print(f"cell_scores warm (fresh Study, cache on disk): {t_warm:.1f} s")
    print(f"scores {warm.cells.height:,} rows; peak RSS {rss:,.0f} MiB")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--study", help="score through the study path (load_study + cell_scores)")
    ap.add_argument("--method", default="mean_z", choices=("mean_z", "aucell"))
    ap.add_argument("--keep-cache", action="store_true",
                    help="keep the study's gene-column cache (time only the warm path)")
    args = ap.parse_args()
    if args.study:
        return _study_path(args.study, args.method, args.keep_cache)

    from analysis.signatures import aucell_scores, mean_z_scores, set_indices
    from data_loaders.gene_sets import shipped_gene_sets

    rng = np.random.default_rng(0)
    sets = shipped_gene_sets()
    genes = sorted({g for s in sets for g in s.genes})
    names = genes + [f"G{i}" for i in range(N_GENES - len(genes))]
    idx = [set_indices(names, s.genes)[0] for s in sets]
    wanted = np.unique(np.concatenate(idx))
    # the set columns over every cell (what mean z reads from the gene-column store)
    cols = sp.random(args.cells, len(wanted), density=0.3, format="csc", dtype=np.float32,
                     rng=rng)
    local = {int(j): k for k, j in enumerate(wanted)}
    t0 = time.perf_counter()
    z, used = mean_z_scores(cols, sets=[np.asarray([local[int(j)] for j in c]) for c in idx])
    t_z = time.perf_counter() - t0
    t_auc, t_gen = 0.0, 0.0
    k = int(np.ceil(0.05 * N_GENES))
    for lo in range(0, args.cells, BLOCK):
        t0 = time.perf_counter()
        block = _block(rng, min(BLOCK, args.cells - lo))
        t_gen += time.perf_counter() - t0
        t0 = time.perf_counter()
        aucell_scores(block, sets=idx, max_rank=k)
        t_auc += time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.cells:,} cells x {N_GENES:,} genes, {len(sets)} sets "
          f"({len(wanted)} distinct genes)")
    print(f"mean z (default): {t_z:.1f} s  ({z.shape[0]:,} x {z.shape[1]} scores)")
    print(f"AUCell rank score (max_rank {k}): {t_auc:.1f} s  (block generation {t_gen:.1f} s, "
          "not counted)")
    print(f"peak RSS {rss:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
