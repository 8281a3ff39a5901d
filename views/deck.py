"""The standard slide deck: which page figure, with which Params, in which order (`DECK`).

Every slide is a figure a page draws: its view is the one the page calls and its Params are
the ones the page makes (at its defaults, or with the options `page_options` name), so the
deck, the Slides page, `cli.py export` and the page cannot drift (tests/test_views_deck.py
opens each page and compares). `cli.py export`, `components.deck.standard_slides` and the
Slides page build the deck from this list. A view that returns None, or says through
ValueError that it cannot be drawn (no data, a comparison without two groups), leaves its
slide out; the deck says so: a view's ValueError comes out of `DeckSlide.build` as
`SlideSkipped` with the view's message ("DESeq2 needs at least 2 patients in each group"),
which the Slides page and `cli.py export` show; any other error is raised as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from views import (
    blood_counts,
    clones,
    compare,
    kinetics,
    landscape,
    landscape_raster,
    outcomes,
    overview,
    safety,
)
from views.spec import FigureSpec

if TYPE_CHECKING:
    from analysis.cohort import Cohort
    from data_loaders import Study

__all__ = ["DeckSlide", "DECK", "SlideSkipped", "slide", "build"]

ParamsOf = Callable[["Study", "Cohort | None"], Any]


class SlideSkipped(Exception):
    """A slide the study and cohort cannot draw; the message says why (the view's own)."""


@dataclass(frozen=True)
class DeckSlide:
    """One slide of the standard deck: the figure `page` shows under the key `page_key`,
    made by `view(study, cohort=..., params=...)`.

    `params` are fixed Params; `params_of(study, cohort)` instead gives the Params the page
    opens with when they depend on the study (the first embedding, the default comparison
    layer, the most recurrent genes of the cohort), None when the study has nothing for it.
    `page_options` are the page's widget values (query parameters of a link) that give these
    Params, where they are not the page's defaults; `options_of(study, cohort)` adds those
    that depend on the study. `view_of(study)` names the view when the page calls another
    for some studies (the Immune landscape draws a raster of every cell above the study's
    raster_above)."""

    key: str
    title: str
    view: Callable[..., Any]
    params: Any = None
    page: str = ""
    page_key: str = ""
    params_of: ParamsOf | None = None
    page_options: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    options_of: Callable[[Study, Cohort | None], Mapping[str, str | tuple[str, ...]]] | None \
        = None
    view_of: Callable[[Study], Callable[..., Any]] | None = None

    def view_for(self, study: Study) -> Callable[..., Any]:
        """The view the page calls for `study` (see the class docstring)."""
        return self.view_of(study) if self.view_of is not None else self.view

    def params_for(self, study: Study, cohort: Cohort | None = None) -> Any:
        """The slide's Params for `study` and `cohort` (see the class docstring)."""
        return self.params_of(study, cohort) if self.params_of is not None else self.params

    def options_for(self, study: Study, cohort: Cohort | None = None
                    ) -> dict[str, str | tuple[str, ...]]:
        """The page's widget values (query parameters) that draw this slide."""
        extra = self.options_of(study, cohort) if self.options_of is not None else {}
        return {**self.page_options, **extra}

    def build(self, study: Study, cohort: Cohort | None = None, *,
              call: Callable[..., Any] | None = None, params: Any = None
              ) -> FigureSpec | None:
        """The slide's figure for `study` and `cohort`, or None when the study lacks its
        data (or the figure would be empty); `SlideSkipped` with the view's message when the
        view says through ValueError why it cannot draw it. The record keeps the view's
        name, Params and cohort; its key and title are the slide's.
        `params` replace the slide's own (a page's choice drawn on a slide). `call(view,
        study, cohort=..., params=...)` runs the view (the app passes its view cache,
        components.session.cached_view); by default it is called directly."""
        if params is None:
            params = self.params_for(study, cohort)
            if params is None and self.params_of is not None:
                return None
        view = self.view_for(study)
        try:
            if call is not None:
                spec = call(view, study, cohort=cohort, params=params)
            elif params is not None:
                spec = view(study, cohort=cohort, params=params)
            else:
                spec = view(study, cohort=cohort)
        except ValueError as err:  # the view's way of saying why it cannot draw this
            raise SlideSkipped(str(err) or f"{type(err).__name__} in {self.key}") from err
        if isinstance(spec, (list, tuple)):
            spec = spec[0] if spec else None
        if spec is None or not spec.fig.data:   # nothing drawn for this cohort: no slide
            return None
        return dataclasses.replace(spec, key=self.key, title=self.title)


# ---- the Params the pages open with, where they depend on the study ------------------------
def _embedding(study: Study, cohort: Cohort | None
               ) -> landscape.LandscapeParams | landscape_raster.RasterParams | None:
    """Immune landscape: single-cell RNA on the study's first embedding, by cell type, cell
    types labelled (the page's "Label cell types" on); every cell, as the raster the page
    draws above the study's raster_above."""
    if landscape.RNA not in landscape.sources(study) or not (bases := landscape.bases(study)):
        return None
    params = landscape.LandscapeParams(landscape.RNA, bases[0], label_types=True)
    return landscape_raster.RasterParams(params) if landscape_raster.use_raster(study) \
        else params


def _embedding_view(study: Study) -> Callable[..., Any]:
    return landscape_raster.raster if landscape_raster.use_raster(study) else \
        landscape.embedding


def _comparison(study: Study, cohort: Cohort | None) -> compare.CompareParams | None:
    """Responders vs non-responders: the page's default layer at D28, the study's FDR rules."""
    if (layer := compare.default_layer(study)) is None:
        return None
    rules = compare.rules(study)
    return compare.CompareParams(layer, fdr_across_windows=rules.fdr_across_windows,
                                 defining_in_fdr=rules.defining_in_fdr)


def _somatic(study: Study, cohort: Cohort | None) -> clones.SomaticParams | None:
    """Clones & repertoire: the cohort's 9 most recurrent mutated genes, linear VAF axis."""
    if not study.has("mutations"):
        return None
    return clones.SomaticParams(tuple(clones.somatic_genes(study, cohort=cohort)[:9]))


def _cytokine_options(study: Study, cohort: Cohort | None) -> dict[str, str]:
    analyte = safety.slide_analyte(study)
    return {"saf-coh-analytes": analyte} if analyte else {}


def _repertoire(study: Study, cohort: Cohort | None) -> clones.RepertoireParams | None:
    """Clones & repertoire: depth-matched clonality, when a TCR sample of the cohort falls in
    its day window (the page's condition for drawing it)."""
    if not study.has("tcr") or not clones.repertoire_patients(study, cohort=cohort):
        return None
    return clones.RepertoireParams()


def _cytokine(study: Study, cohort: Cohort | None) -> safety.CohortCytokineParams | None:
    """Cytokines & safety, across the cohort: the first of IL-6, IFN-gamma, CRP and ferritin
    the study measured, one panel per patient with CRS and ICANS shaded, days -7 to 28."""
    analyte = safety.slide_analyte(study)
    return None if analyte is None else safety.CohortCytokineParams(
        analytes=(analyte,), show="panels")


DECK: tuple[DeckSlide, ...] = (
    DeckSlide("swimmer", "Follow-up, responses and events per patient", overview.swimmer,
              overview.SwimmerParams(), page="pages/overview.py", page_key="ov-swimmer"),
    DeckSlide("blood_counts", "Blood counts: ANC, platelets, haemoglobin",
              blood_counts.counts, blood_counts.CountParams(analytes=("ANC", "PLT", "HGB")),
              page="pages/blood_counts.py", page_key="bc-counts"),
    DeckSlide("orr", "Overall response rate", outcomes.orr_figure, outcomes.ORRParams(),
              page="pages/outcomes.py", page_key="out-orr"),
    DeckSlide("survival", "Overall and progression-free survival", outcomes.survival,
              outcomes.SurvivalParams(endpoints=("OS", "PFS")), page="pages/outcomes.py",
              page_key="out-km", page_options={"out-endpoint": ("OS", "PFS")}),
    DeckSlide("kinetics", "CAR-T expansion and persistence", kinetics.curve,
              kinetics.CurveParams(assay="CAR_QPCR"), page="pages/kinetics.py",
              page_key="kin-curve"),
    DeckSlide("cytokines", "Cytokine and CRS course per patient", safety.cohort_cytokines,
              params_of=_cytokine, page="pages/safety.py", page_key="saf-coh-cytokines",
              page_options={"saf-coh-show": "panels"}, options_of=_cytokine_options),
    DeckSlide("crs_icans", "CRS and ICANS: patients by maximum grade", safety.incidence,
              safety.CrsParams(), page="pages/safety.py", page_key="saf-incidence"),
    DeckSlide("adverse_events", "Adverse events by worst grade", safety.adverse_event_figure,
              safety.AdverseEventParams(), page="pages/safety.py", page_key="saf-ae-bars"),
    DeckSlide("embedding", "Immune landscape by cell type", landscape.embedding,
              params_of=_embedding, page="pages/immune_landscape.py", page_key="il-embedding",
              page_options={"il-labels": "true"}, view_of=_embedding_view),
    DeckSlide("composition", "Cell-type composition per sample", landscape.composition,
              landscape.CompositionParams(), page="pages/immune_landscape.py",
              page_key="il-comp"),
    DeckSlide("compare-volcano", "Responders vs non-responders: volcano", compare.volcano,
              params_of=_comparison, page="pages/compare.py", page_key="cmp-volcano"),
    DeckSlide("clones", "Somatic clones: VAF over time", clones.vaf, params_of=_somatic,
              page="pages/clones.py", page_key="cln-vaf"),
    DeckSlide("repertoire", "TCR repertoire: depth-matched clonality", clones.repertoire_metric,
              params_of=_repertoire, page="pages/clones.py", page_key="cln-rarefied"),
)


def slide(key: str) -> DeckSlide:
    """The deck slide named `key`."""
    for s in DECK:
        if s.key == key:
            return s
    raise KeyError(f"no standard slide {key!r}; the deck has {', '.join(s.key for s in DECK)}")


def build(study: Study, cohort: Cohort | None = None, *, keys: Any = None) -> list[FigureSpec]:
    """Every slide the study has data for (or those named in `keys`), in deck order; slides
    the views say they cannot draw (`SlideSkipped`) are left out."""
    wanted = set(keys) if keys is not None else None
    out = []
    for s in DECK:
        if wanted is None or s.key in wanted:
            try:
                spec = s.build(study, cohort)
            except SlideSkipped:
                continue
            if spec is not None:
                out.append(spec)
    return out
