"""Study-level response tables: derived responses per assessment, best response, baseline
severity, counts before HSCT, timepoint labels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import polars as pl

from analysis.registry import Option, derived_table
from analysis.rules import Rules, rules_for
from analysis.vocab import (
    LANDMARKS,
    RESPONSE_RANK,
)

if TYPE_CHECKING:
    from data_loaders import Study
from analysis.response.criteria import CRITERIA
from analysis.response.engine import assess_responses
from analysis.response.inputs import assessment_days, hsct_per_patient, transfusion_events

__all__ = ["derived_responses", "best_of", "best_response", "baseline_severity",
           "label_timepoints", "counts_before_hsct"]


RESPONSE_OPTIONS = {
    "criteria": Option(str, "NIH", "response criteria", CRITERIA),
    "ti_window": Option(int, 56, "transfusion-independence window (days); same as --rule "
                                 "ti_window=N"),
    "count_window": Option(int, 7, "use the count nearest the assessment day within +/- this "
                                   "many days; same as --rule count_window=N"),
    "days": Option(str, None, "comma-separated assessment days (default: the recorded "
                              "assessment days, else 28,90,180,365)"),
}


def counts_before_hsct(study: Study) -> pl.DataFrame:
    """The study's measurements without anything from an HSCT day on: counts after a
    transplant are the graft's and never decide an assessment of the CAR-T."""
    hsct = hsct_per_patient(study)
    return (study.measurements.join(hsct, on="subject_id", how="left")
            .filter(pl.col("_hsct").is_null() | (pl.col("day") < pl.col("_hsct")))
            .drop("_hsct"))


@derived_table("derived_responses", "Response per assessment derived from blood counts "
               "(also: table responses --criteria NIH|BSH)", options=RESPONSE_OPTIONS)
def derived_responses(study: Study, *, criteria: str = "NIH",
                      days: str | Iterable[int] | None = None,
                      rules: Rules | None = None) -> pl.DataFrame:
    """assess_responses over a study: subject_id, day, category, rule, then the details.
    Baseline severity comes from analysis.baseline; support windows from the transfusions and
    G-CSF events; counts from an HSCT day on are left out."""
    from analysis.baseline import baseline
    from analysis.support import support_intervals

    rules = rules if rules is not None else rules_for(study)
    tx = transfusion_events(study.events)
    base = baseline(study, rules=rules)
    # a derived severity that cannot be judged falls back on the recorded diagnosis
    recorded = pl.col("diagnosis").str.strip_chars().str.to_uppercase().replace(
        {"VSAA": "vSAA"})
    base = base.with_columns(
        pl.when(pl.col("severity").is_in(["vSAA", "SAA", "NSAA"])).then(pl.col("severity"))
        .when(recorded.is_in(["vSAA", "SAA", "NSAA"])).then(recorded)
        .otherwise(pl.col("severity")).alias("severity"))
    return assess_responses(
        counts_before_hsct(study), assessment_days(study, days=days, window=rules.count_window),
        transfusions=tx, criteria=criteria, rules=rules,
        support=support_intervals(study.events, rules=rules, transfusions=tx),
        baseline=base)


def best_of(responses: pl.DataFrame, *, category: str = "category") -> pl.DataFrame:
    """Best category per patient (CR > PR > NR > NE) and the first day it was reached:
    subject_id, best_response, best_response_day (and rule, the rule of that assessment, when
    `responses` has one)."""
    extra = ["rule"] if "rule" in responses.columns else []
    return (
        responses.with_columns(pl.col(category).replace_strict(RESPONSE_RANK, default=0).alias("_r"))
        .sort("subject_id", "_r", "day", descending=[False, True, False])
        .group_by("subject_id", maintain_order=True).first()
        .select("subject_id", pl.col(category).alias("best_response"),
                pl.col("day").alias("best_response_day"), *extra)
    )


def label_timepoints(frame: pl.DataFrame, *, day: str = "day") -> pl.DataFrame:
    """Adds `timepoint`: the landmark name (D28, M3, M6, M12) on a landmark day, else "D<day>"."""
    names = {v: k for k, v in LANDMARKS.items()}
    return frame.with_columns(
        pl.col(day).replace_strict(names, default=None, return_dtype=pl.String)
        .fill_null(pl.format("D{}", pl.col(day))).alias("timepoint"))


@derived_table("best_response", "Best derived response per patient (CR > PR > NR > NE)",
               options={k: RESPONSE_OPTIONS[k] for k in ("criteria", "ti_window")})
def best_response(study: Study, *, criteria: str = "NIH",
                  rules: Rules | None = None) -> pl.DataFrame:
    """subject_id, best_response, best_response_day, criteria for every patient (NE and no day
    when the patient has no evaluable assessment)."""
    derived = derived_responses(study, criteria=criteria, rules=rules)
    best = best_of(derived).select("subject_id", "best_response", "best_response_day")
    return (study.patients.select("subject_id")
            .join(best, on="subject_id", how="left")
            .with_columns(pl.col("best_response").fill_null("NE"))
            .with_columns(pl.when(pl.col("best_response") == "NE").then(None)
                          .otherwise(pl.col("best_response_day")).alias("best_response_day"),
                          pl.lit(criteria.upper()).alias("criteria")))


def baseline_severity(study: Study, *, rules: Rules | None = None,
                      retic_threshold: float | None = None) -> pl.DataFrame:
    """Modified Camitta severity at baseline (analysis.baseline: the last counts before
    lymphodepletion): subject_id, anc, plt, retic, cellularity, severity (vSAA/SAA/NSAA/NE),
    rule. `retic_threshold` overrides the rules' cut-off when given."""
    from analysis.baseline import baseline

    rules = rules if rules is not None else rules_for(study)
    if retic_threshold is not None:
        rules = rules.with_(retic_threshold=retic_threshold)
    return baseline(study, rules=rules).select("subject_id", "anc", "plt", "retic",
                                               "cellularity", "severity", "rule")
