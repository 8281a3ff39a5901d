"""T-cell receptor repertoire: diversity per sample, baseline clone tracking, overlap over time.

A clonotype is a CDR3 amino-acid sequence (`junction_aa`) within a sample; its size is the sum
of `count` over the rows (reads, UMIs or cells) that carry it. Metrics per sample follow the usual
immune-repertoire definitions (Chiffelle et al., Front Immunol 2020; immunarch, scirpy):

- richness: number of distinct clonotypes;
- Shannon entropy H = -sum p_i ln p_i (natural log);
- clonality = 1 - H / ln(richness) (1 - Pielou's evenness; 0 = perfectly even, 1 = one clone);
- Simpson = 1 - sum p_i^2 (Gini-Simpson diversity: the probability that two reads drawn with
  replacement come from different clonotypes);
- top-10 share: fraction of the repertoire held by the 10 largest clonotypes.

Overlap between two samples of a patient is the Morisita-Horn index (Horn 1966):
2 sum x_i y_i / ((Dx + Dy) X Y) with Dx = sum x_i^2 / X^2; 1 = identical clone frequencies,
0 = no shared clonotype.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from analysis.registry import derived_table

if TYPE_CHECKING:
    from analysis.rules import Rules
    from data_loaders import Study

__all__ = ["METRICS", "METRIC_LABELS", "clonotypes", "repertoire_metrics", "repertoire_table",
           "top_clone_tracking", "morisita_overlap", "rarefied_metrics", "rarefied_table"]

METRICS = ("richness", "shannon", "clonality", "simpson", "top10_share")
METRIC_LABELS = {"richness": "Richness (clonotypes)", "shannon": "Shannon entropy",
                 "clonality": "Clonality (1 - normalised Shannon)",
                 "simpson": "Simpson diversity (1 - sum p^2)",
                 "top10_share": "Top-10 clonotype share"}
OTHER = "other clonotypes"


def clonotypes(tcr: pl.DataFrame, *, clone: str = "junction_aa", count: str = "count",
               locus: str | None = "TRB", productive_only: bool = True) -> pl.DataFrame:
    """One row per sample and clonotype: sample_id, clonotype, count, frequency.

    Rows with `productive` false are dropped when `productive_only`; when the table has a
    `locus` column that contains `locus` (default TRB), only that chain is kept, so paired
    alpha/beta single-cell data are not counted twice.
    """
    df = tcr.filter(pl.col(clone).is_not_null() & (pl.col(clone) != "") & (pl.col(count) > 0))
    if productive_only and "productive" in df.columns:
        df = df.filter(pl.col("productive").fill_null(True))
    if locus and "locus" in df.columns and (df.get_column("locus") == locus).any():
        df = df.filter(pl.col("locus") == locus)
    out = (df.group_by("sample_id", clone)
           .agg(pl.col(count).sum().cast(pl.Float64).alias("count"))
           .rename({clone: "clonotype"}))
    return (out.with_columns((pl.col("count") / pl.col("count").sum().over("sample_id"))
                             .alias("frequency"))
            .sort(["sample_id", "count", "clonotype"], descending=[False, True, False]))


def repertoire_metrics(tcr: pl.DataFrame, *, clone: str = "junction_aa", count: str = "count",
                       locus: str | None = "TRB", productive_only: bool = True,
                       top: int = 10) -> pl.DataFrame:
    """Per sample: sample_id, total_count, richness, shannon, clonality, simpson, top10_share.

    Clonality is null for a sample with a single clonotype (ln 1 = 0: evenness is undefined).
    """
    return _metrics(clonotypes(tcr, clone=clone, count=count, locus=locus,
                               productive_only=productive_only), top=top)


def _metrics(clones: pl.DataFrame, *, top: int = 10) -> pl.DataFrame:
    p = pl.col("frequency")
    rich = pl.len().cast(pl.Float64)
    shannon = -(p * p.log()).sum()
    return (
        clones.group_by("sample_id")
        .agg(pl.col("count").sum().round().cast(pl.Int64).alias("total_count"),
             rich.alias("richness"),
             shannon.alias("shannon"),
             (1 - (p * p).sum()).alias("simpson"),
             p.sort(descending=True).head(top).sum().alias("top10_share"))
        .with_columns(
            pl.when(pl.col("richness") > 1)
            .then(1 - pl.col("shannon") / pl.col("richness").log())
            .otherwise(None).alias("clonality"))
        .select("sample_id", "total_count", "richness", "shannon", "clonality", "simpson",
                "top10_share")
        .sort("sample_id")
    )


@derived_table("repertoire", "TCR repertoire metrics per sample (richness, Shannon, clonality, "
               "Simpson, top-10 share) with patient and day")
def repertoire_table(study: Study) -> pl.DataFrame:
    """repertoire_metrics of the study's TCR table, joined with the samples' patient and day."""
    metrics = _metrics(study_clonotypes(study, "TRB"))
    out = study.with_samples(metrics)
    lead = [c for c in ("sample_id", "subject_id", "day", "timepoint", "tissue")
            if c in out.columns]
    if "subject_id" not in out.columns:
        out = out.with_columns(pl.lit(None, pl.String).alias("subject_id"),
                               pl.lit(None, pl.Int64).alias("day"))
        lead = ["sample_id", "subject_id", "day"]
    return out.select(*lead, *[c for c in out.columns if c not in lead]).sort(
        "subject_id", "day", nulls_last=True)


@lru_cache(maxsize=2)
def study_clonotypes(study: Study, locus: str | None) -> pl.DataFrame:
    # the metrics, clone tracking and overlap of a study all start from its clonotypes
    # (a sort of every TCR row: about a second at 10^6 rows), so they are made once per Study
    # (hashed by its cache key, equal only to itself; frames are never changed in place)
    return clonotypes(study.tcr, locus=locus)


def _sample_clones(data: Study | pl.DataFrame, samples: pl.DataFrame | None, *,
                   locus: str | None, subjects: Iterable[str] | None = None) -> pl.DataFrame:
    if samples is None:          # a Study: its tcr and samples tables
        clones, samples = study_clonotypes(data, locus), data.samples
    else:
        clones = clonotypes(data, locus=locus)
    meta = samples.select("sample_id", "subject_id", "day",
                          *(["timepoint"] if "timepoint" in samples.columns else []))
    if subjects is not None:
        meta = meta.filter(pl.col("subject_id").is_in(list(subjects)))
    out = clones.join(meta, on="sample_id", how="inner")
    if "timepoint" not in out.columns:
        out = out.with_columns(pl.lit(None, pl.String).alias("timepoint"))
    return out


def top_clone_tracking(tcr: Study | pl.DataFrame, *, samples: pl.DataFrame | None = None,
                       top: int = 10,
                       locus: str | None = "TRB", subjects: Iterable[str] | None = None
                       ) -> pl.DataFrame:
    """The `top` largest clonotypes of each patient's baseline sample, followed over time
    (every patient, or only `subjects`).

    `tcr` is a clone table with `samples` (sample_id, subject_id, day[, timepoint]), or a Study.

    Baseline is the last sample on or before day 0 (else the first sample). Returns subject_id,
    sample_id, day, timepoint, clonotype, rank (1 = largest at baseline), frequency; each sample
    also has a row `clonotype = "other clonotypes"` (rank top + 1) so the rows of a sample sum
    to 1 (for a stacked area).
    """
    schema = {"subject_id": pl.String, "sample_id": pl.String, "day": pl.Int64,
              "timepoint": pl.String, "clonotype": pl.String, "rank": pl.Int64,
              "frequency": pl.Float64}
    clones = _sample_clones(tcr, samples, locus=locus, subjects=subjects)
    if clones.height == 0:
        return pl.DataFrame(schema=schema)
    per_sample = clones.select("subject_id", "sample_id", "day", "timepoint").unique()
    baseline = (per_sample.with_columns((pl.col("day") > 0).alias("_post"),
                                        pl.col("day").abs().alias("_dist"))
                .sort("subject_id", "_post", "_dist", "day")
                .group_by("subject_id", maintain_order=True).first()
                .select("subject_id", pl.col("sample_id").alias("_base")))
    tops = (clones.join(baseline, on="subject_id")
            .filter(pl.col("sample_id") == pl.col("_base"))
            .sort(["subject_id", "count", "clonotype"], descending=[False, True, False])
            .group_by("subject_id", maintain_order=True).head(top)
            .with_columns(pl.int_range(1, pl.len() + 1).over("subject_id").alias("rank"))
            .select("subject_id", "clonotype", pl.col("rank").cast(pl.Int64)))
    grid = per_sample.join(tops, on="subject_id")
    tracked = (grid.join(clones.select("sample_id", "clonotype", "frequency"),
                         on=["sample_id", "clonotype"], how="left")
               .with_columns(pl.col("frequency").fill_null(0.0)))
    other = (tracked.group_by("subject_id", "sample_id", "day", "timepoint")
             .agg((1 - pl.col("frequency").sum()).clip(0, 1).alias("frequency"))
             .with_columns(pl.lit(OTHER).alias("clonotype"), pl.lit(top + 1).alias("rank")))
    return (pl.concat([tracked.select(list(schema)), other.select(list(schema))],
                      how="vertical_relaxed")
            .cast(schema).sort("subject_id", "day", "rank"))


def morisita_overlap(tcr: Study | pl.DataFrame, *, samples: pl.DataFrame | None = None,
                     locus: str | None = "TRB", subjects: Iterable[str] | None = None
                     ) -> pl.DataFrame:
    """Morisita-Horn overlap between every pair of samples of the same patient (both orders,
    diagonal = 1), of every patient or only `subjects`; `tcr` with `samples`, or a Study:
    subject_id, sample_a, sample_b, day_a, day_b, timepoint_a, timepoint_b, morisita_horn."""
    schema = {"subject_id": pl.String, "sample_a": pl.String, "sample_b": pl.String,
              "day_a": pl.Int64, "day_b": pl.Int64, "timepoint_a": pl.String,
              "timepoint_b": pl.String, "morisita_horn": pl.Float64}
    clones = _sample_clones(tcr, samples, locus=locus, subjects=subjects)
    rows: list[dict] = []
    for (sid,), sub in clones.group_by(["subject_id"], maintain_order=True):
        meta = sub.select("sample_id", "day", "timepoint").unique().sort("day", "sample_id")
        ids = meta.get_column("sample_id").to_list()
        wide = sub.pivot(on="sample_id", index="clonotype", values="count").fill_null(0)
        x = wide.select(ids).to_numpy().astype(float)            # clonotypes x samples
        totals = x.sum(axis=0)
        d = (x ** 2).sum(axis=0) / totals ** 2
        cross = x.T @ x
        mh = 2 * cross / ((d[:, None] + d[None, :]) * np.outer(totals, totals))
        days, tps = meta.get_column("day").to_list(), meta.get_column("timepoint").to_list()
        for i in range(len(ids)):
            for j in range(len(ids)):
                rows.append({"subject_id": sid, "sample_a": ids[i], "sample_b": ids[j],
                             "day_a": days[i], "day_b": days[j], "timepoint_a": tps[i],
                             "timepoint_b": tps[j], "morisita_horn": float(mh[i, j])})
    return pl.DataFrame(rows, schema=schema)


# ---- depth-matched metrics (rarefaction) -------------------------------------------------------
def rarefied_metrics(clones: pl.DataFrame, *, depth: int = 0, min_depth: int = 100,
                     repeats: int = 50, seed: int = 0) -> pl.DataFrame:
    """Richness, Shannon, clonality and Simpson on `depth` receptors drawn without replacement
    from each sample (numpy's multivariate hypergeometric draw), repeated `repeats` times from
    a fixed seed: per sample and metric the mean and the 2.5 / 97.5 % quantiles. depth 0 = the
    smallest sample's total, never below `min_depth`; samples with fewer receptors than the
    depth are listed with `rarefied` false and null values (not comparable at that depth).

    `clones`: sample_id, clonotype, count (as `clonotypes`). Columns sample_id, total_count,
    depth, rarefied, metric, mean, lo, hi."""
    schema = {"sample_id": pl.String, "total_count": pl.Int64, "depth": pl.Int64,
              "rarefied": pl.Boolean, "metric": pl.String, "mean": pl.Float64,
              "lo": pl.Float64, "hi": pl.Float64}
    if clones.height == 0:
        return pl.DataFrame(schema=schema)
    per = (clones.group_by("sample_id", maintain_order=True)
           .agg(pl.col("count").round().cast(pl.Int64)).sort("sample_id"))
    totals = {sid: int(np.sum(c)) for sid, c in per.iter_rows()}
    if depth <= 0:
        big = [t for t in totals.values() if t >= min_depth]
        depth = min(big) if big else min_depth
    rows = []
    for k, (sid, counts) in enumerate(per.iter_rows()):
        counts = np.asarray(counts, dtype=np.int64)
        counts = counts[counts > 0]
        total = int(counts.sum())
        if total < depth:
            rows += [{"sample_id": sid, "total_count": total, "depth": depth,
                      "rarefied": False, "metric": m, "mean": None, "lo": None, "hi": None}
                     for m in ("richness", "shannon", "clonality", "simpson")]
            continue
        rng = np.random.default_rng([seed, k])
        draws = np.stack([rng.multivariate_hypergeometric(counts, depth)
                          for _ in range(repeats)]).astype(float)
        p = draws / depth
        with np.errstate(divide="ignore", invalid="ignore"):
            rich = (draws > 0).sum(axis=1).astype(float)
            shannon = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
            clonality = np.where(rich > 1, 1 - shannon / np.log(rich), np.nan)
            simpson = 1 - (p * p).sum(axis=1)
        for m, v in (("richness", rich), ("shannon", shannon), ("clonality", clonality),
                     ("simpson", simpson)):
            v = v[np.isfinite(v)]
            rows.append({"sample_id": sid, "total_count": total, "depth": depth,
                         "rarefied": True, "metric": m,
                         "mean": float(v.mean()) if v.size else None,
                         "lo": float(np.quantile(v, 0.025)) if v.size else None,
                         "hi": float(np.quantile(v, 0.975)) if v.size else None})
    return pl.DataFrame(rows, schema=schema)


@derived_table("repertoire_rarefied", "TCR repertoire metrics per sample at a common depth "
               "(seeded repeated subsampling without replacement: mean and 95 % interval)")
def rarefied_table(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """`rarefied_metrics` of the study's TRB clonotypes with the rule settings
    rarefaction_depth, rarefaction_min_depth and rarefaction_repeats, joined with patient
    and day."""
    from analysis.rules import rules_for

    rules = rules if rules is not None else rules_for(study)
    out = rarefied_metrics(study_clonotypes(study, "TRB"), depth=rules.rarefaction_depth,
                           min_depth=rules.rarefaction_min_depth,
                           repeats=rules.rarefaction_repeats)
    meta = study.samples.select("sample_id", "subject_id", "day",
                                *(["timepoint"] if "timepoint" in study.samples.columns
                                  else []))
    return meta.join(out, on="sample_id", how="inner").sort("subject_id", "day", "metric")
