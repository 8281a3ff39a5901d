"""Fan one job out over the cluster: `parallel_map(fn, items)` runs `fn(item)` for every item
on the Dask workers and returns the results in item order.

Called inside a job (a Dask task), it uses the worker's own client (`worker_client`: the job
steps out of its worker thread while it waits, so with one thread per worker the pieces still
run); called from the app or the CLI, the process's client; in inline mode, a plain loop. The
job's progress counts finished pieces, and a cancelled job cancels the pieces not yet run.

A `Study` in an item (or in a tuple item) is sent to the workers as its reference and loaded
there once per worker process, as a job's own arguments are (jobs/core.py); inline, the item
is passed as it is.

This is how a computation over millions of cells or hundreds of files uses every worker:
pseudobulk counts summed per chunk of cells, one FCS file per piece (benchmarks/jobs_scale.py),
marker sums per block of cells (views/markers.py).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from typing import Any, TypeVar

from jobs.core import JobCancelled, materialise, progress, reference
from jobs.settings import JobSettings, job_settings

__all__ = ["parallel_map", "executor"]

T = TypeVar("T")


def _in_task() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


@contextlib.contextmanager
def _client(settings: JobSettings | None) -> Iterator[Any]:
    if _in_task():
        from distributed import worker_client

        with worker_client() as c:
            yield c
    else:
        from jobs.cluster import client

        yield client(settings)


def parallel_map(fn: Callable[[Any], T], items: Sequence[Any], *, label: str = "",
                 settings: JobSettings | None = None) -> list[T]:
    """[fn(item) for item in items], each item a task on the cluster (see the module
    docstring). `fn` must be a module-level function; an error in one piece is raised."""
    settings = settings or job_settings()
    total = len(items)
    if settings.mode == "inline" or total == 0:
        out = []
        for i, item in enumerate(items):
            out.append(fn(item))
            progress((i + 1) / total, f"{i + 1:,} of {total:,} {label}".rstrip())
        return out
    from distributed import as_completed

    with _client(settings) as c:
        futures = c.map(functools.partial(_piece, fn), [reference(i) for i in items],
                        pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * total
        done = 0
        try:
            for fut in as_completed(futures):
                results[index[fut.key]] = fut.result()
                done += 1
                progress(done / total, f"{done:,} of {total:,} {label}".rstrip())
        except (JobCancelled, Exception):
            c.cancel(futures)
            raise
        return results


def _piece(fn: Callable[[Any], T], item: Any) -> T:
    return fn(materialise(item))


@contextlib.contextmanager
def executor(settings: JobSettings | None = None) -> Iterator[Executor | None]:
    """A `concurrent.futures.Executor` over the cluster (None in inline mode), for code that
    takes one, such as `gate_files(..., executor=...)`."""
    settings = settings or job_settings()
    if settings.mode == "inline":
        yield None
        return
    with _client(settings) as c:
        yield c.get_executor(pure=False)
