"""Cytokine peaks after infusion: per patient and cytokine, the highest value up to a day and
its day, with the baseline."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

__all__ = ["CYTOKINES", "INFLAMMATION_MARKERS", "cytokine_peaks"]


CYTOKINES = ("IL6", "IFNG", "IL10", "IL2", "TNFA", "IL2RA")
INFLAMMATION_MARKERS = ("FERRITIN", "CRP")


def cytokine_peaks(measurements: pl.DataFrame, *,
                   analytes: Iterable[str] = (*CYTOKINES, *INFLAMMATION_MARKERS),
                   from_day: int = 0, to_day: int = 28) -> pl.DataFrame:
    """Peak per patient and analyte in days [from_day, to_day]: subject_id, analyte, peak_value,
    peak_day, baseline (last value before from_day), fold_over_baseline, unit, n."""
    m = measurements.filter(pl.col("analyte").is_in(list(analytes))
                            & pl.col("value").is_not_null())
    win = (pl.col("day") >= from_day) & (pl.col("day") <= to_day)
    pre = pl.col("day") < from_day
    schema = {"subject_id": pl.String, "analyte": pl.String, "peak_value": pl.Float64,
              "peak_day": pl.Int64, "baseline": pl.Float64, "fold_over_baseline": pl.Float64,
              "unit": pl.String, "n": pl.Int64}
    if m.height == 0:
        return pl.DataFrame(schema=schema)
    out = m.sort(["subject_id", "analyte", "day"]).group_by(["subject_id", "analyte"]).agg(
        peak_value=pl.col("value").filter(win).max(),
        peak_day=pl.col("day").filter(win).sort_by(pl.col("value").filter(win),
                                                   descending=True).first(),
        baseline=pl.col("value").filter(pre).last(),
        unit=pl.col("unit").first(),
        n=win.sum(),
    ).filter(pl.col("n") > 0).with_columns(
        fold_over_baseline=pl.when(pl.col("baseline") > 0)
        .then(pl.col("peak_value") / pl.col("baseline")).otherwise(None))
    order = {a: i for i, a in enumerate(analytes)}
    return (out.with_columns(_o=pl.col("analyte").replace_strict(order, default=len(order)))
            .sort(["subject_id", "_o"]).select(list(schema)).cast(schema))
