"""The Dask client of this process: connected to the scheduler that
`DASK_SCHEDULER_ADDRESS` / server.toml `[jobs] scheduler` names (jobs/settings.py), or to a
local cluster started on first use in a child process (jobs/local_cluster.py, which says why
it is a process of its own); the child ends when this process does.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.settings import JobSettings, job_settings

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["client", "shutdown", "describe"]

_LOCK = threading.Lock()
_CLIENT: Client | None = None
_CLUSTER: _LocalCluster | None = None
_ROOT = Path(__file__).resolve().parent.parent


def client(settings: JobSettings | None = None) -> Client:
    """The process's Dask client, connecting or starting the cluster on first use."""
    global _CLIENT, _CLUSTER
    with _LOCK:
        if _CLIENT is not None and _CLIENT.status == "running":
            return _CLIENT
        from distributed import Client

        settings = settings or job_settings()
        if settings.scheduler:
            try:
                _CLIENT = Client(settings.scheduler, set_as_default=False, timeout="20s")
            except OSError as exc:
                raise RuntimeError(
                    f"the Dask scheduler at {settings.scheduler} does not answer ({exc}); "
                    "check DASK_SCHEDULER_ADDRESS or server.toml [jobs] scheduler, or unset "
                    "it to use a local cluster") from exc
        else:
            _stop_local()
            _CLUSTER = _start_local(settings)
            _CLIENT = Client(_CLUSTER.address, set_as_default=False, timeout="60s")
        return _CLIENT


class _LocalCluster:
    """The child process running jobs/local_cluster.py and its scheduler's address."""

    def __init__(self, proc: subprocess.Popen, address: str) -> None:
        self.proc, self.address = proc, address

    def close(self, timeout: float = 20) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _start_local(settings: JobSettings) -> _LocalCluster:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.local_cluster", "--workers", str(settings.workers),
         "--memory-limit", settings.memory_limit], cwd=_ROOT, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready: list[str] = []
    reader = threading.Thread(target=lambda: ready.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(120)
    address = ready[0].strip() if ready else ""
    if not address.startswith("tcp://"):
        proc.kill()
        raise RuntimeError("the local jobs cluster did not start within 120 s (python -m "
                           "jobs.local_cluster); see the messages above")
    return _LocalCluster(proc, address)


def _stop_local() -> None:
    global _CLUSTER
    if _CLUSTER is not None:
        _CLUSTER.close()
        _CLUSTER = None


def describe(settings: JobSettings | None = None) -> str:
    """Where jobs run (with `settings`, default the server's), in words (for the CLI and the
    Data & quality page)."""
    if _CLIENT is None:
        s = settings or job_settings()
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
        _CLIENT = None
        _stop_local()


atexit.register(shutdown)
