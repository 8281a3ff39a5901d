"""Views of the Cytokines & safety page's CRS/ICANS and adverse-event part: CRS and ICANS per
patient (recorded; ASTCT 2019 consensus, Lee et al., Biol Blood Marrow Transplant
2019;25:625), patients by maximum grade, onset and duration, the grade derived from vitals
within the CRS window (analysis.toxicity; never on a documented infection without a CRS
record), adverse events by worst grade (CTCAE v5 as recorded) and infections. Patients by
maximum grade and the adverse events by worst grade are also the standard deck's safety
slides (views.deck)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from analysis import toxicity
from analysis.cohort import Cohort
from analysis.vocab import DayWindow
from components.figures.safety import (
    adverse_event_bars,
    astct_heatmap,
    grade_incidence_bars,
)
from views import common
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["CRS_RULES", "CrsParams", "AdverseEventParams", "CrsDefaults", "crs_defaults",
           "crs_params", "astct_agreement", "crs_rules", "crs_episodes",
           "astct_day_table",
           "incidence", "incidence_table", "onset", "has_vitals", "astct_comparison",
           "astct_days", "astct_daily", "adverse_events", "adverse_event_figure", "infections"]

CRS_RULES = ("crs_window_end", "crs_episode_margin", "crs_masked_fever",
             "crs_fever_carry_days", "crs_fever_c", "crs_hypotension_sbp",
             "crs_low_flow_max_lpm")


@dataclass(frozen=True)
class CrsParams:
    """Rule overrides of ASTCT grading from vitals (None: the study's setting) and the days
    of the daily map."""

    crs_window_end: int | None = None
    crs_masked_fever: bool | None = None
    crs_fever_carry_days: int | None = None
    days: DayWindow = DayWindow(-7, 28)


@dataclass(frozen=True)
class AdverseEventParams:
    """Event categories, the lowest worst grade listed and a term filter."""

    categories: tuple[str, ...] = tuple(toxicity.AE_CATEGORIES)
    min_grade: int = 0
    term_contains: str = ""


@dataclass(frozen=True)
class CrsDefaults:
    """The CRS rule widgets' starting values: the study's settings, within the widgets'
    bounds (window end 1-365 days, fever carry 0-14 days)."""

    window_end: int
    masked_fever: bool
    fever_carry_days: int


def crs_defaults(study: Study) -> CrsDefaults:
    """The starting values of the page's CRS rule widgets (see CrsDefaults)."""
    rules = common.rules(study)
    return CrsDefaults(min(max(int(rules.crs_window_end), 1), 365), bool(rules.crs_masked_fever),
                       min(max(int(rules.crs_fever_carry_days), 0), 14))


def crs_params(study: Study, *, days: DayWindow, window_end: int | None = None,
               masked_fever: bool | None = None, fever_carry_days: int | None = None
               ) -> CrsParams:
    """The Params of the page's CRS choices: a rule value equal to the study's setting is
    left as None (so a link or an export names only what was changed)."""
    given = {"crs_window_end": window_end, "crs_masked_fever": masked_fever,
             "crs_fever_carry_days": fever_carry_days}
    changed = common.overrides(common.rules(study),
                               **{k: v for k, v in given.items() if v is not None})
    return CrsParams(days=days, **changed)


def astct_agreement(study: Study, *, cohort: Cohort | None = None,
                    params: CrsParams = CrsParams()) -> tuple[bool, str]:
    """(agree, message): whether the max CRS grade derived from vitals matches the recorded
    one for every patient with vitals, said as the page shows it."""
    table = astct_comparison(study, cohort=cohort, params=params).data
    n_bad = table.filter(~table["crs_grade_agrees"].fill_null(True)).height
    if n_bad:
        return False, (f"{n_bad} of {table.height} patient(s): the max grade derived from "
                       "vitals differs from the recorded one (see note).")
    return True, (f"Derived and recorded max grades agree for all {table.height} patient(s) "
                  "with vitals.")


def crs_rules(study: Study, params: CrsParams) -> Any:
    """The study's settings with the Params' overrides."""
    changes = {k: getattr(params, k) for k in ("crs_window_end", "crs_masked_fever",
                                               "crs_fever_carry_days")
               if getattr(params, k) is not None}
    rules = common.rules(study)
    return rules.with_(**changes) if changes else rules


def _events(study: Study, cohort: Cohort | None) -> pl.DataFrame:
    return common.apply(study, study.events, cohort, day_col=None)


def _crs(study: Study, cohort: Cohort | None, params: CrsParams) -> pl.DataFrame:
    return toxicity.crs_table(study, rules=crs_rules(study, params)) \
        .filter(pl.col("subject_id").is_in(common.subjects(study, cohort)))


@recipe
def crs_episodes(study: Study, *, cohort: Cohort | None = None,
                 params: CrsParams = CrsParams(), focus: Focus | None = None) -> TableSpec:
    """CRS and ICANS per patient: max grade, onset and duration."""
    return TableSpec(key="saf-crs", title="CRS and ICANS per patient",
                     data=_crs(study, cohort, params), params=params)


@recipe
def incidence(study: Study, *, cohort: Cohort | None = None, params: CrsParams = CrsParams(),
              focus: Focus | None = None) -> FigureSpec | None:
    """Patients by maximum CRS and ICANS grade; None without an events table."""
    if not study.has("events"):
        return None
    table = toxicity.grade_incidence(_crs(study, cohort, params))
    return FigureSpec(key="saf-incidence", title="Patients by max grade",
                      fig=grade_incidence_bars(table, title="Patients by max grade"),
                      data=table, params=params)


@recipe
def incidence_table(study: Study, *, cohort: Cohort | None = None,
                    params: CrsParams = CrsParams(), focus: Focus | None = None) -> TableSpec:
    return TableSpec(key="saf-incidence-table", title="Patients by max grade",
                     data=toxicity.grade_incidence(_crs(study, cohort, params)), params=params)


@recipe
def onset(study: Study, *, cohort: Cohort | None = None, params: CrsParams = CrsParams(),
          focus: Focus | None = None) -> TableSpec:
    """Onset and duration of CRS and ICANS (median, range)."""
    return TableSpec(key="saf-onset", title="Onset and duration",
                     data=toxicity.onset_duration(_crs(study, cohort, params)), params=params)


def has_vitals(study: Study) -> bool:
    """ASTCT grading needs at least the temperature."""
    return "TEMP" in set(study.analytes_present())


@recipe
def astct_comparison(study: Study, *, cohort: Cohort | None = None,
                     params: CrsParams = CrsParams(), focus: Focus | None = None) -> TableSpec:
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
        & params.days.contains("day"))


@recipe
def astct_daily(study: Study, *, cohort: Cohort | None = None, params: CrsParams = CrsParams(),
                focus: Focus | None = None) -> FigureSpec:
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


@recipe
def astct_day_table(study: Study, *, cohort: Cohort | None = None,
                    params: CrsParams = CrsParams(), focus: Focus | None = None) -> TableSpec:
    """Each day of the window: graded from vitals or not, and why."""
    daily = astct_days(study, cohort=cohort, params=params)
    return TableSpec(
        key="saf-crs-daily", params=params,
        title=f"Each day: graded or not, and why ({daily.filter(~daily['graded']).height} "
              "day(s) not graded)",
        data=daily.select("subject_id", "day", "derived_grade", "recorded_grade", "graded",
                          "fever_masked", "basis", "reason"))


def _ae(study: Study, cohort: Cohort | None, params: AdverseEventParams) -> pl.DataFrame:
    return toxicity.adverse_event_summary(
        _events(study, cohort), n_patients=len(common.subjects(study, cohort)),
        categories=params.categories, min_grade=params.min_grade,
        term_contains=params.term_contains)


@recipe
def adverse_events(study: Study, *, cohort: Cohort | None = None,
                   params: AdverseEventParams = AdverseEventParams(), focus: Focus | None = None
                   ) -> TableSpec:
    """Patients by worst grade per term, with % of the cohort's patients."""
    n = len(common.subjects(study, cohort))
    return TableSpec(key="saf-ae", title="Adverse events", data=_ae(study, cohort, params),
                     params=params,
                     caption=f"Patients by worst grade per term; % of {n} patients.")


@recipe
def adverse_event_figure(study: Study, *, cohort: Cohort | None = None,
                         params: AdverseEventParams = AdverseEventParams(),
                         focus: Focus | None = None
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
               focus: Focus | None = None) -> TableSpec | None:
    """Documented infections of the cohort's patients; None when none is recorded."""
    data = toxicity.infections(_events(study, cohort))
    return TableSpec(key="saf-infections", title="Infections", data=data) if data.height \
        else None
