"""A job run from the command line: submitted exactly as a page submits it (the same function
and arguments, so the same key: a result the app computed is read from the cache, one
computed here is there for every session, and a run started while the page's job runs joins
it), with the page's progress as a bar on stderr. Ctrl-C cancels the job.

    table = console.run(mk.run_group_markers, study, params=params, study=study,
                        desc="markers")

`follow(start, desc)` shows the progress of the job `start()` submits the same way, and
`percent_bar` is that bar for work that is not a job (conversion); every command's progress
is drawn here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from jobs.core import (
    JobCancelled,
    JobHandle,
    JobProgress,
    find,
    progress,
    step_progress,
    submit,
    wait,
    watching,
)

if TYPE_CHECKING:
    from data_loaders.study import Study

__all__ = ["run", "follow", "percent_bar", "Reporting"]

Reporting = Literal["fraction", "steps"]


@contextmanager
def percent_bar(desc: str, out: IO[str] | None = None
                ) -> Iterator[Callable[[float, str], None]]:
    """A 0-100 % bar on `out` (stderr) captioned `desc: <message>`; yields
    `step(fraction, message)`."""
    from tqdm import tqdm

    with tqdm(total=100, unit="%", desc=desc, file=out or sys.stderr,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}") as bar:
        def step(fraction: float, message: str) -> None:
            bar.set_description(f"{desc}: {message}" if message else desc)
            bar.update(max(0, round(fraction * 100) - bar.n))

        yield step


def follow(start: Callable[[], JobHandle], desc: str, out: IO[str] | None = None) -> Any:
    """The result of the job `start()` submits, after showing its progress as a bar on
    `out` (stderr), whether it runs on the cluster, inline in this process, or in another
    process this one waits for; on Ctrl-C the job is cancelled and JobCancelled raised."""
    with percent_bar(desc, out) as step:
        def on_progress(p: JobProgress) -> None:
            step(p.fraction, p.message)

        handle: JobHandle | None = None
        try:
            with watching(on_progress):
                handle = start()
            return wait(handle, on_progress=on_progress)
        except KeyboardInterrupt:
            if handle is not None:
                handle.cancel()
                handle.wait(30)
            raise JobCancelled(f"{desc}: cancelled") from None


def run(fn: Callable[..., Any], *args: Any, study: Study | Path | str, desc: str,
        rerun: bool = False, reporting: Reporting = "fraction", out: IO[str] | None = None,
        **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` as a job with `progress=jobs.progress` (`jobs.step_progress` for
    reporting="steps"), as components.jobs_panel passes it; its result, after a progress bar
    on `out` (stderr). `rerun` computes again a result already stored. Raises JobFailed
    with the job's reason, JobCancelled after Ctrl-C (the job is cancelled first)."""
    from jobs.cluster import describe

    stream = out or sys.stderr
    kwargs = {**kwargs, "progress": progress if reporting == "fraction" else step_progress}
    known = None if rerun else find(fn, *args, study=study, **kwargs)
    if known is not None and known.status() == "done":
        print(f"{desc}: the stored result (cached on disk; --force computes it again)",
              file=stream)
        return known.result()
    print(f"{desc}: {describe()}", file=stream)
    return follow(lambda: submit(fn, *args, study=study, rerun=rerun, **kwargs), desc, stream)
