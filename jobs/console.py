"""A job run from the command line: submitted exactly as a page submits it (the same function
and arguments, so the same key: a result the app computed is read from the cache, and one
computed here is there for every session), with the page's progress as a bar on stderr.
Ctrl-C cancels the job.

    table = console.run(mk.run_group_markers, study, params=params, study=study,
                        desc="markers")
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from jobs.core import JobCancelled, JobProgress, find, progress, step_progress, submit, wait

if TYPE_CHECKING:
    from data_loaders.study import Study

__all__ = ["run", "Reporting"]

Reporting = Literal["fraction", "steps"]


def run(fn: Callable[..., Any], *args: Any, study: Study | Path | str, desc: str,
        rerun: bool = False, reporting: Reporting = "fraction", out: IO[str] | None = None,
        **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` as a job with `progress=jobs.progress` (`jobs.step_progress` for
    reporting="steps"), as components.jobs_panel passes it; its result, after a progress bar
    on `out` (stderr). `rerun` computes again a result already stored. Raises JobFailed
    with the job's reason, JobCancelled after Ctrl-C (the job is cancelled first)."""
    from tqdm import tqdm

    from jobs.cluster import describe

    stream = out or sys.stderr
    kwargs = {**kwargs, "progress": progress if reporting == "fraction" else step_progress}
    known = None if rerun else find(fn, *args, study=study, **kwargs)
    if known is not None and known.status() == "done":
        print(f"{desc}: the stored result (cached on disk; --force computes it again)",
              file=stream)
        return known.result()
    print(f"{desc}: {describe()}", file=stream)
    handle = submit(fn, *args, study=study, rerun=rerun, **kwargs)
    with tqdm(total=100, unit="%", desc=desc, file=stream,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}") as bar:
        def step(p: JobProgress) -> None:
            bar.set_description(f"{desc}: {p.message}" if p.message else desc)
            bar.update(max(0, round(p.fraction * 100) - bar.n))

        try:
            return wait(handle, on_progress=step)
        except KeyboardInterrupt:
            handle.cancel()
            handle.wait(30)
            raise JobCancelled(f"{desc}: cancelled") from None
