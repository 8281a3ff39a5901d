"""The CAR-T kinetic series of a study: CAR transgene qPCR and CAR+ cells by flow per patient
and day, with the response groups, replicates reduced per the quantifiable-share rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, get_args

import polars as pl

from analysis import stats as st
from analysis.rules import Rules, rules_for
from analysis.vocab import BLOOD, is_blood

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["ASSAYS", "CD7_READOUTS", "BLQ_POLICIES", "KINETICS_COLUMNS", "MWU_EXACT_MAX_N",
           "SPEARMAN_PERMUTATION_MAX_N", "auc_column", "kinetic_series", "prepare_series",
           "with_groups", "NONEXPANDER_POLICIES", "BlqPolicy", "NonexpanderPolicy"]


ASSAYS = ("CAR_QPCR", "CAR_PCT", "CAR_ABS")
CD7_READOUTS = ("CD7NEG_T_PCT", "NK_ABS")
BlqPolicy = Literal["zero", "drop", "half_lloq"]
BLQ_POLICIES: tuple[BlqPolicy, ...] = get_args(BlqPolicy)
KINETICS_COLUMNS = ("subject_id", "assay", "cmax", "tmax", "auc_0_28", "tlast", "fold_expansion")
MWU_EXACT_MAX_N = st.EXACT_MAX_N   # patients in both groups (analysis.stats)
SPEARMAN_PERMUTATION_MAX_N = st.SPEARMAN_PERMUTATION_MAX_N   # pairs (analysis.stats)


SERIES_KEY = ["subject_id", "assay"]
SERIES_SCHEMA = {"subject_id": pl.String, "assay": pl.String, "day": pl.Int64,
                  "value": pl.Float64, "lloq": pl.Float64, "unit": pl.String,
                  "blq": pl.Boolean, "plot_value": pl.Float64, "n_replicates": pl.Int64,
                  "n_replicates_blq": pl.Int64}


def auc_column(auc_end: int = 28) -> str:
    """Name of the AUC column for a window ending at `auc_end` (auc_0_28 by default)."""
    return f"auc_0_{int(auc_end)}"


def kinetic_series(study: Study, *, analytes: Iterable[str] = ASSAYS,
                   tissue: str | None = "blood", groups: pl.DataFrame | None = None,
                   rules: Rules | None = None) -> pl.DataFrame:
    """Long CAR-T (or any) readouts for plotting and NCA: subject_id, assay, day, value, lloq,
    unit, blq, plot_value (BLQ drawn at LLOQ/2), n_replicates, n_replicates_blq, and
    best_response, response_group when `groups` (analysis.cohort.response_groups) is given.

    Replicates on a day (several times, same tissue) are judged BLQ one by one and then
    averaged (`prepare_series`). `tissue=None` keeps all; "blood" keeps blood and rows
    without a tissue (tissues are folded once by the loader, analysis.vocab)."""
    rules = rules if rules is not None else rules_for(study)
    df = study.series(analytes=list(analytes))
    if tissue is not None and "tissue" in df.columns:
        df = df.filter(is_blood() if tissue == BLOOD else pl.col("tissue") == tissue)
    out = prepare_series(df, replicate_share=rules.replicate_quantifiable_share)
    return out if groups is None else with_groups(out, groups=groups)


def with_groups(frame: pl.DataFrame, *, groups: pl.DataFrame) -> pl.DataFrame:
    """`frame` with best_response and response_group of each patient (from `groups`)."""
    cols = [c for c in ("best_response", "response_group") if c in groups.columns]
    return frame.drop([c for c in cols if c in frame.columns]).join(
        groups.select("subject_id", *cols), on="subject_id", how="left")


def prepare_series(frame: pl.DataFrame, *, replicate_share: float = 0.5) -> pl.DataFrame:
    """Flag BLQ per replicate, then average replicates of a day; accepts `analyte` or `assay`
    as the assay column.

    A replicate is BLQ when its value is <= 0 or below its LLOQ. A day is quantifiable when at
    least `replicate_share` of its replicates are (and at least one is); its value is then the
    mean of the quantifiable replicates. Otherwise the day is BLQ and its value the mean of
    all replicates (shown, never used as a level). Example: replicates 5, 5, 25 with LLOQ 10
    average to 11.7 (>= LLOQ), but two of three are BLQ: the day is BLQ."""
    if "assay" not in frame.columns:
        frame = frame.rename({"analyte": "assay"})
    if "lloq" not in frame.columns:
        frame = frame.with_columns(lloq=pl.lit(None, dtype=pl.Float64))
    if "unit" not in frame.columns:
        frame = frame.with_columns(unit=pl.lit(None, dtype=pl.String))
    if frame.height == 0:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    rep_blq = (pl.col("value") <= 0) | (pl.col("lloq").is_not_null()
                                        & (pl.col("value") < pl.col("lloq")))
    out = (
        frame.filter(pl.col("value").is_not_null() & pl.col("day").is_not_null()
                     & pl.col("value").is_finite())
        .with_columns(_rep_blq=rep_blq)
        .group_by(["subject_id", "assay", "day"])
        .agg(pl.col("value").filter(~pl.col("_rep_blq")).mean().alias("_q_mean"),
             pl.col("value").mean().alias("_all_mean"),
             pl.col("lloq").max(), pl.col("unit").first(),
             pl.len().cast(pl.Int64).alias("n_replicates"),
             pl.col("_rep_blq").sum().cast(pl.Int64).alias("n_replicates_blq"))
        .with_columns(
            blq=~((pl.col("n_replicates") > pl.col("n_replicates_blq"))
                  & ((pl.col("n_replicates") - pl.col("n_replicates_blq"))
                     >= replicate_share * pl.col("n_replicates") - 1e-9)))
        .with_columns(value=pl.when(pl.col("blq")).then(pl.col("_all_mean"))
                      .otherwise(pl.col("_q_mean")))
        .with_columns(
            plot_value=pl.when(~pl.col("blq")).then(pl.col("value"))
            .when(pl.col("lloq").is_not_null()).then(pl.col("lloq") / 2)
            .otherwise(None))
        .sort(["subject_id", "assay", "day"])
    )
    return out.select(list(SERIES_SCHEMA)).cast(SERIES_SCHEMA)


NonexpanderPolicy = Literal["exclude", "half_lloq"]
NONEXPANDER_POLICIES: tuple[NonexpanderPolicy, ...] = get_args(NonexpanderPolicy)
