"""Adverse events by term and worst grade, and infections."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from analysis.vocab import AE_CATEGORIES, EventCategory

__all__ = ["adverse_event_summary", "infections"]


def adverse_event_summary(events: pl.DataFrame, *, n_patients: int,
                          categories: Iterable[EventCategory] = AE_CATEGORIES,
                          min_grade: int = 0, term_contains: str = "") -> pl.DataFrame:
    """Per category and term, patients by their worst grade: category, term, n_patients (any
    grade), pct, grade_1..grade_5, grade_unknown, grade_3plus, grade_3plus_pct. Percentages are
    of `n_patients` (all patients in the study or cohort). `term_contains` keeps terms holding
    that text (case-insensitive); `min_grade` keeps patients whose worst grade reaches it."""
    ev = events.filter(pl.col("category").is_in(list(categories)))
    ev = ev.with_columns(pl.coalesce(pl.col("term"), pl.col("category")).alias("term"))
    if term_contains.strip():
        ev = ev.filter(pl.col("term").str.to_lowercase()
                       .str.contains(term_contains.strip().lower(), literal=True))
    worst = (ev.group_by(["category", "term", "subject_id"])
             .agg(pl.col("grade").max().alias("worst")))
    if min_grade > 0:
        worst = worst.filter(pl.col("worst") >= min_grade)
    denom = max(int(n_patients), 1)
    grade_cols = [(pl.col("worst") == g).sum().cast(pl.Int64).alias(f"grade_{g}")
                  for g in range(1, 6)]
    out = worst.group_by(["category", "term"]).agg(
        pl.len().cast(pl.Int64).alias("n_patients"), *grade_cols,
        pl.col("worst").is_null().sum().cast(pl.Int64).alias("grade_unknown"),
        (pl.col("worst") >= 3).sum().cast(pl.Int64).alias("grade_3plus"),
    ).with_columns(pct=100 * pl.col("n_patients") / denom,
                   grade_3plus_pct=100 * pl.col("grade_3plus") / denom)
    cols = ["category", "term", "n_patients", "pct", *[f"grade_{g}" for g in range(1, 6)],
            "grade_unknown", "grade_3plus", "grade_3plus_pct"]
    if out.height == 0:
        schema = {c: (pl.String if c in ("category", "term") else
                      pl.Float64 if c.endswith("pct") else pl.Int64) for c in cols}
        return pl.DataFrame(schema=schema)
    return out.select(cols).sort(["n_patients", "grade_3plus", "term"],
                                 descending=[True, True, False])


def infections(events: pl.DataFrame) -> pl.DataFrame:
    """Infections as recorded: subject_id, day, end_day, term, grade."""
    return (events.filter(pl.col("category") == "infection")
            .select("subject_id", "day", "end_day", "term", pl.col("grade").cast(pl.Int64))
            .sort(["subject_id", "day"]))
