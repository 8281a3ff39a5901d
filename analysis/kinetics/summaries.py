"""Group summaries of the kinetic parameters (geometric mean and CV%, non-expanders counted,
patient-level tests between response groups) and group curves."""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from analysis.kinetics.series import NONEXPANDER_POLICIES, NonexpanderPolicy
from analysis.vocab import NOT_EVALUABLE

__all__ = ["group_summary", "group_curve", "geometric_summary"]


def geometric_summary(values: pl.Expr) -> list[pl.Expr]:
    """n, geometric mean and geometric CV% of the positive values of `values` (agg context)."""
    pos = values.filter(values > 0)
    sd_log = pos.log().std(ddof=1)
    return [pos.count().alias("n"), pos.log().mean().exp().alias("geo_mean"),
            ((sd_log.pow(2).exp() - 1).sqrt() * 100).alias("geo_cv_pct"),
            pos.min().alias("min"), pos.max().alias("max")]


def group_summary(params: pl.DataFrame, *, groups: pl.DataFrame,
                  parameters: Iterable[str] = ("cmax", "auc_0_28"),
                  by: str = "response_group", nonexpanders: NonexpanderPolicy = "exclude") -> pl.DataFrame:
    """Per assay, group and parameter: n_patients (in the group with a kinetics row),
    n_nonexpanders (no quantifiable value after infusion), n (values in the geometric mean),
    geometric mean, geometric CV%, min, max and a note saying who is in the mean.

    Non-expanders are never dropped silently. `nonexpanders`: "exclude" (counted, stated, not
    in the mean: the log of zero is undefined) or "half_lloq" (their Cmax enters at LLOQ/2,
    the level they are drawn at; an AUC of zero cannot enter a geometric mean and stays
    out, said so). Patients without samples after infusion are not evaluable and counted in
    the note. `groups` is analysis.cohort.response_groups (subject_id, response_group)."""
    if nonexpanders not in NONEXPANDER_POLICIES:
        raise ValueError(f"non-expander policy {nonexpanders!r} is not one of "
                         f"{', '.join(NONEXPANDER_POLICIES)}")
    params_present = [p for p in parameters if p in params.columns]
    schema = {"assay": pl.String, by: pl.String, "parameter": pl.String,
              "n_patients": pl.Int64, "n_nonexpanders": pl.Int64, "n": pl.Int64,
              "geo_mean": pl.Float64, "geo_cv_pct": pl.Float64, "min": pl.Float64,
              "max": pl.Float64, "note": pl.String}
    if params.height == 0 or not params_present:
        return pl.DataFrame(schema=schema)
    p = params
    for col, default in (("reason", ""), ("lloq", None)):
        if col not in p.columns:
            p = p.with_columns(pl.lit(default).alias(col))
    # a non-expander has samples after infusion, none of them quantifiable
    nonexp = pl.col("reason").fill_null("").str.starts_with("all ")
    unevaluable = pl.col("reason").fill_null("").str.starts_with("no samples")
    long = (p.join(groups.select("subject_id", by), on="subject_id", how="left")
            .with_columns(pl.col(by).fill_null(NOT_EVALUABLE), _nonexp=nonexp,
                          _uneval=unevaluable, _lloq=pl.col("lloq").cast(pl.Float64))
            .unpivot(index=["subject_id", "assay", by, "_nonexp", "_uneval", "_lloq"],
                     on=params_present, variable_name="parameter", value_name="v")
            .with_columns(pl.col("v").cast(pl.Float64)))
    if nonexpanders == "half_lloq":
        long = long.with_columns(
            v=pl.when(pl.col("_nonexp") & (pl.col("parameter") == "cmax"))
            .then(pl.col("_lloq") / 2).otherwise(pl.col("v")))
    v = pl.col("v")
    in_mean = v.is_not_null() & (v > 0)
    out = (long.group_by(["assay", by, "parameter"])
           .agg(pl.len().cast(pl.Int64).alias("n_patients"),
                pl.col("_nonexp").sum().cast(pl.Int64).alias("n_nonexpanders"),
                pl.col("_uneval").sum().cast(pl.Int64).alias("_n_uneval"),
                (in_mean & pl.col("_nonexp")).sum().cast(pl.Int64).alias("_n_ne_in"),
                *geometric_summary(v))
           .with_columns(pl.col("n").cast(pl.Int64)))
    ne, ne_in = pl.col("n_nonexpanders"), pl.col("_n_ne_in")
    other_out = pl.col("n_patients") - pl.col("n") - (ne - ne_in) - pl.col("_n_uneval")
    note = pl.concat_str([
        pl.format("geometric mean of {} of {} patients", pl.col("n"), pl.col("n_patients")),
        pl.when((ne > 0) & (ne_in > 0))
        .then(pl.format("{} non-expander(s) in it at LLOQ/2", ne_in)),
        pl.when(ne - ne_in > 0)
        .then(pl.format("{} non-expander(s) (no quantifiable value after infusion) not in "
                        "it", ne - ne_in)),
        pl.when(pl.col("_n_uneval") > 0)
        .then(pl.format("{} without samples after infusion", pl.col("_n_uneval"))),
        pl.when(other_out > 0).then(pl.format("{} without a positive value", other_out)),
    ], separator="; ", ignore_nulls=True)
    return (out.with_columns(note=note).sort(["assay", "parameter", by])
            .select(list(schema)).cast(schema))


def group_curve(series: pl.DataFrame, *, by: str = "response_group") -> pl.DataFrame:
    """Geometric-mean curve per group, assay and day (BLQ values at LLOQ/2): by, assay, day,
    geo_mean, n, n_blq, lloq."""
    schema = {by: pl.String, "assay": pl.String, "day": pl.Int64, "geo_mean": pl.Float64,
              "n": pl.UInt32, "n_blq": pl.UInt32, "lloq": pl.Float64}
    df = series.filter(pl.col("plot_value").is_not_null() & (pl.col("plot_value") > 0))
    if df.height == 0 or by not in df.columns:
        return pl.DataFrame(schema=schema)
    return (df.with_columns(pl.col(by).fill_null(NOT_EVALUABLE))
            .group_by([by, "assay", "day"])
            .agg(geo_mean=pl.col("plot_value").log().mean().exp(), n=pl.len(),
                 n_blq=pl.col("blq").sum(), lloq=pl.col("lloq").max())
            .sort([by, "assay", "day"]).select(list(schema)).cast(schema))
