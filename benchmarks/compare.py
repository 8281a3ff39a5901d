"""Benchmark of the comparison engine (analysis.differential.compare).

    python benchmarks/compare.py [--patients 200] [--repeat 3]

Generates a seeded cohort (sample_data.generate, no single cells: 2,000 genes and 100 proteins
at six timepoints per patient), then times:
- bulk RNA, 2,000 genes, every one of the 6 windows (rank test on log-CPM)   target < 10 s
- proteomics, 100 proteins, one window (D28)                                  target < 1 s
- proteomics, 100 proteins, BH across all 6 windows (rule fdr_across_windows)  target < 2 s
- the demo study (5 patients, exact p-values): proteomics and RNA at D28, and DESeq2 at D28
  (skipped with --no-deseq2).
Each figure is the best of `--repeat` runs on a loaded study (file reading not included).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from _timing import best_time

from analysis.differential import WINDOWS, compare
from analysis.rules import rules_for
from data_loaders import load_study
from sample_data.generate import generate_study

ROOT = Path(__file__).resolve().parent.parent

if TYPE_CHECKING:
    import polars as pl


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    return best_time(fn, repeat=repeat)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-deseq2", action="store_true", help="skip the DESeq2 timing (~1 min)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        study = load_study(generate_study(Path(tmp) / "bench", patients=args.patients, cells=0))
        print(f"cohort: {args.patients} patients, {study.rna_counts.height} genes x "
              f"{study.rna_counts.width - 1} RNA samples, "
              f"{study.proteomics.get_column('feature').n_unique()} proteins x "
              f"{study.proteomics.get_column('sample_id').n_unique()} samples "
              f"(generated and loaded in {time.perf_counter() - t0:.1f} s)")

        def rna_all_windows() -> list[pl.DataFrame]:
            return [compare(study, layer="rna", window=w) for w in WINDOWS]

        secs, results = best(rna_all_windows, args.repeat)
        n = [(r.get_column("n_group_a").max(), r.get_column("n_group_b").max())
             for r in results]
        print(f"rna: 2,000 genes x 6 windows: {secs:.2f} s (target < 10 s); n per window "
              f"{n}; test {results[2].get_column('test')[0]}")
        secs, res = best(lambda: compare(study, layer="proteomics", window="D28"), args.repeat)
        print(f"proteomics: {res.height} proteins at D28: {secs:.3f} s (target < 1 s); "
              f"n {res.get_column('n_group_a').max()} vs {res.get_column('n_group_b').max()}")
        across = rules_for(study).with_(fdr_across_windows=True)
        secs, res = best(lambda: compare(study, layer="proteomics", window="D28", rules=across),
                         args.repeat)
        print(f"proteomics: {res.height} proteins at D28, BH across all windows: {secs:.3f} s "
              f"(target < 2 s); {res.get_column('fdr_family').drop_nulls().first()}")

    demo = load_study(ROOT / "sample_data" / "demo")
    secs, _ = best(lambda: compare(demo, layer="proteomics", window="D28"), args.repeat)
    print(f"demo proteomics D28 (exact p, 3 vs 2): {secs:.3f} s")
    secs, _ = best(lambda: compare(demo, layer="rna", window="D28"), args.repeat)
    print(f"demo rna D28, 2,000 genes (exact/permutation p): {secs:.3f} s")
    if not args.no_deseq2:
        secs, res = best(lambda: compare(demo, layer="rna", window="D28", method="deseq2"), 1)
        print(f"demo rna D28 DESeq2 ({res.get_column('p_value').drop_nulls().len()} genes "
              f"tested): {secs:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
