"""The two patient groups of a comparison: the study's response groups, a patients-table column
(categories, or numbers split at the median) or a user-made split of patients; and the features
that define the groups (testing responders on the counts that made them responders is
circular)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from analysis.cohort import response_groups
from analysis.rules import Rules, rules_for
from analysis.vocab import NON_RESPONDER, NOT_EVALUABLE, RESPONDER

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["DEFINES_GROUPS", "assign_groups", "grouping_columns", "group_values",
           "defining_features"]

DEFINES_GROUPS = "defines the groups"


def assign_groups(study: Study, *, groups: Any = None,
                  group_column: str = "response_group", group_a: str | None = None,
                  group_b: str | None = None, subjects: Sequence[str] | None = None
                  ) -> tuple[pl.DataFrame, str, str]:
    """(frame subject_id, group; label A; label B). Only patients of the two groups are kept.

    `groups`: None (the study's response groups, or `group_column` of the patients table),
    a frame with subject_id and `group_column`, or a user-made split: two lists of subject_ids.
    A numeric column with more than two values is split at its median. "Not evaluable" and
    missing values never form a group. `subjects` restricts to these patients (the cohort).
    """
    if isinstance(groups, (tuple, list)) and len(groups) == 2 and not isinstance(groups[0], str):
        a_ids, b_ids = [str(s) for s in groups[0]], [str(s) for s in groups[1]]
        overlap = set(a_ids) & set(b_ids)
        if overlap:
            raise ValueError(f"patients in both groups: {', '.join(sorted(overlap))}")
        la, lb = group_a or "Group A", group_b or "Group B"
        frame = pl.DataFrame({"subject_id": a_ids + b_ids,
                              "group": [la] * len(a_ids) + [lb] * len(b_ids)},
                             schema={"subject_id": pl.String, "group": pl.String})
    else:
        if isinstance(groups, pl.DataFrame):
            source = groups
        elif groups is None:
            source = response_groups(study)
            extra = [c for c in study.patients.columns if c not in source.columns]
            source = source.join(study.patients.select("subject_id", *extra), on="subject_id",
                                 how="left")
        else:
            raise ValueError("groups must be None, a frame with subject_id and the group "
                             "column, or two lists of subject_ids")
        if group_column not in source.columns:
            cols = ", ".join(c for c in source.columns if c != "subject_id")
            raise ValueError(f"no column {group_column!r} to group patients by; "
                             f"available: {cols}")
        frame, la, lb = _two_groups(source.select("subject_id", group_column), group_column,
                                    group_a, group_b)
    if subjects is not None:
        frame = frame.filter(pl.col("subject_id").is_in(list(subjects)))
    return frame, la, lb


def _two_groups(df: pl.DataFrame, col: str, group_a: str | None, group_b: str | None
                ) -> tuple[pl.DataFrame, str, str]:
    s = df.get_column(col)
    if s.dtype.is_numeric() and s.drop_nulls().n_unique() > 2:
        med = float(s.drop_nulls().median())
        la, lb = f"{col} > {med:g}", f"{col} <= {med:g}"
        frame = df.filter(pl.col(col).is_not_null()).select(
            "subject_id", pl.when(pl.col(col) > med).then(pl.lit(la)).otherwise(pl.lit(lb))
            .alias("group"))
        return frame, la, lb
    df = df.with_columns(pl.col(col).cast(pl.String)).filter(
        pl.col(col).is_not_null() & (pl.col(col) != NOT_EVALUABLE))
    values = df.get_column(col).unique().sort().to_list()
    if col == "response_group" and group_a is None and group_b is None:
        group_a, group_b = RESPONDER, NON_RESPONDER
    if group_a is None or group_b is None:
        rest = [v for v in values if v not in (group_a, group_b)]
        if len(values) > 2 and (group_a is None and group_b is None):
            raise ValueError(f"column {col!r} has {len(values)} values ({', '.join(values)}); "
                             "choose the two groups to compare")
        group_a = group_a or (rest.pop(0) if rest else "")
        group_b = group_b or (rest.pop(0) if rest else "")
    frame = df.filter(pl.col(col).is_in([group_a, group_b])).select(
        "subject_id", pl.col(col).alias("group"))
    return frame, group_a, group_b


def grouping_columns(study: Study) -> list[str]:
    """Columns of the patients table (and best_response) that can split patients in two:
    categories with 2 to 8 values, or numbers (split at the median)."""
    source = response_groups(study).select("subject_id", "best_response").join(
        study.patients, on="subject_id", how="left")
    out = []
    for col in source.columns:
        if col in ("subject_id", "infusion_date") or col.endswith("_day"):
            continue
        s = source.get_column(col).drop_nulls()
        if s.dtype.is_numeric() and s.n_unique() >= 2:
            out.append(col)
        elif s.dtype == pl.String and 2 <= s.n_unique() <= 8:
            out.append(col)
    return out


def group_values(study: Study, *, column: str) -> list[str]:
    """The distinct values of a categorical grouping column ([] for a numeric column, which
    is split at its median, and for an unknown column)."""
    source = response_groups(study).join(study.patients.drop("response_override"),
                                         on="subject_id", how="left")
    if column not in source.columns or source.get_column(column).dtype.is_numeric():
        return []
    values = source.get_column(column).drop_nulls().unique().sort().to_list()
    return [v for v in values if v != NOT_EVALUABLE]


def defining_features(study: Study, *, layer: str, group_column: str = "response_group",
                      groups: Any = None, rules: Rules | None = None) -> frozenset[str]:
    """The features of `layer` that define the groups being compared: with the response groups
    (response_group or best_response, from the study's responses), the blood analytes of the
    response and severity rules (`group_defining_analytes`, default ANC, PLT, HGB, RETIC).
    Other groupings (a patients column, a custom split) are not made from counts: none."""
    rules = rules if rules is not None else rules_for(study)
    if layer != "measurements" or group_column not in ("response_group", "best_response"):
        return frozenset()
    if groups is not None and not isinstance(groups, pl.DataFrame):
        return frozenset()      # a custom split of patients
    return frozenset(str(a) for a in rules.group_defining_analytes)
