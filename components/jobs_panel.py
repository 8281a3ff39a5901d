"""A long computation on a page: started as a job (jobs/), its progress polled with a
fragment (`st.fragment(run_every=...)`: only the bar reruns, the page stays usable), a Cancel
button while it runs, and the page run again once it is done.

    jobs_panel.run(ld.run_pseudobulk, study, params=pparams, study=study, key="il-pb",
                   label="Pseudobulk DESeq2", start="Run the pseudobulk test")

A result already computed (in this or another session or app process) is there at once; a
job another session started is joined, not started again. The function runs on a jobs
worker (a module-level function; a `Study` argument is loaded there), with
`progress=jobs.progress` (or `jobs.step_progress` for (done, total, label) callbacks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import streamlit as st

import jobs

if TYPE_CHECKING:
    from data_loaders.study import Study

__all__ = ["run", "action", "show"]

Reporting = Literal["fraction", "steps"] | None

_WORDS = {"queued": "waiting for a worker", "waiting": "running in another app process",
          "running": "running"}


def _with_progress(kwargs: dict[str, Any], progress: Reporting) -> dict[str, Any]:
    if progress == "fraction":
        return {**kwargs, "progress": jobs.progress}
    if progress == "steps":
        return {**kwargs, "progress": jobs.step_progress}
    return kwargs


def show(handle: jobs.JobHandle, *, key: str, label: str) -> bool:
    """True when `handle` is done; else its state: a progress bar and Cancel button while it
    runs (polled; the whole page reruns once it ends), the reason when it failed."""
    state = handle.status()
    if state == "done":
        return True
    if state == "error":
        st.warning(f"{label}: {handle.error()}")
        return False
    if state == "cancelled":
        st.info(f"{label} was cancelled.")
        return False
    every = jobs.job_settings().poll_seconds

    @st.fragment(run_every=every)
    def poll() -> None:
        now = handle.status()
        if now in ("done", "error", "cancelled"):
            st.rerun(scope="app")
        p = handle.progress()
        text = f"{label}: {p.message or _WORDS.get(now, now)}"
        st.progress(min(max(p.fraction, 0.0), 1.0), text=text)
        if st.button("Cancel", key=f"{key}-cancel",
                     help="Stops the computation for every session waiting for it"):
            handle.cancel()
            handle.wait(10)
            st.rerun(scope="app")

    poll()
    return False


def run(fn: Callable[..., Any], *args: Any, study: Study, key: str, label: str,
        start: str | None = None, start_help: str | None = None,
        progress: Reporting = "fraction", **kwargs: Any) -> jobs.JobHandle | None:
    """`fn(*args, **kwargs)` as a job (see the module docstring): its finished handle (call
    `.result()`), or None while it has not run or is running. With `start`, nothing runs
    before that button is pressed (unless the result is already there); a failed or cancelled
    job offers to run again."""
    kwargs = _with_progress(kwargs, progress)
    handle = jobs.find(fn, *args, study=study, **kwargs)
    if handle is None:
        if start is not None and not st.button(start, key=f"{key}-start", help=start_help):
            return None
        handle = jobs.submit(fn, *args, study=study, **kwargs)
        if handle.status() == "done":     # finished at once (inline, or found on disk)
            st.rerun()
    elif handle.status() in ("error", "cancelled"):
        show(handle, key=key, label=label)
        if not st.button("Run again", key=f"{key}-again"):
            return None
        handle = jobs.submit(fn, *args, study=study, rerun=True, **kwargs)
    return handle if show(handle, key=key, label=label) else None


def action(fn: Callable[..., Any], *args: Any, study: Study, key: str, label: str,
           button: str, button_help: str | None = None, progress: Reporting = "fraction",
           **kwargs: Any) -> jobs.JobHandle | None:
    """A button that runs `fn` as a job again each time it is pressed (regating every file),
    its progress while it runs, and its finished handle once, in the first page run after it
    ended in this session (the caller reloads what it changed)."""
    kwargs = _with_progress(kwargs, progress)
    mark = f"{key}-started"
    handle = jobs.find(fn, *args, study=study, **kwargs)
    running = handle is not None and not handle.done()
    if not running and st.button(button, key=f"{key}-start", help=button_help):
        handle = jobs.submit(fn, *args, study=study, rerun=True, **kwargs)
        st.session_state[mark] = handle.key
        running = not handle.done()
    if handle is None or st.session_state.get(mark) != handle.key:
        return handle if running and show(handle, key=key, label=label) else None
    if running:
        show(handle, key=key, label=label)
        return None
    del st.session_state[mark]
    return handle if show(handle, key=key, label=label) else None
