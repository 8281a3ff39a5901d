"""Clones across time, rarefaction and the CAR cut at the scale of DESIGN.md section 5.

A synthetic bulk repertoire of 200 patients x 6 timepoints x 1,000 clonotypes (1.2M rows; a
dominant set of 12 clones per patient, Poisson counts) is tracked (every clone of every
patient between the baseline and each later sample: Fisher test and BH per patient and pair)
and rarefied (50 subsamplings per sample); the CAR cut is fitted on 1,000,000 cells (3 %
carrying the CAR transcript). Prints wall time, CPU time and peak RSS of each step.

    python benchmarks/clones.py [--patients 200] [--clones 1000] [--cells 1000000]
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import polars as pl

from analysis.car_status import car_cut
from analysis.clone_tracking import clone_changes, dominant_trajectories
from analysis.repertoire import rarefied_metrics

T = TypeVar("T")
DAYS = (-7, 14, 28, 90, 180, 365)


def cohort(n_patients: int, n_clones: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    rows_s, counts = [], []
    for p in range(n_patients):
        base = rng.lognormal(1.0, 1.0, n_clones)
        base[:12] *= 40
        for k, d in enumerate(DAYS):
            sid = f"P{p:03d}_{k}"
            rows_s.append((sid, f"P{p:03d}", d, f"T{k}"))
            lam = base * (0.4 if d > 0 and p % 2 == 0 else 1.0) ** (np.arange(n_clones) < 12)
            c = rng.poisson(lam)
            keep = c > 0
            counts.append(pl.DataFrame({"sample_id": sid,
                                        "clonotype": [f"P{p}_c{i}" for i in np.flatnonzero(keep)],
                                        "count": c[keep].astype(float)}))
    samples = pl.DataFrame(rows_s, schema=["sample_id", "subject_id", "day", "timepoint"],
                           orient="row")
    return pl.concat(counts), samples


def step(label: str, fn: Callable[[], T]) -> T:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{label}: {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s "
          f"CPU, peak RSS {peak:.0f} MiB")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--clones", type=int, default=1000)
    ap.add_argument("--cells", type=int, default=1_000_000)
    a = ap.parse_args()
    counts, samples = step("synthetic repertoire", lambda: cohort(a.patients, a.clones))
    print(f"  {counts.height:,} clone rows in {samples.height:,} samples")
    changes = step("clone_changes (Fisher + BH, every clone, baseline vs each later sample)",
                   lambda: clone_changes(counts, samples))
    print(f"  {changes.height:,} clone x pair rows")
    step("dominant_trajectories (top 10 per patient)",
         lambda: dominant_trajectories(counts, samples))
    step("rarefied_metrics (50 subsamplings per sample)",
         lambda: rarefied_metrics(counts, repeats=50))
    rng = np.random.default_rng(1)
    values = np.where(rng.random(a.cells) < 0.03, rng.poisson(6, a.cells), 0).astype(float)
    cut = step(f"car_cut (mixture on {a.cells:,} cells, fit on at most 200,000)",
               lambda: car_cut(values, feature="CAR", source="counts"))
    print(f"  {cut.describe()}")


if __name__ == "__main__":
    main()
