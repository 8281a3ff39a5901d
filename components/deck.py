"""Slide decks from figures (no streamlit): a 16:9 PowerPoint file (python-pptx), one multi-page
PDF (per-figure PDFs merged with pypdf) or a ZIP of SVG files.

Every deck starts with an optional title slide (study, date, cohort) and then has one figure
per slide, with its title and a caption built from the parameters that made it. Figures are
drawn in the presentation template by `components.export`; each slide, page and file carries
the provenance (study id, content hash, cohort, parameters, app version, date): PowerPoint in
the document properties and the speaker notes, PDF in the document information and a footer,
SVG in each file and a `provenance.json` manifest.

A slide is a view's record (`views.spec.FigureSpec`: title, figure, caption, Params, data).
`standard_slides(study, cohort)` builds the standard deck headless from `views.DECK` (the same
views the pages call), as `python cli.py export` does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import textwrap
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go

from components.export import (
    MIME,
    FigureJob,
    Provenance,
    export_figures,
    params_dict,
    pdf_add_metadata,
)
from components.theme import FONT
from views.spec import FigureSpec

if TYPE_CHECKING:
    from analysis.cohort import Cohort
    from data_loaders import Study

__all__ = ["DECK_FORMATS", "TitleSlide", "caption_from_params", "slide_from_spec",
           "standard_slides", "title_slide", "title_figure", "build_pptx", "build_pdf",
           "build_svg_zip", "build_deck", "deck_file_name"]

DECK_FORMATS = {"pptx": ("PowerPoint (16:9)", MIME["pptx"]),
                "pdf": ("PDF, one page per figure", MIME["pdf"]),
                "zip": ("ZIP of SVG files", MIME["zip"])}
_PAGE = (1280, 720)          # PDF and SVG pages (16:9)
_PICTURE = (1280, 570)       # the picture area of a PowerPoint slide below its title

Progress = Callable[[int], Any]  # called with 1 after each slide (tqdm's `update` fits)


@dataclass(frozen=True)
class TitleSlide:
    title: str
    lines: tuple[str, ...] = ()


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(_fmt(v) for v in value) if value else "all"
    if isinstance(value, Mapping):
        return "; ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


def caption_from_params(params: Any, *, limit: int = 300) -> str:
    """"analyte: CAR_QPCR · log scale: yes · window: 0, 28" from a page's parameters."""
    values = params_dict(params)
    text = " · ".join(f"{k.replace('_', ' ')}: {_fmt(v)}" for k, v in values.items()
                      if v is not None and v != "")
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def slide_from_spec(spec: FigureSpec) -> FigureSpec:
    """`spec` as a slide: its caption, else one built from its Params."""
    if spec.caption:
        return spec
    return dataclasses.replace(spec, caption=caption_from_params(spec.params))


def standard_slides(study: Study, cohort: Cohort | None = None, *,
                    keys: Iterable[str] | None = None,
                    on_skip: Callable[[str], Any] | None = None,
                    progress: Progress | None = None) -> list[FigureSpec]:
    """The standard figures (views.DECK) for `study` and `cohort`, in deck order. A view that
    returns None (the study lacks its data), says why it cannot draw the slide
    (views.deck.SlideSkipped: its message) or fails is left out and reported through
    `on_skip`."""
    from views.deck import DECK, SlideSkipped

    wanted = set(keys) if keys is not None else None
    slides = []
    for entry in DECK:
        if wanted is not None and entry.key not in wanted:
            continue
        try:
            spec = entry.build(study, cohort)
        except SlideSkipped as why:
            spec = None
            if on_skip:
                on_skip(f"skipped {entry.title!r}: {why}")
        except Exception as err:  # noqa: BLE001 - one broken figure must not sink the deck
            spec = None
            if on_skip:
                on_skip(f"skipped {entry.title!r}: {type(err).__name__}: {err}")
        else:
            if spec is None and on_skip:
                on_skip(f"skipped {entry.title!r}: the study has no data for it")
        if spec is not None:
            slides.append(slide_from_spec(spec))
        if progress:
            progress(1)
    return slides


def title_slide(study: Study, cohort: Cohort | None = None, *, title: str | None = None,
                when: dt.date | None = None) -> TitleSlide:
    """Study title, id, date and cohort."""
    described = cohort.describe() if hasattr(cohort, "describe") else (cohort or "all patients")
    when = when or dt.date.today()
    lines = (f"Study {study.study_id} · {when.isoformat()}", f"Cohort: {described}")
    return TitleSlide(title or study.title or study.study_id, lines)


def title_figure(title: TitleSlide, *, footer: str = "") -> go.Figure:
    """A title page as a figure (for PDF and SVG decks)."""
    fig = go.Figure(layout={"template": "cart", "xaxis": {"visible": False},
                            "yaxis": {"visible": False}, "paper_bgcolor": "white",
                            "plot_bgcolor": "white", "margin": {"l": 60, "r": 60}})
    head = "<br>".join(_html(line) for line in textwrap.wrap(title.title, 46)) or " "
    fig.add_annotation(text=f"<b>{head}</b>", x=0.5, y=0.62, xref="paper", yref="paper",
                       yanchor="bottom", showarrow=False, font={"size": 36, "family": FONT})
    fig.add_annotation(text="<br>".join(_html(line) for line in title.lines), x=0.5, y=0.5,
                       xref="paper", yref="paper", yanchor="top", showarrow=False,
                       font={"size": 22, "family": FONT, "color": "#444444"})
    if footer:
        fig.add_annotation(text=_html(footer), x=0, y=-0.08, xref="paper", yref="paper",
                           xanchor="left", showarrow=False, font={"size": 11, "color": "#777"})
    return fig


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _page_figure(slide: FigureSpec) -> go.Figure:
    """The slide as one page: its title on top, its caption under the plot."""
    fig = go.Figure(slide.fig)
    # room above the plot for the page title (subplot titles sit just under it)
    fig.update_layout(title={"text": _html(slide.title), "x": 0.02, "xanchor": "left",
                             "y": 0.97, "yanchor": "top"},
                      margin_t=max(fig.layout.margin.t or 0, 95))
    if slide.caption:
        bottom = fig.layout.margin.b if fig.layout.margin.b is not None else 50
        fig.update_layout(margin_b=bottom + 40)
        fig.add_annotation(text=_html(slide.caption), xref="paper", yref="paper", x=0, y=0,
                           xanchor="left", yanchor="top", yshift=-bottom - 22, showarrow=False,
                           align="left", font={"size": 13, "color": "#555555"})
    return fig


def _slide_provenance(prov: Provenance | None, slide: FigureSpec) -> Provenance:
    base = prov or Provenance()
    return base.for_figure(slide.title, slide.params)


def _untitled(fig: go.Figure) -> go.Figure:
    """The figure without its own title (a PowerPoint slide has one)."""
    out = go.Figure(fig)
    out.update_layout(title_text=None, margin_t=30)
    return out


def _page_jobs(slides: Sequence[FigureSpec], fmt: str, title: TitleSlide | None,
               provenance: Provenance | None, footer: bool) -> list[FigureJob]:
    """Full pages (PDF, SVG): the title page as drawn, then each slide in the template."""
    prov = provenance or Provenance()
    jobs = [] if title is None else [
        FigureJob(title_figure(title, footer=prov.footer()), fmt, *_PAGE,
                  provenance=prov.for_figure(title.title), template=False)]
    return jobs + [FigureJob(_page_figure(s), fmt, *_PAGE, provenance=_slide_provenance(
        provenance, s), footer=footer) for s in slides]


def _minus_title(progress: Progress | None, title: TitleSlide | None) -> Progress | None:
    """Progress counts figure slides only: the title page's step is not reported."""
    if progress is None or title is None:
        return progress
    pending = [1]

    def step(n: int) -> Any:
        skip = min(pending[0], n)
        pending[0] -= skip
        return progress(n - skip) if n - skip else None
    return step


# ---- PowerPoint -------------------------------------------------------------------------------
def build_pptx(slides: Sequence[FigureSpec], *, title: TitleSlide | None = None,
               provenance: Provenance | None = None, progress: Progress | None = None,
               footer: bool = False) -> bytes:
    """A 16:9 PowerPoint deck: title slide, then one figure per slide (title, picture,
    caption; provenance in the speaker notes and document properties)."""
    slides = [slide_from_spec(s) for s in slides]
    from pptx import Presentation
    from pptx.dml.color import RGBColor
    from pptx.util import Inches, Pt

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    margin, width = Inches(0.4), Inches(13.333 - 0.8)
    if title is not None:
        s = prs.slides.add_slide(prs.slide_layouts[0])
        head, sub = s.shapes.title, s.placeholders[1]
        head.left, head.top, head.width, head.height = margin, Inches(2.0), width, Inches(1.6)
        sub.left, sub.top, sub.width, sub.height = margin, Inches(3.8), width, Inches(1.8)
        head.text = title.title
        sub.text = "\n".join(title.lines)
        if provenance is not None:
            s.notes_slide.notes_text_frame.text = provenance.to_json()
    jobs = [FigureJob(_untitled(slide.fig), "png", _PICTURE[0], _PICTURE[1], 2,
                      _slide_provenance(provenance, slide), footer=footer) for slide in slides]
    pngs = export_figures(jobs, progress=progress)
    for slide, job, png in zip(slides, jobs, pngs, strict=True):
        prov = job.provenance
        s = prs.slides.add_slide(prs.slide_layouts[5])
        head = s.shapes.title
        head.left, head.top, head.width, head.height = margin, Inches(0.2), width, Inches(0.9)
        head.text = slide.title
        for para in head.text_frame.paragraphs:
            for run in para.runs:
                run.font.size = Pt(30)
        pic_h = int(width * _PICTURE[1] / _PICTURE[0])
        s.shapes.add_picture(io.BytesIO(png), margin, Inches(1.15), width=width, height=pic_h)
        if slide.caption:
            box = s.shapes.add_textbox(margin, Inches(1.15) + pic_h + Inches(0.05), width,
                                       Inches(0.6))
            box.text_frame.word_wrap = True
            box.text_frame.text = slide.caption
            for run in box.text_frame.paragraphs[0].runs:
                run.font.size = Pt(12)
                run.font.color.rgb = RGBColor(0x55, 0x55, 0x55)
        s.notes_slide.notes_text_frame.text = f"{prov.footer()}\n{prov.to_json()}"
    props = prs.core_properties
    if provenance is not None:
        props.title = title.title if title else provenance.study_id
        props.subject = f"study {provenance.study_id}; cohort: {provenance.cohort}"
        props.keywords = f"study={provenance.study_id}; sha256={provenance.content_hash}"
        props.comments = provenance.footer()[:255]
    props.author = props.last_modified_by = (provenance or Provenance()).app
    props.created = props.modified = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


# ---- PDF --------------------------------------------------------------------------------------
def build_pdf(slides: Sequence[FigureSpec], *, title: TitleSlide | None = None,
              provenance: Provenance | None = None, progress: Progress | None = None,
              footer: bool = True) -> bytes:
    """One PDF: a title page, then one page per figure, with a bookmark per page."""
    slides = [slide_from_spec(s) for s in slides]
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    prov = provenance or Provenance()
    pages = export_figures(_page_jobs(slides, "pdf", title, provenance, footer),
                           progress=_minus_title(progress, title))
    names = ([title.title] if title is not None else []) + [s.title for s in slides]
    for name, page in zip(names, pages, strict=True):
        writer.append(PdfReader(io.BytesIO(page)), outline_item=name, import_outline=False)
    buf = io.BytesIO()
    writer.write(buf)
    return pdf_add_metadata(buf.getvalue(), prov, title=title.title if title else None)


# ---- ZIP of SVG files -------------------------------------------------------------------------
def _safe(name: str) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).strip("_")
    return stem[:60] or "figure"


def build_svg_zip(slides: Sequence[FigureSpec], *, title: TitleSlide | None = None,
                  provenance: Provenance | None = None, progress: Progress | None = None,
                  footer: bool = True) -> bytes:
    """A ZIP with one SVG per slide (numbered in deck order) and provenance.json."""
    slides = [slide_from_spec(s) for s in slides]
    prov = provenance or Provenance()
    manifest: dict[str, Any] = {"provenance": prov.as_dict(), "files": []}
    buf = io.BytesIO()
    svgs = export_figures(_page_jobs(slides, "svg", title, provenance, footer),
                          progress=_minus_title(progress, title))
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if title is not None:
            zf.writestr("00_title.svg", svgs.pop(0))
            manifest["files"].append({"file": "00_title.svg", "title": title.title})
        for n, (slide, svg) in enumerate(zip(slides, svgs, strict=True), start=1):
            name = f"{n:02d}_{_safe(slide.key or slide.title)}.svg"
            zf.writestr(name, svg)
            manifest["files"].append({"file": name, "title": slide.title,
                                      "caption": slide.caption,
                                      "params": params_dict(slide.params)})
        zf.writestr("provenance.json", json.dumps(manifest, indent=2, ensure_ascii=False,
                                                  default=str))
    return buf.getvalue()


_BUILDERS = {"pptx": build_pptx, "pdf": build_pdf, "zip": build_svg_zip}


def build_deck(slides: Sequence[FigureSpec], fmt: str = "pptx", *,
               title: TitleSlide | None = None,
               provenance: Provenance | None = None, progress: Progress | None = None
               ) -> bytes:
    """The deck as `fmt` ("pptx", "pdf" or "zip")."""
    if fmt not in _BUILDERS:
        raise ValueError(f"unknown deck format {fmt!r}; choose one of {', '.join(_BUILDERS)}")
    return _BUILDERS[fmt](slides, title=title, provenance=provenance, progress=progress)


def deck_file_name(study_id: str, fmt: str, when: dt.date | None = None) -> str:
    when = when or dt.date.today()
    return f"{_safe(study_id)}_slides_{when.isoformat()}.{fmt}"

