"""The study-level toxicity tables (derived tables of the registry): CRS per patient with the
grade derived from vitals, the daily ASTCT grades and their comparison, cytokine peaks, adverse
events."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from analysis.registry import Option, derived_table
from analysis.rules import Rules, rules_for

if TYPE_CHECKING:
    from data_loaders import Study
from analysis.toxicity.adverse_events import adverse_event_summary
from analysis.toxicity.astct import astct_comparison, astct_daily_grades, with_recorded_daily
from analysis.toxicity.cytokines import cytokine_peaks
from analysis.toxicity.episodes import crs_summary

__all__ = ["crs_table", "cytokine_peaks_table", "adverse_events_table", "crs_daily_table",
           "astct_comparison_table"]


@derived_table("crs", "CRS and ICANS per patient (recorded ASTCT 2019 grades): max grade, "
               "onset day, duration; with the grade derived from vitals where given")
def crs_table(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """crs_summary of the study's events, plus crs_derived_max_grade and crs_grade_agrees when
    the study has vitals (graded per the CRS window rule settings)."""
    rules = rules if rules is not None else rules_for(study)
    out = crs_summary(study.events, subjects=study.subject_ids,
                      events_recorded=study.has("events"))
    comp = astct_comparison(study.measurements, events=study.events, rules=rules)
    if comp.height:
        out = out.join(comp.select("subject_id", "crs_derived_max_grade", "crs_grade_agrees"),
                       on="subject_id", how="left")
    return out


@derived_table("cytokine_peaks", "Peak cytokine, ferritin and CRP per patient after infusion",
               options={"to_day": Option(int, 28, "last day of the peak window")})
def cytokine_peaks_table(study: Study, *, to_day: int = 28) -> pl.DataFrame:
    """cytokine_peaks of the study's measurements, with crs_max_grade."""
    peaks = cytokine_peaks(study.measurements, to_day=to_day)
    crs = crs_summary(study.events, subjects=study.subject_ids,
                      events_recorded=study.has("events"))
    return peaks.join(crs.select("subject_id", "crs_max_grade", "icans_max_grade"),
                      on="subject_id", how="left")


@derived_table("adverse_events", "Adverse events, infections, CRS and ICANS by term: patients "
               "by worst grade, % of all patients",
               options={"min_grade": Option(int, 0, "keep patients whose worst grade is at "
                                                    "least this")})
def adverse_events_table(study: Study, *, min_grade: int = 0) -> pl.DataFrame:
    """adverse_event_summary over every patient of the study."""
    return adverse_event_summary(study.events, n_patients=len(study.subject_ids),
                                 min_grade=min_grade)


@derived_table("crs_daily", "ASTCT 2019 CRS grade derived from vitals per patient and day, "
               "graded only in the CRS window and never on infection days without a CRS "
               "record (column reason says why), with the recorded grade covering the day",
               options={"crs_fever_carry_days": Option(
                   int, 0, "days a fever still counts when masked by antipyretics")})
def crs_daily_table(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """astct_daily_grades of the study's vitals and events plus recorded_grade from its CRS
    events."""
    rules = rules if rules is not None else rules_for(study)
    daily = astct_daily_grades(study.measurements, events=study.events, rules=rules)
    return with_recorded_daily(daily, study.events)


def astct_comparison_table(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """astct_comparison of the study's vitals and events."""
    rules = rules if rules is not None else rules_for(study)
    return astct_comparison(study.measurements, events=study.events, rules=rules)
