"""What an assessment reads from a study: the transfusions that break transfusion independence,
the end of follow-up, the HSCT days and the assessment days."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import polars as pl

from analysis.vocab import LANDMARKS

if TYPE_CHECKING:
    from data_loaders import Study
from analysis.response.criteria import parse_days

__all__ = ["assessment_days", "transfusion_events", "follow_up_end", "hsct_per_patient"]


def transfusion_events(events: pl.DataFrame) -> pl.DataFrame | None:
    """subject_id, day, product (RBC, PLT, OTHER or UNSPECIFIED) of every transfusion; None when
    the events table records no transfusion at all (transfusion status then is unknown, not
    "none").

    The product is read from `product`, else from `term` when `product` names neither red
    cells nor platelets: platelets (PLT, platelet, thrombocyte concentrate) and red cells
    (RBC, PRBC, PRC, RCC, red cells, packed cells, erythrocytes, whole blood); anything else
    (plasma, cryoprecipitate, albumin, granulocytes) is OTHER and does not break transfusion
    independence. A transfusion whose product is not recorded at all ("Transfusion", or empty)
    is UNSPECIFIED: it breaks transfusion independence (in aplastic anaemia it is red cells or
    platelets) but supports no count."""
    tx = events.filter(pl.col("category").str.to_lowercase() == "transfusion")
    if tx.height == 0:
        return None

    def kind(col: str) -> pl.Expr:
        text = (pl.col(col) if col in tx.columns else pl.lit(None, dtype=pl.String)) \
            .cast(pl.String).str.to_uppercase()
        return (pl.when(text.str.contains(r"PLT|PLATELET|THROMBOCYT")).then(pl.lit("PLT"))
                .when(text.str.contains(r"RBC|RED|ERYTHRO|\bPRC\b|\bRCC\b|PACKED|WHOLE BLOOD"))
                .then(pl.lit("RBC")))

    named = pl.concat_str([pl.col(c).cast(pl.String) for c in ("product", "term")
                           if c in tx.columns] or [pl.lit("")], separator=" ",
                          ignore_nulls=True).str.to_uppercase() \
        .str.replace_all(r"\b(BLOOD|TRANSFUSIONS?|UNITS?|PRODUCTS?|\d+)\b|[^A-Z]", "")
    return tx.select(
        "subject_id", "day",
        pl.coalesce(kind("product"), kind("term"),
                    pl.when(named.fill_null("") == "").then(pl.lit("UNSPECIFIED")),
                    pl.lit("OTHER")).alias("product"),
    )


def follow_up_end(study: Study) -> pl.DataFrame:
    """subject_id, end: min(death, last contact), else the patient's last measurement day."""
    pts = study.patients
    last_meas = study.measurements.group_by("subject_id").agg(pl.col("day").max().alias("_m"))
    return pts.join(last_meas, on="subject_id", how="left").select(
        "subject_id",
        pl.coalesce(pl.min_horizontal("death_day", "last_contact_day"), pl.col("_m"))
        .alias("end"),
    )


def assessment_days(study: Study, *, days: Iterable[int] | str | None = None,
                    window: int = 0) -> pl.DataFrame:
    """subject_id, day, sex, ne_reason: the days to assess each patient.

    `days` given: those days for everyone. Else each patient's recorded assessment days, and the
    landmarks (28, 90, 180, 365) for patients without recorded responses. Days after the end of
    follow-up are dropped, except that a day up to `window` days (the count window) after the
    last contact is kept for a patient not known to have died before it: its visit may have
    been done early, within the window (a count on day 84 assesses day 90). Days on or after
    an HSCT get ne_reason "after HSCT on day N"."""
    chosen = parse_days(days)
    pts = study.patients.select("subject_id", "sex").join(
        hsct_per_patient(study).rename({"_hsct": "hsct_day"}), on="subject_id", how="left")
    landmark = pl.DataFrame({"day": list(chosen or LANDMARKS.values())}, schema={"day": pl.Int64})
    base = pts.select("subject_id").join(landmark, how="cross")
    if chosen is None and study.has("responses"):
        rec = study.responses.select("subject_id", pl.col("day").cast(pl.Int64)).unique()
        rec = rec.filter(pl.col("subject_id").is_in(pts.get_column("subject_id").implode()))
        base = pl.concat([rec, base.filter(~pl.col("subject_id").is_in(
            rec.get_column("subject_id").unique().implode()))])
    death = study.patients.select("subject_id", pl.col("death_day").cast(pl.Int64)
                                  .alias("_death"))
    out = (base.join(pts, on="subject_id", how="left")
           .join(follow_up_end(study), on="subject_id", how="left")
           .join(death, on="subject_id", how="left")
           .filter(pl.col("end").is_null() | (pl.col("day") <= pl.col("end"))
                   | ((pl.col("day") - window <= pl.col("end"))
                      & (pl.col("_death").is_null() | (pl.col("_death") >= pl.col("day"))))))
    return out.select(
        "subject_id", "day", "sex",
        pl.when(pl.col("hsct_day").is_not_null() & (pl.col("day") >= pl.col("hsct_day")))
        .then(pl.format("after HSCT on day {}", pl.col("hsct_day")))
        .otherwise(pl.lit(None, dtype=pl.String)).alias("ne_reason"),
    ).sort("subject_id", "day")


def hsct_per_patient(study: Study) -> pl.DataFrame:
    """subject_id, _hsct: every patient with the first HSCT day (patients.hsct_day or an hsct
    event), null without one (analysis.post_hsct.hsct_days: the transplanted patients)."""
    ev = (study.events.filter(pl.col("category").str.to_lowercase() == "hsct")
          .group_by("subject_id").agg(pl.col("day").min().cast(pl.Int64).alias("_ev")))
    return (study.patients.select("subject_id", pl.col("hsct_day").cast(pl.Int64))
            .join(ev, on="subject_id", how="left")
            .select("subject_id", pl.min_horizontal("hsct_day", "_ev").alias("_hsct")))
