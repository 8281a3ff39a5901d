"""The Slides page's recipe: the list of figures a deck can hold (the standard deck,
`views.DECK`, then the figures shown on other pages in this session) and the slides for the
ticked rows, each a `FigureSpec` as the view made it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from views.deck import DECK, slide
from views.spec import FigureSpec

if TYPE_CHECKING:
    from analysis.cohort import Cohort
    from data_loaders import Study

__all__ = ["SlidesParams", "ROW_SCHEMA", "rows", "slides", "deck_bytes"]

ROW_SCHEMA = {"include": pl.Boolean, "order": pl.Int64, "title": pl.String, "source": pl.String,
              "id": pl.String}


@dataclass(frozen=True)
class SlidesParams:
    """The ticked figures in order ("std:KEY" for the standard deck, "page:KEY" for a figure
    shown on a page), the deck's title, title slide, format and footer."""

    figures: tuple[str, ...]
    deck_title: str
    title_slide: bool = True
    format: Literal["pptx", "pdf", "zip"] = "pptx"
    footer: bool = False


def rows(shown: Mapping[str, FigureSpec]) -> pl.DataFrame:
    """One row per figure: the standard deck ticked, then the shown figures unticked."""
    out = [{"include": True, "order": i + 1, "title": s.title, "source": "standard figure",
            "id": f"std:{s.key}"} for i, s in enumerate(DECK)]
    out += [{"include": False, "order": len(out) + j + 1, "title": f.title,
             "source": f"shown on a page ({f.key})", "id": fid}
            for j, (fid, f) in enumerate(shown.items())]
    return pl.DataFrame(out, schema=ROW_SCHEMA)


def slides(study: Study, *, cohort: Cohort | None, chosen: Sequence[tuple[str, str | None]],
           shown: Mapping[str, FigureSpec], call: Callable[..., Any] | None = None
           ) -> list[FigureSpec]:
    """The slides for (id, title) rows: a standard figure built for the cohort (left out
    when the study lacks its data; `call` runs its view, see DeckSlide.build), a shown figure
    as it was drawn (its caption says so when it was made for another cohort). A title given
    replaces the figure's."""
    from components.deck import slide_from_spec

    described = cohort.describe() if cohort is not None else "all patients"
    out = []
    for fid, title in chosen:
        if fid.startswith("std:"):
            spec = slide(fid[4:]).build(study, cohort, call=call)
            if spec is None:
                continue
        elif fid in shown:
            spec = slide_from_spec(shown[fid])
            made_for = spec.cohort.describe() if spec.cohort is not None else "all patients"
            if made_for != described:
                spec = dataclasses.replace(
                    spec, caption=f"{spec.caption} · cohort: {made_for}".strip(" ·"))
        else:
            continue
        out.append(dataclasses.replace(slide_from_spec(spec), title=title or spec.title))
    return out


def deck_bytes(study: Study, *, cohort: Cohort | None, chosen: Sequence[tuple[str, str | None]],
               shown: Mapping[str, FigureSpec], params: SlidesParams) -> bytes:
    """The deck file (`params.format`: pptx, pdf or zip of SVGs) of the chosen slides, with
    the title slide and provenance `params` ask for. The figures are drawn by the export
    server, which the caller starts (components.render.export_server)."""
    from components import deck, export

    chosen_slides = slides(study, cohort=cohort, chosen=chosen, shown=shown)
    prov = export.Provenance.of(study, cohort, params=dataclasses.asdict(params),
                                figure=params.deck_title)
    title = deck.title_slide(study, cohort, title=params.deck_title) \
        if params.title_slide else None
    build = {"pptx": deck.build_pptx, "pdf": deck.build_pdf, "zip": deck.build_svg_zip}
    return build[params.format](chosen_slides, title=title, provenance=prov,
                                footer=params.footer)
