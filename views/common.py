"""What every view does with the cohort: the response groups, the cohort's patients, a frame
cut to the cohort (patients and day window), the study's rule settings and patient colours."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import polars as pl

from analysis.cohort import Cohort, apply_cohort, cohort_subjects, response_groups
from analysis.rules import Rules, rules_for

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["cohort_or_all", "groups", "subjects", "apply", "rules", "colors", "colour_by"]


def cohort_or_all(cohort: Cohort | None) -> Cohort:
    """None means every patient and every day."""
    return cohort if cohort is not None else Cohort()


@functools.lru_cache(maxsize=16)
def groups(study: Study) -> pl.DataFrame:
    """Response group per patient (analysis.cohort.response_groups), once per study version
    (a Study hashes by its cache key; views of one page all need it)."""
    return response_groups(study)


def subjects(study: Study, cohort: Cohort | None) -> list[str]:
    """The cohort's patients, in the study's order."""
    return cohort_subjects(groups(study), cohort_or_all(cohort))


def apply(study: Study, frame: pl.DataFrame, cohort: Cohort | None, *,
          day_col: str | None = "day") -> pl.DataFrame:
    """`frame` cut to the cohort's patients and day window."""
    return apply_cohort(frame, cohort_or_all(cohort), groups=groups(study), day_col=day_col)


def rules(study: Study) -> Rules:
    """The study's rule settings (study.toml [rules] over the defaults)."""
    return rules_for(study)


def colour_by(study: Study) -> str:
    """How per-patient figures are coloured: study.toml `[display] colour_patients_by`,
    "patient" (default: one colour per patient) or "response_group" (each patient's line in
    the colour of its response group)."""
    from components.theme import COLOUR_BY

    config = getattr(study, "config", None) or {}
    display = config.get("display", {}) or {}
    mode = str(display.get("colour_patients_by", "patient"))
    if mode not in COLOUR_BY:
        raise ValueError(f"study.toml [display] colour_patients_by = {mode!r}: use one of "
                         f"{', '.join(COLOUR_BY)}")
    return mode


def colors(study: Study, cohort: Cohort | None = None) -> dict[str, str]:
    """The colour of each patient, the same on every page: one per patient, or the patient's
    response group. The cohort's `colour_by` (the sidebar's choice) wins over the study's
    setting (`colour_by`)."""
    from components.theme import group_patient_colors, patient_colors

    mode = (cohort.colour_by if cohort is not None else None) or colour_by(study)
    if mode == "response_group":
        return group_patient_colors(groups(study))
    return patient_colors(study.subject_ids)


def overrides(rules: Rules, **values: object) -> dict[str, object]:
    """The page's rule values as Params fields: None where a value is the study's setting
    (so Params name only what the user changed, and a link or export carries only that)."""
    return {k: (None if getattr(rules, k) == v else v) for k, v in values.items()}
