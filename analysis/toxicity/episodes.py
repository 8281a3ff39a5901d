"""Recorded CRS and ICANS episodes (ASTCT grades from the events table): per-patient summary,
grade incidence, onset and duration."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from analysis.vocab import EventCategory

__all__ = ["toxicity_episodes", "crs_summary", "grade_incidence", "onset_duration"]


EPISODE_KIND = {"crs": "CRS", "icans": "ICANS"}


def toxicity_episodes(events: pl.DataFrame, *, kinds: Iterable[EventCategory] = ("crs", "icans")
                      ) -> pl.DataFrame:
    """CRS/ICANS episodes: subject_id, kind (CRS/ICANS), start, end (end_day, else start),
    grade, duration_days (inclusive; null when end_day is missing)."""
    cats = list(kinds)
    df = events.filter(pl.col("category").is_in(cats))
    return df.select(
        "subject_id",
        pl.col("category").replace_strict(EPISODE_KIND, default=pl.col("category")).alias("kind"),
        pl.col("day").alias("start"),
        pl.coalesce(pl.col("end_day"), pl.col("day")).alias("end"),
        pl.col("grade").cast(pl.Int64),
        (pl.col("end_day") - pl.col("day") + 1).alias("duration_days"),
    ).sort(["subject_id", "start", "kind"])


def crs_summary(events: pl.DataFrame, *, subjects: Iterable[str],
                events_recorded: bool = True) -> pl.DataFrame:
    """Per patient: crs_max_grade, crs_onset_day, crs_duration_days, icans_max_grade,
    icans_onset_day, icans_duration_days, crs_episodes, icans_episodes.

    A patient without a recorded episode has grade 0 when `events_recorded` (the study has an
    events table), else null (unknown). Duration sums the episodes' inclusive day counts."""
    ids = pl.DataFrame({"subject_id": list(subjects)}, schema={"subject_id": pl.String})
    ep = toxicity_episodes(events)
    out = ids
    for kind in ("crs", "icans"):
        agg = (ep.filter(pl.col("kind") == EPISODE_KIND[kind]).group_by("subject_id")
               .agg(pl.col("grade").max().alias(f"{kind}_max_grade"),
                    pl.col("start").min().alias(f"{kind}_onset_day"),
                    pl.when(pl.col("duration_days").is_null().any()).then(None)
                    .otherwise(pl.col("duration_days").sum()).alias(f"{kind}_duration_days"),
                    pl.len().cast(pl.Int64).alias(f"{kind}_episodes")))
        out = out.join(agg, on="subject_id", how="left")
        cols = pl.col(f"{kind}_max_grade", f"{kind}_episodes")
        out = out.with_columns((cols.fill_null(0) if events_recorded else cols).cast(pl.Int64))
    return out.select("subject_id", "crs_max_grade", "crs_onset_day", "crs_duration_days",
                      "icans_max_grade", "icans_onset_day", "icans_duration_days",
                      "crs_episodes", "icans_episodes")


def grade_incidence(crs: pl.DataFrame, *, kinds: Iterable[EventCategory] = ("crs", "icans")
                    ) -> pl.DataFrame:
    """Incidence by max grade from a crs table: kind, grade (0-3 always, 4-5 when seen, then
    "any (>=1)" and ">=3"), n, n_patients (with a known grade), pct of those patients."""
    rows = []
    for kind in kinds:
        col = f"{kind}_max_grade"
        if col not in crs.columns:
            continue
        known = crs.filter(pl.col(col).is_not_null())
        total = known.height
        for g in range(0, 6):
            n = known.filter(pl.col(col) == g).height
            if n or g <= 3:
                rows.append({"kind": EPISODE_KIND[kind], "grade": str(g), "n": n, "n_patients": total,
                             "pct": 100 * n / total if total else None})
        n_any = known.filter(pl.col(col) > 0).height
        rows.append({"kind": EPISODE_KIND[kind], "grade": "any (>=1)", "n": n_any, "n_patients": total,
                     "pct": 100 * n_any / total if total else None})
        n_3 = known.filter(pl.col(col) >= 3).height
        rows.append({"kind": EPISODE_KIND[kind], "grade": ">=3", "n": n_3, "n_patients": total,
                     "pct": 100 * n_3 / total if total else None})
    schema = {"kind": pl.String, "grade": pl.String, "n": pl.Int64, "n_patients": pl.Int64,
              "pct": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def onset_duration(crs: pl.DataFrame, *, kinds: Iterable[EventCategory] = ("crs", "icans")
                   ) -> pl.DataFrame:
    """Onset day and duration among patients with the syndrome (max grade >= 1): kind,
    n_with, onset_median, onset_min, onset_max, duration_median, duration_min, duration_max."""
    frames = []
    for kind in kinds:
        if f"{kind}_max_grade" not in crs.columns:
            continue
        with_it = crs.filter(pl.col(f"{kind}_max_grade") >= 1)
        on, du = pl.col(f"{kind}_onset_day"), pl.col(f"{kind}_duration_days")
        frames.append(with_it.select(
            pl.lit(EPISODE_KIND[kind]).alias("kind"), pl.len().cast(pl.Int64).alias("n_with"),
            on.median().alias("onset_median"), on.min().cast(pl.Int64).alias("onset_min"),
            on.max().cast(pl.Int64).alias("onset_max"), du.median().alias("duration_median"),
            du.min().cast(pl.Int64).alias("duration_min"),
            du.max().cast(pl.Int64).alias("duration_max")))
    schema = {"kind": pl.String, "n_with": pl.Int64, "onset_median": pl.Float64,
              "onset_min": pl.Int64, "onset_max": pl.Int64, "duration_median": pl.Float64,
              "duration_min": pl.Int64, "duration_max": pl.Int64}
    return pl.concat([f.cast(schema) for f in frames]) if frames else pl.DataFrame(schema=schema)
