"""Wall-clock timing shared by the benchmark scripts (run as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def timings(fn: Callable[[], Any], *, repeat: int) -> tuple[list[float], Any]:
    """Run `fn` `repeat` times; the wall time of each run and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def median_time(fn: Callable[[], Any], *, repeat: int) -> tuple[float, Any]:
    times, out = timings(fn, repeat=repeat)
    return statistics.median(times), out


def best_time(fn: Callable[[], Any], *, repeat: int) -> tuple[float, Any]:
    times, out = timings(fn, repeat=repeat)
    return min(times), out
