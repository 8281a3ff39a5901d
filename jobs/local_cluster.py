"""The embedded jobs cluster, in a process of its own: `python -m jobs.local_cluster` starts
a Dask `LocalCluster` (worker processes with one thread each and a memory limit), prints its
scheduler address on the first line of stdout and runs until its stdin closes (the app
process that started it ended, however it ended).

Why a process of its own: Dask starts each worker with multiprocessing, and a new process
first runs the parent's `__main__` again. Inside Streamlit `__main__` is the page script
that is running, so a worker started from the app process (at first use, or when the nanny
restarts a worker that died) would run app.py and die. Started from here, a worker's
`__main__` is this module, imported by name and guarded below.
"""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--memory-limit", default="auto")
    args = p.parse_args(argv)
    import dask
    from distributed import LocalCluster

    dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"})
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           memory_limit=args.memory_limit, dashboard_address=None,
                           scheduler_port=0, silence_logs=logging.WARNING, host="127.0.0.1")
    print(cluster.scheduler_address, flush=True)
    try:
        sys.stdin.read()            # returns when the app process closes the pipe or ends
    finally:
        cluster.close(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
