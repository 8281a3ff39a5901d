"""Patient profiles as files (no streamlit): one patient's view as a PowerPoint slide, and a
multi-page PDF with one portrait page per patient (the stacked lanes need the height).

Both take finished `views.spec.FigureSpec`s (views.patient.timeline / profile_slides) and draw
them with the export machinery of components.export and components.deck, so each page carries
the provenance (study, content hash, cohort, parameters) in its metadata and footer.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

from components import deck
from components.export import FigureJob, Provenance, export_figures, pdf_add_metadata
from views.spec import FigureSpec

__all__ = ["PROFILE_PAGE", "build_patient_slide", "build_profiles_pdf"]

PROFILE_PAGE = (1240, 1754)   # A4 portrait at 150 dpi


def build_patient_slide(spec: Any, *, provenance: Provenance | None = None) -> bytes:
    """One 16:9 PowerPoint slide with the patient's figure, its title and caption."""
    return deck.build_pptx([deck.slide_from_spec(spec)], provenance=provenance)


def build_profiles_pdf(specs: Sequence[Any], *, provenance: Provenance | None = None,
                       progress: Callable[[int], Any] | None = None,
                       page: tuple[int, int] = PROFILE_PAGE) -> bytes:
    """One PDF, one page per FigureSpec (patient), each page bookmarked with its title; the
    caption (the patient's facts) is printed under the figure."""
    from pypdf import PdfReader, PdfWriter

    prov = provenance or Provenance()
    jobs = []
    for spec in specs:
        slide = deck.slide_from_spec(spec)
        jobs.append(FigureJob(_page(slide), "pdf", *page, provenance=prov.for_figure(spec.title,
                                                                              spec.params),
                              footer=True))
    pages = export_figures(jobs, progress=progress)
    writer = PdfWriter()
    for spec, raw in zip(specs, pages, strict=True):
        writer.append(PdfReader(io.BytesIO(raw)), outline_item=spec.title, import_outline=False)
    buf = io.BytesIO()
    writer.write(buf)
    return pdf_add_metadata(buf.getvalue(), prov, title="Patient profiles")


def _page(slide: FigureSpec) -> Any:
    import textwrap

    import plotly.graph_objects as go

    fig = go.Figure(slide.fig)
    fig.update_layout(height=None)
    if slide.caption:
        text = "<br>".join(textwrap.wrap(slide.caption.replace("<", "&lt;"), 150))
        bottom = fig.layout.margin.b if fig.layout.margin.b is not None else 50
        fig.update_layout(margin_b=bottom + 70)
        fig.add_annotation(text=text, xref="paper", yref="paper", x=0, y=0, xanchor="left",
                           yanchor="top", yshift=-bottom - 20, showarrow=False, align="left",
                           font={"size": 12, "color": "#555555"})
    return fig
