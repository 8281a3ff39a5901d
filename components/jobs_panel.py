"""A long computation on a page: started as a job (jobs/), its progress polled with a
fragment (`st.fragment(run_every=...)`: only the bar reruns, the page stays usable), a Cancel
button while it runs, and the result returned once it is done.

    result = jobs_panel.run(tasks.pseudobulk, study, params=params, study=study,
                            key="il-pb", label="Pseudobulk DESeq2",
                            start="Run the pseudobulk test")

A result already computed (in this or another session or app process) comes back at once; a
job another session started is joined, not started again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import streamlit as st

import jobs

if TYPE_CHECKING:
    from data_loaders.study import Study

__all__ = ["run", "show"]

_WORDS = {"queued": "waiting for a worker", "waiting": "running in another app process",
          "running": "running"}


def show(handle: jobs.JobHandle, *, key: str, label: str) -> Any | None:
    """The result of `handle` when it is done; else its progress bar and Cancel button,
    polled (the whole page reruns once it ends) and None."""
    state = handle.status()
    if state == "done":
        return handle.result()
    if state == "error":
        st.error(f"{label} failed: {handle.error()}")
        return None
    if state == "cancelled":
        st.info(f"{label} was cancelled.")
        return None
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
    return None


def run(fn: Callable[..., Any], *args: Any, study: Study, key: str, label: str,
        start: str | None = None, start_help: str | None = None, key_parts: Any = (),
        **kwargs: Any) -> Any | None:
    """`fn(*args, **kwargs)` as a job (see the module docstring): its result, or None while it
    has not run or is running. With `start`, nothing runs before that button is pressed
    (unless the result is already there); a failed or cancelled job offers to run again."""
    handle = jobs.find(fn, *args, key_parts=key_parts, study=study, **kwargs)
    if handle is None:
        if start is not None and not st.button(start, key=f"{key}-start", help=start_help):
            return None
        handle = jobs.submit(fn, *args, key_parts=key_parts, study=study, **kwargs)
    elif handle.status() in ("error", "cancelled"):
        show(handle, key=key, label=label)
        if not st.button("Run again", key=f"{key}-again"):
            return None
        handle = jobs.submit(fn, *args, key_parts=key_parts, study=study, rerun=True,
                             **kwargs)
    return show(handle, key=key, label=label)
