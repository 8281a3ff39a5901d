"""The key of a job: a content hash of the function, its inputs and its parameters.

Frames are hashed by their schema and row hashes, arrays by their bytes, a `Study` by its
`cache_key` (its folder and the fingerprint of its files, so a changed file gives a new key),
dataclasses (Params, Cohort) by their fields. Two requests with the same key are the same
computation; `JOBS_VERSION` changes when the meaning of a stored result changes.

Some keyword arguments never enter the key: a progress callback, `force` (compute again what
the computation cached itself) and `workers` (how many processes share it). They change how
a result is made, not what it is, so a
page's request and a command line's `--force` run of the same inputs are one job: the second
joins the first while it runs (`submit` treats `force=True` as a rerun).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

__all__ = ["job_key", "digest", "JOBS_VERSION", "NOT_IN_KEY"]

JOBS_VERSION = "1"
NOT_IN_KEY = ("force", "workers")     # say how, not what (module docstring)


def _feed(value: Any, h: Any) -> None:
    import numpy as np
    import polars as pl

    cache_key = getattr(value, "cache_key", None)
    if isinstance(cache_key, str):                     # a Study (or its reference)
        h.update(f"study:{cache_key};".encode())
    elif isinstance(value, pl.DataFrame):
        h.update(f"frame{value.schema!r}{value.height};".encode())
        if value.height and value.width:
            h.update(value.hash_rows(seed=0).to_numpy().tobytes())
    elif isinstance(value, pl.Series):
        _feed(value.to_frame(), h)
    elif isinstance(value, np.ndarray):
        h.update(f"array{value.dtype}{value.shape};".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        h.update(f"{type(value).__module__}.{type(value).__qualname__}(".encode())
        for f in dataclasses.fields(value):
            h.update(f"{f.name}=".encode())
            _feed(getattr(value, f.name), h)
        h.update(b")")
    elif isinstance(value, Mapping):
        h.update(b"{")
        for k in sorted(value, key=repr):
            _feed(k, h)
            _feed(value[k], h)
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__}[".encode())
        for v in value:
            _feed(v, h)
        h.update(b"]")
    elif isinstance(value, (set, frozenset)):
        _feed(sorted(value, key=repr), h)
    elif isinstance(value, Path):
        h.update(f"path:{value};".encode())
    elif isinstance(value, Enum):
        h.update(f"{type(value).__qualname__}.{value.name};".encode())
    elif callable(value) and hasattr(value, "__qualname__"):
        h.update(f"fn:{getattr(value, '__module__', '')}.{value.__qualname__};".encode())
    else:
        h.update(f"{type(value).__name__}:{value!r};".encode())


def digest(value: Any) -> str:
    """A 32-hex-digit BLAKE2b of `value`'s content (see the module docstring)."""
    h = hashlib.blake2b(digest_size=16)
    _feed(value, h)
    return h.hexdigest()


def job_key(fn: Callable[..., Any], args: tuple = (), kwargs: Mapping[str, Any] | None = None,
            *, key_parts: Any = ()) -> str:
    """The key of `fn(*args, **kwargs)`; `key_parts` add what the arguments do not show (a
    file's content hash, a code version). Progress callbacks, `force` and `workers` are left
    out: they do not change the result."""
    from jobs.core import progress, step_progress

    kw = {k: v for k, v in (kwargs or {}).items()
          if k not in NOT_IN_KEY and v is not progress and v is not step_progress}
    name = f"{fn.__module__}.{fn.__qualname__}"
    return digest((JOBS_VERSION, name, args, kw, key_parts))
