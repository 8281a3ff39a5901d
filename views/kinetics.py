"""Views of the Kinetics page: the CAR-T curves (per patient or geometric mean by response
group; also the deck's kinetics slide), the NCA parameters per patient and by group, the
cellular-kinetics model (analysis.kinetic_model) over the observed levels, qPCR-vs-flow
concordance, the CD7-specific readouts and exposure-response.

The model is fitted to every patient of the study with one pooled residual SD (so the same
patient gets the same fit whatever the cohort filter shows, and `cli.py table kinetic_model`
agrees); the cohort filter chooses which patients are drawn and listed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from analysis import kinetic_model as km
from analysis import kinetics, post_hsct
from analysis.cohort import (
    NON_RESPONDER,
    NOT_EVALUABLE,
    RESPONDER,
    Cohort,
    cohort_subjects,
    response_groups,
)
from analysis.toxicity import crs_table
from analysis.vocab import DayWindow
from components.figures.kinetic_model import model_overlay
from components.figures.kinetics import (
    concordance_scatter,
    exposure_strip,
    kinetics_curve,
    readout_panels,
)
from components.theme import GROUP_COLORS
from views import common
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["KineticModelParams", "fits", "model_figure", "model_table", "LABELS", "VIEWS",
           "CurveParams", "NcaParams", "ExposureParams", "series", "present_assays", "curve",
           "nca_table", "nca_by_group", "concordance", "cd7_readouts", "exposure",
           "exposure_tests", "flow_partner", "KIN_RULES", "BLQ_POLICIES",
           "NONEXPANDER_POLICIES", "BLQ_DEFAULTS", "NONEXPANDER_LABELS", "auc_column",
           "no_concordance"]

# the options the page offers, from the analysis that defines them
BLQ_POLICIES = kinetics.BLQ_POLICIES
NONEXPANDER_POLICIES = kinetics.NONEXPANDER_POLICIES
auc_column = kinetics.auc_column

LABELS = {"CAR_QPCR": "qPCR (copies/µg gDNA)", "CAR_PCT": "Flow (% of CD3+)",
          "CAR_ABS": "Flow (cells/µL)"}   # on screen: the micro sign (files keep ASCII)
VIEWS = ("Per patient", "Geometric mean by response group")
KIN_RULES = ("post_hsct_display", "auc_impute_day0", "kinetics_nonexpanders",
             "replicate_quantifiable_share", "exact_max_n")
GROUP_ORDER = (RESPONDER, NON_RESPONDER, NOT_EVALUABLE)


@dataclass(frozen=True)
class KineticModelParams:
    """`assay` to fit (CAR_QPCR by default), `min_quantified` values a fit needs."""

    assay: str = "CAR_QPCR"
    min_quantified: int = km.MIN_QUANTIFIED


@functools.lru_cache(maxsize=8)
def fits(study: Study, *, params: KineticModelParams) -> list[km.KineticFit]:
    """One fit per patient of the study (pooled residual SD), each series cut at the
    patient's HSCT; the last few fits are kept, since the figure and the table both need them
    (callers must not change the list)."""
    series, _ = kinetics.before_hsct(kinetics.kinetic_series(study, analytes=[params.assay]),
                                     hsct=post_hsct.hsct_days(study))
    return km.fit_all(series, assay=params.assay, min_quantified=params.min_quantified)


def _subjects(study: Study, cohort: Cohort | None) -> set[str]:
    if cohort is None:
        return set(study.subject_ids)
    return set(cohort_subjects(response_groups(study), cohort))


@recipe
def model_figure(study: Study, *, cohort: Cohort | None = None, params: KineticModelParams,
                 focus: Focus | None = None,
                 fitted: list[km.KineticFit] | None = None) -> FigureSpec:
    """Observed values and fitted curves of the cohort's patients."""
    keep = _subjects(study, cohort)
    all_fits = fitted if fitted is not None else fits(study, params=params)
    chosen = [f for f in all_fits if f.subject_id in keep]
    observed = kinetics.kinetic_series(study, analytes=[params.assay]).filter(
        pl.col("subject_id").is_in(list(keep)) & (pl.col("day") >= 0))
    last = observed.get_column("day").max() if observed.height else None
    curves = km.model_curves(chosen, days=DayWindow(0, math.ceil(last or 28)))
    n_ok = sum(f.converged for f in chosen)
    label = study.analyte_label(params.assay)
    name = study.catalogue[params.assay].label if params.assay in study.catalogue \
        else params.assay
    fig = model_overlay(observed, curves, status={f.subject_id: f.status for f in chosen},
                        colors=common.colors(study, cohort), y_title=label,
                        title=f"{name}: kinetic model fitted for {n_ok} of {len(chosen)} "
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
                focus: Focus | None = None, fitted: list[km.KineticFit] | None = None) -> TableSpec:
    """The model's parameters with 95% intervals, one row per patient of the cohort."""
    keep = _subjects(study, cohort)
    all_fits = fitted if fitted is not None else fits(study, params=params)
    table = km.fits_table([f for f in all_fits if f.subject_id in keep])
    return TableSpec(key="kin-model-table", title="Kinetic model parameters", data=table,
                     params=params, caption=km.CI_METHOD + ".")


# ---- curves, NCA, concordance, CD7 readouts, exposure-response -------------------------------
@dataclass(frozen=True)
class CurveParams:
    """`assay` (None, or one the study lacks: the first of qPCR, flow % and flow cells/uL it
    has), per patient or the geometric mean by response group, and what a focus
    highlights."""

    assay: str | None = None
    view: Literal["Per patient", "Geometric mean by response group"] = "Per patient"
    highlight: tuple[str, ...] = ()
    shade: DayWindow | None = None


@dataclass(frozen=True)
class NcaParams:
    """Non-compartmental analysis: AUC window, the policy for values below the LLOQ by
    position, the landmark tolerance and the rule overrides (None: the study's setting)."""

    assay: str | None = None
    auc_end: int = 28
    blq_leading: kinetics.BlqPolicy = "zero"
    blq_middle: kinetics.BlqPolicy = "drop"
    blq_trailing: kinetics.BlqPolicy = "zero"
    landmark_tolerance: int = 7
    auc_impute_day0: bool | None = None
    nonexpanders: kinetics.NonexpanderPolicy | None = None


# the BLQ policy of each position, as NcaParams has them by default (the page's widgets)
BLQ_DEFAULTS = tuple((pos, getattr(NcaParams(), f"blq_{pos}"))
                     for pos in ("leading", "middle", "trailing"))
NONEXPANDER_LABELS = {"exclude": "left out (counted and stated)",
                      "half_lloq": "Cmax at LLOQ/2"}


@dataclass(frozen=True)
class ExposureParams:
    """Exposure ("cmax", or the AUC column of `nca`'s window, e.g. "auc_0_28") against
    response group and CRS max grade."""

    nca: NcaParams = NcaParams()
    parameter: str = "cmax"


def series(study: Study) -> pl.DataFrame:
    """Every CAR-T value with its response group, post-HSCT values marked per the rules."""
    rules = common.rules(study)
    out = kinetics.with_groups(kinetics.kinetic_series(study, analytes=kinetics.ASSAYS,
                                                       rules=rules),
                               groups=common.groups(study))
    return post_hsct.for_display(out, hsct=post_hsct.hsct_days(study), rules=rules)


def present_assays(study: Study) -> list[str]:
    """The CAR-T assays the study measured, qPCR first."""
    found = set(series(study).get_column("assay").to_list())
    return [a for a in kinetics.ASSAYS if a in found]


def _assay(study: Study, assay: str | None) -> str | None:
    present = present_assays(study)
    return assay if assay in present else (present[0] if present else None)


@recipe
def curve(study: Study, *, cohort: Cohort | None = None, params: CurveParams = CurveParams(),
          focus: Focus | None = None) -> FigureSpec | None:
    """CAR-T levels over time on a log10 axis; None when the study has no CAR-T values."""
    assay = _assay(study, params.assay)
    if assay is None:
        return None
    data = common.apply(study, series(study).filter(pl.col("assay") == assay), cohort)
    label = study.analyte_label(assay)
    # the unit once, on the axis (the title names the readout only)
    name = study.catalogue[assay].label if assay in study.catalogue else assay
    rules = common.rules(study)
    if params.view == VIEWS[0]:
        fig = kinetics_curve(data, colors=common.colors(study, cohort), title=name, y_title=label,
                             highlight=params.highlight, shade=params.shade)
    else:
        data = kinetics.group_curve(post_hsct.for_summary(data))
        fig = kinetics_curve(data, y="geo_mean", color="response_group", blq=None,
                             colors=GROUP_COLORS, title=f"{name}: geometric mean by group",
                             y_title=label, shade=params.shade, hover="geo_mean", n="n")
    return FigureSpec(
        key="kin-curve", title="CAR-T expansion and persistence", fig=fig, data=data,
        params=params,
        caption="Log10 axis. Open markers: below the LLOQ, drawn at LLOQ/2; dotted line: LLOQ. "
                "Group curves are geometric means of the patients sampled on each day (the "
                "number over each point is n on that day). A dash-dot line marks each HSCT; "
                "values after it are "
                + ("not drawn" if rules.post_hsct_display == "stop" else "dashed and faded")
                + " (post_hsct_display) and never enter the group curves.")


def nca_rules(study: Study, params: NcaParams) -> Any:
    """The study's settings with the Params' overrides."""
    rules = common.rules(study)
    changes = {k: v for k, v in (("auc_impute_day0", params.auc_impute_day0),
                                 ("kinetics_nonexpanders", params.nonexpanders))
               if v is not None}
    return rules.with_(**changes) if changes else rules


def _nca(study: Study, cohort: Cohort | None, params: NcaParams) -> pl.DataFrame:
    table = kinetics.kinetics_table(
        study, auc_end=params.auc_end, blq_leading=params.blq_leading,
        blq_middle=params.blq_middle, blq_trailing=params.blq_trailing,
        landmark_tolerance=params.landmark_tolerance, rules=nca_rules(study, params))
    return table.filter(pl.col("subject_id").is_in(common.subjects(study, cohort)))


@recipe
def nca_table(study: Study, *, cohort: Cohort | None = None, params: NcaParams = NcaParams(),
              focus: Focus | None = None) -> TableSpec:
    """Cmax, Tmax, AUC, Tlast and persistence at the landmarks, one row per patient."""
    assay = _assay(study, params.assay)
    table = _nca(study, cohort, params)
    return TableSpec(key="kin-params", title="Parameters per patient",
                     data=table.filter(pl.col("assay") == assay), params=params)


@recipe
def nca_by_group(study: Study, *, cohort: Cohort | None = None,
                 params: NcaParams = NcaParams(), focus: Focus | None = None) -> TableSpec:
    """Geometric mean and CV% of Cmax and AUC per response group."""
    assay = _assay(study, params.assay)
    summary = kinetics.group_summary(
        _nca(study, cohort, params), groups=common.groups(study),
        parameters=("cmax", kinetics.auc_column(params.auc_end)),
        nonexpanders=nca_rules(study, params).kinetics_nonexpanders)
    return TableSpec(key="kin-summary",
                     title="By response group (geometric mean, geometric CV%)",
                     data=summary.filter(pl.col("assay") == assay), params=params)


def no_concordance(present: Sequence[str]) -> str:
    """Why qPCR vs flow is not drawn, naming the CAR-T assays the study has."""
    return ("Concordance needs both qPCR (CAR_QPCR) and flow (CAR_PCT or CAR_ABS) "
            "measurements; this study has only " + ", ".join(present) + ".")


def flow_partner(study: Study, assay: str | None) -> str | None:
    """The flow assay set against qPCR (the chosen one, else the first measured)."""
    present = present_assays(study)
    if assay and assay != "CAR_QPCR":
        return assay
    return next((a for a in ("CAR_PCT", "CAR_ABS") if a in present), None)


@recipe
def concordance(study: Study, *, cohort: Cohort | None = None,
                params: CurveParams = CurveParams(),
                focus: Focus | None = None) -> FigureSpec | None:
    """qPCR against flow on paired samples, with the repeated-measures correlation; None
    without both assays."""
    flow = flow_partner(study, _assay(study, params.assay))
    if "CAR_QPCR" not in present_assays(study) or flow is None:
        return None
    pairs = kinetics.concordance(common.apply(study, series(study), cohort), x="CAR_QPCR",
                                 y=flow)
    corr = kinetics.repeated_correlation(pairs)
    fig = concordance_scatter(pairs, colors=common.colors(study, cohort), x_title=LABELS["CAR_QPCR"],
                              y_title=LABELS[flow], title=corr.short())
    return FigureSpec(
        key="kin-concordance", title="qPCR vs flow", fig=fig, data=pairs, params=params,
        caption=f"Paired samples (same patient and day). {corr.describe()}. Several samples "
                "per patient are not independent, so the correlation is the within-patient "
                "one (repeated-measures correlation, Bakdash & Marusich 2017) and each "
                "patient's own rho; a Spearman over all samples pooled would count every "
                "sample as a patient. BLQ values are drawn at LLOQ/2 as open markers and left "
                "out of the statistics.")


@recipe
def cd7_readouts(study: Study, *, cohort: Cohort | None = None,
                 params: CurveParams = CurveParams(),
                 focus: Focus | None = None) -> FigureSpec | None:
    """CD7+ NK cells and CD7-negative T cells on the curves' time axis; None without them."""
    cd7 = common.apply(study, kinetics.kinetic_series(study, analytes=kinetics.CD7_READOUTS),
                       cohort)
    if cd7.height == 0:
        return None
    assay = _assay(study, params.assay)
    days = common.apply(study, series(study).filter(pl.col("assay") == assay),
                        cohort).get_column("day")
    xr = (float(days.min()) - 5, float(days.max()) + 5) if days.len() else None
    fig = readout_panels(cd7, facet_order=kinetics.CD7_READOUTS, log_facets=("NK_ABS",),
                         colors=common.colors(study, cohort),
                         titles={a: study.analyte_label(a) for a in kinetics.CD7_READOUTS},
                         x_range=xr, highlight=params.highlight)
    return FigureSpec(key="kin-cd7", title="CD7-specific readouts", fig=fig, data=cd7,
                      params=params,
                      caption="Same time axis as the curves above: on-target depletion of "
                              "CD7+ NK cells and the emergence of CD7-negative T cells.")


def _exposure(study: Study, cohort: Cohort | None, params: ExposureParams
              ) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    nca = params.nca
    assay = _assay(study, nca.assay)
    crs = crs_table(study, rules=common.rules(study))
    er = kinetics.exposure_response(_nca(study, cohort, nca), groups=common.groups(study),
                                    crs=crs, assay=assay)
    par = "cmax" if params.parameter == "cmax" else kinetics.auc_column(nca.auc_end)

    tests = kinetics.exposure_tests(er, parameters=(par,),
                                    exact_max_n=common.rules(study).exact_max_n)
    return er, tests, par


@recipe
def exposure(study: Study, *, cohort: Cohort | None = None,
             params: ExposureParams = ExposureParams(), focus: Focus | None = None
             ) -> list[FigureSpec]:
    """One point per patient: exposure by best response group and by CRS max grade."""
    er, tests, par = _exposure(study, cohort, params)
    assay = _assay(study, params.nca.assay)
    unit = study.catalogue[assay].unit if assay in study.catalogue else ""
    out = []
    exposure_name = "Cmax" if par == "cmax" else f"AUC0-{params.nca.auc_end}"
    for by, order, name, in_title in (
            ("response_group", GROUP_ORDER, "Best response group", "best response group"),
            ("crs_max_grade", None, "CRS max grade", "CRS max grade")):
        row = tests.filter(pl.col("versus") == by)
        note = row.get_column("detail")[0] if row.height else ""
        # the title names the plot; the test (its long text) goes below it, wrapped, so both
        # fit the half-width column the page draws it in
        fig = exposure_strip(er.with_columns(pl.col(by).cast(pl.String)), x=by, y=par,
                             colors=common.colors(study, cohort), category_order=order,
                             x_title=name, y_title=f"{exposure_name} ({unit})" if par == "cmax"
                             else f"{exposure_name} ({unit} x day)",
                             title=f"{exposure_name} by {in_title}", subtitle=note or None)
        out.append(FigureSpec(key=f"kin-er-{by}", title=f"Exposure vs {name.lower()}",
                              fig=fig, data=er, params=params))
    return out


@recipe
def exposure_tests(study: Study, *, cohort: Cohort | None = None,
                   params: ExposureParams = ExposureParams(),
                   focus: Focus | None = None) -> TableSpec:
    """The tests behind the exposure strips, with n and the kind of p."""
    _, tests, _ = _exposure(study, cohort, params)
    asymptotic = tests.get_column("test").str.contains("asymptotic").any()
    return TableSpec(
        key="kin-er-tests", title="Exposure-response tests", data=tests, params=params,
        caption="One point per patient. Response groups: exact Mann-Whitney U (exact "
                "permutation p when tied; the same test as the Compare page, analysis.stats, "
                "so the same patients give the same p); CRS grade: Spearman rho with a "
                "permutation p. n is printed with each test."
                + (f" Above {kinetics.MWU_EXACT_MAX_N} patients (Mann-Whitney) or "
                   f"{kinetics.SPEARMAN_PERMUTATION_MAX_N} (Spearman) the p value is "
                   "asymptotic, as the test column says." if asymptotic else ""))
