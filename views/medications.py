"""Concomitant medications of the cohort (events of category medication and growth_factor) as
a table a page can show next to what they act on: growth factors and TPO receptor agonists
next to the counts, ciclosporin and steroids next to toxicity (docs/data-format.md,
Medications)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from analysis.cohort import Cohort, cohort_subjects, response_groups
from analysis.vocab import DayWindow
from views.spec import TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["MedicationParams", "COUNT_DRUGS", "medication_table"]

# classes that change blood counts or their reading (G-CSF: neutrophils; TPO-RA: platelets;
# ciclosporin: the immunosuppression under which counts recover; steroids)
COUNT_DRUGS = ("g_csf", "tpo_ra", "ciclosporin", "corticosteroid")


@dataclass(frozen=True)
class MedicationParams:
    """`classes`: the drug classes listed (empty: all); `days`: the window a course must
    overlap (an open side: the cohort's day window on that side)."""

    classes: tuple[str, ...] = ()
    days: DayWindow = DayWindow()


@recipe
def medication_table(study: Study, *, cohort: Cohort | None = None,
                     params: MedicationParams, focus: Focus | None = None) -> TableSpec:
    """subject_id, drug class, term, day, end_day, days (course length), one row per course;
    G-CSF recorded as category growth_factor is listed as class g_csf."""
    ev = study.events
    if cohort is not None:
        ev = ev.filter(pl.col("subject_id").is_in(cohort_subjects(response_groups(study),
                                                                  cohort)))
    med = ev.filter(pl.col("category").is_in(["medication", "growth_factor"])).with_columns(
        pl.when(pl.col("category") == "growth_factor").then(pl.lit("g_csf"))
        .otherwise(pl.col("product").fill_null("other")).alias("drug_class"),
        pl.col("end_day").fill_null(pl.col("day")).alias("end_day"))
    if params.classes:
        med = med.filter(pl.col("drug_class").is_in(list(params.classes)))
    window = params.days.filled(cohort.days if cohort is not None else None)
    med = med.filter(window.overlaps("day", "end_day"))
    data = med.select("subject_id", "drug_class", "term", "day", "end_day",
                      (pl.col("end_day") - pl.col("day") + 1).alias("days")) \
        .sort("subject_id", "day", "drug_class")
    return TableSpec(key="medications", title="Medications", data=data, params=params,
                     caption="One row per course as recorded (events: medication, "
                             "growth_factor).")
