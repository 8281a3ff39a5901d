"""The cohort filter and response groups shared by every page.

`Cohort` is what the sidebar holds (patients, response groups, day window) and what the URL
query parameters encode. `response_groups` says which group each patient belongs to:
response_override in patients first, else the best response derived from blood counts under
NIH criteria (analysis.response; patients with evaluable counts), else the best recorded
response (CR/PR = Responder, NR = Non-responder; a response recorded on or after an HSCT is NE,
not the CAR-T's), else "Not evaluable". Pages apply the cohort with `apply_cohort`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from analysis.registry import derived_table
from analysis.vocab import (
    ASSESSED,
    NON_RESPONDER,
    NOT_EVALUABLE,
    NR,
    RESPONDER,
    RESPONDING,
    RESPONSE_GROUPS,
    RESPONSE_RANK,
    ColourBy,
    DayWindow,
)

if TYPE_CHECKING:
    from analysis.rules import Rules
    from data_loaders import Study

__all__ = ["Cohort", "Focus", "GROUPS", "RESPONDER", "NON_RESPONDER", "NOT_EVALUABLE", "response_groups",
           "cohort_subjects", "apply_cohort", "best_recorded_response"]

GROUPS = RESPONSE_GROUPS


def _window(days: DayWindow | str | None) -> DayWindow:
    # a cohort's or a focus's window keeps only its days (a named window such as "D28" and
    # "21:35" are the same filter), so equal filters are equal values
    if days is not None and not isinstance(days, (DayWindow, str)):
        raise TypeError(f"days={days!r}: a cohort's or a focus's days are one DayWindow "
                        "(e.g. DayWindow(0, 28)) or its text \"0:28\"")
    return DayWindow.parse(days).unlabelled


@dataclass(frozen=True)
class Cohort:
    """Who and when every page shows. Empty tuples mean "all"; `days` is the study-day
    window (analysis.vocab.DayWindow; open sides mean "no limit"; "lo:hi" text is parsed).
    `colour_by` is how per-patient figures colour the cohort's patients ("patient" or
    "response_group"; None: the study's `[display] colour_patients_by`); it travels with the
    cohort so a link, an export and a code snippet keep it."""

    subjects: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    days: DayWindow = DayWindow()
    colour_by: ColourBy | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", _window(self.days))

    @classmethod
    def of(cls, *, subjects: Iterable[str] = (), groups: Iterable[str] = (),
           days: DayWindow | str | None = None, colour_by: ColourBy | None = None) -> Cohort:
        """A cohort from patients, groups and a day window (a DayWindow or its "lo:hi")."""
        return cls(subjects=tuple(subjects), groups=tuple(groups), days=_window(days),
                   colour_by=colour_by)

    def describe(self) -> str:
        parts = [f"patients {', '.join(self.subjects)}" if self.subjects else "all patients"]
        if self.groups:
            parts.append(f"groups {', '.join(self.groups)}")
        if not self.days.is_everything:
            parts.append(f"days {self.days.text.replace(':', '..')}")
        if self.colour_by is not None:
            parts.append(f"coloured by {self.colour_by.replace('_', ' ')}")
        return "; ".join(parts)

    @property
    def is_everything(self) -> bool:
        return not self.subjects and not self.groups and self.days.is_everything


def best_recorded_response(responses: pl.DataFrame) -> pl.DataFrame:
    """Best recorded response per patient: subject_id, best_response, best_response_day."""
    if responses.height == 0:
        return pl.DataFrame(schema={"subject_id": pl.String, "best_response": pl.String,
                                    "best_response_day": pl.Int64})
    return (
        responses.with_columns(pl.col("response").replace_strict(RESPONSE_RANK, default=0).alias("_r"))
        .sort("subject_id", "_r", "day", descending=[False, True, False])
        .group_by("subject_id", maintain_order=True)
        .first()
        .select("subject_id", pl.col("response").alias("best_response"),
                pl.col("day").alias("best_response_day"))
    )


@derived_table("response_groups", "Response group per patient (override, else derived NIH "
               "best response, else best recorded)")
def response_groups(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """subject_id, best_response, response_group, group_source for every patient.

    group_source: "override" (patients.response_override), "derived NIH" (best response derived
    from the counts, when at least one assessment is evaluable), "recorded" (best recorded
    response), "none"."""
    from analysis.response import best_of, derived_responses, recorded_responses

    pts = study.patients.select("subject_id", "response_override")
    best = best_recorded_response(recorded_responses(study).select(
        "subject_id", "day", pl.col("category").alias("response")))
    derived = best_of(derived_responses(study, criteria="NIH", rules=rules)) \
        .filter(pl.col("best_response").is_in(ASSESSED)) \
        .select("subject_id", pl.col("best_response").alias("_derived"))
    out = (pts.join(best, on="subject_id", how="left")
           .join(derived, on="subject_id", how="left")
           .with_columns(pl.coalesce(pl.col("response_override").str.to_uppercase(),
                                     pl.col("_derived"), pl.col("best_response")).alias("_resp")))
    return out.select(
        "subject_id",
        pl.col("_resp").alias("best_response"),
        pl.when(pl.col("_resp").is_in(RESPONDING)).then(pl.lit(RESPONDER))
        .when(pl.col("_resp") == NR).then(pl.lit(NON_RESPONDER))
        .otherwise(pl.lit(NOT_EVALUABLE)).alias("response_group"),
        pl.when(pl.col("response_override").is_not_null()).then(pl.lit("override"))
        .when(pl.col("_derived").is_not_null()).then(pl.lit("derived NIH"))
        .when(pl.col("best_response").is_not_null()).then(pl.lit("recorded"))
        .otherwise(pl.lit("none")).alias("group_source"),
    )


def cohort_subjects(groups: pl.DataFrame, cohort: Cohort) -> list[str]:
    """The subject_ids the cohort keeps, in the patients' order."""
    df = groups
    if cohort.subjects:
        df = df.filter(pl.col("subject_id").is_in(list(cohort.subjects)))
    if cohort.groups:
        df = df.filter(pl.col("response_group").is_in(list(cohort.groups)))
    return df.get_column("subject_id").to_list()


def apply_cohort(frame: pl.DataFrame, cohort: Cohort, *, groups: pl.DataFrame,
                 day_col: str | None = "day") -> pl.DataFrame:
    """Keep the cohort's patients (and days, when the frame has `day_col`)."""
    out = frame
    if "subject_id" in out.columns and (cohort.subjects or cohort.groups):
        out = out.filter(pl.col("subject_id").is_in(cohort_subjects(groups, cohort)))
    if day_col and day_col in out.columns and not cohort.days.is_everything:
        out = out.filter(cohort.days.contains(day_col))
    return out


@dataclass(frozen=True)
class Focus:
    """A selection made on one page (cells lassoed on the immune landscape, a sample clicked
    on the Patient page) that other pages highlight: these patients, in this day window.
    `study_key` is the `Study.cache_key` it was made on (a focus never crosses studies). Views
    take it as their `focus` argument; the app keeps it in the session."""

    subjects: tuple[str, ...]
    days: DayWindow = DayWindow()
    label: str = ""
    study_key: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", _window(self.days))

    def describe(self) -> str:
        days = "" if self.days.is_everything else f", days {self.days.text.replace(':', '..')}"
        return f"{self.label or 'focus'}: {', '.join(self.subjects)}{days}"
