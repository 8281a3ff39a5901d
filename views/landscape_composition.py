"""Recipes of the Immune landscape's composition: cell-type fractions per sample (stacked bars),
patient-level fractions by response group and day window, CD7+ T and NK cells before and after
infusion, and CAR+ T cells next to the CAR qPCR curve. Every cell is counted (never the drawn
subsample) and group comparisons take one value per patient. The standard deck's composition
slide is this view. Computations are in analysis.composition; figures in
components.figures.landscape. Every name is importable from views.landscape too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import polars as pl

from analysis import composition as comp
from analysis.cohort import Cohort, apply_cohort, response_groups
from analysis.composition import DEFAULT_WINDOWS
from analysis.kinetics import prepare_series
from analysis.rules import rules_for
from analysis.vocab import UNMAPPED
from components.figures import landscape as figs
from views import common
from views.spec import FigureSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["CompositionView", "COMPOSITION_VIEWS", "COMPOSITION_KEYS", "FLOW_ONLY_NOTE",
           "CompositionParams", "composition_per_sample", "composition"]

CompositionView = Literal["Per sample", "By response group", "CD7+ T and NK",
                          "CAR+ T cells vs qPCR"]
COMPOSITION_VIEWS: tuple[CompositionView, ...] = ("Per sample", "By response group",
                                                  "CD7+ T and NK", "CAR+ T cells vs qPCR")
COMPOSITION_KEYS: dict[CompositionView, str] = {   # the page's chart key of each view
    "Per sample": "il-comp", "By response group": "il-comp-win", "CD7+ T and NK": "il-cd7",
    "CAR+ T cells vs qPCR": "il-car"}
FLOW_ONLY_NOTE = ("Composition needs annotated single cells (obs cell_type in an .h5ad); this "
                  "study has flow cytometry events only.")


@dataclass(frozen=True)
class CompositionParams:
    """Which composition view: stacked bars per sample, patient-level fractions by response
    group and day window, CD7+ T and NK cells before and after infusion, or CAR+ T cells next
    to the qPCR curve."""

    view: CompositionView = "Per sample"


def _in_cohort(frame: pl.DataFrame, cohort: Cohort | None, groups: pl.DataFrame,
               day_col: str | None = "day") -> pl.DataFrame:
    if cohort is None or cohort == Cohort():
        return frame
    return apply_cohort(frame, cohort, groups=groups, day_col=day_col)


def composition_per_sample(study: Study, *, cohort: Cohort | None = None) -> pl.DataFrame:
    """Cell-type fractions of the cohort's samples with a `sample_label` (timepoint, else
    D<day>)."""
    data = _in_cohort(comp.cell_type_composition(study), cohort, response_groups(study))
    tp = study.samples.select("sample_id", "timepoint") if "timepoint" in study.samples.columns \
        else pl.DataFrame(schema={"sample_id": pl.String, "timepoint": pl.String})
    return data.join(tp, on="sample_id", how="left").with_columns(
        pl.coalesce("timepoint", pl.format("D{}", "day")).alias("sample_label"))


@recipe
def composition(study: Study, *, cohort: Cohort | None = None,
                params: CompositionParams = CompositionParams(), focus: Focus | None = None
                ) -> FigureSpec | None:
    """The composition view `params.view` of the cohort (all cells counted, never the drawn
    subsample; group comparisons one value per patient); None without single-cell data (the
    standard deck's composition slide is this view)."""
    if not study.has("single_cell"):
        return None
    groups = response_groups(study)
    data = composition_per_sample(study, cohort=cohort)
    if params.view == "Per sample":
        return FigureSpec("comp", "Cell-type composition per sample",
                          figs.composition_bars(data), data, params)
    if params.view == "By response group":
        by_win = comp.composition_by_window(data, groups=groups)
        fig = figs.composition_by_window_figure(by_win, window_order=[
            w.label for w in DEFAULT_WINDOWS])
        return FigureSpec("composition_by_group", "Composition by response group", fig,
                          by_win, params)
    rules = rules_for(study)
    if params.view == "CD7+ T and NK":
        change = comp.cd7_change(_in_cohort(comp.study_cd7_fractions(study), cohort, groups),
                                 groups=groups)
        lineages = comp.study_lineages(study)
        unmapped = lineages.filter(pl.col("lineage") == UNMAPPED).get_column(
            "cell_type").to_list()
        return FigureSpec(
            "cd7_change", "CD7+ T and NK cells", figs.cd7_change_figure(change), change,
            params, f"Fraction of all cells that are CD7+ (CD7 expression > "
            f"{rules.cd7_threshold:g}, rule cd7_threshold) T or NK cells; mean of each "
            "patient's samples before (day <= 0) and after infusion. T and NK cells by their "
            "cell-type names (docs/rules.md, Vocabulary)"
            + (f"; not counted, lineage unknown: {', '.join(unmapped)} (add them to "
               "cell_lineages in study.toml [rules])" if unmapped else "") + ".")
    car = _in_cohort(comp.study_car_fraction(study), cohort, groups)
    qpcr = _in_cohort(study.series(analytes=["CAR_QPCR"]), cohort, groups)
    qpcr = prepare_series(qpcr) if qpcr.height else qpcr   # below the LLOQ as on Kinetics
    return FigureSpec("car_vs_qpcr", "CAR+ T cells vs qPCR", figs.car_vs_qpcr_figure(
        car, qpcr, colors=common.colors(study, cohort)), car, params)
