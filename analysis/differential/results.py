"""The shape of a comparison's result table: its columns and types, the leading columns the
command line prints, and the default minimum group size."""

from __future__ import annotations

import polars as pl

from analysis import stats as st

__all__ = ["RESULT_COLUMNS", "RESULT_SCHEMA", "MIN_N", "EXACT_MAX_N", "sort_results",
           "fill_results"]

RESULT_COLUMNS = ("feature", "n_group_a", "n_group_b", "effect", "effect_measure", "p_value",
                  "q_value")
MIN_N = 2             # default: fewer patients than this in a group, no test
EXACT_MAX_N = st.EXACT_MAX_N   # up to this many patients: exact / permutation p-values

RESULT_SCHEMA = {
    "feature": pl.String, "n_group_a": pl.Int64, "n_group_b": pl.Int64, "effect": pl.Float64,
    "effect_measure": pl.String, "p_value": pl.Float64, "q_value": pl.Float64,
    "group_a": pl.String, "group_b": pl.String, "mean_a": pl.Float64, "mean_b": pl.Float64,
    "median_a": pl.Float64, "median_b": pl.Float64, "log2fc": pl.Float64,
    "hedges_g": pl.Float64, "cliffs_delta": pl.Float64, "test": pl.String, "reason": pl.String,
    "note": pl.String, "layer": pl.String, "window": pl.String, "window_rule": pl.String,
    "days": pl.String, "change_from_baseline": pl.Boolean, "values_a": pl.String,
    "values_b": pl.String, "defines_groups": pl.Boolean, "fdr_family": pl.String,
}


def sort_results(out: pl.DataFrame) -> pl.DataFrame:
    """By p, then the larger effect, then the feature name; untested rows last."""
    return (out.with_columns(pl.col("effect").abs().alias("_abs"))
            .sort(["p_value", "_abs", "feature"], descending=[False, True, False],
                  nulls_last=True).drop("_abs"))


def fill_results(frame: pl.DataFrame) -> pl.DataFrame:
    """Every result column in order and type (null where `frame` lacks it)."""
    missing = [pl.lit(None, t).alias(c) for c, t in RESULT_SCHEMA.items()
               if c not in frame.columns]
    return frame.with_columns(missing).select(list(RESULT_SCHEMA)).cast(RESULT_SCHEMA)
