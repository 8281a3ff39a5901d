"""Transfusion and growth-factor support: which counts the marrow did not make by itself.

A platelet count taken within `plt_support_days` after a platelet transfusion, a haemoglobin
within `rbc_support_days` after a red-cell transfusion, and a neutrophil count during G-CSF or
within `gcsf_support_days` after its last dose are *supported* (DESIGN.md section 3). Such a
count never makes a response or recovery criterion met: the engines take the nearest
unsupported count instead, or treat the criterion as not met, and say which transfusion or dose
held the count up.

Support starts on the day of the transfusion or dose itself: a sample drawn that day may have
been drawn after it (the time of day is not recorded), so the conservative reading counts it
as supported. The windows are rule settings (analysis/rules.py; defaults and sources in
docs/rules.md).

G-CSF exposure is an event with category `growth_factor`, or `medication` with product
`g_csf`, or a medication whose term names filgrastim, pegfilgrastim, lenograstim or G-CSF.
"""

from __future__ import annotations

import polars as pl

from analysis.rules import Rules

__all__ = ["GCSF_PATTERN", "gcsf_events", "support_intervals", "mark_supported",
           "SUPPORTED_ANALYTES"]

GCSF_PATTERN = r"(?i)filgrastim|lenograstim|\bg-?csf\b|granulocyte[- ]colony"
# analyte -> what supports it
SUPPORTED_ANALYTES = {"PLT": "platelet transfusion", "HGB": "red-cell transfusion",
                      "ANC": "G-CSF"}

_SCHEMA = {"subject_id": pl.String, "analyte": pl.String, "start": pl.Int64, "end": pl.Int64,
           "source": pl.String}


def gcsf_events(events: pl.DataFrame) -> pl.DataFrame:
    """subject_id, day, end_day, term of every G-CSF course (growth_factor events and G-CSF
    medications)."""
    cat = pl.col("category").str.to_lowercase()
    term = pl.col("term") if "term" in events.columns else pl.lit(None, dtype=pl.String)
    product = (pl.col("product") if "product" in events.columns
               else pl.lit(None, dtype=pl.String)).str.to_lowercase()
    is_gcsf = (cat == "growth_factor") | ((cat == "medication") & (
        (product == "g_csf") | term.str.contains(GCSF_PATTERN).fill_null(False)))
    end = pl.col("end_day") if "end_day" in events.columns else pl.col("day")
    return events.filter(is_gcsf).select(
        "subject_id", pl.col("day").cast(pl.Int64),
        pl.coalesce(end, pl.col("day")).cast(pl.Int64).alias("end_day"),
        term.fill_null("G-CSF").alias("term"))


def support_intervals(events: pl.DataFrame, *, rules: Rules,
                      transfusions: pl.DataFrame | None = None) -> pl.DataFrame:
    """subject_id, analyte, start, end (inclusive days), source (e.g. "PLT transfusion on day
    27"): the days on which a count of `analyte` is supported.

    transfusions: subject_id, day, product (RBC/PLT), as `response.transfusion_events` gives;
    None = read from `events`."""
    from analysis.response import transfusion_events

    parts = []
    tx = transfusions if transfusions is not None else transfusion_events(events)
    if tx is not None and tx.height:
        for product, analyte, days in (("PLT", "PLT", rules.plt_support_days),
                                       ("RBC", "HGB", rules.rbc_support_days)):
            t = tx.filter(pl.col("product") == product)
            parts.append(t.select(
                "subject_id", pl.lit(analyte).alias("analyte"),
                pl.col("day").cast(pl.Int64).alias("start"),
                (pl.col("day").cast(pl.Int64) + days).alias("end"),
                pl.format("{} transfusion on day {}", pl.lit(product), pl.col("day"))
                .alias("source")))
    g = gcsf_events(events)
    if g.height:
        parts.append(g.select(
            "subject_id", pl.lit("ANC").alias("analyte"), pl.col("day").alias("start"),
            (pl.col("end_day") + rules.gcsf_support_days).alias("end"),
            pl.when(pl.col("end_day") > pl.col("day"))
            .then(pl.format("{} days {}-{}", pl.col("term"), pl.col("day"), pl.col("end_day")))
            .otherwise(pl.format("{} on day {}", pl.col("term"), pl.col("day")))
            .alias("source")))
    if not parts:
        return pl.DataFrame(schema=_SCHEMA)
    return pl.concat([p.cast(_SCHEMA) for p in parts]).sort("subject_id", "analyte", "start")


def mark_supported(counts: pl.DataFrame, intervals: pl.DataFrame | None) -> pl.DataFrame:
    """`counts` (subject_id, analyte, day, ...) with `supported` (bool) and `support` (the
    latest transfusion or dose that supports the count, else null)."""
    if intervals is None or intervals.height == 0 or counts.height == 0:
        return counts.with_columns(pl.lit(False).alias("supported"),
                                   pl.lit(None, dtype=pl.String).alias("support"))
    # latest interval starting on or before each day, with the running maximum of the ends
    # (an earlier, longer course can still cover the day): one as-of join, no cross product
    iv = (intervals.sort("subject_id", "analyte", "start")
          .with_columns(pl.col("end").cum_max().over("subject_id", "analyte").alias("_cmax"))
          .with_columns(pl.when(pl.col("end") == pl.col("_cmax")).then(pl.col("source"))
                        .forward_fill().over("subject_id", "analyte").alias("_src_max"))
          .select("subject_id", "analyte", "start", "end", "source", "_cmax", "_src_max"))
    out = (counts.with_columns(pl.col("day").cast(pl.Int64)).sort("day")
           .join_asof(iv.sort("start"), left_on="day", right_on="start",
                      by=["subject_id", "analyte"], strategy="backward",
                      check_sortedness=False))
    covered = pl.col("_cmax").is_not_null() & (pl.col("_cmax") >= pl.col("day"))
    return out.with_columns(
        covered.alias("supported"),
        pl.when(covered & (pl.col("end") >= pl.col("day"))).then(pl.col("source"))
        .when(covered).then(pl.col("_src_max")).otherwise(None).alias("support"),
    ).drop("start", "end", "source", "_cmax", "_src_max")
