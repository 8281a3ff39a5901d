"""Speed of the CAR-T kinetics parameters (analysis.kinetics) on a large synthetic cohort.

    .venv/bin/python benchmarks/kinetics.py [--patients 200] [--assays 6] [--repeat 7]
    .venv/bin/python benchmarks/kinetics.py --study DIR      # also the kinetics table of DIR

Builds (in memory, seeded) N patients x A assays of CAR-T-like curves sampled on the demo's
schedule plus extra early days (16 samples each: expansion to a peak on day 7-14, then decay,
with values below an LLOQ at the start, in the middle and at the end), then times
`kinetic_parameters` (BLQ positions, Cmax/Tmax, AUC0-28 with window interpolation, Tlast,
fold expansion, four landmarks) and `group_summary`. Reports the median of --repeat runs.
Target: 200 patients x 6 assays in under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import polars as pl
from _timing import median_time

from analysis.kinetics import group_summary, kinetic_parameters, kinetics_table

DAYS = np.array([-3, 0, 2, 4, 7, 10, 14, 17, 21, 28, 42, 60, 90, 180, 270, 365])


def synthetic(patients: int, assays: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = patients * assays
    peak = 10 ** rng.uniform(2.5, 5.0, n)
    tpeak = rng.uniform(7, 14, n)
    decay = rng.uniform(0.01, 0.05, n)
    t = DAYS[None, :].astype(float)
    rise = np.exp(-((t - tpeak[:, None]) ** 2) / 18.0)
    fall = np.exp(-decay[:, None] * np.maximum(t - tpeak[:, None], 0))
    level = np.where(t < tpeak[:, None], rise, fall) * peak[:, None]
    level = np.where(t <= 0, 0.0, level * np.exp(rng.normal(0, 0.2, level.shape)))
    middle_dip = rng.random(level.shape) < 0.03           # occasional middle BLQ
    level = np.where(middle_dip, 10.0, level)
    ids = np.repeat([f"P{i:04d}" for i in range(patients)], assays)
    names = np.tile([f"ASSAY_{j}" for j in range(assays)], patients)
    return pl.DataFrame({
        "subject_id": np.repeat(ids, len(DAYS)),
        "analyte": np.repeat(names, len(DAYS)),
        "day": np.tile(DAYS, n),
        "value": level.ravel().round(1),
        "lloq": np.full(n * len(DAYS), 50.0),
        "unit": np.full(n * len(DAYS), "copies/ug gDNA"),
    })


def _median_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    return median_time(fn, repeat=repeat)


def _cpu_time(fn: Callable[[], object], repeat: int) -> float:
    """Median process CPU time: less sensitive than wall time to other load on the machine."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--assays", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--study", help="a study folder: also time its kinetics table")
    args = ap.parse_args()

    frame = synthetic(args.patients, args.assays)
    kinetic_parameters(frame.head(100))                     # warm-up (polars thread pool)
    t_params, params = _median_time(lambda: kinetic_parameters(frame), args.repeat)
    cpu = _cpu_time(lambda: kinetic_parameters(frame), args.repeat)
    groups = pl.DataFrame({"subject_id": params.get_column("subject_id").unique().to_list()}) \
        .with_columns(response_group=pl.lit("Responder"))
    t_summary, _ = _median_time(lambda: group_summary(params, groups=groups), args.repeat)
    print(f"kinetic_parameters: {args.patients} patients x {args.assays} assays, "
          f"{frame.height:,} rows -> {params.height:,} rows: "
          f"wall {t_params * 1000:.0f} ms, CPU {cpu * 1000:.0f} ms (medians of {args.repeat}; "
          f"load average {os.getloadavg()[0]:.1f}); target < 1000 ms wall: "
          f"{'met' if t_params < 1.0 else 'NOT met'}")
    print(f"group_summary: {t_summary * 1000:.1f} ms")
    if args.study:
        from data_loaders import load_study

        study = load_study(args.study)
        t_study, table = _median_time(lambda: kinetics_table(study), args.repeat)
        print(f"kinetics_table({args.study}): {table.height} rows in {t_study * 1000:.0f} ms")
    return 0 if t_params < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
