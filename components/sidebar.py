"""The sidebar and the URL: study picker, cohort filter and every page option in the query
string, so a link reproduces the exact view.

One job: the sidebar's widgets and the query string they read and write.

Cohort parameters: `study` (a study's name under STUDIES_ROOT), `patients` (comma list),
`groups` (comma list of response groups), `days` ("lo:hi", either side may be empty), `colour`
(`patient` or `response_group`: how per-patient figures colour the patients). Page
options: each widget a page links with `linked(key, ...)` is written under its key (e.g.
`kin-assay=CAR_QPCR`; lists and ranges as repeated parameters). A link naming
something this study does not have (a patient, a group, a gene, a day outside the study) says
so where it would have applied, instead of silently showing something else.

`app.py` calls `sidebar(page=...)` before the page runs and `finish_url(...)` after it; pages
call `components.session.context(applies=...)` and wrap their widget keys in `linked`:

    assay = st.selectbox("Assay", assays, key=sidebar.linked("kin-assay", options=assays))
    log_y = st.toggle("Log axis", value=True, key=sidebar.linked("kin-log", kind=bool))
    window = st.slider("Days", -30, 365, (0, 28),
                       key=sidebar.linked("kin-days", kind=int, shape="range",
                                          bounds=(-30, 365)))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from analysis.cohort import GROUPS, Cohort, cohort_subjects, response_groups
from analysis.vocab import COLOUR_BY, DayWindow
from components import render, session
from components.links import Options, Shape, choices, decode_option, encode_option, same_text
from components.safe import md
from components.theme import group_patient_colors, patient_colors
from data_loaders import Study, StudyError
from data_loaders.worker import load_failure

if TYPE_CHECKING:
    from streamlit.runtime.state.common import WidgetMetadata

__all__ = ["sidebar", "linked", "from_link", "begin_url", "finish_url", "COHORT_PARAMS"]

COHORT_PARAMS = ("study", "patients", "groups", "days", "colour")
FOCUS_PARAMS = ("focus", "focus-days", "focus-label")
_RUN_KEY = "_url_run"          # this run's linked options (sidebar() starts it afresh)
_NOTES_KEY = "_url_notes"      # what a link asked for and the study lacks, per widget key
_LINK_KEY = "_url_link"        # the query string the session was opened with
_COHORT_NOTE_KEY = "_f_link_note"
_PRESET_KEY = "_url_kept"      # linked keys always written (their default is not known)
_WIDGETS = ("f-patients", "f-groups", "f-days", "f-colour")


@dataclass
class _Option:
    key: str
    param: str
    options: tuple[Any, ...] | None
    kind: type
    shape: Shape
    first: bool = False           # its widget shows for the first time in this session
    from_link: bool = False       # the session's link set it


@dataclass
class _Link:
    page: str                     # the page the session was opened on
    params: dict[str, str]        # the query string it was opened with
    said: set[str] = field(default_factory=set)   # options already named as not applied


@dataclass
class _Run:
    page: str
    opened: bool = False          # the session's first run: the link's focus applies
    options: dict[str, _Option] = field(default_factory=dict)    # param -> option


# ---- page options <-> URL ------------------------------------------------------------------
def _run() -> _Run:
    run = st.session_state.get(_RUN_KEY)
    if run is None:
        run = _Run(page="")
        st.session_state[_RUN_KEY] = run
    return run


def linked(key: str, *, options: Options | None = None, kind: type = str,
           shape: Shape = "one", bounds: tuple[Any, Any] | None = None,
           param: str | None = None, label: str | None = None,
           study_default: bool = False) -> str:
    """`key`, linked to the URL: pass it as the widget's `key=`. On a fresh session the
    widget starts from the link's value (query parameter `param`, default the key); after the
    page ran, the widget's value is written back, so the address bar always holds the view.

    `options` are the widget's choices (values are matched by their text; a Literal alias of
    a closed vocabulary gives its values, so a link naming anything else is named and not
    applied); without them the value is parsed as `kind` (str, int, float, bool) and clamped
    into `bounds` (needed for sliders). `shape`: "one" value, "many" (multiselect, pills), "range" (a two-ended slider).
    A value the study lacks is named on the page (above the widget) while the widget still
    shows what was used instead; `label` names the option in that note (default: the key).
    `study_default`: the widget's default is computed from the study (its data or its
    `[rules]` in study.toml), so the value always stays in the link: left out, the same link
    would reopen on whatever the study's default is then (tests/test_sidebar.py checks that
    every such option says so)."""
    param = param or key
    if study_default:
        st.session_state.setdefault(_PRESET_KEY, set()).add(key)
    opts = choices(options)
    notes: dict[str, dict[str, Any]] = st.session_state.setdefault(_NOTES_KEY, {})
    option = _Option(key, param, opts, kind, shape, first=_widget_meta(key) is None)
    _run().options[param] = option
    if key not in st.session_state:
        raw = st.query_params.get_all(param)
        option.from_link = bool(raw)
        if raw:
            value, problems = decode_option(raw, shape=shape, options=opts, kind=kind,
                                            bounds=bounds)
            usable = value is not None and not (shape == "many" and not value and problems)
            if usable or (shape == "one" and not problems):
                st.session_state[key] = value
            if problems:
                notes[key] = {"text": f"The link sets {label or key} to "
                                      f"{'; '.join(problems)}: this study or view does not "
                                      "have that, so it is not applied.",
                              "value": _UNSEEN}
    note = notes.get(key)
    if note is not None:
        if note["value"] is _UNSEEN or st.session_state.get(key) == note["value"]:
            st.warning(md(note["text"]), icon=":material/link_off:")
        else:
            notes.pop(key)   # the user chose something else: the note no longer applies
    return key


def from_link(key: str) -> bool:
    """Whether linked option `key` took its value from the session's link in this run (its
    widget had no value yet and the link named one)."""
    return any(o.key == key and o.from_link for o in _run().options.values())


def _widget_meta(key: str) -> WidgetMetadata | None:
    """The registration of the widget keyed `key` in this session (None before it first
    showed). Streamlit keeps it in its SessionState, which `st.session_state` wraps; its own
    query-parameter binding (`bind="query-params"`, which cannot say what a link lacks) reads
    the widget's default from it the same way."""
    ctx = get_script_run_ctx()
    state = vars(ctx.session_state).get("_state") if ctx is not None else None
    try:
        widget_id = state.get_widget_id_from_key(key)
        return state.get_widget_metadata(widget_id) if widget_id is not None else None
    except (AttributeError, KeyError, TypeError):
        return None


def _at_default(opt: _Option, value: Any) -> bool:
    """Whether `value` is what option `opt`'s widget shows without a value of its own, so a
    link may leave it out and still reopen the same view: the widget's default in this run
    (what `deserializer(None)` gives). Never for an option whose value the page chooses
    itself (a default computed from the study, set before the widget first shows: then its
    first value is not the widget's default) or whose first value came from a link (the
    page's own default was never seen): those stay in links."""
    kept: set[str] = st.session_state.setdefault(_PRESET_KEY, set())
    meta = _widget_meta(opt.key)
    if meta is None:
        return False
    try:
        default = meta.deserializer(None)
    except (TypeError, ValueError, IndexError, KeyError):
        return False
    at_default = same_text(value, default, shape=opt.shape, options=opt.options)
    if opt.from_link or (opt.first and not at_default):
        kept.add(opt.key)
    return at_default and opt.key not in kept


class _Unseen:
    def __repr__(self) -> str:
        return "<not yet shown>"


_UNSEEN = _Unseen()


def begin_url(*, page: str = "") -> None:
    """Start a run's page options (`sidebar()` calls this first): `page` (its URL path) owns
    the options linked until `finish_url`."""
    st.session_state[_RUN_KEY] = _Run(page=page, opened=_LINK_KEY not in st.session_state)
    if _LINK_KEY not in st.session_state:
        # what the session was opened with and on which page, to name a link's options that
        # page does not have
        st.session_state[_LINK_KEY] = _Link(page, {k: ",".join(st.query_params.get_all(k))
                                                   for k in st.query_params})


def finish_url(*, completed: bool) -> None:
    """After the page ran: write every linked option's value into the query string and drop
    options of other pages. When the run `completed` (it was not cut short by a rerun), also
    drop options this page did not draw, and name those the opening link set but no page
    has."""
    run = st.session_state.get(_RUN_KEY)
    if run is None:
        return
    notes: dict[str, dict[str, Any]] = st.session_state.get(_NOTES_KEY, {})
    for param, opt in run.options.items():
        if opt.key in notes and notes[opt.key]["value"] is _UNSEEN:
            notes[opt.key]["value"] = st.session_state.get(opt.key)
        if opt.key not in st.session_state:
            continue
        if _at_default(opt, st.session_state[opt.key]):
            # short links: an option at its default is left out (a fresh session shows it)
            if param in st.query_params:
                del st.query_params[param]
            continue
        want = encode_option(st.session_state[opt.key], shape=opt.shape, options=opt.options)
        have = st.query_params.get_all(param)
        if (want if isinstance(want, list) else [want]) != have:
            st.query_params[param] = want
    _write_focus()
    if not completed:
        return
    link: _Link = st.session_state.get(_LINK_KEY) or _Link("", {})
    unused = [p for p in st.query_params if p not in COHORT_PARAMS + FOCUS_PARAMS
              and p not in run.options]
    named = [p for p in unused if p in link.params and p not in link.said]
    if named:
        with st.sidebar:
            st.warning(md("The link sets " + ", ".join(f"{p}={link.params[p]!r}" for p in named)
                          + ", which this page does not have; not applied."),
                       icon=":material/link_off:")
        link.said.update(named)
    for p in unused:
        # the link's own options stay while its page is open (the address still says what
        # was asked for); options of pages left behind go
        if p not in link.params or run.page != link.page:
            del st.query_params[p]


# ---- the sidebar ---------------------------------------------------------------------------
def _groups_of(study: Study, *, cohort: Cohort | None, params: None) -> pl.DataFrame:
    """Each patient's response group (analysis.cohort), through the view cache."""
    return response_groups(study)


def sidebar(*, may_open: Callable[[Path], bool] | None = None,
            page: str = "") -> session.PageContext | None:
    """Draw the study picker and cohort filter and record the page context of this run.
    `may_open(folder)` (the per-study allow-list) hides studies the viewer may not open;
    `page` (the page's URL path) owns the page options linked in this run."""
    begin_url(page=page)
    session.set_context(None)
    listed = session.available_studies()
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
        index = names.index(wanted) if wanted in names else session.first_loadable(names, studies)
        if wanted and wanted not in names:
            shown, reason = session.refusal(wanted, listed)
            if st.session_state.get("_refused_study") != wanted:
                st.session_state["_refused_study"] = wanted
                render.audit("refusal", study=wanted[:200], reason=reason)
            st.warning(md(f"{shown}; showing {names[index]!r}."))
        if len(names) > 1:
            name = st.selectbox("Study", names, index=index, key="f-study")
        else:
            name = names[0]
        try:
            study = session.load_study(studies[name])
        except StudyError as err:
            st.error(md(f"Study {name!r} cannot be opened: {err}"))
            return None
        if (failure := load_failure(study)) is not None:
            st.error(md(f"Study {name!r}: {failure.message}"))
        st.caption(f"**{md(study.title)}**  \n{md(study.study_id)} · "
                   f"{len(study.subject_ids)} patients")
        groups = session.cached_view(_groups_of, study, cohort=None, params=None)
        cohort = _cohort_widgets(study, groups)
        subjects = tuple(cohort_subjects(groups, cohort))
        by_group = (cohort.colour_by or _study_colour_by(study)) == "response_group"
        ctx = session.PageContext(study, cohort, groups, subjects,
                                  group_patient_colors(groups) if by_group
                                  else patient_colors(study.subject_ids))
        st.caption(_size_line(ctx))
    _write_cohort(name if len(names) > 1 or qp.get("study") else None, cohort)
    _log_filter_change(name, cohort)
    if st.session_state[_RUN_KEY].opened:
        _focus_from_link(study)
    session.set_context(ctx)
    return ctx


def _size_line(ctx: session.PageContext) -> str:
    """"**3 of 5 patients** · days 0..90" under the filter."""
    days = ctx.cohort.days
    return f"**{ctx.size()}** · " + \
        ("all days" if days.is_everything else f"days {days.text.replace(':', '..')}")


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
                 groups=list(cohort.groups),
                 days=None if cohort.days.is_everything else cohort.days.text)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _day_range(study: Study) -> tuple[int, int]:
    """The slider's ends: the study's measured days (day 0 = infusion)."""
    days = study.measurements.get_column("day") if study.has("measurements") else None
    lo = int(days.min()) if days is not None and days.len() and days.min() is not None else -30
    hi = int(days.max()) if days is not None and days.len() and days.max() is not None else 365
    return lo, max(hi, lo + 1)


def _study_colour_by(study: Study) -> str:
    """The study's `[display] colour_patients_by` ("patient" when unset or not understood: the
    views say what is wrong with it)."""
    display = (getattr(study, "config", None) or {}).get("display", {}) or {}
    mode = display.get("colour_patients_by", "patient")
    return mode if mode in COLOUR_BY else "patient"


def _cohort_widgets(study: Study, groups: pl.DataFrame) -> Cohort:
    qp = st.query_params
    all_ids = study.subject_ids
    present_groups = [g for g in GROUPS if g in set(groups.get_column("response_group"))]
    if st.session_state.get("_f_study") != str(study.path):
        # another study: its patients and days differ, so the widgets start again from the URL
        for key in _WIDGETS:
            st.session_state.pop(key, None)
        st.session_state["_f_study"] = str(study.path)
    notes = []
    if "f-patients" not in st.session_state:
        asked = _split(qp.get("patients"))
        st.session_state["f-patients"] = [s for s in asked if s in all_ids]
        if missing := [s for s in asked if s not in all_ids]:
            notes.append(f"patient{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)} (not in this study)")
    if "f-groups" not in st.session_state:
        asked = _split(qp.get("groups"))
        st.session_state["f-groups"] = [g for g in asked if g in present_groups]
        if missing := [g for g in asked if g not in present_groups]:
            notes.append(f"response group{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)} (no patient of this study is in it)")
    lo_all, hi_all = _day_range(study)
    if "f-days" not in st.session_state:
        try:
            asked = DayWindow.parse(qp.get("days"))
        except ValueError:
            notes.append(f"days {qp.get('days')!r} (not a window lo:hi)")
            asked = DayWindow()
        lo, hi = asked.lo, asked.hi
        # a link made on another study may name days outside this one's range: clamp both ends
        new_lo = lo_all if lo is None else min(max(lo, lo_all), hi_all)
        new_hi = hi_all if hi is None else max(min(hi, hi_all), new_lo)
        if (lo is not None and lo != new_lo) or (hi is not None and hi != new_hi):
            notes.append(f"days {asked.text} (this study has days "
                         f"{lo_all}..{hi_all}; "
                         f"{new_lo}..{new_hi} used)")
        st.session_state["f-days"] = (new_lo, new_hi)
    study_colour = _study_colour_by(study)
    if "f-colour" not in st.session_state:
        asked = qp.get("colour")
        if asked is not None and asked not in COLOUR_BY:
            notes.append(f"colour {asked!r} (use {' or '.join(COLOUR_BY)})")
        st.session_state["f-colour"] = asked if asked in COLOUR_BY else study_colour
    if notes:
        st.session_state[_COHORT_NOTE_KEY] = {"text": "The link names " + "; ".join(notes) + ".",
                                              "state": None}
    st.markdown("**Cohort**")
    note = st.container()
    subjects = st.multiselect("Patients", all_ids, key="f-patients",
                              placeholder="All patients")
    chosen_groups = st.multiselect("Response group", present_groups, key="f-groups",
                                   placeholder="All groups")
    lo, hi = st.slider("Study day window", lo_all, hi_all, key="f-days",
                       help="Day 0 = CAR-T infusion")
    colour = st.radio("Colour patients by", COLOUR_BY, key="f-colour", horizontal=True,
                      format_func=lambda c: c.replace("_", " ").capitalize(),
                      help="Per-patient figures (counts, kinetics, cytokines, clones, "
                      "populations): one colour per patient, or the colour of the patient's "
                      "response group. The study's default is set in study.toml [display] "
                      "colour_patients_by.")
    if (said := st.session_state.get(_COHORT_NOTE_KEY)) is not None:
        # said until the filter is changed: then the link's cohort no longer applies
        state = (tuple(subjects), tuple(chosen_groups), (lo, hi), str(study.path))
        if said["state"] is None:
            said["state"] = state
        if said["state"] == state:
            note.warning(md(said["text"]), icon=":material/link_off:")
        else:
            st.session_state.pop(_COHORT_NOTE_KEY)
    return Cohort(
        subjects=tuple(subjects),
        groups=tuple(chosen_groups),
        days=DayWindow(None if lo <= lo_all else int(lo), None if hi >= hi_all else int(hi)),
        colour_by=None if colour == study_colour else colour,
    )


def _focus_from_link(study: Study) -> None:
    """The focus a link names (`focus` patients, `focus-days` lo:hi, `focus-label`), set when
    the session opens; patients the study lacks are named and left out."""
    asked = [s.strip() for s in (st.query_params.get("focus") or "").split(",") if s.strip()]
    if not asked:
        return
    have = [s for s in asked if s in study.subject_ids]
    problems = [f"patient{'s' if len(asked) - len(have) > 1 else ''} "
                f"{', '.join(s for s in asked if s not in have)} (not in this study)"] \
        if len(have) < len(asked) else []
    try:
        days = DayWindow.parse(st.query_params.get("focus-days"))
    except ValueError:
        problems.append(f"days {st.query_params.get('focus-days')!r} (not a window lo:hi)")
        days = DayWindow()
    if problems:
        st.sidebar.warning(md("The link's focus names " + "; ".join(problems) + "."),
                           icon=":material/link_off:")
    if have:
        session.set_focus(session.Focus(tuple(have), days,
                                        st.query_params.get("focus-label") or "focus from a link",
                                        study_key=study.cache_key))


def _write_focus() -> None:
    """The session's focus (made on another page) in the query string, so a link carries the
    highlight it shows."""
    ctx = session.current()
    focus = session.get_focus(ctx.study) if ctx is not None else None
    want = {} if focus is None else {"focus": ",".join(focus.subjects),
                                     "focus-label": focus.label}
    if focus is not None and not focus.days.is_everything:
        want["focus-days"] = focus.days.text
    for k in FOCUS_PARAMS:
        if want.get(k) != st.query_params.get(k):
            if want.get(k):
                st.query_params[k] = want[k]
            elif k in st.query_params:
                del st.query_params[k]


def _write_cohort(study_name: str | None, cohort: Cohort) -> None:
    want = {}
    if study_name:
        want["study"] = study_name
    if cohort.subjects:
        want["patients"] = ",".join(cohort.subjects)
    if cohort.groups:
        want["groups"] = ",".join(cohort.groups)
    if not cohort.days.is_everything:
        want["days"] = cohort.days.text
    if cohort.colour_by is not None:
        want["colour"] = cohort.colour_by
    for k in COHORT_PARAMS:
        if want.get(k) != st.query_params.get(k):
            if k in want:
                st.query_params[k] = want[k]
            elif k in st.query_params:
                del st.query_params[k]
