"""Figure files: a figure drawn as PNG, SVG or PDF in the presentation template, WebGL traces
made vector-safe, links from data unlinked, and its provenance written into the file; one at a
time or as a batch (a slide deck)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from components.export import server
from components.export.formats import FIGURE_FORMATS, SLIDE_SIZE
from components.export.metadata import (
    pdf_add_metadata,
    png_add_text,
    png_items,
    svg_add_metadata,
)
from components.export.provenance import Provenance
from components.export.template import presentation_figure
from components.export.webgl import rasterize_webgl
from components.safe import unlink_figure

__all__ = ["render_figure", "FigureJob", "export_figure", "export_figures"]


def render_figure(fig: go.Figure | dict, fmt: str, *, width: int = SLIDE_SIZE[0],
                  height: int = SLIDE_SIZE[1], scale: float = 2) -> bytes:
    """Raw kaleido output for `fig` (no template, no provenance). Vector formats at scale 1."""
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; choose one of {FIGURE_FORMATS}")
    spec = fig.to_dict() if isinstance(fig, go.Figure) else fig
    return server.call(spec, {"format": fmt, "width": width, "height": height,
                        "scale": scale if fmt == "png" else 1})


@dataclass(frozen=True)
class FigureJob:
    """One figure file to make (the arguments of `export_figure`)."""

    fig: go.Figure
    fmt: str = "png"
    width: int = SLIDE_SIZE[0]
    height: int = SLIDE_SIZE[1]
    scale: float = 2
    provenance: Provenance | None = None
    template: bool = True
    footer: bool = False
    title: str | None = None


def _prepare(job: FigureJob) -> tuple[dict, dict]:
    if job.fmt not in FIGURE_FORMATS:
        raise ValueError(f"unknown figure format {job.fmt!r}; choose one of {FIGURE_FORMATS}")
    text = job.provenance.footer() if job.footer and job.provenance else None
    out = presentation_figure(job.fig, footer=text, title=job.title, height=job.height) \
        if job.template else go.Figure(job.fig)
    if job.title is not None and not job.template:
        out.update_layout(title_text=job.title)
    if job.fmt != "png":
        out = rasterize_webgl(out, width=job.width, height=job.height, scale=job.scale)
    out = unlink_figure(out)   # an <a href> from data must not become a link in SVG/PDF
    return out.to_dict(), {"format": job.fmt, "width": job.width, "height": job.height,
                           "scale": job.scale if job.fmt == "png" else 1}


def _finish(job: FigureJob, raw: bytes) -> bytes:
    prov = job.provenance
    if prov is None:
        return raw
    if job.fmt == "png":
        return png_add_text(raw, png_items(prov))
    if job.fmt == "svg":
        return svg_add_metadata(raw, prov)
    return pdf_add_metadata(raw, prov)


def export_figure(fig: go.Figure, fmt: str = "png", *, width: int = SLIDE_SIZE[0],
                  height: int = SLIDE_SIZE[1], scale: float = 2,
                  provenance: Provenance | None = None, template: bool = True,
                  footer: bool = False, title: str | None = None) -> bytes:
    """`fig` as PNG (at `scale`), SVG or PDF in the presentation template, with `provenance`
    written into the file (and as a footer line when `footer`). `fig` is not changed."""
    job = FigureJob(fig, fmt, width, height, scale, provenance, template, footer, title)
    spec, opts = _prepare(job)
    return _finish(job, server.call(spec, opts))


def export_figures(jobs: Sequence[FigureJob], *, progress: Callable[[int], Any] | None = None
                   ) -> list[bytes]:
    """Many figure files at once (a slide deck): the same files as `export_figure`, drawn as
    batches on the server's two tabs, which is 1.5-2x faster than one by one. `progress` is
    called with the number of files finished after each batch."""
    prepared = [_prepare(job) for job in jobs]
    raw: list[bytes] = []
    for start in range(0, len(prepared), server.BATCH):
        chunk = prepared[start:start + server.BATCH]
        raw += server.call_many(chunk)
        if progress:
            progress(len(chunk))
    return [_finish(job, r) for job, r in zip(jobs, raw, strict=True)]
