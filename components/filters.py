"""The sidebar: study picker and cohort filter, kept in the URL so a link reproduces a view.

Query parameters: `study` (name of a study under STUDIES_ROOT), `patients` (comma list),
`groups` (comma list of response groups), `days` ("lo:hi", either side may be empty).
`app.py` calls `sidebar()` once per run; pages call `context()` to get the study, cohort,
response groups and colours, and `compute(fn, study, **kw)` for cached analysis results.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from analysis.cohort import GROUPS, Cohort, apply_cohort, cohort_subjects, response_groups
from components import access, render
from components.safe import md
from components.theme import patient_colors
from data_loaders import Study, StudyError, fingerprint
from data_loaders.deid import deid_default, deidentify
from data_loaders.worker import load_failure, load_isolated

__all__ = ["PageContext", "Focus", "sidebar", "context", "compute", "available_studies",
           "get_focus", "set_focus", "deid_mode", "cached", "DEMO_STUDY"]

DEMO_STUDY = Path(__file__).resolve().parent.parent / "sample_data" / "demo"


@dataclass(frozen=True)
class PageContext:
    study: Study
    cohort: Cohort
    groups: pl.DataFrame          # subject_id, best_response, response_group, group_source
    subjects: tuple[str, ...]     # patients the cohort keeps
    colors: dict[str, str]        # subject_id -> colour (stable over the whole study)

    def apply(self, frame: pl.DataFrame, *, day_col: str | None = "day") -> pl.DataFrame:
        """Keep the cohort's patients and day window in `frame`."""
        return apply_cohort(frame, self.cohort, groups=self.groups, day_col=day_col)


@dataclass(frozen=True)
class Focus:
    """A selection made on one page (e.g. cells lassoed on the immune landscape) that other
    pages highlight: these patients, in this day window. Lives in the session only."""

    subjects: tuple[str, ...]
    day_min: int | None = None
    day_max: int | None = None
    label: str = ""
    study_key: str = ""

    def describe(self) -> str:
        days = "" if self.day_min is None and self.day_max is None else \
            f", days {'' if self.day_min is None else self.day_min}.." \
            f"{'' if self.day_max is None else self.day_max}"
        return f"{self.label or 'focus'}: {', '.join(self.subjects)}{days}"


def get_focus(study: Study) -> Focus | None:
    """The session's focus, if it was set for this study."""
    focus = st.session_state.get("_focus")
    return focus if focus is not None and focus.study_key == study.cache_key else None


def set_focus(focus: Focus | None) -> None:
    st.session_state["_focus"] = focus


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


def _cached_study(path: Path) -> Study:
    # the fingerprint (names, sizes, mtimes) makes a changed file load afresh, no restart;
    # every page and export sees the de-identified study when the server says so
    return _load(str(path), fingerprint(path), deid_mode())


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


# ---- URL <-> cohort ------------------------------------------------------------------------
def _split(text: str | None) -> list[str]:
    return [t for t in (text or "").split(",") if t]


def _parse_days(text: str | None) -> tuple[int | None, int | None]:
    if not text or ":" not in text:
        return None, None
    lo, hi = text.split(":", 1)
    try:
        return (int(lo) if lo.strip() else None, int(hi) if hi.strip() else None)
    except ValueError:
        return None, None


def sidebar(*, may_open: Callable[[Path], bool] | None = None) -> PageContext | None:
    """Draw the study picker and cohort filter; store the page context for this run.
    `may_open(folder)` (the per-study allow-list) hides studies the viewer may not open."""
    listed = available_studies()
    studies = {n: p for n, p in listed.items() if may_open is None or may_open(p)}
    qp = st.query_params
    with st.sidebar:
        if not studies:
            if listed and st.session_state.get("_refused_study") != "*":
                st.session_state["_refused_study"] = "*"
                render.audit("refusal", reason="no study on this server is open to the account")
            st.error("Your account may not open any study on this server; ask a study's "
                     "owner to add you to its [access] list." if listed else
                     "No study folders found. Set STUDY_DIR, --study or STUDIES_ROOT.")
            return None
        names = list(studies)
        wanted = qp.get("study")
        index = names.index(wanted) if wanted in names else _first_loadable(names, studies)
        if wanted and wanted not in names:
            shown, reason = _refusal(wanted, listed)
            if st.session_state.get("_refused_study") != wanted:
                st.session_state["_refused_study"] = wanted
                render.audit("refusal", study=wanted[:200], reason=reason)
            st.warning(md(f"{shown}; showing {names[index]!r}."))
        if len(names) > 1:
            name = st.selectbox("Study", names, index=index, key="f-study")
        else:
            name = names[0]
        try:
            study = _cached_study(studies[name])
        except StudyError as err:
            st.error(md(f"Study {name!r} cannot be opened: {err}"))
            return None
        if (failure := load_failure(study)) is not None:
            st.error(md(f"Study {name!r}: {failure.message}"))
        st.caption(f"**{md(study.title)}**  \n{md(study.study_id)} · "
                   f"{len(study.subject_ids)} patients")
        groups = compute(response_groups, study)
        cohort = _cohort_widgets(study, groups)
    _write_query_params(name if len(names) > 1 or qp.get("study") else None, cohort)
    _log_filter_change(name, cohort)
    subjects = tuple(cohort_subjects(groups, cohort))
    ctx = PageContext(study, cohort, groups, subjects, patient_colors(study.subject_ids))
    st.session_state["_page_context"] = ctx
    return ctx


def _first_loadable(names: list[str], studies: dict[str, Path]) -> int:
    """The default study: the first that loads. One that could not be loaded (a hostile or
    broken file) is skipped, with a warning, so it does not break every new session."""
    skipped = []
    for i, name in enumerate(names):
        try:
            failed = load_failure(_cached_study(studies[name])) is not None
        except StudyError:
            failed = True
        if not failed:
            if skipped:
                st.warning(md(f"Study {', '.join(map(repr, skipped))} could not be loaded (see "
                           f"its report: choose it above); showing {name!r}."))
            return i
        skipped.append(name)
    return 0


def _refusal(wanted: str, listed: dict[str, Path]) -> tuple[str, str]:
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


def _log_filter_change(study: str, cohort: Cohort) -> None:
    """One access-log line when the study or the cohort filter changes (not on every rerun)."""
    state = (study, cohort)
    if st.session_state.get("_logged_filter") == state:
        return
    first = "_logged_filter" not in st.session_state
    st.session_state["_logged_filter"] = state
    if first and cohort == Cohort():
        return   # the first view of a study with no filter is the page view itself
    render.audit("filter_change", study=study, patients=list(cohort.subjects),
                 groups=list(cohort.groups), day_min=cohort.day_min, day_max=cohort.day_max)


def _cohort_widgets(study: Study, groups: pl.DataFrame) -> Cohort:
    qp = st.query_params
    all_ids = study.subject_ids
    present_groups = [g for g in GROUPS if g in set(groups.get_column("response_group"))]
    if st.session_state.get("_f_study") != str(study.path):
        # another study: its patients and days differ, so the widgets start again from the URL
        for key in ("f-patients", "f-groups", "f-days"):
            st.session_state.pop(key, None)
        st.session_state["_f_study"] = str(study.path)
    if "f-patients" not in st.session_state:
        st.session_state["f-patients"] = [s for s in _split(qp.get("patients")) if s in all_ids]
    if "f-groups" not in st.session_state:
        st.session_state["f-groups"] = [g for g in _split(qp.get("groups"))
                                        if g in present_groups]
    st.markdown("**Cohort**")
    subjects = st.multiselect("Patients", all_ids, key="f-patients",
                              placeholder="All patients")
    chosen_groups = st.multiselect("Response group", present_groups, key="f-groups",
                                   placeholder="All groups")
    days = study.measurements.get_column("day") if study.has("measurements") else None
    lo_all = int(days.min()) if days is not None else -30
    hi_all = max(int(days.max()) if days is not None else 365, lo_all + 1)
    if "f-days" not in st.session_state:
        # a link made on another study may name days outside this one's range: clamp both ends
        lo, hi = _parse_days(qp.get("days"))
        lo = lo_all if lo is None else min(max(lo, lo_all), hi_all)
        hi = hi_all if hi is None else max(min(hi, hi_all), lo)
        st.session_state["f-days"] = (lo, hi)
    lo, hi = st.slider("Study day window", lo_all, hi_all, key="f-days",
                       help="Day 0 = CAR-T infusion")
    return Cohort(
        subjects=tuple(subjects),
        groups=tuple(chosen_groups),
        day_min=None if lo <= lo_all else int(lo),
        day_max=None if hi >= hi_all else int(hi),
    )


def _write_query_params(study_name: str | None, cohort: Cohort) -> None:
    want = {}
    if study_name:
        want["study"] = study_name
    if cohort.subjects:
        want["patients"] = ",".join(cohort.subjects)
    if cohort.groups:
        want["groups"] = ",".join(cohort.groups)
    if cohort.day_min is not None or cohort.day_max is not None:
        lo = "" if cohort.day_min is None else str(cohort.day_min)
        hi = "" if cohort.day_max is None else str(cohort.day_max)
        want["days"] = f"{lo}:{hi}"
    current = {k: st.query_params.get(k) for k in ("study", "patients", "groups", "days")}
    for k in ("study", "patients", "groups", "days"):
        if want.get(k) != current.get(k):
            if k in want:
                st.query_params[k] = want[k]
            elif k in st.query_params:
                del st.query_params[k]


def context() -> PageContext:
    """The page context set by `sidebar()` in this run (pages call this first)."""
    ctx = st.session_state.get("_page_context")
    if ctx is None:
        # On a fresh server, a deep link (/kinetics) is first run in Streamlit's legacy
        # pages/-folder mode, which runs the page without app.py. Leave that mode and run the
        # same URL again through app.py's st.navigation (streamlit 1.67 internals, pinned).
        from streamlit.runtime.pages_manager import PagesManager

        if PagesManager.uses_pages_directory:
            PagesManager.uses_pages_directory = False
            st.rerun()
        st.error("No study is loaded; open the app through app.py.")
        st.stop()
    return ctx


def reload_study() -> None:
    """Forget the loaded studies, so the next run reads them again (after a job that wrote
    results the loader reads from the cache, e.g. gating many FCS files)."""
    _load.clear()
