"""The Dask client of this process: a `LocalCluster` started on first use, or the scheduler
that `DASK_SCHEDULER_ADDRESS` / server.toml `[jobs] scheduler` names (jobs/settings.py).

Workers are started with the forkserver method: the app process is threaded (Streamlit,
polars' pool), and a forked child would inherit locks held mid-use; the fork server imports
`distributed` once and never runs the app script (`__main__`), which under Streamlit is a page
script a worker must not execute.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import TYPE_CHECKING, Any

from jobs.settings import JobSettings, job_settings

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["client", "shutdown", "describe"]

_LOCK = threading.Lock()
_CLIENT: Client | None = None
_CLUSTER: Any = None


def client(settings: JobSettings | None = None) -> Client:
    """The process's Dask client, connecting or starting the cluster on first use."""
    global _CLIENT, _CLUSTER
    with _LOCK:
        if _CLIENT is not None and _CLIENT.status == "running":
            return _CLIENT
        import dask
        from distributed import Client, LocalCluster

        settings = settings or job_settings()
        dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"})
        if settings.scheduler:
            try:
                _CLIENT = Client(settings.scheduler, set_as_default=False, timeout="20s")
            except OSError as exc:
                raise RuntimeError(
                    f"the Dask scheduler at {settings.scheduler} does not answer ({exc}); "
                    "check DASK_SCHEDULER_ADDRESS or server.toml [jobs] scheduler, or unset "
                    "it to use a local cluster") from exc
        else:
            _CLUSTER = LocalCluster(
                n_workers=settings.workers, threads_per_worker=1, processes=True,
                memory_limit=settings.memory_limit, dashboard_address=None,
                scheduler_port=0, silence_logs=logging.WARNING, host="127.0.0.1")
            _CLIENT = Client(_CLUSTER, set_as_default=False)
        return _CLIENT


def describe() -> str:
    """Where jobs run, in words (for the CLI and the Data & quality page)."""
    if _CLIENT is None:
        s = job_settings()
        if s.mode == "inline":
            return "jobs run inline (CART_JOBS=inline)"
        memory = "the machine's memory shared among them" if s.memory_limit == "auto" \
            else f"{s.memory_limit} each"
        return (f"Dask scheduler {s.scheduler} (not connected yet)" if s.scheduler else
                f"a local Dask cluster of {s.workers} worker process(es), {memory} (started "
                "on first use)")
    info = _CLIENT.scheduler_info(n_workers=-1)
    workers = info.get("workers", {})
    threads = sum(int(w.get("nthreads", 0)) for w in workers.values())
    where = "local Dask cluster" if _CLUSTER is not None else \
        f"Dask scheduler {_CLIENT.scheduler.address}"
    return f"{where}: {len(workers)} worker(s), {threads} thread(s)"


def shutdown() -> None:
    """Close the client and a local cluster (at exit; tests call it between clusters)."""
    global _CLIENT, _CLUSTER
    with _LOCK:
        if _CLIENT is not None:
            try:
                _CLIENT.close(timeout=10)
            except Exception:  # noqa: BLE001 - closing at exit: nothing left to report to
                pass
        if _CLUSTER is not None:
            try:
                _CLUSTER.close(timeout=10)
            except Exception:  # noqa: BLE001
                pass
        _CLIENT, _CLUSTER = None, None


atexit.register(shutdown)
