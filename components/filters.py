"""Old import path of the sidebar and the page context, kept while pages move to
`components.session` (study, page context, focus, `cached_view`) and `components.sidebar`
(cohort filter and page options in the URL). `compute` and `cached` are the caches pages used
before views: a page that calls a view uses `session.cached_view` instead."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import polars as pl
import streamlit as st

from components.session import (
    DEMO_STUDY,
    Focus,
    PageContext,
    available_studies,
    context,
    deid_mode,
    get_focus,
    reload_study,
    set_focus,
)
from components.sidebar import sidebar
from data_loaders import Study

__all__ = ["PageContext", "Focus", "sidebar", "context", "compute", "available_studies",
           "get_focus", "set_focus", "deid_mode", "cached", "DEMO_STUDY", "reload_study"]


@st.cache_resource(max_entries=256, ttl=3600, show_spinner=False)
def _compute(key: str, _fn: Callable[..., Any], _study: Study, kwargs: tuple) -> Any:
    return _fn(_study, **dict(kwargs))


def compute(fn: Callable[..., Any], study: Study, **kwargs: Any) -> Any:
    """`fn(study, **kwargs)`, cached per study version and arguments (shared, read-only)."""
    key = f"{fn.__module__}.{fn.__qualname__}|{study.cache_key}|{sorted(kwargs.items())!r}"
    return _compute(key, fn, study, tuple(sorted(kwargs.items())))


def _digest(value: Any, h: Any) -> None:
    """Feed `value` into the hash `h`: frames by schema and row hashes, containers by items."""
    if isinstance(value, pl.DataFrame):
        h.update(f"frame{value.schema!r}{value.height}".encode())
        if value.height and value.width:
            h.update(value.hash_rows(seed=0).to_numpy().tobytes())
    elif isinstance(value, pl.Series):
        _digest(value.to_frame(), h)
    elif isinstance(value, dict):
        h.update(b"{")
        for k, v in value.items():
            _digest(k, h)
            _digest(v, h)
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__}[".encode())
        for v in value:
            _digest(v, h)
        h.update(b"]")
    elif isinstance(value, (set, frozenset)):
        _digest(sorted(value, key=repr), h)
    elif isinstance(value, Study):
        h.update(value.cache_key.encode())
    else:
        h.update(f"{type(value).__name__}:{value!r};".encode())


@st.cache_resource(max_entries=128, ttl=3600, show_spinner=False)
def _memo(key: str, _fn: Callable[..., Any], _args: tuple, _kwargs: dict) -> Any:
    return _fn(*_args, **_kwargs)


def cached(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` cached by the content of its arguments (frames by their rows), for
    pure functions of frames: cohort-dependent results and figure factories. The result is
    shared between reruns and sessions, so callers must not change it (plotly figures shown
    with render.show_figure are only read)."""
    h = hashlib.blake2b(digest_size=16)
    _digest(args, h)
    _digest(kwargs, h)
    return _memo(f"{fn.__module__}.{fn.__qualname__}|{h.hexdigest()}", fn, args, kwargs)
