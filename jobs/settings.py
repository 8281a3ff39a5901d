"""Where jobs run: the embedded local Dask cluster, a lab or HPC scheduler, or inline.

Settings (`STUDIES_ROOT/server.toml` `[jobs]`, then the environment; defaults in brackets):

    scheduler     ""       DASK_SCHEDULER_ADDRESS   address of a running Dask scheduler
                                                    ("tcp://10.0.0.5:8786"); empty: start a
                                                    LocalCluster on first use (jobs/local_cluster.py)
    mode          "dask"   CART_JOBS                "dask", or "inline" (run in the caller's
                                                    thread; for tests and one-off scripts)
    workers       2        CART_JOB_WORKERS         worker processes of the local cluster
    memory_limit  "auto"   CART_JOB_MEMORY          memory of each local worker ("6GiB"; "auto":
                                                    the machine's memory divided by the
                                                    workers). Dask's nanny restarts a worker
                                                    above it; its job is retried on another
                                                    worker, then fails with a message
    retries       0                                 re-runs of a job that raised an error (a
                                                    worker that died is always retried, up to
                                                    Dask's allowed-failures, 3)
    poll_seconds  1.0                               how often a page asks a running job how far
                                                    it got

The local cluster runs one thread per worker process: the long computations here are numpy,
scipy, UMAP and FlowKit code that holds the GIL in parts, so processes scale and threads do
not. A lab scheduler (`dask scheduler` with `dask worker` processes, deploy/README.md) or an
HPC batch system through dask-jobqueue (`SLURMCluster(...).scheduler_address`) is used the
same way: only the address changes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["JobSettings", "job_settings", "Mode"]

Mode = Literal["dask", "inline"]


@dataclass(frozen=True)
class JobSettings:
    scheduler: str = ""
    mode: Mode = "dask"
    workers: int = 2
    memory_limit: str = "auto"
    retries: int = 0
    poll_seconds: float = 1.0


def _server_section(study_dir: str | Path | None) -> Mapping[str, Any]:
    from data_loaders import guard

    section = guard.server_config(study_dir).get("jobs", {})
    return section if isinstance(section, Mapping) else {}


def _int(value: Any, default: int, *, least: int) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        return default
    return v if v >= least else default


def job_settings(study_dir: str | Path | None = None) -> JobSettings:
    """Defaults, then server.toml `[jobs]`, then DASK_SCHEDULER_ADDRESS, CART_JOBS,
    CART_JOB_WORKERS and CART_JOB_MEMORY from the environment."""
    cfg = _server_section(study_dir)
    base = JobSettings()
    scheduler = str(cfg.get("scheduler", "") or "")
    mode = str(cfg.get("mode", base.mode) or base.mode)
    workers = _int(cfg.get("workers"), base.workers, least=1)
    memory = str(cfg.get("memory_limit", base.memory_limit) or base.memory_limit)
    retries = _int(cfg.get("retries"), base.retries, least=0)
    try:
        poll = float(cfg.get("poll_seconds", base.poll_seconds))
    except (TypeError, ValueError):
        poll = base.poll_seconds
    scheduler = os.environ.get("DASK_SCHEDULER_ADDRESS", "").strip() or scheduler
    mode = os.environ.get("CART_JOBS", "").strip().lower() or mode
    if mode not in ("dask", "inline"):
        raise ValueError(f"jobs mode {mode!r} is not known (CART_JOBS or server.toml [jobs] "
                         "mode): use \"dask\" or \"inline\"")
    workers = _int(os.environ.get("CART_JOB_WORKERS"), workers, least=1)
    memory = os.environ.get("CART_JOB_MEMORY", "").strip() or memory
    return JobSettings(scheduler, mode, workers, memory, retries,  # type: ignore[arg-type]
                       poll if poll > 0 else base.poll_seconds)
