"""The Slides page's recipe: the list of figures a deck can hold (the standard deck,
`views.DECK`, then the figures shown on other pages in this session) and the slides for the
ticked rows, each a `FigureSpec` as the view made it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from views.deck import DECK, SlideSkipped, slide
from views.spec import FigureSpec

if TYPE_CHECKING:
    from analysis.cohort import Cohort
    from data_loaders import Study

__all__ = ["SlidesParams", "ROW_SCHEMA", "listing", "shown_specs", "editor_height", "Choice",
           "choose", "DeckPlan", "plan", "slides", "deck_bytes"]

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


def listing(shown: Mapping[str, FigureSpec]) -> pl.DataFrame:
    """One row per figure: the standard deck ticked, then the shown figures unticked."""
    out = [{"include": True, "order": i + 1, "title": s.title, "source": "standard figure",
            "id": f"std:{s.key}"} for i, s in enumerate(DECK)]
    out += [{"include": False, "order": len(out) + j + 1, "title": f.title,
             "source": f"shown on a page ({f.key})", "id": fid}
            for j, (fid, f) in enumerate(shown.items())]
    return pl.DataFrame(out, schema=ROW_SCHEMA)


def shown_specs(figures: Sequence[FigureSpec], *,
                as_shown: Callable[[Any], Any] | None = None) -> dict[str, FigureSpec]:
    """The figures shown on pages as the Slides page lists them ("page:KEY" -> spec), each
    figure as the page drew it (`as_shown`: no live links, display units) so that it goes on
    a slide as it was seen."""
    return {f"page:{f.key}": dataclasses.replace(f, fig=as_shown(f.fig)) if as_shown else f
            for f in figures}


def editor_height(table: pl.DataFrame, *, row_px: int = 35) -> int:
    """Pixel height of the table editor that shows every row (no grid that hides rows)."""
    return row_px * (table.height + 1) + 3


@dataclass(frozen=True)
class Choice:
    """The ticked rows of the Slides table in slide order: (id, title) pairs."""

    rows: tuple[tuple[str, str | None], ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(fid for fid, _ in self.rows)

    def title_of(self, fid: str) -> str | None:
        """The title of the row `fid` (the preview picker shows titles)."""
        return dict(self.rows).get(fid)


def choose(edited: pl.DataFrame) -> Choice:
    """The rows ticked "On a slide", ordered by their "Order" (rows without one last, in
    table order)."""
    chosen = edited.filter(pl.col("include").fill_null(False)).sort(
        "order", nulls_last=True, maintain_order=True)
    return Choice(tuple(chosen.select("id", "title").iter_rows()))


@dataclass(frozen=True)
class DeckPlan:
    """What the deck will hold: the slides built per ticked id (empty when the figure cannot
    be built for this study and cohort), the titles left out, the slide count (title slide
    included)."""

    built: Mapping[str, list[FigureSpec]]
    skipped: tuple[str, ...]
    n_slides: int
    reasons: Mapping[str, str] = field(default_factory=dict)   # title left out: why

    def skipped_message(self, escape: Callable[[str], str] = str) -> str | None:
        """The warning for ticked figures left out, None when none is; `escape` makes each
        title safe to show (components.safe.md on a page)."""
        if not self.skipped:
            return None
        return (f"{len(self.skipped)} ticked figure(s) cannot be built for this study and "
                "cohort (their data is missing, e.g. a comparison needs both response groups) "
                "and are left out of the deck: "
                + "; ".join(escape(t or "") + (f" ({escape(self.reasons[t])})"
                                               if self.reasons.get(t) else "")
                            for t in self.skipped) + ".")


def plan(study: Study, *, cohort: Cohort | None, choice: Choice,
         shown: Mapping[str, FigureSpec], title_slide: bool = True,
         call: Callable[..., Any] | None = None) -> DeckPlan:
    """Build each ticked figure once: the count is of what the deck will hold, not of what was
    ticked (a standard figure without data for this cohort, e.g. responders vs non-responders
    with no non-responder, is left out, and said)."""
    why: dict[str, str] = {}
    built = {fid: slides(study, cohort=cohort, chosen=((fid, t),), shown=shown, call=call,
                         on_skip=why.__setitem__)
             for fid, t in choice.rows}
    skipped = tuple(t or fid for fid, t in choice.rows if not built[fid])
    reasons = {t or fid: why[fid] for fid, t in choice.rows if not built[fid] and fid in why}
    n = sum(len(b) for b in built.values()) + (1 if title_slide else 0)
    return DeckPlan(built, skipped, n, reasons)


def slides(study: Study, *, cohort: Cohort | None, chosen: Sequence[tuple[str, str | None]],
           shown: Mapping[str, FigureSpec], call: Callable[..., Any] | None = None,
           on_skip: Callable[[str, str], Any] | None = None) -> list[FigureSpec]:
    """The slides for (id, title) rows: a standard figure built for the cohort (left out
    when the study lacks its data; `call` runs its view, see DeckSlide.build), a shown figure
    as it was drawn (its caption says so when it was made for another cohort). A title given
    replaces the figure's. `on_skip(id, why)` hears the views' reasons for standard figures
    they cannot draw (views.deck.SlideSkipped)."""
    from components.deck import slide_from_spec

    described = cohort.describe() if cohort is not None else "all patients"
    out = []
    for fid, title in chosen:
        if fid.startswith("std:"):
            try:
                spec = slide(fid[4:]).build(study, cohort, call=call)
            except SlideSkipped as why:
                if on_skip is not None:
                    on_skip(fid, str(why))
                continue
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
