"""How much memory one browser session holds, and the cap a server puts on it.

A session's own memory is what lives in its session state: cell sets kept on the Immune
landscape (row numbers of up to millions of cells), the current selection, uploaded files
(`st.file_uploader` values), gene sets typed or uploaded, results a page pinned there. The
study, its stores and the view cache are shared by every session and are not counted here
(the process as a whole is capped by the systemd unit's MemoryMax and recycled by
deploy/recycle.py). Without a cap a few sessions that keep large selections can take an app
process down for every user; with it, a session past its share is told what holds the
memory and what to remove, and what can be made again is dropped first.

Setting (`STUDIES_ROOT/server.toml` `[sessions]`, then the environment):

    memory_mb   512   CART_SESSION_MEMORY_MB   memory one session may hold (MB); 0: no cap

Sizes are estimates from the objects themselves (numpy `nbytes`, polars `estimated_size`,
bytes and file lengths, Python containers with `sys.getsizeof` of their items), close to
what freeing them returns.

    session_memory.keep("il-selection", value, what="the selection of 2,000 cells",
                        droppable=True, study_dir=study.path)      # False: refused, and why
    session_memory.room_for(value, what="cell set 'CD8'")         # ask before keeping
    session_memory.enforce_cap(study_dir)     # every page run (components.session.context)
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import streamlit as st

__all__ = ["size_of", "MemoryUse", "account", "session_cap_mb", "DEFAULT_CAP_MB",
           "refusal", "eviction_note", "to_evict", "keep", "room_for", "memory_use",
           "enforce_cap", "LABELS"]

DEFAULT_CAP_MB = 512.0
_MB = 1024 * 1024
_SAMPLE = 64


def size_of(value: Any, *, shared: tuple[type, ...] = (), _seen: set[int] | None = None
            ) -> int:
    """Bytes `value` holds, its contents included (each object counted once); objects of the
    `shared` types (the Study every session reads) count nothing."""
    seen = set() if _seen is None else _seen
    if id(value) in seen or (shared and isinstance(value, shared)):
        return 0
    seen.add(id(value))
    nbytes = getattr(value, "nbytes", None)               # numpy arrays
    if isinstance(nbytes, int) and not isinstance(value, (bytes, bytearray, memoryview)):
        return nbytes + 112
    estimated = getattr(value, "estimated_size", None)    # polars frames and series
    if callable(estimated):
        try:
            return int(estimated())
        except TypeError:
            pass
    if isinstance(value, (str, bytes, bytearray, int, float, bool, complex)) or value is None:
        return sys.getsizeof(value)
    size = getattr(value, "size", None)                   # UploadedFile (bytes in memory)
    if isinstance(size, int) and hasattr(value, "getvalue"):
        return size + 200
    if isinstance(value, Mapping):
        return sys.getsizeof(value) + sum(size_of(k, shared=shared, _seen=seen) +
                                           size_of(v, shared=shared, _seen=seen)
                                           for k, v in value.items())
    if isinstance(value, (list, tuple)) and len(value) > _SAMPLE and \
            all(type(v) in (int, float) for v in value[:_SAMPLE]):
        # row numbers of a large selection: one boxed number per item (28-32 bytes), not
        # worth a walk over millions of items on every page run
        return sys.getsizeof(value) + 32 * len(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return sys.getsizeof(value) + sum(size_of(v, shared=shared, _seen=seen) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sys.getsizeof(value) + sum(size_of(getattr(value, f.name), shared=shared, _seen=seen)
                                          for f in dataclasses.fields(value))
    return sys.getsizeof(value)


@dataclass(frozen=True)
class MemoryUse:
    """A session's memory: the total and each session-state entry's share, largest first."""

    total: int
    by_key: tuple[tuple[str, int], ...]
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def mb(self) -> float:
        return self.total / _MB

    def sizes(self) -> dict[str, int]:
        return dict(self.by_key)

    def largest(self, n: int = 3) -> str:
        """"kept cell sets 310 MB, il-sig-gmt 120 MB" for the `n` largest entries."""
        names = dict(self.labels)
        return ", ".join(f"{names.get(k, k)} {v / _MB:,.0f} MB" for k, v in self.by_key[:n]
                         if v >= _MB) or "small entries"


def account(state: Mapping[str, Any], *, labels: Mapping[str, str] | None = None,
            skip: Iterable[str] = (), shared: tuple[type, ...] = (),
            seen: set[int] | None = None) -> MemoryUse:
    """The memory held by the entries of a session state (`labels` name entries for people:
    {"il-sets": "kept cell sets"}); `skip` leaves out bookkeeping entries, `shared` types
    count nothing. `seen` collects the objects counted (to size a new value without what the
    session holds already)."""
    names, left_out = labels or {}, set(skip)
    seen = set() if seen is None else seen
    sizes = {str(k): size_of(v, shared=shared, _seen=seen) for k, v in state.items()
             if k not in left_out}
    ordered = tuple(sorted(sizes.items(), key=lambda kv: -kv[1]))
    return MemoryUse(sum(sizes.values()), ordered, tuple(names.items()))


def session_cap_mb(study_dir: str | Path | None = None) -> float:
    """The per-session memory cap in MB (module docstring; 0 = none). A value that is not a
    non-negative number is refused with the setting named."""
    from data_loaders import guard

    section = guard.server_config(study_dir).get("sessions", {})
    raw: Any = section.get("memory_mb", DEFAULT_CAP_MB) if isinstance(section, Mapping) \
        else DEFAULT_CAP_MB
    where = "server.toml [sessions] memory_mb"
    if os.environ.get("CART_SESSION_MEMORY_MB", "").strip():
        raw, where = os.environ["CART_SESSION_MEMORY_MB"].strip(), "CART_SESSION_MEMORY_MB"
    try:
        cap = float(raw)
    except (TypeError, ValueError):
        cap = -1.0
    if isinstance(raw, bool) or cap < 0:
        raise ValueError(f"{where} = {raw!r} is not a size in MB; give a number such as "
                         f"{DEFAULT_CAP_MB:g} (0: no cap)")
    return cap


def refusal(what: str, *, adding: int, use: MemoryUse, cap_mb: float) -> str:
    """Why `what` was not kept: what the session holds and what to remove."""
    return (f"Not kept: {what} needs {adding / _MB:,.1f} MB and this session already holds "
            f"{use.mb:,.0f} MB of the {cap_mb:,.0f} MB each session may hold on this server "
            f"({use.largest()}). Remove kept cell sets or uploads you no longer need (or "
            "keep a smaller selection), then try again; the server's administrator sets the "
            "cap (server.toml [sessions] memory_mb).")


def eviction_note(dropped: Iterable[str], *, use: MemoryUse, cap_mb: float) -> str:
    """What was dropped to bring the session back under its cap, and what still holds it."""
    names = ", ".join(dropped)
    over = use.mb > cap_mb
    return (f"This session held more than the {cap_mb:,.0f} MB each session may hold on this "
            f"server; {names} {'was' if ',' not in names else 'were'} cleared (made again "
            "by selecting again)."
            + (f" It still holds {use.mb:,.0f} MB ({use.largest()}): remove kept cell sets "
               "or uploads you no longer need." if over else ""))


def to_evict(sizes: Mapping[str, int], order: Iterable[str], *, excess: int) -> list[str]:
    """The entries of `order` (droppable entries, first to go first) to drop to free at
    least `excess` bytes (all of them when that is not enough)."""
    out, freed = [], 0
    for key in order:
        if freed >= excess:
            break
        if key in sizes:
            out.append(key)
            freed += sizes[key]
    return out


# ---- in a page run ------------------------------------------------------------------------------
_DROPPABLE = "_droppable"            # keys that can be made again, first to go first
# the figures shown, for export (components/render.py): specs from the shared view cache
SHARED_KEYS = ("_figure_registry", "_figure_registry_study")
LABELS = {"il-sets": "kept cell sets", "il-selection": "the current selection",
                 "il-user-sets": "your gene sets"}


def _cap(study_dir: Path | None) -> float:
    try:
        return session_cap_mb(study_dir)
    except ValueError as exc:        # a broken setting: say so, apply the default
        st.warning(f"{exc}; using {DEFAULT_CAP_MB:g} MB.")
        return DEFAULT_CAP_MB


def memory_use(*, seen: set[int] | None = None,
               replacing: tuple[str, Any] | None = None) -> MemoryUse:
    """What this session holds (`session_memory.MemoryUse`); the shared study is not
    counted, nor the figures shown (`render`'s registry for export): those are the view
    cache's objects, shared by every session (their data frames and the cell numbers in
    their parameters), at most a fixed number of them, and nothing the user can remove."""
    from components.session import CONTEXT_KEY
    from data_loaders import Study

    state = st.session_state.to_dict()
    if replacing is not None and isinstance(state.get(replacing[0]), Mapping):
        # (key, name): the entry `name` of the mapping at `key` (a kept cell set) is replaced
        state[replacing[0]] = {k: v for k, v in state[replacing[0]].items()
                               if k != replacing[1]}
    return account(state, labels=LABELS, skip=(CONTEXT_KEY, _DROPPABLE, *SHARED_KEYS),
                   shared=(Study,), seen=seen)


def room_for(value: Any, *, what: str, study_dir: Path | None = None,
             replacing: tuple[str, Any] | None = None) -> bool:
    """Whether `value` fits under this session's memory cap next to what it holds (objects
    it holds already count once); when not, a warning says what holds the memory.
    `replacing` (key, name): `value` replaces the entry `name` of the mapping at `key`
    (`st.session_state["il-sets"]["CD8"]`), which then does not count."""
    cap = _cap(study_dir)
    if cap <= 0:
        return True
    seen: set[int] = set()
    use = memory_use(seen=seen, replacing=replacing)
    adding = size_of(value, _seen=seen)
    if use.total + adding <= cap * 1024 * 1024:
        return True
    st.warning(refusal(what, adding=adding, use=use, cap_mb=cap))
    return False


def keep(key: str, value: Any, *, what: str, droppable: bool = False,
         study_dir: Path | None = None,
         on_refusal: Literal["restore", "clear"] = "restore") -> bool:
    """`st.session_state[key] = value` when it fits under the session's memory cap (the entry
    it replaces does not count); else a warning (`room_for`) and False, the entry it would
    have replaced kept ("restore") or removed ("clear": a selection the chart no longer
    shows must not stay active). `droppable`: the value can be made again (a selection), so
    a session past its cap loses it first."""
    old = st.session_state.pop(key, None)
    if not room_for(value, what=what, study_dir=study_dir):
        if old is not None and on_refusal == "restore":
            st.session_state[key] = old
        elif on_refusal == "clear":
            st.session_state[_DROPPABLE] = [k for k in st.session_state.get(_DROPPABLE, [])
                                            if k != key]
        return False
    st.session_state[key] = value
    order = [k for k in st.session_state.get(_DROPPABLE, []) if k != key]
    st.session_state[_DROPPABLE] = [*order, key] if droppable else order
    return True


def enforce_cap(study_dir: Path | None = None) -> None:
    """Bring a session past its cap back under it: drop its droppable entries, oldest first,
    and say what was dropped and what still holds the memory (every page run calls this)."""
    cap = _cap(study_dir)
    if cap <= 0:
        return
    use = memory_use()
    excess = use.total - int(cap * 1024 * 1024)
    if excess <= 0:
        return
    dropped = to_evict(use.sizes(), st.session_state.get(_DROPPABLE, []), excess=excess)
    for key in dropped:
        st.session_state.pop(key, None)
    st.session_state[_DROPPABLE] = [k for k in st.session_state.get(_DROPPABLE, [])
                                    if k not in dropped]
    after = memory_use() if dropped else use
    if dropped:
        st.warning(eviction_note([LABELS.get(k, k) for k in dropped], use=after, cap_mb=cap))
    else:
        st.warning(f"This session holds {use.mb:,.0f} MB, more than the {cap:,.0f} MB each "
                   f"session may hold on this server ({use.largest()}): remove kept cell sets "
                   "or uploads you no longer need; nothing more can be kept until then.")
