"""Drill-down into one feature of a comparison: its course at every sample of every patient of
the two groups, and its test in each day window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from analysis.differential.comparison import compare_windows
from analysis.differential.groups import assign_groups
from analysis.differential.layers import layer_values
from analysis.differential.results import MIN_N, RESULT_SCHEMA
from analysis.differential.windows import WINDOWS, parse_window
from analysis.rules import Rules, rules_for

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["feature_course", "feature_windows"]


def feature_course(study: Study, *, layer: str, feature: str,
                   groups: Any = None, group_column: str = "response_group",
                   group_a: str | None = None, group_b: str | None = None,
                   panel: str | None = None, subjects: Sequence[str] | None = None
                   ) -> pl.DataFrame:
    """One feature at every sample of every patient of the two groups: subject_id, group, day,
    timepoint, sample_id, value (for a trajectory plot)."""
    assigned, _, _ = assign_groups(study, groups=groups, group_column=group_column,
                                   group_a=group_a, group_b=group_b, subjects=subjects)
    values = layer_values(study, layer=layer, panel=panel, features=[feature])
    return (values.join(assigned, on="subject_id", how="inner")
            .select("subject_id", "group", "day", "timepoint", "sample_id", "feature", "value")
            .sort("subject_id", "day"))


def feature_windows(study: Study, *, layer: str, feature: str,
                    windows: Sequence[str] = tuple(WINDOWS), groups: Any = None,
                    group_column: str = "response_group", group_a: str | None = None,
                    group_b: str | None = None, change_from_baseline: bool = False,
                    panel: str | None = None, effect_measure: str = "hedges_g",
                    min_n: int = MIN_N, subjects: Sequence[str] | None = None,
                    rules: Rules | None = None) -> pl.DataFrame:
    """The test of one feature in each window: window, centre, lo, hi + the compare columns.
    One feature per window: q equals p, unless the rule setting `fdr_across_windows` makes the
    windows one family (then q is BH over this feature's windows)."""
    rules = rules if rules is not None else rules_for(study)
    schema = {**RESULT_SCHEMA, "centre": pl.Float64, "lo": pl.Int64, "hi": pl.Int64}
    wins = [parse_window(n) for n in windows]
    res = compare_windows(study, windows=wins, rules=rules, layer=layer, groups=groups,
                          group_column=group_column, group_a=group_a, group_b=group_b,
                          change_from_baseline=change_from_baseline, panel=panel,
                          features=[feature], effect_measure=effect_measure, method="rank",
                          min_n=min_n, min_count=10, subjects=subjects)
    if res.height == 0:
        return pl.DataFrame(schema=schema)
    meta = pl.DataFrame({"window": [w.label for w in wins],
                         "centre": [float(w.centre) for w in wins],
                         "lo": [w.lo for w in wins], "hi": [w.hi for w in wins]},
                        schema={"window": pl.String, "centre": pl.Float64, "lo": pl.Int64,
                                "hi": pl.Int64})
    order = {w.label: i for i, w in enumerate(wins)}
    return (res.filter(pl.col("feature") == feature).join(meta, on="window", how="left")
            .sort(pl.col("window").replace_strict(order, default=len(order)))
            .select(list(schema)).cast(schema))
