"""The standard slide deck: which views, with which Params, in which order (`DECK`).

`cli.py export`, `components.deck.standard_slides` and the Slides page build the deck from
this list, calling the same view functions the pages call, so a slide is the page's figure for
the same Params. A view returns None when the study lacks the data; the deck leaves that slide
out and says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from views import (
    blood_counts,
    kinetics,
    landscape,
    omics_slides,
    outcomes,
    overview,
    safety,
    toxicity,
)
from views.spec import FigureSpec

if TYPE_CHECKING:
    from analysis.cohort import Cohort
    from data_loaders import Study

__all__ = ["DeckSlide", "DECK", "slide", "build"]


@dataclass(frozen=True)
class DeckSlide:
    """One slide of the standard deck: `view(study, cohort=..., params=params)`."""

    key: str
    title: str
    view: Callable[..., Any]
    params: Any = None

    def build(self, study: Study, cohort: Cohort | None = None, *,
              call: Callable[..., Any] | None = None) -> FigureSpec | None:
        """The slide's figure for `study` and `cohort`, or None when the study lacks its
        data. The record keeps the view's name, Params and cohort; its key is the slide's.
        `call(view, study, cohort=..., params=...)` runs the view (the app passes its view
        cache, components.session.cached_view); by default it is called directly."""
        if call is None:
            spec = self.view(study, cohort=cohort, params=self.params) \
                if self.params is not None else self.view(study, cohort=cohort)
        else:
            spec = call(self.view, study, cohort=cohort, params=self.params)
        if isinstance(spec, (list, tuple)):
            spec = spec[0] if spec else None
        return None if spec is None else dataclasses.replace(spec, key=self.key)


DECK: tuple[DeckSlide, ...] = (
    DeckSlide("swimmer", "Follow-up, responses and events per patient", overview.swimmer,
              overview.SwimmerParams()),
    DeckSlide("blood_counts", "Blood counts: ANC, platelets, haemoglobin",
              blood_counts.counts, blood_counts.CountParams(analytes=("ANC", "PLT", "HGB"))),
    DeckSlide("orr", "Overall response rate", outcomes.orr_figure, outcomes.ORRParams()),
    DeckSlide("survival", "Overall and progression-free survival", outcomes.survival,
              outcomes.SurvivalParams(endpoints=("OS", "PFS"))),
    DeckSlide("kinetics", "CAR-T expansion and persistence", kinetics.curve,
              kinetics.CurveParams(assay="CAR_QPCR")),
    DeckSlide("cytokines", "IL-6 and CRS after infusion", safety.cytokine_slide,
              safety.CytokineSlideParams()),
    DeckSlide("crs_ae", "CRS, ICANS and adverse events", toxicity.safety_overview),
    DeckSlide("embedding", "Immune landscape by cell type", omics_slides.embedding,
              omics_slides.EmbeddingSlideParams()),
    DeckSlide("composition", "Cell-type composition per sample", landscape.composition,
              landscape.CompositionParams()),
    DeckSlide("compare-volcano", "Responders vs non-responders: top comparisons",
              omics_slides.comparison),
    DeckSlide("clones", "Somatic clones and TCR repertoire", omics_slides.clones),
)


def slide(key: str) -> DeckSlide:
    """The deck slide named `key`."""
    for s in DECK:
        if s.key == key:
            return s
    raise KeyError(f"no standard slide {key!r}; the deck has {', '.join(s.key for s in DECK)}")


def build(study: Study, cohort: Cohort | None = None, *, keys: Any = None) -> list[FigureSpec]:
    """Every slide the study has data for (or those named in `keys`), in deck order."""
    wanted = set(keys) if keys is not None else None
    out = []
    for s in DECK:
        if wanted is None or s.key in wanted:
            spec = s.build(study, cohort)
            if spec is not None:
                out.append(spec)
    return out
