"""Derived against recorded responses: the recorded table, the comparison row by row and its
one-line summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from analysis.registry import derived_table
from analysis.rules import Rules
from analysis.vocab import (
    ASSESSED,
    RESPONSE_RANK,
)

if TYPE_CHECKING:
    from data_loaders import Study
from analysis.response.criteria import criteria_name
from analysis.response.inputs import hsct_per_patient
from analysis.response.tables import RESPONSE_OPTIONS, derived_responses

__all__ = ["compare_recorded", "response_comparison", "comparison_summary", "recorded_responses"]


def compare_recorded(derived: pl.DataFrame, recorded: pl.DataFrame) -> pl.DataFrame:
    """Derived next to recorded responses on the same patient and day:
    subject_id, day, derived, recorded, recorded_criteria, agree, compared, rule.

    Only like is compared with like (DESIGN.md section 3: NIH and BSH/Camitta define PR and CR
    differently, so an NIH-recorded PR beside a BSH-derived NR is not a disagreement): `agree`
    is True/False only when both sides are decided (CR/PR/NR) and the record names the
    derived criteria (aliases: CRITERIA_ALIASES). It is null otherwise, and `compared` says
    why: "same criteria (NIH)", "criteria not recorded", "different criteria (BSH recorded,
    NIH derived)", "no derived assessment", "no recorded assessment", "not decided (NE)".
    Several records on one day: the one with the derived criteria (`derived.criteria`), else
    the worse decided one (whatever the order of the rows)."""
    rec = recorded
    if "criteria" not in rec.columns:
        rec = rec.with_columns(pl.lit(None, dtype=pl.String).alias("criteria"))
    crit = (derived.get_column("criteria").drop_nulls().unique().to_list()
            if "criteria" in derived.columns else [])
    want = str(crit[0]).upper() if len(crit) == 1 else None
    resp = pl.col("response").cast(pl.String).str.strip_chars().str.to_uppercase()
    rank = resp.replace_strict(RESPONSE_RANK, default=0, return_dtype=pl.Int8)
    rec = (rec.with_columns(
               (criteria_name(pl.col("criteria")) == pl.lit(want))
               .fill_null(False).alias("_same"),
               (rank > 0).alias("_decided"), rank.alias("_rank"))
           .sort("subject_id", "day", "_same", "_decided", "_rank",
                 descending=[False, False, True, True, False])
           .group_by("subject_id", "day", maintain_order=True)
           .agg(resp.first().alias("recorded"),
                pl.col("criteria").cast(pl.String).first().alias("recorded_criteria"),
                pl.col("_same").first().alias("_same"))
           .with_columns(pl.col("day").cast(pl.Int64)))
    der = derived.select("subject_id", "day", pl.col("category").alias("derived"), "rule")
    both = der.join(rec, on=["subject_id", "day"], how="full", coalesce=True)
    decided = pl.col("derived").is_in(ASSESSED) & \
        pl.col("recorded").is_in(ASSESSED)
    same = pl.col("_same").fill_null(False)
    blank = pl.col("recorded_criteria").str.strip_chars().fill_null("") == ""
    compared = (
        pl.when(pl.col("recorded").is_null()).then(pl.lit("no recorded assessment"))
        .when(pl.col("derived").is_null()).then(pl.lit("no derived assessment"))
        .when(~decided).then(pl.lit("not decided (NE)"))
        .when(same).then(pl.lit(f"same criteria ({want})"))
        .when(blank).then(pl.lit("criteria not recorded: not compared"))
        .otherwise(pl.format("different criteria ({} recorded, {} derived): not compared",
                             pl.col("recorded_criteria"), pl.lit(want or "unknown"))))
    return both.select(
        "subject_id", "day", "derived", "recorded", "recorded_criteria",
        pl.when(decided & same).then(pl.col("derived") == pl.col("recorded")).alias("agree"),
        compared.alias("compared"), "rule",
    ).sort("subject_id", "day")


def comparison_summary(cmp: pl.DataFrame) -> str:
    """One sentence over a compare_recorded frame: disagreements among the like-with-like
    comparisons, and how many decided records were not compared because their criteria are
    unknown or different."""
    n_same = cmp.filter(pl.col("agree").is_not_null()).height
    n_dis = cmp.filter(pl.col("agree").not_()).height
    text = (f"Derived vs recorded: {n_dis} disagreement(s) over {n_same} assessment(s) "
            "compared on the same criteria.")
    other = cmp.filter(pl.col("compared").str.ends_with("not compared"))
    if other.height:
        n_blank = other.filter(pl.col("compared").str.starts_with("criteria not")).height
        text += (f" {other.height} recorded assessment(s) not compared: "
                 f"{n_blank} without recorded criteria, {other.height - n_blank} recorded with "
                 "other criteria (a different rule is not a disagreement).")
    return text


@derived_table("response_comparison", "Derived vs recorded response per assessment",
               options={k: RESPONSE_OPTIONS[k] for k in ("criteria", "ti_window")})
def response_comparison(study: Study, *, criteria: str = "NIH",
                        rules: Rules | None = None) -> pl.DataFrame:
    """compare_recorded over a study's derived and recorded responses."""
    return compare_recorded(derived_responses(study, criteria=criteria, rules=rules),
                            study.responses)


def recorded_responses(study: Study) -> pl.DataFrame:
    """The study's recorded responses as the CAR-T's account: subject_id, day, category
    (CR/PR/NR/NE), criteria, rule. A response recorded on or after an HSCT is NE for the CAR-T
    (the transplant's, not the CAR-T's), whatever the assessor wrote."""
    rec = study.responses
    if "criteria" not in rec.columns:
        rec = rec.with_columns(pl.lit(None, dtype=pl.String).alias("criteria"))
    resp = pl.col("response").cast(pl.String).str.strip_chars().str.to_uppercase()
    after = pl.col("_hsct").is_not_null() & (pl.col("day") >= pl.col("_hsct"))
    return (rec.select("subject_id", pl.col("day").cast(pl.Int64), resp.alias("_resp"),
                       pl.col("criteria").cast(pl.String))
            .join(hsct_per_patient(study), on="subject_id", how="left")
            .select("subject_id", "day",
                    pl.when(after).then(pl.lit("NE")).otherwise(pl.col("_resp"))
                    .alias("category"), "criteria",
                    pl.when(after).then(pl.format(
                        "NE: recorded {} on or after HSCT on day {} (not the CAR-T's)",
                        pl.col("_resp"), pl.col("_hsct")))
                    .otherwise(pl.format("recorded {}", pl.col("_resp"))).alias("rule"))
            .sort("subject_id", "day"))
