"""The one place that shows a figure or a result table, with the same download row everywhere.

`show_figure(fig, key=..., name=..., data=...)` draws a plotly figure and offers it as PNG, SVG
and PDF (presentation template, provenance inside; drawn only when clicked) and the data behind
it as formula-safe CSV; `show_table` does the same for a result table. Pages never call
`st.plotly_chart` themselves. Every figure shown is remembered in the session's figure registry
(`shown_figures()`), from which the Slides page builds decks. The export server (one headless
Chromium per process) is kept with `st.cache_resource`; without Chromium the app still runs and
the download row says what to install.

Every figure is drawn without live links from its data (`components.safe.unlink_figure`), and
every download writes a line to the access log (`audit`, `audited`) with the user, client
address and session tag that app.py recorded for the session.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, is_dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from components import access, export, session
from components.clickable import clickable_cells
from components.export import csv_bytes
from components.safe import md, unlink_figure
from views.spec import FigureSpec

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["show", "show_figure", "show_table", "show_params", "show_rules", "show_code", "shown_figures", "as_shown",
           "export_server", "export_blocker", "figure_provenance", "set_audit_identity",
           "audit", "audited", "current_viewer"]

# no camera button in the plotly toolbar: the PNG button below makes the same picture with its
# provenance inside and a line in the access log
_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["toImage"]}


def _file_stem(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).strip("_") or "fig"


# ---- access log --------------------------------------------------------------------------------
_AUDIT_KEY = "_audit_identity"
_VIEWER_KEY = "_viewer"
_WRITE_LOCK = threading.Lock()


def set_audit_identity(*, user: str | None, client: str | None, session: str | None,
                       viewer: access.Viewer | None = None) -> None:
    """Who this session is, for every log line it writes and for permission checks on pages
    (app.py calls this on each run, after the login and the proxy check)."""
    st.session_state[_AUDIT_KEY] = (user, client, session)
    st.session_state[_VIEWER_KEY] = viewer


def current_viewer() -> access.Viewer | None:
    """The viewer app.py proved for this run (OIDC login or proven proxy user), or None."""
    return st.session_state.get(_VIEWER_KEY)


def _identity() -> tuple[str | None, str | None, str | None]:
    try:
        return st.session_state.get(_AUDIT_KEY, (None, None, None))
    except Exception:  # noqa: BLE001 - outside a script run (a download callback thread)
        return (None, None, None)


def _write(line: str) -> None:
    # one write per line under a lock: sessions run in threads and lines must not interleave
    with _WRITE_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def audit(event: str, **fields: Any) -> None:
    """Write one access-log line for this session (stdout, the service's journal)."""
    user, client, session = _identity()
    _write(access.event_line(event, user=user, client=client, session=session, **fields))


def _study_name() -> str | None:
    ctx = session.current()
    return ctx.study.name if ctx is not None else None


def audited(fn: Callable[[], Any], *, event: str = "download", **fields: Any
            ) -> Callable[[], Any]:
    """`fn` (a download button's deferred data) that first logs `event` with `fields`. The
    identity is taken now, in the script run: the download itself runs in another thread."""
    user, client, session = _identity()
    fields.setdefault("study", _study_name())

    def run() -> Any:
        _write(access.event_line(event, user=user, client=client, session=session, **fields))
        return fn()

    return run


# ---- export server and figure registry --------------------------------------------------------
@st.cache_resource(show_spinner=False, on_release=lambda _path: export.stop_export_server())
def export_server() -> str:
    """The process-wide export server (one headless Chromium), started on the first export.
    Raises export.ExportUnavailable (not cached) when there is no Chromium."""
    return export.start_export_server()


def export_blocker() -> str | None:
    """Why PNG/SVG/PDF files cannot be made here (what to install), or None."""
    return export.export_unavailable_reason()


_REGISTRY_KEY = "_figure_registry"
_REGISTRY_STUDY_KEY = "_figure_registry_study"
_REGISTRY_MAX = 60


def shown_figures(study: Study = None) -> list[FigureSpec]:
    """Figures shown in this session (latest version of each key, in first-shown order), as
    the views made them (FigureSpec, with its view, Params and cohort); only those of `study`
    when given."""
    registry: dict[str, FigureSpec] = st.session_state.get(_REGISTRY_KEY, {})
    if study is None:
        return list(registry.values())
    of_study = st.session_state.get(_REGISTRY_STUDY_KEY, {})
    return [spec for key, spec in registry.items() if of_study.get(key) == study.cache_key]


def as_shown(fig: go.Figure) -> go.Figure:
    """`fig` as the page draws it: no live links from data, µg and µL in the units."""
    from components.theme import display_units

    shown = unlink_figure(fig)
    if shown is fig:   # a copy: the view's figure may be cached and shared between sessions
        shown = go.Figure(fig)
    display_units(shown)
    return shown


def _figure_title(fig: go.Figure, name: str) -> str:
    text = fig.layout.title.text if fig.layout.title else None
    text = re.sub(r"<[^>]+>", " ", text or "").strip()
    return re.sub(r"\s+", " ", text) or name.replace("_", " ")


def _register(spec: FigureSpec, key: str) -> None:
    ctx = session.current()
    registry: dict[str, FigureSpec] = st.session_state.setdefault(_REGISTRY_KEY, {})
    of_study: dict[str, str] = st.session_state.setdefault(_REGISTRY_STUDY_KEY, {})
    if spec.cohort is None and not spec.view and ctx is not None:
        spec = replace(spec, cohort=ctx.cohort)
    registry[key] = replace(spec, key=key)
    of_study[key] = ctx.study.cache_key if ctx is not None else ""
    while len(registry) > _REGISTRY_MAX:
        of_study.pop(registry.pop(next(iter(registry))).key, None)


def figure_provenance(title: str, params: Any = None, ctx: Any = None) -> export.Provenance:
    """Provenance of a figure made on the current page (study, cohort, parameters)."""
    ctx = ctx if ctx is not None else session.current()
    if ctx is None:
        return export.Provenance(params=export.params_dict(params), figure=title)
    return export.Provenance.of(ctx.study, ctx.cohort, params=params, figure=title)


def _figure_file(fig: go.Figure, fmt: str, title: str, params: Any, ctx: Any) -> bytes:
    # runs on click, outside the script thread: everything it needs is passed in
    export_server()
    return export.export_figure(fig, fmt, provenance=figure_provenance(title, params, ctx))


def _download_row(fig: go.Figure, *, key: str, stem: str, title: str, params: Any,
                  data: pl.DataFrame | None) -> None:
    blocker = export_blocker()
    row = st.container(horizontal=True, gap="small", key=f"{key}-downloads")
    ctx = session.current()
    for fmt in export.FIGURE_FORMATS:
        if blocker:
            row.download_button(fmt.upper(), data=b"", key=f"{key}-{fmt}", disabled=True,
                                help=blocker, icon=":material/image:")
        else:
            row.download_button(fmt.upper(),
                                data=audited(partial(_figure_file, fig, fmt, title, params,
                                                     ctx), file=f"{stem}.{fmt}", format=fmt),
                                file_name=f"{stem}.{fmt}", mime=export.MIME[fmt],
                                key=f"{key}-{fmt}", on_click="ignore", icon=":material/image:",
                                help=f"{fmt.upper()} in the presentation template, with "
                                     "provenance (study, cohort, parameters) inside")
    if data is not None:
        row.download_button("Data (CSV)",
                            data=audited(partial(csv_bytes, data), file=f"{stem}.csv",
                                         format="csv"),
                            file_name=f"{stem}.csv", mime="text/csv", key=f"{key}-csv",
                            on_click="ignore", icon=":material/download:")
    if blocker:
        row.caption(blocker)


def show_figure(fig: go.Figure, *, key: str, name: str, data: pl.DataFrame | None = None,
                params: Any = None, on_select: str | None = None,
                selection_mode: Iterable[str] = ("box", "lasso"),
                register: bool = True, spec: FigureSpec | None = None,
                opens_patient: bool = False) -> Any:
    """Draw `fig` with a download row (PNG, SVG, PDF; data as CSV) and remember it for the
    Slides page (unless `register=False`; `spec` is the view's record it came from). Returns
    the selection state when `on_select="rerun"`, else None. `opens_patient=True` (a
    per-patient figure whose traces carry the subject_id first in `customdata`): a click on a
    patient's point opens the Patient page on that patient."""
    if opens_patient and not on_select:
        on_select, selection_mode = "rerun", ("points",)
    shown = as_shown(fig)   # no live links, µg and µL (the data keeps ASCII), here and in files
    kwargs: dict[str, Any] = {"key": key, "config": _CONFIG, "theme": None}
    if on_select:
        kwargs.update(on_select=on_select, selection_mode=tuple(selection_mode))
    ctx = session.current() if opens_patient else None
    # a heatmap cell cannot be clicked: its patients' cells get click targets on screen only
    drawn = clickable_cells(shown, subjects=ctx.subjects) if ctx is not None else shown
    event = st.plotly_chart(drawn, **kwargs)
    title = _figure_title(shown, name)
    _download_row(shown, key=key, stem=_file_stem(name), title=title, params=params, data=data)
    if register:
        _register(spec if spec is not None else
                  FigureSpec(key=key, title=title, fig=fig, data=data, params=params), key)
    if ctx is not None:
        session.open_clicked_patient(event, subjects=ctx.subjects, fig=fig)
    return event if on_select else None


TABLE_FULL_ROWS = 60


def show_table(df: pl.DataFrame, *, key: str, name: str, height: int | str = "auto",
               column_config: dict | None = None) -> None:
    """A result table with its CSV download. Decimal columns show 5 significant digits on
    screen (p-values, AUCs and VAFs alike); the CSV keeps full precision."""
    from components.theme import column_label, display_frame

    # empty cells blank (not "None"), units with the micro sign (theme.display_frame)
    view = display_frame(df, keep=column_config or ())
    # labels with units on screen (the CSV keeps the column names); every row visible up to
    # TABLE_FULL_ROWS rows (a grid that scrolls hides rows a reader does not know are there)
    shown = {c: st.column_config.NumberColumn(column_label(c), format="%.5g")
             if t in (pl.Float32, pl.Float64) else st.column_config.Column(column_label(c))
             for c, t in view.schema.items()}
    for c, cfg in (column_config or {}).items():
        # a page's own format keeps the label with units unless it names one itself
        if isinstance(cfg, dict) and not cfg.get("label"):
            cfg = {**cfg, "label": column_label(c)}
        shown[c] = cfg
    if height == "auto" and df.height <= TABLE_FULL_ROWS:
        height = 35 * (df.height + 1) + 3
    # a missing number is a blank cell, not "None" (captions say "empty = not reached")
    st.dataframe(view, key=key, height=height, hide_index=True, column_config=shown,
                 placeholder="")
    st.download_button("Table (CSV)",
                       data=audited(partial(csv_bytes, df), file=f"{_file_stem(name)}.csv",
                                    format="csv"),
                       file_name=f"{_file_stem(name)}.csv", mime="text/csv", key=f"{key}-csv",
                       on_click="ignore", icon=":material/download:")


def show_params(params: Any) -> None:
    """The page's parameters (a frozen dataclass), so a figure can be made again."""
    values = asdict(params) if is_dataclass(params) else dict(params)
    with st.expander("Parameters of this view"):
        st.json(values, expanded=True)


def show_rules(rules: Any, *, names: Iterable[str] | None = None, key: str = "rules") -> None:
    """'Rules used' on a clinical page: the settings that decided what the page shows (value,
    default, source) and the study.toml `[rules]` snippet that reproduces them. `rules` is an
    `analysis.rules.Rules`; `names` limits the list to the settings this page depends on."""
    rows = rules.rows()
    if names is not None:
        wanted = list(names)
        rows = sorted((r for r in rows if r["setting"] in wanted),
                      key=lambda r: wanted.index(r["setting"]))
    changed = [r["setting"] for r in rows if r["value"] != r["default"]]
    label = "Rules used" + (f" ({len(changed)} changed from the defaults)" if changed else "")
    with st.expander(label):
        # a static table wraps the help and source text instead of cutting it off
        st.table(pl.DataFrame(rows, schema={"setting": pl.String, "value": pl.String,
                                            "default": pl.String, "help": pl.String,
                                            "source": pl.String}).rename(
            {"setting": "Setting", "value": "Value", "default": "Default",
             "help": "Meaning", "source": "Source"}))
        snippet = rules.toml_snippet(names=[r["setting"] for r in rows])
        st.caption("To make these the study's settings, put this in its study.toml:")
        st.code(snippet, language="toml")


def show(spec: Any, *, key: str, name: str | None = None, title: bool = True,
         on_select: str | None = None, selection_mode: Iterable[str] = ("box", "lasso"),
         opens_patient: bool = False, register: bool = True) -> Any:
    """Show a view's record: a FigureSpec (figure with its downloads) or a TableSpec (title
    unless `title=False`, table with its CSV), then its caption and "Show the code". `name`
    (the download file stem) defaults to "<study>_<spec key>". Returns the selection state of
    a figure shown with `on_select="rerun"`. `opens_patient=True` on a per-patient figure: a
    click on a patient's point opens the Patient page on that patient (see `show_figure`);
    `register=False` keeps a figure off the Slides page."""
    name = name or f"{_study_name() or 'study'}_{spec.key}"
    event = None
    if getattr(spec, "fig", None) is not None:
        event = show_figure(spec.fig, key=key, name=name, data=spec.data, params=spec.params,
                            on_select=on_select, selection_mode=selection_mode, spec=spec,
                            opens_patient=opens_patient, register=register)
    else:
        if title:
            st.markdown(f"**{md(spec.title)}**")
        show_table(spec.data, key=key, name=name)
    if spec.caption:
        st.caption(spec.caption)
    show_code(spec)
    return event


def show_code(spec: Any) -> None:
    """"Show the code": the Python snippet and the `cli.py export --view` command that make
    this record again from the study folder (views.code)."""
    ctx = session.current()
    if not getattr(spec, "view", "") or ctx is None:
        return
    from views import code

    with st.expander("Show the code", icon=":material/code:"):
        st.caption("Python, run from the app's folder, writes the same "
                   + ("figure (plotly JSON)" if getattr(spec, "fig", None) is not None
                      else "table (CSV)") + ":")
        st.code(code.snippet(spec, ctx.study.path), language="python")
        st.caption("The same from the command line (.png, .svg, .pdf or .html for --out "
                   "draw the figure):")
        st.code(code.command(spec, ctx.study.path), language="bash")
