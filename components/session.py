"""This run's study, its page context, the shared focus and the one cache of view results.

- Study resolution: `available_studies()` (STUDIES_ROOT, `--study`, STUDY_DIR, else the demo),
  `load_study(folder)` (loaded once per folder and file version, in a worker process, then
  de-identified when the server says so), `reload_study()`.
- The page context: `components.sidebar.sidebar()` builds it once per run; pages call
  `context(applies=...)` first (the study, cohort, response groups, patient colours) and say
  what on the page the cohort filter applies to; `current()` is the same context for modules
  that run inside a page (render's provenance, file names).
- The focus (`Focus`): a selection made on one page that other pages highlight; kept in the
  session for the study it was made on (`get_focus`, `set_focus`).
- `cached_view(view_fn, study, cohort=..., params=..., focus=...)`: calls a view at most once
  per (view, study version, cohort, params, focus) and returns its FigureSpec / TableSpec,
  shared between reruns and sessions (read-only: callers never change a spec).
- The per-session memory cap: `context()` applies it (components/session_memory.py).
- A patient picked on any page (`open_patient(subject_id)`, or `open_clicked_patient(event)`
  for a click on a per-patient figure) opens the Patient page on that patient.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import inspect
import os
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl
import streamlit as st

from analysis.cohort import Cohort, Focus, apply_cohort
from components import access, session_memory
from components.safe import md
from data_loaders import Study, StudyError, fingerprint
from data_loaders.deid import deid_default, deidentify
from data_loaders.worker import load_failure, load_isolated

if TYPE_CHECKING:
    from collections.abc import Hashable

__all__ = ["PageContext", "Focus", "DEMO_STUDY", "available_studies", "deid_mode",
           "load_study", "reload_study", "first_loadable", "refusal", "cached_view", "view_key", "clear_views", "context",
           "current", "set_context", "get_focus", "set_focus", "FOCUS_KEY", "CONTEXT_KEY",
           "open_patient", "open_clicked_patient", "clicked_patient", "take_patient",
           "PATIENT_PAGE"]

DEMO_STUDY = Path(__file__).resolve().parent.parent / "sample_data" / "demo"
PATIENT_PAGE = "pages/patient.py"
# session-state keys tests read or set to start a page from a state
FOCUS_KEY = "_focus"                # the session's Focus
CONTEXT_KEY = "_page_context"       # this run's PageContext
_PATIENT_KEY = "_pt_pending"

Spec = TypeVar("Spec")


@dataclass(frozen=True)
class PageContext:
    """What every page starts from: the study, the sidebar's cohort, each patient's response
    group, the patients the cohort keeps and one colour per patient."""

    study: Study
    cohort: Cohort
    groups: pl.DataFrame          # subject_id, best_response, response_group, group_source
    subjects: tuple[str, ...]     # patients the cohort keeps
    colors: dict[str, str]        # subject_id -> colour (stable over the whole study)

    def apply(self, frame: pl.DataFrame, *, day_col: str | None = "day") -> pl.DataFrame:
        """Keep the cohort's patients and day window in `frame`."""
        return apply_cohort(frame, self.cohort, groups=self.groups, day_col=day_col)

    @property
    def n_total(self) -> int:
        return len(self.study.subject_ids)

    def size(self) -> str:
        """"3 of 5 patients" (the cohort's patients out of the study's)."""
        return f"{len(self.subjects)} of {self.n_total} patients"


# ---- study resolution ----------------------------------------------------------------------
def _cli_study() -> str | None:
    args = sys.argv[1:]
    for i, a in enumerate(args):
        if a == "--study" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--study="):
            return a.split("=", 1)[1]
    return None


def available_studies() -> dict[str, Path]:
    """Name -> folder of every study this server may open."""
    root = os.environ.get("STUDIES_ROOT")
    if root:
        # names only from the folders listed below the root; links leaving it are not listed
        return access.list_studies(root)
    path = Path(_cli_study() or os.environ.get("STUDY_DIR") or DEMO_STUDY).expanduser()
    return {path.resolve().name: path.resolve()}


def deid_mode() -> bool:
    """De-identified mode (data_loaders/deid.py): `DEID=1`/`DEID=0`; else STUDIES_ROOT's
    server.toml `[deid] enabled`; else on when STUDIES_ROOT is set (a shared server), off for
    a local study. The CLI follows the same rule (`deid_default`)."""
    return deid_default()


@st.cache_resource(max_entries=16, show_spinner="Loading study ...")
def _load(path: str, version: str, deid: bool) -> Study:
    # `version` is hashed (no leading underscore) so a changed file loads afresh. Loaded in a
    # worker process with memory and time limits: no file can take this server down
    study = load_isolated(path)
    return deidentify(study) if deid and load_failure(study) is None else study


def load_study(folder: Path) -> Study:
    """The study in `folder`, loaded once per version of its files (names, sizes, mtimes: a
    changed file loads afresh, no restart); de-identified when the server says so, for every
    page and export alike. Raises StudyError when the folder is not a study."""
    return _load(str(folder), fingerprint(folder), deid_mode())


def reload_study() -> None:
    """Forget the loaded studies, so the next run reads them again (after a job that wrote
    results the loader reads from the cache, e.g. gating many FCS files)."""
    _load.clear()


def first_loadable(names: list[str], studies: dict[str, Path]) -> int:
    """The default study: the first that loads. One that could not be loaded (a hostile or
    broken file) is skipped, with a warning, so it does not break every new session."""
    skipped = []
    for i, name in enumerate(names):
        try:
            failed = load_failure(load_study(studies[name])) is not None
        except StudyError:
            failed = True
        if not failed:
            if skipped:
                st.warning(md(f"Study {', '.join(map(repr, skipped))} could not be loaded (see "
                           f"its report: choose it above); showing {name!r}."))
            return i
        skipped.append(name)
    return 0


def refusal(wanted: str, listed: dict[str, Path]) -> tuple[str, str]:
    """(what the user is told, what the log records) for a URL's study name that is not
    opened. A name that is not a folder name says why; an unknown study and one the account
    may not open read the same, so a refusal does not confirm that a restricted study
    exists (the log keeps the real reason)."""
    root = os.environ.get("STUDIES_ROOT")
    unknown = f"Study refused: no study named {wanted!r} is open to your account"
    if root:
        try:
            access.resolve_study(wanted, root)
        except access.AccessError as err:
            reason = str(err)
            if reason.startswith(("no study named", f"study {repr(wanted)[:80]} is a link",
                                  f"study {repr(wanted)[:80]} resolves")):
                return unknown, reason
            return f"Study refused: {reason}", reason
    elif wanted not in listed:
        return unknown, "no such study"
    return unknown, "not on the study's [access] list"


# ---- the one cache of view results -----------------------------------------------------------
_DIGEST_OVER = 64   # tuples longer than this, of one scalar type, are keyed by a digest


def _key_of(value: Any, where: str) -> Hashable:
    """A stable, hashable key for a Params / Cohort / Focus value: dataclasses by type and
    fields, containers by items, scalars by type and value (so 2 and 2.0 differ). Frames and
    other objects without a stable value cannot be part of a view's input."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return (type(value).__name__, value)
    if isinstance(value, enum.Enum):
        return (type(value).__qualname__, value.name)
    if isinstance(value, Path):
        return ("Path", str(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__module__, type(value).__qualname__,
                tuple((f.name, _key_of(getattr(value, f.name), f"{where}.{f.name}"))
                      for f in dataclasses.fields(value)))
    if isinstance(value, (tuple, list)):
        kinds = {type(v) for v in value} if len(value) > _DIGEST_OVER else set()
        if len(kinds) == 1 and (kind := kinds.pop()) in (str, int, float, bool):
            # a long list of ids (e.g. the cells of a lasso): one digest, not one key per item
            text = "\x1f".join(map(repr, value)).encode("utf-8")
            return (type(value).__name__, kind.__name__, len(value),
                    hashlib.blake2b(text, digest_size=16).hexdigest())
        return (type(value).__name__,
                tuple(_key_of(v, f"{where}[{i}]") for i, v in enumerate(value)))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((_key_of(v, where) for v in value), key=repr)))
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((repr(k), _key_of(v, f"{where}[{k!r}]"))
                                      for k, v in value.items()), key=lambda kv: kv[0])))
    import datetime as dt

    if isinstance(value, (dt.date, dt.datetime, dt.timedelta)):
        return (type(value).__name__, value.isoformat() if hasattr(value, "isoformat")
                else str(value))
    raise TypeError(f"{where} holds a {type(value).__name__}; a view's cohort, params and "
                    "focus must be values (numbers, strings, tuples, frozen dataclasses), "
                    "not frames or objects")


def view_key(view_fn: Callable[..., Any], study: Study, *, cohort: Cohort | None,
             params: Any, focus: Focus | None = None) -> str:
    """The cache key of a view call: view, study version, cohort, params and focus."""
    name = f"{view_fn.__module__}.{view_fn.__qualname__}"
    parts = (_key_of(cohort, "cohort"), _key_of(params, "params"), _key_of(focus, "focus"))
    return f"{name}|{study.cache_key}|{parts!r}"


@functools.lru_cache(maxsize=1024)
def _takes(view_fn: Callable[..., Any]) -> frozenset[str]:
    """The keyword arguments of (cohort, params, focus) that `view_fn` takes."""
    try:
        names = inspect.signature(view_fn).parameters
    except (TypeError, ValueError):
        return frozenset(("cohort", "params", "focus"))
    return frozenset(n for n in ("cohort", "params", "focus") if n in names)


@st.cache_resource(max_entries=256, ttl=3600, show_spinner=False)
def _view_result(key: str, _view_fn: Callable[..., Any], _study: Study,
                 _kwargs: dict[str, Any]) -> Any:
    # one computation per key across sessions: cache_resource holds a lock per key
    return _view_fn(_study, **_kwargs)


def cached_view(view_fn: Callable[..., Spec], study: Study, *, cohort: Cohort | None = None,
                params: Any = None, focus: Focus | None = None) -> Spec:
    """`view_fn(study, cohort=cohort, params=params, focus=focus)` at most once per (view,
    study version, cohort, params, focus); the result (a FigureSpec, a TableSpec or a tuple of
    them) is shared between reruns and sessions, so callers must not change it.

    A view is given (and keyed by) only those of cohort, params and focus it takes, and the
    focus only when there is one; so a study-level helper of a view module (`f(study)`, e.g.
    the assays a study has) is cached the same way, and one with keyword options of its own
    gets them from `params` as a dict (`params={"per_sample": 1000}`). Raises TypeError when
    the cohort, params or focus hold something without a stable value (a frame, an open
    file): what makes a view must be written in its Params."""
    takes = _takes(view_fn)
    kwargs = {name: value for name, value in
              (("cohort", cohort), ("params", params), ("focus", focus))
              if name in takes and not (name == "focus" and value is None)}
    options = isinstance(params, dict) and "params" not in takes
    if options:
        # a helper with keyword options of its own (e.g. events per sample): they are its
        # params, keyed the same way
        kwargs.update(params)
    key = view_key(view_fn, study, cohort=kwargs.get("cohort"),
                   params=params if options else kwargs.get("params"),
                   focus=kwargs.get("focus"))
    return _view_result(key, view_fn, study, kwargs)


def clear_views() -> None:
    """Forget every cached view result (benchmarks measure cold pages with it)."""
    _view_result.clear()


# ---- page context --------------------------------------------------------------------------
def set_context(ctx: PageContext | None) -> None:
    """Record this run's page context (components.sidebar calls this once per run)."""
    st.session_state[CONTEXT_KEY] = ctx


def current() -> PageContext | None:
    """This run's page context, or None before the sidebar made one (e.g. a download thread)."""
    try:
        return st.session_state.get(CONTEXT_KEY)
    except Exception:  # noqa: BLE001 - outside a script run
        return None


def context(*, applies: str = "") -> PageContext:
    """The page context of this run; pages call this first. `applies` says what on this page
    the cohort filter applies to (patients and days), shown under the filter in the sidebar,
    e.g. "patients and days: every figure" or "patients; days: not applied (survival needs
    the whole follow-up)"."""
    ctx = current()
    if ctx is None:
        _leave_pages_folder_mode()
        st.error("No study is loaded; open the app through app.py.")
        st.stop()
    with st.sidebar:
        if applies:
            st.caption(f"On this page the cohort filter applies to {applies}.")
    session_memory.enforce_cap(ctx.study.path)
    return ctx


def _leave_pages_folder_mode() -> None:
    """A deep link (/kinetics) that is the first request after a server start runs in
    Streamlit's pages/-folder mode, which runs the page without app.py. Streamlit leaves that
    mode for good as soon as any session calls `st.navigation` ("As soon as any session of
    your app executes the st.navigation command, your app will ignore the pages/ directory
    (across all sessions)", st.navigation docs); the same URL then runs again through app.py
    (tests/test_browser_pages.py: test_deep_link_on_a_fresh_server_runs_through_app)."""
    if st.session_state.get("_left_pages_folder"):
        return     # already tried once in this session: app.py did not set a context
    st.session_state["_left_pages_folder"] = True
    page = _calling_page()
    if page is None:
        return
    # the page that runs is listed under its own URL path (so the same page hash; a default
    # page would be served at the root only): the rerun opens it again through app.py
    st.navigation([st.Page(_leaving, title="Loading", url_path="loading", default=True),
                   st.Page(page)], position="hidden")
    st.rerun()


def _leaving() -> None:   # the default page of that one navigation call (never run)
    st.caption("Loading ...")


def _calling_page() -> Path | None:
    """The pages/ script that is running (the frame that called `context()`)."""
    here = inspect.currentframe()
    frame = here.f_back if here is not None else None
    while frame is not None:
        name = frame.f_globals.get("__file__")
        if name and Path(name).parent.name == "pages":
            return Path(name)
        frame = frame.f_back
    return None


# ---- focus ---------------------------------------------------------------------------------
def get_focus(study: Study) -> Focus | None:
    """The session's focus, if it was set for this study."""
    focus = st.session_state.get(FOCUS_KEY)
    return focus if focus is not None and focus.study_key == study.cache_key else None


def set_focus(focus: Focus | None) -> None:
    """Set (or clear, with None) the focus other pages highlight."""
    st.session_state[FOCUS_KEY] = focus


# ---- a patient picked on any page ------------------------------------------------------------
def open_patient(subject_id: str) -> None:
    """Open the Patient page on `subject_id` (a click on a per-patient figure, a table)."""
    st.session_state[_PATIENT_KEY] = subject_id
    st.switch_page(PATIENT_PAGE)


def clicked_patient(event: Any, *, subjects: Collection[str], fig: Any = None) -> str | None:
    """The patient of the first clicked point of a plotly selection `event`: the first item of
    the point's `customdata` when it is one of `subjects`, else the legend group or name of
    the point's trace in `fig` (figures drawing one trace per patient), else its category on
    the y or x axis (one lane per patient, as in the swimmer plot); None otherwise."""
    from views.patient import selected_subject

    sid = selected_subject(event)
    if sid in subjects:
        return sid
    selection = event.get("selection", {}) if isinstance(event, dict) else \
        getattr(event, "selection", {})
    points = selection.get("points", []) if isinstance(selection, dict) else \
        getattr(selection, "points", [])
    traces = list(getattr(fig, "data", ()) or ())
    for point in points:
        if not isinstance(point, dict):
            continue
        names = [point.get("legendgroup")]
        k = point.get("curve_number")
        if isinstance(k, int) and 0 <= k < len(traces):
            names += [traces[k].legendgroup, traces[k].name]
        names += [point.get("y"), point.get("x")]
        for name in names:
            if isinstance(name, str) and name in subjects:
                return name
    return None


def open_clicked_patient(event: Any, *, subjects: Collection[str], fig: Any = None) -> None:
    """When a patient's point of a per-patient figure was clicked (see `clicked_patient`),
    open the Patient page on that patient; `subjects` are the patients it may open."""
    sid = clicked_patient(event, subjects=subjects, fig=fig)
    if sid is not None:
        open_patient(sid)


def take_patient() -> str | None:
    """The patient another page asked the Patient page to open (once), or None."""
    return st.session_state.pop(_PATIENT_KEY, None)
