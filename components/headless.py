"""The files `cli.py export` writes without a browser window: the standard deck (PPTX, PDF or a
ZIP of SVGs), the patient profiles (a PDF, one page per patient) and one view's figure or
table, as the app's "Show the code" command names it (`--view outcomes.survival`).

The drawing needs the export server (components.export): each function starts it for the run
when none is running and stops it after, leaving a caller's server alone. Progress shows as
bars on stderr, what was written on `out` (stdout). A request that cannot be met raises
`ExportRequestError` (a ValueError) saying what to give instead; no Chromium raises
`components.export.ExportUnavailable`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from analysis.cohort import Cohort
    from data_loaders import Study

__all__ = ["ExportRequestError", "DeckFormat", "VIEW_FORMATS", "cohort_of", "write_deck",
           "write_profiles", "write_view"]

DeckFormat = Literal["pptx", "pdf", "zip"]
VIEW_FORMATS = (".json", ".csv", ".html", ".png", ".svg", ".pdf")


class ExportRequestError(ValueError):
    """An export that cannot be made as asked; the message says what to give instead."""


@contextmanager
def _export_server(browser: str | None) -> Iterator[None]:
    from components import export

    started = not export.export_server_running()
    export.start_export_server(browser)
    try:
        yield
    finally:
        if started:  # one export server per run; leave a caller's server running
            export.stop_export_server()


def cohort_of(study: Study, *, patients: Sequence[str] = (), groups: Sequence[str] = (),
              days: str | None = None, colour_by: str | None = None) -> Cohort:
    """The cohort `--patients`, `--groups` (each a list of names, commas allowed in an
    item), `--days` ("lo:hi" or a window name) and `--colour-by` name; an unknown patient or
    group, or a window that is none, is an ExportRequestError listing the choices."""
    from analysis.cohort import Cohort
    from analysis.vocab import RESPONSE_GROUPS, DayWindow

    ids = [p for item in patients for p in item.split(",") if p]
    if unknown := [p for p in ids if p not in study.subject_ids]:
        raise ExportRequestError(f"unknown patient(s) {', '.join(unknown)}; the study has "
                                 f"{', '.join(study.subject_ids)}")
    names = [g for item in groups for g in item.split(",") if g]
    if bad := [g for g in names if g not in RESPONSE_GROUPS]:
        raise ExportRequestError(f"unknown group(s) {', '.join(bad)}; choose from "
                                 f"{', '.join(RESPONSE_GROUPS)}")
    try:
        window = DayWindow.parse(days)
    except ValueError as err:
        raise ExportRequestError(f"--days {days!r}: {err}") from None
    return Cohort.of(subjects=ids, groups=names, days=window, colour_by=colour_by)


def write_deck(study: Study, cohort: Cohort, out: Path, *, fmt: DeckFormat | None = None,
               title: str | None = None, title_slide: bool = True,
               footer: bool | None = None, browser: str | None = None,
               stream: IO[str] | None = None) -> None:
    """The standard deck (views.DECK) of `study` for `cohort` into `out`: `fmt` from its
    suffix unless given (.pdf, .zip, else pptx), a title slide unless not `title_slide`, the
    provenance footer on every figure (default: for pdf and zip)."""
    from tqdm import tqdm

    from components import deck, export
    from views.deck import DECK

    stream = stream or sys.stdout
    fmt = fmt or {".pdf": "pdf", ".zip": "zip"}.get(out.suffix.lower(), "pptx")
    with _export_server(browser):
        notes: list[str] = []
        with tqdm(total=len(DECK), desc="building figures", unit="fig") as bar:
            slides = deck.standard_slides(study, cohort, on_skip=notes.append,
                                          progress=bar.update)
        for note in notes:
            print(f"note: {note}", file=stream)
        if not slides:
            raise ExportRequestError(f"no standard figure could be built for {study.study_id}")
        prov = export.Provenance.of(study, cohort, figure=title or study.title,
                                    params={"format": fmt, "cohort": cohort.describe()})
        first = deck.title_slide(study, cohort, title=title) if title_slide else None
        build = {"pptx": deck.build_pptx, "pdf": deck.build_pdf, "zip": deck.build_svg_zip}
        with tqdm(total=len(slides), desc=f"drawing {fmt}", unit="slide") as bar:
            data = build[fmt](slides, title=first, provenance=prov, progress=bar.update,
                              footer=footer if footer is not None else fmt != "pptx")
        out.write_bytes(data)
    n = len(slides) + (0 if first is None else 1)
    print(f"wrote {n} slides ({fmt}, {len(data) / 1e6:.1f} MB) to {out}", file=stream)


def write_profiles(study: Study, cohort: Cohort, out: Path, *,
                   criteria: Literal["NIH", "BSH"] = "NIH", fmt: DeckFormat | None = None,
                   browser: str | None = None, stream: IO[str] | None = None) -> None:
    """One PDF page per patient of `cohort` (the Patient page's lanes and facts, response by
    `criteria`) into `out` (a .pdf)."""
    from tqdm import tqdm

    from analysis.cohort import cohort_subjects, response_groups
    from components import export, profiles
    from views import patient as vp

    stream = stream or sys.stdout
    if out.suffix.lower() != ".pdf" or fmt not in (None, "pdf"):
        raise ExportRequestError("--patient-profiles writes a PDF: give --out NAME.pdf")
    subjects = cohort_subjects(response_groups(study), cohort)
    if not subjects:
        raise ExportRequestError(f"no patient of {study.study_id} is in the cohort "
                                 f"{cohort.describe()}")
    params = vp.PatientParams(subject_id="", criteria=criteria)
    with _export_server(browser):
        specs = []
        for sid in tqdm(subjects, desc="building profiles", unit="patient"):
            specs.extend(vp.profile_slides(study, cohort=cohort, params=params,
                                           subjects=[sid]))
        prov = export.Provenance.of(study, cohort, figure="Patient profiles",
                                    params={"criteria": criteria, "patients": subjects})
        with tqdm(total=len(specs), desc="drawing pdf", unit="page") as bar:
            data = profiles.build_profiles_pdf(specs, provenance=prov, progress=bar.update)
        out.write_bytes(data)
    print(f"wrote {len(specs)} patient profile pages (pdf, {len(data) / 1e6:.1f} MB) to "
          f"{out}", file=stream)


def write_view(study: Study, cohort: Cohort, out: Path, *, view: str,
               params: str | None = None, key: str | None = None,
               browser: str | None = None, stream: IO[str] | None = None) -> None:
    """One view's figure or table (views.code names it, `params` as JSON, `key` for a view
    that makes several) into `out`: .json (plotly JSON), .csv (the data), .html, or .png,
    .svg, .pdf (drawn by the export server)."""
    from components import export
    from views import code

    stream = stream or sys.stdout
    suffix = out.suffix.lower()
    if suffix not in VIEW_FORMATS:
        raise ExportRequestError(f"--out {out}: with --view write one of "
                                 f"{', '.join(VIEW_FORMATS)}")
    try:
        fn = code.resolve(view)
        parsed = code.params_from(fn, params)
        kwargs = {"cohort": cohort} if parsed is None else {"cohort": cohort, "params": parsed}
        spec = code.pick(fn(study, **kwargs), key)
    except code.CodeError as err:
        raise ExportRequestError(f"--view {view}: {err}") from None
    if spec is None:
        raise ExportRequestError(f"{study.study_id} has no data for the view {view} "
                                 f"(cohort {cohort.describe()})")
    fig = getattr(spec, "fig", None)
    if suffix == ".csv":
        if spec.data is None:
            raise ExportRequestError(f"{view} has no data table behind its figure")
        out.write_bytes(export.csv_bytes(spec.data))
    elif fig is None:
        raise ExportRequestError(f"{view} makes a table: write it with --out NAME.csv")
    elif suffix == ".json":
        out.write_text(fig.to_json(), encoding="utf-8")
    elif suffix == ".html":
        fig.write_html(out, include_plotlyjs="cdn")
    else:
        with _export_server(browser):
            prov = export.Provenance.of(study, cohort, params=parsed, figure=spec.title)
            out.write_bytes(export.export_figure(fig, suffix[1:], provenance=prov))
    print(f"wrote {spec.title} ({view}) to {out}", file=stream)
