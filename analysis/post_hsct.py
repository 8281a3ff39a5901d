"""Values after an allogeneic HSCT on time plots and in group summaries.

After a transplant, blood counts are the graft's and CAR-T levels are no longer the CAR-T's own
course (the same convention as responses: an assessment on or after an HSCT is NE for the
CAR-T, analysis/response/). Time plots mark each patient's HSCT day, draw later values apart
(faded, dashed) or stop the series there (`Rules.post_hsct_display`), and group medians,
quartiles and geometric means never include them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from analysis.rules import Rules, rules_for

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["POST_HSCT_DISPLAY", "hsct_days", "flag_post_hsct", "for_display", "for_summary",
           "hsct_marks"]

POST_HSCT_DISPLAY = ("distinct", "stop")


def hsct_days(study: Study) -> pl.DataFrame:
    """subject_id, hsct_day: each transplanted patient's first HSCT day (patients.hsct_day or
    an event with category hsct)."""
    from analysis.response import hsct_per_patient

    return (hsct_per_patient(study).filter(pl.col("_hsct").is_not_null())
            .select("subject_id", pl.col("_hsct").cast(pl.Int64).alias("hsct_day")))


def flag_post_hsct(frame: pl.DataFrame, *, hsct: pl.DataFrame, day: str = "day"
                   ) -> pl.DataFrame:
    """`frame` with hsct_day and post_hsct (true on or after the patient's HSCT day)."""
    out = frame.drop([c for c in ("hsct_day", "post_hsct") if c in frame.columns]).join(
        hsct.select("subject_id", "hsct_day"), on="subject_id", how="left")
    return out.with_columns(
        (pl.col("hsct_day").is_not_null() & (pl.col(day) >= pl.col("hsct_day")))
        .alias("post_hsct"))


def for_display(frame: pl.DataFrame, *, hsct: pl.DataFrame, rules: Rules | None = None,
                study: Study | None = None, day: str = "day") -> pl.DataFrame:
    """Flagged (`flag_post_hsct`); with post_hsct_display "stop" the rows from the HSCT day on
    are dropped."""
    rules = rules if rules is not None else rules_for(study) if study is not None else Rules()
    if rules.post_hsct_display not in POST_HSCT_DISPLAY:
        raise ValueError(f"post_hsct_display {rules.post_hsct_display!r} is not one of "
                         f"{', '.join(POST_HSCT_DISPLAY)}")
    out = flag_post_hsct(frame, hsct=hsct, day=day)
    return out.filter(~pl.col("post_hsct")) if rules.post_hsct_display == "stop" else out


def for_summary(frame: pl.DataFrame, *, hsct: pl.DataFrame | None = None, day: str = "day"
                ) -> pl.DataFrame:
    """`frame` without its post-HSCT rows (for group medians, IQRs and geometric means)."""
    if "post_hsct" not in frame.columns:
        if hsct is None:
            return frame
        frame = flag_post_hsct(frame, hsct=hsct, day=day)
    return frame.filter(~pl.col("post_hsct"))


def hsct_marks(hsct: pl.DataFrame, *, subjects: list[str] | tuple[str, ...] | None = None
               ) -> list[tuple[float, float, str]]:
    """(day, day, "HSCT SAA-004") per transplanted patient of `subjects`, for time axes
    (patients transplanted on the same day share one mark)."""
    h = hsct if subjects is None else hsct.filter(pl.col("subject_id").is_in(list(subjects)))
    by_day = h.group_by("hsct_day").agg(pl.col("subject_id").sort()).sort("hsct_day")
    return [(float(d), float(d), "HSCT " + ", ".join(ids))
            for d, ids in by_day.iter_rows()]
