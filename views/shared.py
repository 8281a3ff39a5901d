"""One computation behind several records: `@shared` keeps the last few results of a private
recipe helper per process, keyed by the study version and the arguments, so sibling views
(the volcano and the ranked table of one comparison, the figure and the test table of one
composition test) run it once however many of them a page, the deck or the CLI asks for.

This is not the page cache (components/session.py caches each view's record per session
inputs); it only stops sibling views from repeating their common work. Results are shared
read-only, as the page cache's are.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from jobs.locks import single_flight

__all__ = ["shared", "clear_shared"]

P = ParamSpec("P")
R = TypeVar("R")
_MAX = 16
_RESULTS: OrderedDict[tuple, Any] = OrderedDict()
_LOCK = threading.Lock()


def _key(fn: Callable[..., Any], args: tuple, kwargs: dict) -> tuple:
    study, rest = (args[0], args[1:]) if args else (kwargs.get("study"), ())
    return (f"{fn.__module__}.{fn.__qualname__}", getattr(study, "cache_key", id(study)),
            repr(rest), repr(sorted((k, v) for k, v in kwargs.items() if k != "study")))


def shared(fn: Callable[P, R]) -> Callable[P, R]:
    """Keep the last results of `fn(study, ...)` (the study by its cache key, the other
    arguments by their repr: frozen Params, Cohorts, strings, numbers)."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        key = _key(fn, args, kwargs)
        with _LOCK:
            if key in _RESULTS:
                _RESULTS.move_to_end(key)
                return _RESULTS[key]

        def compute() -> R:
            with _LOCK:     # another session finished it while this one waited
                if key in _RESULTS:
                    return _RESULTS[key]
            out = fn(*args, **kwargs)
            with _LOCK:
                _RESULTS[key] = out
                while len(_RESULTS) > _MAX:
                    _RESULTS.popitem(last=False)
            return out

        # sibling views asked for at once (two sessions, the volcano and the table) wait for
        # one computation instead of each running it (jobs.locks)
        return single_flight(repr(key), compute)

    return wrapper


def clear_shared() -> None:
    """Forget every kept result (tests that rebuild from scratch)."""
    with _LOCK:
        _RESULTS.clear()
