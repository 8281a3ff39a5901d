"""Pseudobulk DESeq2 for one cell type at scale: 200 patients x 6 timepoints x 300,000 cells.

    .venv/bin/python cli.py sample --out /tmp/c300k --patients 200 --cells 300000   # once
    .venv/bin/python benchmarks/pseudobulk.py --study /tmp/c300k [--cell-type "CD8 TEM"]

Prints the time to sum the raw counts per sample (reading the count matrix block by block
through the single-cell store), the DESeq2 fit and test (pydeseq2, one core), the cached
re-read, and the process's peak RSS. The disk cache is bypassed for the timed run.
"""

from __future__ import annotations

import argparse
import resource
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", required=True)
    ap.add_argument("--cell-type", default="CD8 TEM")
    ap.add_argument("--window", default="D28")
    args = ap.parse_args()

    from analysis import pseudobulk as pb
    from data_loaders import load_study

    t0 = time.perf_counter()
    study = load_study(args.study)
    t_load = time.perf_counter() - t0
    sel = pb.CellSelection(cell_type=args.cell_type)
    t0 = time.perf_counter()
    counts = pb.pseudobulk_counts(study, selection=sel)
    t_sum = time.perf_counter() - t0
    params = pb.PseudobulkParams(selection=sel, window=args.window)
    stages: dict[str, float] = {}
    last = [time.perf_counter(), ""]

    def progress(f: float, msg: str) -> None:
        now = time.perf_counter()
        if last[1]:
            stages[last[1]] = stages.get(last[1], 0.0) + now - last[0]
        last[0], last[1] = now, msg

    t0 = time.perf_counter()
    res = pb.pseudobulk_de(study, params=params, use_cache=False, progress=progress)
    t_de = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = pb.pseudobulk_de(study, params=params)
    t_cached = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_a, n_b = int(res.table["n_a"][0]), int(res.table["n_b"][0])
    print(f"cells {study.single_cell.n_obs:,}; samples {counts.samples.height:,}; "
          f"{args.cell_type} cells {int(counts.samples['n_cells'].sum()):,}")
    print(f"load study {t_load:.1f} s; sum counts per sample {t_sum:.1f} s")
    print(f"pseudobulk_de (sum + filter + DESeq2, {n_a} vs {n_b} patients, "
          f"{res.n_genes_tested:,} of {res.n_genes_total:,} genes): {t_de:.1f} s")
    for name in ("summing counts per sample", "DESeq2: gene-wise dispersions",
                 "DESeq2: shrunken dispersions", "DESeq2: log fold changes",
                 "DESeq2: outlier refit", "DESeq2: Wald tests"):
        if name in stages:
            print(f"  {name}: {stages[name]:.1f} s")
    print(f"cached re-read {t_cached * 1000:.0f} ms (from cache: {again.from_cache})")
    print(f"peak RSS {rss:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
