"""Views of the Kinetics page. For now: the cellular-kinetics model (analysis.kinetic_model)
over the observed CAR-T levels, and its parameter table, for the cohort's patients.

The model is fitted to every patient of the study with one pooled residual SD (so the same
patient gets the same fit whatever the cohort filter shows, and `cli.py table kinetic_model`
agrees); the cohort filter chooses which patients are drawn and listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from analysis import kinetic_model as km
from analysis import kinetics, post_hsct
from analysis.cohort import Cohort, cohort_subjects, response_groups
from components.figures.kinetic_model import model_overlay
from components.theme import patient_colors
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["KineticModelParams", "fits", "model_figure", "model_table"]


@dataclass(frozen=True)
class KineticModelParams:
    """`assay` to fit (CAR_QPCR by default), `min_quantified` values a fit needs."""

    assay: str = "CAR_QPCR"
    min_quantified: int = km.MIN_QUANTIFIED


def fits(study: Study, *, params: KineticModelParams) -> list[km.KineticFit]:
    """One fit per patient of the study (pooled residual SD), each series cut at the
    patient's HSCT."""
    series, _ = kinetics.before_hsct(kinetics.kinetic_series(study, analytes=[params.assay]),
                                     hsct=post_hsct.hsct_days(study))
    return km.fit_all(series, assay=params.assay, min_quantified=params.min_quantified)


def _subjects(study: Study, cohort: Cohort | None) -> set[str]:
    if cohort is None:
        return set(study.subject_ids)
    return set(cohort_subjects(response_groups(study), cohort))


@recipe
def model_figure(study: Study, *, cohort: Cohort | None = None, params: KineticModelParams,
                 focus: Any = None, fitted: list[km.KineticFit] | None = None) -> FigureSpec:
    """Observed values and fitted curves of the cohort's patients."""
    keep = _subjects(study, cohort)
    all_fits = fitted if fitted is not None else fits(study, params=params)
    chosen = [f for f in all_fits if f.subject_id in keep]
    observed = kinetics.kinetic_series(study, analytes=[params.assay]).filter(
        pl.col("subject_id").is_in(list(keep)) & (pl.col("day") >= 0))
    day_max = float(observed.get_column("day").max() or 28) if observed.height else 28.0
    curves = km.model_curves(chosen, day_max=day_max)
    n_ok = sum(f.converged for f in chosen)
    label = study.analyte_label(params.assay)
    fig = model_overlay(observed, curves, status={f.subject_id: f.status for f in chosen},
                        colors=patient_colors(study.subject_ids), y_title=label,
                        title=f"{label}: kinetic model fitted for {n_ok} of {len(chosen)} "
                              "patient(s)")
    sigma = next((f.sigma for f in chosen if f.sigma is not None), None)
    caption = ("Lines: expansion to Tmax, then bi-exponential contraction and persistence "
               "(Stein et al. 2019), fitted per patient on the log scale with values below the "
               "LLOQ as censored (Tobit likelihood)"
               + (f"; residual SD {sigma / 2.302585:.3g} log10 units, pooled" if sigma else "")
               + ". Patients marked 'no fit' did not converge (the table says why); no curve "
                 "is drawn for them.")
    return FigureSpec(key="kin-model", title="Kinetic model", fig=fig,
                      data=pl.concat([observed.select("subject_id", pl.col("day")
                                                      .cast(pl.Float64), "value",
                                                      pl.lit("observed").alias("kind")),
                                      curves.select("subject_id", "day", "value",
                                                    pl.lit("model").alias("kind"))]),
                      params=params, caption=caption)


@recipe
def model_table(study: Study, *, cohort: Cohort | None = None, params: KineticModelParams,
                focus: Any = None, fitted: list[km.KineticFit] | None = None) -> TableSpec:
    """The model's parameters with 95% intervals, one row per patient of the cohort."""
    keep = _subjects(study, cohort)
    all_fits = fitted if fitted is not None else fits(study, params=params)
    table = km.fits_table([f for f in all_fits if f.subject_id in keep])
    return TableSpec(key="kin-model-table", title="Kinetic model parameters", data=table,
                     params=params, caption=km.CI_METHOD + ".")
