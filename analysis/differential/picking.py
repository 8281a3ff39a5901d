"""Per-patient values of a comparison: for each patient of the two groups, the value of each
feature in the window (optionally minus the patient's baseline value); bulk RNA straight from
the count matrix (samples chosen first, then expanded)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from analysis.differential.groups import assign_groups
from analysis.differential.layers import layer_values
from analysis.differential.windows import WINDOWS, Window, parse_window, window_values

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["patient_values", "picked_values", "rna_matrix"]


def _change(values: pl.DataFrame, picked: pl.DataFrame) -> pl.DataFrame:
    base = window_values(values, window=WINDOWS["baseline"]).select(
        "subject_id", "feature", pl.col("value").alias("baseline_value"),
        pl.col("day").alias("baseline_day"))
    return (picked.join(base, on=["subject_id", "feature"], how="inner")
            .with_columns((pl.col("value") - pl.col("baseline_value")).alias("value")))


def patient_values(study: Study, *, layer: str, window: str | Window,
                   groups: Any = None, group_column: str = "response_group",
                   group_a: str | None = None, group_b: str | None = None,
                   change_from_baseline: bool = False, panel: str | None = None,
                   features: Sequence[str] | None = None,
                   subjects: Sequence[str] | None = None) -> pl.DataFrame:
    """The values a comparison uses: subject_id, group, feature, value, day, sample_id,
    timepoint (+ baseline_value, baseline_day with change from baseline)."""
    w = parse_window(window)
    assigned, _, _ = assign_groups(study, groups=groups, group_column=group_column,
                                   group_a=group_a, group_b=group_b, subjects=subjects)
    return picked_values(study, layer=layer, window=w, assigned=assigned,
                   change_from_baseline=change_from_baseline, panel=panel,
                   features=features).sort("feature", "group", "subject_id")


def picked_values(study: Study, *, layer: str, window: Window, assigned: pl.DataFrame,
            change_from_baseline: bool, panel: str | None,
            features: Sequence[str] | None) -> pl.DataFrame:
    if change_from_baseline and window.label == "baseline":
        raise ValueError("change from baseline needs a window after baseline (e.g. D28)")
    if layer == "rna":
        # every gene is counted in every sample: choose the samples first, then expand
        post_f, base_f = _rna_choice(study, assigned, window,
                                     change_from_baseline=change_from_baseline)
        post = post_f.get_column("sample_id").to_list()
        base = base_f.get_column("sample_id").to_list()
        values = layer_values(study, layer=layer, features=features,
                              sample_ids=post + base).join(assigned, on="subject_id")
        picked = values.filter(pl.col("sample_id").is_in(post))
        if not change_from_baseline:
            return picked
        base_vals = values.filter(pl.col("sample_id").is_in(base)).select(
            "subject_id", "feature", pl.col("value").alias("baseline_value"),
            pl.col("day").alias("baseline_day"))
        return (picked.join(base_vals, on=["subject_id", "feature"], how="inner")
                .with_columns((pl.col("value") - pl.col("baseline_value")).alias("value")))
    values = layer_values(study, layer=layer, panel=panel, features=features)
    values = values.join(assigned, on="subject_id", how="inner")
    picked = window_values(values, window=window)
    if change_from_baseline:
        picked = _change(values, picked)
    return picked


def _rna_choice(study: Study, assigned: pl.DataFrame, w: Window, *,
                change_from_baseline: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The RNA sample of each patient in the window and (when needed) at baseline:
    frames of subject_id, sample_id, day."""
    cols = [c for c in study.rna_counts.columns if c != "gene"]
    meta = (study.samples.filter(pl.col("sample_id").is_in(cols))
            .select("sample_id", "subject_id", "day")
            .join(assigned.select("subject_id"), on="subject_id", how="inner")
            .with_columns(pl.lit("_").alias("feature")))
    post = window_values(meta, window=w).select("subject_id", "sample_id", "day")
    base = window_values(meta, window=WINDOWS["baseline"]).select(
        "subject_id", "sample_id", "day") if change_from_baseline else post.clear()
    return post, base


def rna_matrix(study: Study, assigned: pl.DataFrame, w: Window, *,
                change_from_baseline: bool, features: Sequence[str] | None
                ) -> tuple[list[str], list[str], np.ndarray, pl.DataFrame]:
    """(genes, subjects, log-CPM matrix genes x subjects, chosen samples): straight from the
    count matrix, without a long frame (the fast path for large cohorts)."""
    post, base = _rna_choice(study, assigned, w, change_from_baseline=change_from_baseline)
    if change_from_baseline:
        post = post.join(base.select("subject_id", pl.col("sample_id").alias("base_id")),
                         on="subject_id", how="inner")
    post = post.sort("subject_id")
    counts = study.rna_counts
    if features is not None:
        counts = counts.filter(pl.col("gene").is_in(list(features)))
    lib = study.rna_counts.select(pl.exclude("gene").sum()).row(0, named=True)

    def log_cpm(ids: list[str]) -> np.ndarray:
        m = counts.select(ids).to_numpy().astype(float) if ids else \
            np.zeros((counts.height, 0))
        size = np.array([max(float(lib[i]), 1.0) for i in ids])
        return np.log2(m / size * 1e6 + 1)

    x = log_cpm(post.get_column("sample_id").to_list())
    if change_from_baseline:
        x = x - log_cpm(post.get_column("base_id").to_list())
    return (counts.get_column("gene").to_list(), post.get_column("subject_id").to_list(), x,
            post)
