"""One computation per key: `single_flight(key, fn)` runs `fn()` once while other threads
asking for the same key wait and get the same value (or the same exception).

For the app's in-memory caches (components/session.py): many sessions opening a page whose
figure is not cached yet would each compute it; with this, the first computes and the rest
wait. Streamlit's `st.cache_resource` already holds a lock per key while it computes; this is
the same guarantee for a cache kept anywhere else. Across processes the job system's file
lock (jobs/core.py) does the same for work whose result is worth keeping on disk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["single_flight", "in_flight"]

T = TypeVar("T")


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.waiters = 0


_FLIGHTS: dict[str, _Flight] = {}
_LOCK = threading.Lock()


def single_flight(key: str, fn: Callable[[], T]) -> T:
    """`fn()`, computed once for all the threads that ask for `key` while it runs."""
    with _LOCK:
        flight = _FLIGHTS.get(key)
        leader = flight is None
        if leader:
            flight = _FLIGHTS[key] = _Flight()
        else:
            flight.waiters += 1
    assert flight is not None
    if not leader:
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return flight.value
    try:
        flight.value = fn()
        return flight.value
    except BaseException as exc:
        flight.error = exc
        raise
    finally:
        with _LOCK:
            _FLIGHTS.pop(key, None)
        flight.done.set()


def in_flight() -> int:
    """How many keys are being computed now (for tests and the capacity benchmark)."""
    with _LOCK:
        return len(_FLIGHTS)
