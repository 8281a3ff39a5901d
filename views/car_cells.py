"""Recipes of the Immune landscape's CAR+ block (no streamlit): the CAR+ cut and its histogram,
CAR+ fraction next to qPCR, CAR+ vs CAR- phenotype and markers, the CD7 groups of endogenous T
and NK cells, and cell-type composition with uncertainty. Each takes the Study, the cohort and
a frozen Params and returns one FigureSpec or TableSpec; the records of one computation (a
figure and its test table) share it (views.shared).

The analyses are those of analysis.car_status and analysis.composition (compositional test);
every comparison is patient-level. The shared focus (`focus`) is accepted for the common call
shape; these views draw every patient of the cohort.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from analysis import car_status as cs
from analysis import composition as comp
from analysis.cohort import Cohort, apply_cohort, response_groups
from analysis.kinetics import prepare_series
from analysis.rules import Rules, rules_for
from components.figures import clones as figs
from components.figures.landscape import car_vs_qpcr_figure
from data_loaders.rules_file import save_rule_settings
from views.shared import shared
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["CarParams", "WINDOWS", "car_cut", "car_histogram", "car_fraction", "car_phenotype",
           "car_markers", "cd7_groups", "cd7_test", "CompositionParams", "composition_test",
           "composition_table", "save_car_threshold", "TRANSFORMS", "comparisons",
           "WINDOW_LABELS", "SAVE_HELP", "DEFAULT_WINDOW", "cut_value", "car_params",
           "composition_params"]

WINDOWS = {w.label: w for w in (*comp.DEFAULT_WINDOWS, comp.DayWindow(1, None, "Post-infusion"))}
Transform = Literal["clr", "logit"]
TRANSFORMS: dict[str, str] = {"clr": "centred log-ratio", "logit": "logit"}
WINDOW_LABELS: tuple[str, ...] = tuple(WINDOWS)
DEFAULT_WINDOW = "Day 1-60"     # the window the CAR+ and composition views open on


def _cohort(cohort: Cohort | None) -> Cohort:
    return cohort if cohort is not None else Cohort()


# ---- CAR+ cells ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CarParams:
    """The CAR+ cut (None: the study's rule, a mixture fit or its fixed value), the window the
    phenotype and CD7 views look at, and the marker genes compared."""

    threshold: float | None = None
    window: str = DEFAULT_WINDOW
    genes: tuple[str, ...] = cs.MARKER_GENES


def _rules(study: Study, params: CarParams) -> Rules:
    rules = rules_for(study)
    if params.threshold is None:
        return rules
    return rules.with_(car_threshold_method="fixed", car_threshold=float(params.threshold))


@shared
def _cut(study: Study, params: CarParams) -> tuple[cs.CarCut, FigureSpec | None]:
    rules = _rules(study, params)
    values, feature, source = cs.car_values(study, rules=rules)
    cut = cs.car_cut(values, feature=feature, source=source, rules=rules)
    if values is None:
        return cut, None
    hist = cs.car_histogram(values)
    n_pos = int(cs.call_car(values, cut).sum())
    fig = figs.car_histogram(hist, cut=cut.log_cut if cut.threshold > 0 or
                             cut.method == "mixture" else 0.0,
                             cut_label=f"CAR+ above {cut.threshold:.3g} counts",
                             title=f"{feature}: counts per cell ({n_pos:,} of {len(values):,} "
                                   "cells CAR+)")
    return cut, FigureSpec("car-cut", "CAR transcript counts and the CAR+ cut", fig, data=hist,
                           params=params, caption=cut.describe())


def car_cut(study: Study, *, params: CarParams = CarParams()) -> cs.CarCut:
    """The CAR+ cut of `params` (its feature is None when the study has no CAR feature; its
    note then says why)."""
    return _cut(study, params)[0]


@recipe
def car_histogram(study: Study, *, cohort: Cohort | None = None,
                  params: CarParams = CarParams(), focus: Focus | None = None) -> FigureSpec | None:
    """Histogram of log1p(CAR counts) per cell with the cut (None without a CAR feature)."""
    return _cut(study, params)[1]


def _cells(study: Study, params: CarParams) -> pl.DataFrame:
    return cs.car_cells(study, rules=_rules(study, params))


@recipe
def car_fraction(study: Study, *, cohort: Cohort | None = None,
                 params: CarParams = CarParams(), focus: Focus | None = None) -> FigureSpec:
    """CAR+ cells as % of T cells per sample (the cut of `params`), next to CAR qPCR."""
    g = response_groups(study)
    car = apply_cohort(comp.car_fraction_of_t(_cells(study, params), rules=rules_for(study)),
                       _cohort(cohort), groups=g)
    qpcr = apply_cohort(study.series(analytes=["CAR_QPCR"]), _cohort(cohort), groups=g)
    # below the LLOQ drawn as on the Kinetics page
    qpcr = prepare_series(qpcr) if qpcr.height else qpcr
    fig = car_vs_qpcr_figure(car, qpcr, title="CAR+ T cells (single-cell call) and CAR qPCR")
    return FigureSpec("car-vs-qpcr", "CAR+ fraction per sample next to qPCR", fig, data=car,
                      params=params, caption="CAR+ = the cut above; T cells by their "
                      "cell-type names (docs/rules.md, Vocabulary).")


@shared
def _phenotype(study: Study, cohort: Cohort, params: CarParams
               ) -> tuple[FigureSpec, TableSpec]:
    from analysis.embedding import gene_vector, var_names

    w = WINDOWS[params.window]
    cells = _cells(study, params)
    keep = apply_cohort(cells, cohort, groups=response_groups(study)).get_column(
        "cell").to_numpy()
    cells = cells.filter(pl.col("cell").is_in(keep))
    rules = rules_for(study)
    shares = cs.car_phenotype(cells, days=w, rules=rules)
    fig = figs.stacked_share(shares, x="subject_id", facet_col="car",
                             title=f"Cell types of CAR+ and CAR- T cells, {w.label}",
                             y_title="share of the patient's T cells")
    names = set(var_names(study))
    genes = [x for x in params.genes if x in names]
    expr = {x: gene_vector(study, gene=x)[keep] for x in genes}
    markers = cs.car_marker_comparison(cells, expression=expr, days=w, rules=rules)
    return (FigureSpec("car-phenotype", "CAR+ vs CAR- T cells: cell types", fig, data=shares,
                       params=params, caption=f"{w.label}; fraction of each patient's CAR+ "
                       "(or CAR-) T cells."),
            TableSpec("car-markers", "CAR+ vs CAR- T cells: markers, patient as the replicate",
                      markers, params=params,
                      caption="Per patient the mean log-normalised expression in CAR+ and "
                      "in CAR- T cells; median over patients; two-sided Wilcoxon signed-rank "
                      "(exact) of the paired differences; BH over the genes listed."))


@recipe
def car_phenotype(study: Study, *, cohort: Cohort | None = None,
                  params: CarParams = CarParams(), focus: Focus | None = None) -> FigureSpec:
    """Cell types of CAR+ and CAR- T cells per patient in the window."""
    return _phenotype(study, _cohort(cohort), params)[0]


@recipe
def car_markers(study: Study, *, cohort: Cohort | None = None,
                params: CarParams = CarParams(), focus: Focus | None = None) -> TableSpec:
    """Marker genes of CAR+ vs CAR- T cells, patient as the replicate (paired signed-rank,
    BH)."""
    return _phenotype(study, _cohort(cohort), params)[1]


_COMPOSITION_METHOD = (
    "Method: each patient's cells summed over their samples in the window, half a cell added "
    "to every count, centred log-ratio per patient (Aitchison); one value per patient; "
    "responders vs non-responders by the two-sided Mann-Whitney test, or the same patients in "
    "two windows by the exact Wilcoxon signed-rank test (analysis/stats.py); BH over the "
    "categories.")


@shared
def _cd7(study: Study, cohort: Cohort, params: CarParams) -> tuple[FigureSpec, TableSpec]:
    from analysis.embedding import gene_vector, var_names

    g = response_groups(study)
    rules = rules_for(study)
    cells = _cells(study, params)
    cd7 = gene_vector(study, gene="CD7") if "CD7" in var_names(study) else \
        np.zeros(cells.height)
    grouped = apply_cohort(cs.cd7_groups(cells, cd7=cd7, rules=rules), cohort, groups=g) \
        .filter(pl.col("cd7_group").is_not_null())
    per = comp.composition_of(grouped, cell_type="cd7_group")
    lines = per.with_columns(pl.col("cell_type").alias("group"),
                             pl.format("{} · {}", "subject_id", "cell_type").alias("subject_id"))
    fig = figs.repertoire_lines(
        lines, metric="fraction", group="group", colors=dict(zip(cs.CD7_GROUPS, [
            "#D55E00", "#0072B2", "#56B4E9", "#009E73", "#E69F00"], strict=True)),
        y_title="share of T and NK cells",
        title="CAR+ T and endogenous CD7+ / CD7- T and NK cells per sample")
    test = comp.compositional_test(per, groups=g, window=WINDOWS["Pre-infusion"],
                                   window_b=WINDOWS[params.window])
    cap = (f"CD7+ = CD7 expression above {rules.cd7_threshold:g} (rule cd7_threshold); "
           "endogenous = not CAR+.")
    return (FigureSpec("cd7-groups", "CD7+ vs CD7- endogenous T and NK cells", fig, data=per,
                       params=params, caption=cap),
            TableSpec("cd7-test", f"CD7 groups: {params.window} vs pre-infusion", test,
                      params=params, caption=cap + " " + _COMPOSITION_METHOD))


@recipe
def cd7_groups(study: Study, *, cohort: Cohort | None = None,
               params: CarParams = CarParams(), focus: Focus | None = None) -> FigureSpec:
    """CAR+ T, CD7+/CD7- endogenous T and NK cells as shares of T and NK cells per sample."""
    return _cd7(study, _cohort(cohort), params)[0]


@recipe
def cd7_test(study: Study, *, cohort: Cohort | None = None,
             params: CarParams = CarParams(), focus: Focus | None = None) -> TableSpec:
    """The CD7 groups' change from pre-infusion to the window (compositional test, same
    patients)."""
    return _cd7(study, _cohort(cohort), params)[1]


def cut_value(cut: cs.CarCut) -> float:
    """The study's cut as the page offers it to adjust (rounded to 3 decimals)."""
    return float(round(cut.threshold, 3))


def car_params(cut: cs.CarCut, *, cut_at: float, window: str = DEFAULT_WINDOW) -> CarParams:
    """CarParams of the page: `cut_at` becomes a fixed cut only when it differs from the
    study's own (`cut`, as `cut_value` rounds it); else the study's rule decides."""
    adjusted = abs(cut_at - cut_value(cut)) > 1e-9
    return CarParams(threshold=cut_at if adjusted else None, window=window)


SAVE_HELP = ("Writes car_threshold_method = \"fixed\" and car_threshold; comments in "
             "study.toml are not kept")


def save_car_threshold(study: Study, threshold: float) -> Path:
    """Write the adjusted cut into study.toml [rules] (car_threshold_method = "fixed")."""
    return save_rule_settings(study.path, {"car_threshold_method": "fixed",
                                           "car_threshold": float(threshold)})


# ---- composition with uncertainty ---------------------------------------------------------------
@dataclass(frozen=True)
class CompositionParams:
    """Cell-type composition in `window`: responders vs non-responders, or (with `window_b`)
    the same patients in two windows; `transform` clr or logit."""

    window: str = DEFAULT_WINDOW
    window_b: str | None = None
    transform: Transform = "clr"


def comparisons(window: str) -> list[str]:
    """What a window's composition can be compared with: the response groups, or another
    window ("with Day 61+")."""
    return [_BY_RESPONSE] + [f"with {w}" for w in WINDOWS if w != window]


_BY_RESPONSE = "Responders vs non-responders"


def composition_params(*, window: str = DEFAULT_WINDOW, against: str = _BY_RESPONSE,
                       transform: Transform = "clr") -> CompositionParams:
    """CompositionParams from the page's choices: `against` is one of `comparisons(window)`
    (the response groups, or "with <another window>")."""
    return CompositionParams(window=window, transform=transform,
                             window_b=None if against == _BY_RESPONSE
                             else against.removeprefix("with "))


@shared
def _composition(study: Study, cohort: Cohort, params: CompositionParams
                 ) -> tuple[FigureSpec, TableSpec]:
    from analysis.embedding import cell_table

    g = response_groups(study)
    per = comp.composition_of(apply_cohort(cell_table(study), cohort, groups=g))
    res = comp.compositional_test(per, groups=g, window=WINDOWS[params.window],
                                  window_b=WINDOWS[params.window_b] if params.window_b
                                  else None, transform=params.transform)
    what = res.get_column("comparison")[0] if res.height else params.window
    label = "centred log-ratio" if params.transform == "clr" else "logit of the proportion"
    fig = figs.effect_dots(res, x_title=f"difference in {label}",
                           title=f"Cell-type composition: {what}")
    method = _COMPOSITION_METHOD if params.transform == "clr" else \
        _COMPOSITION_METHOD.replace("centred log-ratio per patient (Aitchison)",
                                    "logit of each proportion per patient")
    return (FigureSpec("composition-test", "Composition with uncertainty", fig, data=res,
                       params=params, caption=method),
            TableSpec("composition-test-table", f"Composition: {what}", res, params=params,
                      caption=method))


@recipe
def composition_test(study: Study, *, cohort: Cohort | None = None,
                     params: CompositionParams = CompositionParams(), focus: Focus | None = None
                     ) -> FigureSpec:
    """Differences in cell-type composition (transformed proportions, one value per patient)
    with their intervals."""
    return _composition(study, _cohort(cohort), params)[0]


@recipe
def composition_table(study: Study, *, cohort: Cohort | None = None,
                      params: CompositionParams = CompositionParams(), focus: Focus | None = None
                      ) -> TableSpec:
    """The compositional test per cell type (BH over the categories)."""
    return _composition(study, _cohort(cohort), params)[1]

