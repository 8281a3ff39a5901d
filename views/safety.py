"""Views of the Cytokines & safety page: one patient's cytokines with the CRS/ICANS episodes,
peaks against the CRS grade, CRS and ICANS (recorded, and graded from vitals per ASTCT 2019),
adverse events and infections; the deck's cytokine and safety slides. The cohort views: every
patient's cytokines on one time axis
(days from infusion, or from CRS onset), by response group with the number of patients at each
time point, and the medications given for CRS and ICANS.

Alignment to CRS onset uses the first recorded CRS episode of each patient
(analysis.toxicity.toxicity_episodes); patients without CRS are left out of that view and
counted in the caption. Group summaries are patient-level: one value per patient and time
point (replicates on a day averaged), then median and interquartile range across patients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from analysis import post_hsct, toxicity
from analysis.cohort import GROUPS, Cohort, cohort_subjects, response_groups
from analysis.vocab import is_blood
from components.figures.cytokines import cohort_cytokine_panels, group_cytokine_panels
from components.figures.safety import (
    adverse_event_bars,
    astct_heatmap,
    cytokine_panels,
    grade_incidence_bars,
    peak_vs_grade,
    safety_summary,
)
from views import common
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CohortCytokineParams", "ALIGNMENTS", "aligned_cytokines", "cohort_cytokines",
           "cytokine_group_summary", "crs_treatments", "hsct_marks",
           "hsct_marks_aligned"]

Align = Literal["infusion", "crs_onset"]
Show = Literal["patients", "groups"]
ALIGNMENTS: dict[str, str] = {"infusion": "Day from CAR-T infusion",
                              "crs_onset": "Day from CRS onset"}


@dataclass(frozen=True)
class CohortCytokineParams:
    """`analytes` to draw (default: the cytokines and CRP/ferritin the study has), `align` the
    time axis, `show` every patient ("patients") or median/IQR per response group ("groups"),
    `days` the window on the aligned axis, `log_y` the scale."""

    analytes: tuple[str, ...] = ()
    align: Align = "infusion"
    show: Show = "patients"
    days: tuple[int, int] = (-7, 28)
    log_y: bool = True


def _subjects(study: Study, cohort: Cohort | None) -> list[str]:
    groups = response_groups(study)
    return cohort_subjects(groups, cohort) if cohort is not None else study.subject_ids


def aligned_cytokines(study: Study, *, cohort: Cohort | None = None,
                      params: CohortCytokineParams) -> pl.DataFrame:
    """subject_id, analyte, day (study day), rel_day (on the chosen axis), value,
    response_group; one value per patient, analyte and day (replicates averaged)."""
    panel = params.analytes or tuple(a for a in (*toxicity.CYTOKINES,
                                                 *toxicity.INFLAMMATION_MARKERS)
                                     if a in set(study.analytes_present()))
    subjects = _subjects(study, cohort)
    m = study.series(analytes=list(panel), subjects=subjects)
    if "tissue" in m.columns:
        m = m.filter(is_blood())
    m = m.group_by("subject_id", "analyte", "day").agg(pl.col("value").mean())
    if params.align == "crs_onset":
        onset = (toxicity.toxicity_episodes(study.events).filter(pl.col("kind") == "CRS")
                 .group_by("subject_id").agg(pl.col("start").min().alias("_ref")))
        m = m.join(onset, on="subject_id", how="inner")
    else:
        m = m.with_columns(pl.lit(0).alias("_ref"))
    groups = response_groups(study).select("subject_id", "response_group")
    lo, hi = params.days
    return (m.with_columns((pl.col("day") - pl.col("_ref")).alias("rel_day"))
            .filter(pl.col("rel_day").is_between(lo, hi))
            .join(groups, on="subject_id", how="left")
            .select("subject_id", "analyte", "day", "rel_day", "value", "response_group")
            .sort("analyte", "subject_id", "rel_day"))


def cytokine_group_summary(aligned: pl.DataFrame) -> pl.DataFrame:
    """Per analyte, response group and time point: n (patients with a value), median, q1, q3."""
    return (aligned.group_by("analyte", "response_group", "rel_day")
            .agg(pl.col("subject_id").n_unique().alias("n"),
                 pl.col("value").median().alias("median"),
                 pl.col("value").quantile(0.25, interpolation="linear").alias("q1"),
                 pl.col("value").quantile(0.75, interpolation="linear").alias("q3"))
            .with_columns(pl.col("response_group").replace_strict(
                {g: i for i, g in enumerate(GROUPS)}, default=len(GROUPS),
                return_dtype=pl.Int32).alias("_o"))
            .sort("analyte", "_o", "rel_day").drop("_o"))


def hsct_marks(study: Study, *, subjects: list[str] | tuple[str, ...]
               ) -> list[tuple[float, float, str]]:
    """HSCT marks (study day) of `subjects`, for the per-patient cytokine panels."""
    return post_hsct.hsct_marks(post_hsct.hsct_days(study), subjects=subjects)


def hsct_marks_aligned(study: Study, aligned: pl.DataFrame) -> list[tuple[float, float, str]]:
    """HSCT marks of the patients in `aligned` (aligned_cytokines) on its rel_day axis: the
    HSCT day minus the patient's reference day (0, or the CRS onset)."""
    if aligned.height == 0:
        return []
    ref = aligned.group_by("subject_id").agg((pl.col("day") - pl.col("rel_day")).first()
                                             .alias("_ref"))
    hsct = (post_hsct.hsct_days(study).join(ref, on="subject_id", how="inner")
            .select("subject_id", (pl.col("hsct_day") - pl.col("_ref")).alias("hsct_day")))
    return post_hsct.hsct_marks(hsct)


@recipe
def cohort_cytokines(study: Study, *, cohort: Cohort | None = None,
                     params: CohortCytokineParams, focus: Any = None) -> FigureSpec:
    """All patients per cytokine on one axis, or median/IQR per response group with n."""
    data = aligned_cytokines(study, cohort=cohort, params=params)
    present = [a for a in (params.analytes or (*toxicity.CYTOKINES,
                                               *toxicity.INFLAMMATION_MARKERS))
               if a in set(data.get_column("analyte").to_list())]
    titles = {a: study.analyte_label(a) for a in present}
    x_title = ALIGNMENTS[params.align]
    n_pat = data.get_column("subject_id").n_unique()
    n_all = len(_subjects(study, cohort))
    left_out = "" if params.align == "infusion" else \
        f"; {n_all - n_pat} of {n_all} patient(s) without a recorded CRS episode left out"
    marks = hsct_marks_aligned(study, data)
    hsct_text = (" Dash-dot line: an HSCT (later values are the graft's course, not the "
                 "CAR-T's)." if any(params.days[0] <= m[0] <= params.days[1] for m in marks)
                 else "")
    if params.show == "groups":
        before = post_hsct.for_summary(data, hsct=post_hsct.hsct_days(study))
        n_post = data.height - before.height
        summary = cytokine_group_summary(before)
        if n_post:
            left_out += f"; {n_post} value(s) on or after an HSCT kept out of the medians"
        fig = group_cytokine_panels(summary, x="rel_day", facet_order=present, titles=titles,
                                    log_y=params.log_y, x_title=x_title,
                                    range_x=params.days, marks=marks,
                                    title="Cytokines by response group (median, IQR; numbers: "
                                          "patients at each time point)")
        return FigureSpec(key="saf-cohort-cytokines", title="Cytokines by response group",
                          fig=fig, data=summary, params=params,
                          caption=f"{n_pat} patient(s){left_out}. Median and interquartile "
                                  "range across patients, one value per patient and day."
                                  + hsct_text)
    colors = common.colors(study)
    fig = cohort_cytokine_panels(data, x="rel_day", facet_order=present, titles=titles,
                                 colors=colors, log_y=params.log_y, x_title=x_title,
                                 range_x=params.days, marks=marks,
                                 title=f"Cytokines of {n_pat} patient(s), "
                                       f"{x_title[0].lower()}{x_title[1:]}")
    return FigureSpec(key="saf-cohort-cytokines", title="Cytokines across the cohort", fig=fig,
                      data=data, params=params,
                      caption=f"{n_pat} patient(s){left_out}.{hsct_text}")


@recipe
def crs_treatments(study: Study, *, cohort: Cohort | None = None,
                   params: CohortCytokineParams | None = None, focus: Any = None) -> TableSpec:
    """Per CRS/ICANS episode: grade, days, and the tocilizumab and corticosteroids given during
    it (medication events of those classes from the episode's first day to one day after its
    last; docs/data-format.md, Medications)."""
    subjects = set(_subjects(study, cohort))
    ev = study.events.filter(pl.col("subject_id").is_in(list(subjects)))
    episodes = toxicity.toxicity_episodes(ev)
    meds = ev.filter((pl.col("category") == "medication")
                     & pl.col("product").is_in(["tocilizumab", "corticosteroid"]))
    schema = {"subject_id": pl.String, "episode": pl.String, "grade": pl.Int64,
              "start": pl.Int64, "end": pl.Int64, "tocilizumab_doses": pl.Int64,
              "first_tocilizumab_day": pl.Int64, "corticosteroids": pl.String}
    rows = []
    for ep in episodes.iter_rows(named=True):
        given = meds.filter((pl.col("subject_id") == ep["subject_id"])
                            & (pl.col("day") <= ep["end"] + 1)
                            & (pl.col("end_day").fill_null(pl.col("day")) >= ep["start"]))
        toci = given.filter(pl.col("product") == "tocilizumab")
        ster = given.filter(pl.col("product") == "corticosteroid")
        rows.append({"subject_id": ep["subject_id"], "episode": ep["kind"],
                     "grade": ep["grade"], "start": ep["start"], "end": ep["end"],
                     "tocilizumab_doses": toci.height,
                     "first_tocilizumab_day": toci.get_column("day").min() if toci.height
                     else None,
                     "corticosteroids": "; ".join(
                         f"{r['term']} (days {r['day']}-{r['end_day'] or r['day']})"
                         for r in ster.iter_rows(named=True)) or None})
    data = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return TableSpec(key="saf-crs-treatment", title="Treatment of CRS and ICANS", data=data,
                     params=params,
                     caption="Tocilizumab and corticosteroids recorded as medications during "
                             "each episode (first day to one day after the last).")


# ---- one patient, peaks, CRS/ICANS, ASTCT from vitals, adverse events, deck slides -----------
__all__ += ["PANEL", "CRS_RULES", "PatientCytokineParams", "CrsParams", "AdverseEventParams",
            "CytokineSlideParams", "present_panel", "crs_rules", "patient_cytokines",
            "peaks", "peak_figure", "incidence", "incidence_table", "onset", "crs_episodes",
            "astct_comparison", "astct_daily", "astct_days", "adverse_events",
            "adverse_event_figure", "infections", "cytokine_slide", "safety_overview"]

PANEL = (*toxicity.CYTOKINES, *toxicity.INFLAMMATION_MARKERS)
CRS_RULES = ("crs_window_end", "crs_episode_margin", "crs_masked_fever",
             "crs_fever_carry_days", "crs_fever_c", "crs_hypotension_sbp",
             "crs_low_flow_max_lpm")


@dataclass(frozen=True)
class PatientCytokineParams:
    """The patient and the days shown (the peaks are taken from day 0 to the window's end,
    day 28 when the window ends before day 1)."""

    patient: str
    days: tuple[int, int] = (-7, 28)


@dataclass(frozen=True)
class CrsParams:
    """Rule overrides of ASTCT grading from vitals (None: the study's setting) and the days
    of the daily map."""

    crs_window_end: int | None = None
    crs_masked_fever: bool | None = None
    crs_fever_carry_days: int | None = None
    days: tuple[int, int] = (-7, 28)


@dataclass(frozen=True)
class AdverseEventParams:
    """Event categories, the lowest worst grade listed and a term filter."""

    categories: tuple[str, ...] = tuple(toxicity.AE_CATEGORIES)
    min_grade: int = 0
    term_contains: str = ""


@dataclass(frozen=True)
class CytokineSlideParams:
    """The analyte (None: the first of IL6, IFNG, CRP, FERRITIN measured) and days."""

    analyte: str | None = None
    days: tuple[int, int] = (-7, 28)


def present_panel(study: Study) -> list[str]:
    """The cytokines and inflammation markers this study measured."""
    measured = set(study.analytes_present())
    return [a for a in PANEL if a in measured]


def crs_rules(study: Study, params: CrsParams) -> Any:
    """The study's settings with the Params' overrides."""
    changes = {k: getattr(params, k) for k in ("crs_window_end", "crs_masked_fever",
                                               "crs_fever_carry_days")
               if getattr(params, k) is not None}
    rules = common.rules(study)
    return rules.with_(**changes) if changes else rules


def _events(study: Study, cohort: Cohort | None) -> pl.DataFrame:
    return common.apply(study, study.events, cohort, day_col=None)


@recipe
def patient_cytokines(study: Study, *, cohort: Cohort | None = None,
                      params: PatientCytokineParams, focus: Any = None) -> FigureSpec | None:
    """One patient's cytokines, ferritin and CRP (log10) with the CRS/ICANS episodes shaded;
    None when none is measured."""
    present = present_panel(study)
    if not present:
        return None
    episodes = toxicity.toxicity_episodes(_events(study, cohort))
    data = study.series(analytes=present, subjects=[params.patient]).filter(
        pl.col("day").is_between(*params.days))
    titles = {a: f"{a} ({study.catalogue[a].unit})" if a in study.catalogue else a
              for a in present}
    fig = cytokine_panels(data, episodes, facet_order=present, colors=common.colors(study),
                          x_range=params.days, marks=hsct_marks(study, subjects=[params.patient]),
                          titles=titles, title=f"{params.patient}: cytokines, ferritin and CRP")
    return FigureSpec(key="saf-cytokines", title=f"{params.patient}: cytokines", fig=fig,
                      data=data, params=params,
                      caption="Log10 axes. Shading: CRS episodes (full height) and ICANS (band "
                              "along the top), coloured by ASTCT grade. Dash-dot line: an HSCT "
                              "in the days shown.")


def peak_end(params: PatientCytokineParams) -> int:
    return params.days[1] if params.days[1] > 0 else 28


@recipe
def peaks(study: Study, *, cohort: Cohort | None = None, params: PatientCytokineParams,
          focus: Any = None) -> TableSpec:
    """Each patient's peak per cytokine from day 0 to the window's end, with CRS max grade."""
    end = peak_end(params)
    table = toxicity.cytokine_peaks_table(study, to_day=end) \
        .filter(pl.col("subject_id").is_in(common.subjects(study, cohort)))
    return TableSpec(key="saf-peaks", title=f"Peak per patient, days 0-{end}", data=table,
                     params=params)


@recipe
def peak_figure(study: Study, *, cohort: Cohort | None = None, params: PatientCytokineParams,
                focus: Any = None) -> FigureSpec:
    """Peak value against CRS max grade, one point per patient."""
    table = peaks(study, cohort=cohort, params=params).data
    fig = peak_vs_grade(table, facet_order=present_panel(study), colors=common.colors(study),
                        title="Peak value against CRS max grade")
    return FigureSpec(key="saf-peak-grade", title="Peak value against CRS max grade",
                      fig=fig, data=table, params=params)


def _crs(study: Study, cohort: Cohort | None, params: CrsParams) -> pl.DataFrame:
    return toxicity.crs_table(study, rules=crs_rules(study, params)) \
        .filter(pl.col("subject_id").is_in(common.subjects(study, cohort)))


@recipe
def crs_episodes(study: Study, *, cohort: Cohort | None = None,
                 params: CrsParams = CrsParams(), focus: Any = None) -> TableSpec:
    """CRS and ICANS per patient: max grade, onset and duration."""
    return TableSpec(key="saf-crs", title="CRS and ICANS per patient",
                     data=_crs(study, cohort, params), params=params)


@recipe
def incidence(study: Study, *, cohort: Cohort | None = None, params: CrsParams = CrsParams(),
              focus: Any = None) -> FigureSpec:
    """Patients by maximum CRS and ICANS grade."""
    table = toxicity.grade_incidence(_crs(study, cohort, params))
    return FigureSpec(key="saf-incidence", title="Patients by max grade",
                      fig=grade_incidence_bars(table, title="Patients by max grade"),
                      data=table, params=params)


@recipe
def incidence_table(study: Study, *, cohort: Cohort | None = None,
                    params: CrsParams = CrsParams(), focus: Any = None) -> TableSpec:
    return TableSpec(key="saf-incidence-table", title="Patients by max grade",
                     data=toxicity.grade_incidence(_crs(study, cohort, params)), params=params)


@recipe
def onset(study: Study, *, cohort: Cohort | None = None, params: CrsParams = CrsParams(),
          focus: Any = None) -> TableSpec:
    """Onset and duration of CRS and ICANS (median, range)."""
    return TableSpec(key="saf-onset", title="Onset and duration",
                     data=toxicity.onset_duration(_crs(study, cohort, params)), params=params)


def has_vitals(study: Study) -> bool:
    """ASTCT grading needs at least the temperature."""
    return "TEMP" in set(study.analytes_present())


@recipe
def astct_comparison(study: Study, *, cohort: Cohort | None = None,
                     params: CrsParams = CrsParams(), focus: Any = None) -> TableSpec:
    """Max CRS grade derived from vitals against the recorded one, per patient."""
    table = toxicity.astct_comparison_table(study, rules=crs_rules(study, params)) \
        .filter(pl.col("subject_id").is_in(common.subjects(study, cohort)))
    return TableSpec(key="saf-astct", title="Grade derived from vitals", data=table,
                     params=params)


def astct_days(study: Study, *, cohort: Cohort | None = None,
               params: CrsParams = CrsParams()) -> pl.DataFrame:
    """Each day in the window: derived and recorded grade, graded or not, and why."""
    return toxicity.crs_daily_table(study, rules=crs_rules(study, params)).filter(
        pl.col("subject_id").is_in(common.subjects(study, cohort))
        & pl.col("day").is_between(*params.days))


@recipe
def astct_daily(study: Study, *, cohort: Cohort | None = None, params: CrsParams = CrsParams(),
                focus: Any = None) -> FigureSpec:
    """ASTCT grade from vitals per patient and day (text: the recorded grade)."""
    rules = crs_rules(study, params)
    daily = astct_days(study, cohort=cohort, params=params)
    fig = astct_heatmap(daily, title="ASTCT grade from vitals per day (text: recorded grade)")
    return FigureSpec(
        key="saf-astct-map", title="ASTCT grade from vitals per day", fig=fig, data=daily,
        params=params,
        caption=f"Fever TEMP >= {rules.crs_fever_c:g}; hypotension SBP < "
                f"{rules.crs_hypotension_sbp:g} = grade 2, 1 vasopressor = 3, >= 2 = 4; O2 <= "
                f"{rules.crs_low_flow_max_lpm:g} L/min (low-flow) = 2, above (high-flow) = 3. "
                f"Graded only from day 0 to day {rules.crs_window_end} and within "
                f"{rules.crs_episode_margin} day(s) of recorded CRS episodes, never on days of "
                "a documented infection without a CRS record"
                + ("; after tocilizumab or a steroid given during CRS, fever is not required"
                   if rules.crs_masked_fever else "") + ". Positive-pressure ventilation "
                "(grade 4) and vasopressin are not in these vitals and are not derived.")


def _ae(study: Study, cohort: Cohort | None, params: AdverseEventParams) -> pl.DataFrame:
    return toxicity.adverse_event_summary(
        _events(study, cohort), n_patients=len(common.subjects(study, cohort)),
        categories=params.categories, min_grade=params.min_grade,
        term_contains=params.term_contains)


@recipe
def adverse_events(study: Study, *, cohort: Cohort | None = None,
                   params: AdverseEventParams = AdverseEventParams(), focus: Any = None
                   ) -> TableSpec:
    """Patients by worst grade per term, with % of the cohort's patients."""
    n = len(common.subjects(study, cohort))
    return TableSpec(key="saf-ae", title="Adverse events", data=_ae(study, cohort, params),
                     params=params,
                     caption=f"Patients by worst grade per term; % of {n} patients.")


@recipe
def adverse_event_figure(study: Study, *, cohort: Cohort | None = None,
                         params: AdverseEventParams = AdverseEventParams(), focus: Any = None
                         ) -> FigureSpec | None:
    """The adverse-event table as bars by worst grade; None when nothing is listed."""
    ae = _ae(study, cohort, params)
    if ae.height == 0:
        return None
    return FigureSpec(key="saf-ae-bars", title="Adverse events by worst grade",
                      fig=adverse_event_bars(ae, title="Adverse events by worst grade"),
                      data=ae, params=params)


@recipe
def infections(study: Study, *, cohort: Cohort | None = None, params: None = None,
               focus: Any = None) -> TableSpec:
    """Documented infections of the cohort's patients."""
    return TableSpec(key="saf-infections", title="Infections",
                     data=toxicity.infections(_events(study, cohort)))


@recipe
def cytokine_slide(study: Study, *, cohort: Cohort | None = None,
                   params: CytokineSlideParams = CytokineSlideParams(), focus: Any = None
                   ) -> FigureSpec | None:
    """One analyte, one panel per patient, CRS and ICANS episodes shaded (the deck's cytokine
    slide); None when the study measured none of IL6, IFNG, CRP, FERRITIN."""
    measured = set(study.measurements.get_column("analyte").to_list())
    analyte = params.analyte if params.analyte in measured else next(
        (a for a in ("IL6", "IFNG", "CRP", "FERRITIN") if a in measured), None)
    if analyte is None:
        return None
    lo, hi = params.days
    data = common.apply(study, study.series(analytes=[analyte]), cohort) \
        .filter((pl.col("day") >= lo) & (pl.col("day") <= hi))
    if data.height == 0:
        return None
    eps = toxicity.toxicity_episodes(study.events)
    fig = cytokine_panels(data, eps, facet="subject_id",
                          cols=min(5, data.get_column("subject_id").n_unique()),
                          colors=common.colors(study),
                          title=f"{study.analyte_label(analyte)}, days {lo} to {hi}",
                          x_range=(lo, hi))
    return FigureSpec(key="cytokines", title=f"{ {'IL6': 'IL-6'}.get(analyte, analyte)} and CRS after infusion", fig=fig,
                      data=data.select("subject_id", "day", "analyte", "value", "unit"),
                      params=params,
                      caption="One panel per patient, log10 axis. Shading: CRS episodes (full "
                              "height) and ICANS (top band), coloured by ASTCT grade.")


@recipe
def safety_overview(study: Study, *, cohort: Cohort | None = None, params: None = None,
                    focus: Any = None) -> FigureSpec | None:
    """Patients by maximum CRS/ICANS grade next to the adverse events by worst grade (the
    deck's safety slide); None without events."""
    if not study.has("events"):
        return None
    ids = common.subjects(study, cohort)
    events = study.events.filter(pl.col("subject_id").is_in(ids))
    crs = toxicity.crs_summary(events, subjects=ids)
    ae = toxicity.adverse_event_summary(events, n_patients=len(ids))
    if ae.height == 0 and crs.height == 0:
        return None
    fig = safety_summary(toxicity.grade_incidence(crs), ae, title=f"Safety ({len(ids)} patients)")
    return FigureSpec(key="crs_ae", title="CRS, ICANS and adverse events", fig=fig, data=ae,
                      caption="Patients by maximum grade (recorded). CRS/ICANS per ASTCT 2019; "
                              "other events as recorded (CTCAE v5).")
