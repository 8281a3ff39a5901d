"""Bulk RNA-seq comparison with pydeseq2 (Love et al., Genome Biol 2014; Muzellec et al.,
Bioinformatics 2023): Wald test on raw counts with design ~group, or, with change from baseline,
patients nested in groups with a group-specific time effect (DESeq2 vignette, "group-specific
condition effects, individuals nested within groups"), contrasting the change between groups."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from analysis.differential.results import fill_results, sort_results
from analysis.differential.windows import WINDOWS, Window, window_values

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["deseq2_compare"]


def deseq2_compare(study: Study, w: Window, assigned: pl.DataFrame, la: str, lb: str, *,
            change_from_baseline: bool, features: Sequence[str] | None,
            min_count: int, min_n: int) -> pl.DataFrame:
    import pandas as pd
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    counts = study.rna_counts
    sample_cols = [c for c in counts.columns if c != "gene"]
    meta = study.samples.filter(pl.col("sample_id").is_in(sample_cols)) \
        .select("sample_id", "subject_id", "day").join(assigned, on="subject_id", how="inner")
    long = meta.with_columns(pl.lit("rna").alias("feature"), pl.lit(0.0).alias("value"))
    post = window_values(long, window=w)
    if change_from_baseline:
        if w.label == "baseline":
            raise ValueError("change from baseline needs a window after baseline (e.g. D28)")
        base = window_values(long, window=WINDOWS["baseline"]).select(
            "subject_id", pl.col("sample_id").alias("base_id"))
        post = post.join(base, on="subject_id", how="inner")
    post = post.sort("group", "subject_id", descending=[False, False])
    n_a = post.filter(pl.col("group") == la).height
    n_b = post.filter(pl.col("group") == lb).height
    rule = w.describe() + ("; change from baseline, patients paired" if change_from_baseline
                           else "")
    base_cols = {"n_group_a": n_a, "n_group_b": n_b, "group_a": la, "group_b": lb,
                 "layer": "rna", "window": w.label, "window_rule": rule,
                 "change_from_baseline": change_from_baseline}
    genes = counts.get_column("gene").to_list()
    if features is not None:
        keep = set(features)
        genes = [g for g in genes if g in keep]
    if n_a < min_n or n_b < min_n:
        reason = f"fewer than {min_n} patients in a group (n = {n_a} vs {n_b}): no test"
        frame = pl.DataFrame({"feature": genes}).with_columns(
            **{k: pl.lit(v) for k, v in base_cols.items()}, reason=pl.lit(reason),
            effect_measure=pl.lit("log2 fold change (DESeq2)"))
        return sort_results(fill_results(frame))
    subj = post.get_column("subject_id").to_list()
    grp = ["A" if g == la else "B" for g in post.get_column("group").to_list()]
    ids = post.get_column("sample_id").to_list()
    if change_from_baseline:
        ids = ids + post.get_column("base_id").to_list()
    mat = counts.filter(pl.col("gene").is_in(genes)).select("gene", *ids)
    x = mat.select(ids).to_numpy().T.astype(np.int64)
    keep = (x >= min_count).sum(axis=0) >= min(n_a, n_b)
    gene_names = np.array(mat.get_column("gene").to_list())[keep]
    cdf = pd.DataFrame(x[:, keep], index=[f"s{i}" for i in range(len(ids))],
                       columns=gene_names)
    if change_from_baseline:
        design, contrast, metadata = _paired_design(subj, grp, cdf.index)
    else:
        metadata = pd.DataFrame({"group": grp}, index=cdf.index)
        design, contrast = "~group", ["group", "A", "B"]
    inference = DefaultInference(n_cpus=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dds = DeseqDataSet(counts=cdf, metadata=metadata, design=design, quiet=True,
                           inference=inference)
        dds.deseq2()
        ds = DeseqStats(dds, contrast=contrast, quiet=True, inference=inference)
        ds.summary()
    res = ds.results_df
    normed = np.asarray(dds.layers["normed_counts"])
    a_rows = [i for i, g in enumerate(grp) if g == "A"]
    b_rows = [i for i, g in enumerate(grp) if g == "B"]
    resid_df = len(ids) - (n_a + n_b + 2 if change_from_baseline else 2)
    note = (f"underpowered: n = {n_a} vs {n_b}, {resid_df} residual degrees of freedom; "
            "dispersions lean on the trend across genes, treat p-values as exploratory") \
        if min(n_a, n_b) < 4 or resid_df < 6 else None
    frame = pl.DataFrame({
        "feature": list(res.index), "effect": res["log2FoldChange"].to_numpy(float),
        "p_value": res["pvalue"].to_numpy(float), "q_value": res["padj"].to_numpy(float),
        "mean_a": normed[a_rows].mean(axis=0), "mean_b": normed[b_rows].mean(axis=0),
        "median_a": np.median(normed[a_rows], axis=0),
        "median_b": np.median(normed[b_rows], axis=0),
        "log2fc": res["log2FoldChange"].to_numpy(float),
    }).fill_nan(None).with_columns(
        **{k: pl.lit(v) for k, v in base_cols.items()},
        effect_measure=pl.lit("log2 fold change (DESeq2)" + (" of the change from baseline"
                                                             if change_from_baseline else "")),
        test=pl.lit("DESeq2 Wald"), note=pl.lit(note),
        days=pl.lit(f"days {post['day'].min()} to {post['day'].max()}"))
    dropped = [g for g in genes if g not in set(gene_names)]
    if dropped:
        low = pl.DataFrame({"feature": dropped}).with_columns(
            **{k: pl.lit(v) for k, v in base_cols.items()},
            reason=pl.lit(f"fewer than {min(n_a, n_b)} samples with >= {min_count} reads"),
            effect_measure=pl.lit("log2 fold change (DESeq2)"))
        frame = pl.concat([fill_results(frame), fill_results(low)], how="vertical_relaxed")
    return sort_results(fill_results(frame))


def _paired_design(subjects: list[str], grp: list[str], index: Any) -> tuple[Any, Any, Any]:
    """Design matrix: intercept, group B, one column per patient (nested in group, first of
    each group dropped), post-baseline time within A and within B. Contrast: change in A minus
    change in B."""
    import pandas as pd

    n = len(subjects)
    time = [1.0] * n + [0.0] * n
    subj2, grp2 = subjects + subjects, grp + grp
    cols: dict[str, list[float]] = {"Intercept": [1.0] * (2 * n),
                                    "groupB": [1.0 if g == "B" else 0.0 for g in grp2]}
    for g in ("A", "B"):
        members = [s for s, gg in zip(subjects, grp, strict=True) if gg == g]
        for s in members[1:]:
            cols[f"patient_{s}"] = [1.0 if x == s else 0.0 for x in subj2]
    cols["timeA"] = [t if g == "A" else 0.0 for t, g in zip(time, grp2, strict=True)]
    cols["timeB"] = [t if g == "B" else 0.0 for t, g in zip(time, grp2, strict=True)]
    design = pd.DataFrame(cols, index=index)
    contrast = np.array([1.0 if c == "timeA" else -1.0 if c == "timeB" else 0.0
                         for c in design.columns])
    metadata = pd.DataFrame({"group": grp2, "subject": subj2,
                             "time": ["post" if t else "baseline" for t in time]}, index=index)
    return design, contrast, metadata
