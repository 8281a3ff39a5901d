"""Views of the Cytokines & safety page: one patient's cytokines with the CRS/ICANS episodes,
peaks against the CRS grade, CRS and ICANS (recorded, and graded from vitals per ASTCT 2019),
adverse events and infections. The cohort views: every patient's cytokines on one time axis
(days from infusion, or from CRS onset), one panel per patient with the CRS and ICANS episodes
shaded (the standard deck's cytokine slide), by response group with the number of patients at
each time point, and the medications given for CRS and ICANS.

Alignment to CRS onset uses the first recorded CRS episode of each patient
(analysis.toxicity.toxicity_episodes); patients without CRS are left out of that view and
counted in the caption. Group summaries are patient-level: one value per patient and time
point (replicates on a day averaged), then median and interquartile range across patients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import polars as pl

from analysis import post_hsct, toxicity
from analysis.cohort import GROUPS, Cohort, cohort_subjects, response_groups
from analysis.vocab import DayWindow, is_blood
from components.figures.cytokines import cohort_cytokine_panels, group_cytokine_panels
from components.figures.safety import cytokine_panels, peak_vs_grade
from views import common
from views.spec import FigureSpec, TableSpec, recipe

# CRS and ICANS, ASTCT grading from vitals and adverse events are views/toxicity.py; the page
# reads them through this module
from views.toxicity import (
    CRS_RULES,
    AdverseEventParams,
    CrsDefaults,
    CrsParams,
    adverse_event_figure,
    adverse_events,
    astct_agreement,
    astct_comparison,
    astct_daily,
    astct_day_table,
    astct_days,
    crs_defaults,
    crs_episodes,
    crs_params,
    crs_rules,
    has_vitals,
    incidence,
    incidence_table,
    infections,
    onset,
)

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["CohortCytokineParams", "ALIGNMENTS", "aligned_cytokines", "cohort_cytokines",
           "cytokine_group_summary", "crs_treatments", "hsct_marks",
           "hsct_marks_aligned", "SHOW", "PANEL_PATIENTS", "slide_analyte"]

Align = Literal["infusion", "crs_onset"]
Show = Literal["patients", "panels", "groups"]
ALIGNMENTS: dict[str, str] = {"infusion": "Day from CAR-T infusion",
                              "crs_onset": "Day from CRS onset"}
SHOW: dict[str, str] = {"patients": "Every patient", "panels": "A panel per patient (CRS shaded)",
                        "groups": "By response group (n per day)"}
PANEL_PATIENTS = 20            # panels per patient drawn at most (then: narrow the cohort)
SLIDE_ANALYTES = ("IL6", "IFNG", "CRP", "FERRITIN")


@dataclass(frozen=True)
class CohortCytokineParams:
    """`analytes` to draw (default: the cytokines and CRP/ferritin the study has), `align` the
    time axis, `show` every patient on one panel per analyte ("patients"), a panel per
    patient (and analyte) with its CRS and ICANS episodes shaded ("panels"), or median/IQR per
    response group ("groups"), `days` the window on the aligned axis (both ends given),
    `log_y` the scale."""

    analytes: tuple[str, ...] = ()
    align: Align = "infusion"
    show: Show = "patients"
    days: DayWindow = DayWindow(-7, 28)
    log_y: bool = True

    def __post_init__(self) -> None:
        _closed(self.days)


def _closed(days: DayWindow) -> None:
    # the cytokine figures draw the window as their x axis: it needs both ends
    if days.lo is None or days.hi is None:
        raise ValueError(f"days {days.text}: the cytokine figures need a first and a last "
                         "day, e.g. -7:28")


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
    return (m.with_columns((pl.col("day") - pl.col("_ref")).alias("rel_day"))
            .filter(params.days.contains("rel_day"))
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
                     params: CohortCytokineParams, focus: Focus | None = None) -> FigureSpec:
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
                 "CAR-T's)." if any(params.days.includes(m[0]) for m in marks)
                 else "")
    if params.show == "groups":
        before = post_hsct.for_summary(data, hsct=post_hsct.hsct_days(study))
        n_post = data.height - before.height
        summary = cytokine_group_summary(before)
        if n_post:
            left_out += f"; {n_post} value(s) on or after an HSCT kept out of the medians"
        fig = group_cytokine_panels(summary, x="rel_day", facet_order=present, titles=titles,
                                    log_y=params.log_y, x_title=x_title,
                                    range_x=params.days.bounds, marks=marks,
                                    title="Cytokines by response group (median, IQR; numbers: "
                                          "patients at each time point)")
        return FigureSpec(key="saf-cohort-cytokines", title="Cytokines by response group",
                          fig=fig, data=summary, params=params,
                          caption=f"{n_pat} patient(s){left_out}. Median and interquartile "
                                  "range across patients, one value per patient and day."
                                  + hsct_text)
    colors = common.colors(study, cohort)
    if params.show == "panels":
        return _patient_panels(study, data, cohort=cohort, params=params, present=present,
                               marks=marks, note=f"{n_pat} patient(s){left_out}")
    fig = cohort_cytokine_panels(data, x="rel_day", facet_order=present, titles=titles,
                                 colors=colors, log_y=params.log_y, x_title=x_title,
                                 range_x=params.days.bounds, marks=marks,
                                 title=f"Cytokines of {n_pat} patient(s), "
                                       f"{x_title[0].lower()}{x_title[1:]}")
    return FigureSpec(key="saf-cohort-cytokines", title="Cytokines across the cohort", fig=fig,
                      data=data, params=params,
                      caption=f"{n_pat} patient(s){left_out}.{hsct_text}")


def slide_analyte(study: Study) -> str | None:
    """The analyte of the deck's cytokine slide: the first of IL-6, IFN-gamma, CRP and
    ferritin the study measured (None: none)."""
    measured = set(study.analytes_present())
    return next((a for a in SLIDE_ANALYTES if a in measured), None)


def _patient_panels(study: Study, data: pl.DataFrame, *, cohort: Cohort | None,
                    params: CohortCytokineParams, present: list[str],
                    marks: list[tuple[float, float, str]], note: str) -> FigureSpec:
    """A panel per patient (one analyte) or per patient and analyte (a row per patient), the
    patient's CRS and ICANS episodes shaded on the aligned axis."""
    patients = sorted(data.get_column("subject_id").unique().to_list())
    shown = patients[:PANEL_PATIENTS]
    data = data.filter(pl.col("subject_id").is_in(shown))
    ref = data.group_by("subject_id").agg((pl.col("day") - pl.col("rel_day")).first()
                                          .alias("_ref"))
    episodes = (toxicity.toxicity_episodes(_events(study, cohort)).join(ref, on="subject_id")
                .with_columns(pl.col("start") - pl.col("_ref"), pl.col("end") - pl.col("_ref"))
                .drop("_ref"))
    one = len(present) == 1
    labels = {a: study.analyte_label(a) for a in present}
    panels = data.with_columns(
        (pl.col("subject_id") if one else pl.format("{} · {}", "subject_id", "analyte"))
        .alias("panel"))
    order = shown if one else [f"{p} · {a}" for p in shown for a in present]
    titles = {p: p for p in shown} if one else \
        {f"{p} · {a}": f"{p} · {labels[a]}" for p in shown for a in present}
    x_title = ALIGNMENTS[params.align]
    what = labels[present[0]] if one else "Cytokines"
    cols = max(1, min(5, len(shown)) if one else len(present))
    fig = cytokine_panels(panels, episodes, x="rel_day", facet="panel", facet_order=order,
                          titles=titles, colors=common.colors(study, cohort), cols=cols,
                          log_y=params.log_y, x_range=params.days.bounds, marks=marks,
                          # one analyte: the patients' values on one scale, to compare them
                          match_y=one,
                          title=f"{what}, {x_title[0].lower()}{x_title[1:]} "
                                f"{params.days.lo} to {params.days.hi}")
    # one axis title, under the middle panel of the bottom row (five would run together)
    rows = max(1, math.ceil(len(order) / cols))
    in_last_row = max(1, len(order) - (rows - 1) * cols)
    fig.update_xaxes(title_text="")
    fig.update_xaxes(title_text=x_title, row=rows, col=(in_last_row + 1) // 2)
    # the panel titles name the patients: the legend keeps the CRS and ICANS grades
    fig.update_traces(showlegend=False)
    more = f" Panels for the first {PANEL_PATIENTS} of {len(patients)} patients: narrow " \
        "the cohort to see the others." if len(patients) > len(shown) else ""
    return FigureSpec(key="saf-cohort-cytokines", title=f"{what} and CRS per patient",
                      fig=fig, data=data.select("subject_id", "analyte", "day", "rel_day",
                                                "value", "response_group"),
                      params=params,
                      caption=f"{note}. {'Log10' if params.log_y else 'Linear'} axis. "
                              "Shading: CRS episodes (full height) and ICANS (band along the "
                              "top), coloured by ASTCT grade." + more)


@recipe
def crs_treatments(study: Study, *, cohort: Cohort | None = None,
                   params: CohortCytokineParams | None = None,
                   focus: Focus | None = None) -> TableSpec:
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


# ---- one patient's cytokines and peaks -------------------------------
__all__ += ["PANEL", "CYTOKINES", "PatientCytokineParams", "present_panel", "not_measured_note",
            "patient_cytokines", "peaks", "peak_figure"]

CYTOKINES = toxicity.CYTOKINES
PANEL = (*CYTOKINES, *toxicity.INFLAMMATION_MARKERS)


@dataclass(frozen=True)
class PatientCytokineParams:
    """The patient and the days shown (both ends given; the peaks are taken from day 0 to
    the window's end, day 28 when the window ends before day 1)."""

    patient: str
    days: DayWindow = DayWindow(-7, 28)

    def __post_init__(self) -> None:
        _closed(self.days)


def _events(study: Study, cohort: Cohort | None) -> pl.DataFrame:
    return common.apply(study, study.events, cohort, day_col=None)


def present_panel(study: Study) -> list[str]:
    """The cytokines and inflammation markers this study measured."""
    measured = set(study.analytes_present())
    return [a for a in PANEL if a in measured]


def not_measured_note(study: Study) -> str | None:
    """"Not measured in this study: IL2, TNFA." for the cytokines the study lacks (None when
    it has them all)."""
    present = set(present_panel(study))
    missing = [a for a in CYTOKINES if a not in present]
    return f"Not measured in this study: {', '.join(missing)}." if missing else None


@recipe
def patient_cytokines(study: Study, *, cohort: Cohort | None = None,
                      params: PatientCytokineParams,
                      focus: Focus | None = None) -> FigureSpec | None:
    """One patient's cytokines, ferritin and CRP (log10) with the CRS/ICANS episodes shaded;
    None when none is measured."""
    present = present_panel(study)
    if not present:
        return None
    episodes = toxicity.toxicity_episodes(_events(study, cohort))
    data = study.series(analytes=present, subjects=[params.patient]).filter(
        params.days.contains("day"))
    titles = {a: f"{a} ({study.catalogue[a].unit})" if a in study.catalogue else a
              for a in present}
    fig = cytokine_panels(data, episodes, facet_order=present, colors=common.colors(study, cohort),
                          x_range=params.days.bounds,
                          marks=hsct_marks(study, subjects=[params.patient]),
                          titles=titles, title=f"{params.patient}: cytokines, ferritin and CRP")
    return FigureSpec(key="saf-cytokines", title=f"{params.patient}: cytokines", fig=fig,
                      data=data, params=params,
                      caption="Log10 axes. Shading: CRS episodes (full height) and ICANS (band "
                              "along the top), coloured by ASTCT grade. Dash-dot line: an HSCT "
                              "in the days shown.")


def peak_end(params: PatientCytokineParams) -> int:
    return params.days.hi if params.days.hi is not None and params.days.hi > 0 else 28


@recipe
def peaks(study: Study, *, cohort: Cohort | None = None, params: PatientCytokineParams,
          focus: Focus | None = None) -> TableSpec:
    """Each patient's peak per cytokine from day 0 to the window's end, with CRS max grade."""
    end = peak_end(params)
    table = toxicity.cytokine_peaks_table(study, to_day=end) \
        .filter(pl.col("subject_id").is_in(common.subjects(study, cohort)))
    return TableSpec(key="saf-peaks", title=f"Peak per patient, days 0-{end}", data=table,
                     params=params)


@recipe
def peak_figure(study: Study, *, cohort: Cohort | None = None, params: PatientCytokineParams,
                focus: Focus | None = None) -> FigureSpec:
    """Peak value against CRS max grade, one point per patient."""
    table = peaks(study, cohort=cohort, params=params).data
    fig = peak_vs_grade(table, facet_order=present_panel(study), colors=common.colors(study, cohort),
                        title="Peak value against CRS max grade")
    return FigureSpec(key="saf-peak-grade", title="Peak value against CRS max grade",
                      fig=fig, data=table, params=params)


__all__ += ["CRS_RULES", "AdverseEventParams", "CrsDefaults", "CrsParams", "crs_defaults",
            "crs_params", "astct_agreement", "adverse_event_figure",
            "adverse_events", "astct_comparison", "astct_daily", "astct_day_table",
            "astct_days", "crs_episodes", "crs_rules", "has_vitals", "incidence",
            "incidence_table", "infections", "onset"]
