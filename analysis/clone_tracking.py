"""T-cell clones across time: each patient's dominant clones at the reference sample followed
to every later sample, per-clone changes between two timepoints, and the fate of the dominant
pre-infusion clones compared between responders and non-responders (patient level).

Clone counts come from the bulk repertoire (tcr table, TRB CDR3 amino acids, count = templates
or cells) or from single cells with receptors (analysis.clonotypes: cells per clonotype; CD8
cells only = cells with a TCR and CD8A or CD8B detected). `clone_source` says which.

- Reference sample: the infusion product when the patient has one (a sample whose timepoint
  or tissue names the product: "product", "infusion product", "IP"), else the baseline (the
  last sample on or before day 0, else the first).
- Dominant clones: the `clone_top` largest clonotypes of the reference sample (rule setting).
- Per clone between two samples A and B of a patient: two-sided Fisher's exact test of the
  clone's count against the rest of the repertoire (count_a of total_a vs count_b of total_b;
  DeWitt et al., J Virol 2015), Benjamini-Hochberg over every clone present in A or B of
  that patient and pair (the family is one patient's comparison). Classes:
  new (absent in A, present in B), lost (present in A, absent in B), expanded / contracted
  (present in both, q < `clone_fdr`, frequency up / down), persistent (present in both, no
  significant change). A lost or new clone also carries its q.
- Fate of the dominant clones per patient at each later timepoint: their summed frequency
  relative to the reference (`share_ratio`) and the fraction contracted or lost; responders
  vs non-responders by the Mann-Whitney test of analysis/stats.py, one value per patient.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from analysis.registry import Option, derived_table
from analysis.rules import DEFAULT_RULES, Rules, rules_for
from analysis.stats import bh, fisher_counts, mann_whitney
from analysis.vocab import NON_RESPONDER, NOT_EVALUABLE, RESPONDER

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CLASSES", "PRODUCT_PATTERN", "reference_samples", "clone_changes",
           "dominant_trajectories", "dominant_fate", "fate_comparison", "clone_counts",
           "clone_tracking_table", "clone_states"]

CLASSES = ("expanded", "persistent", "contracted", "lost", "new")
PRODUCT_PATTERN = r"(?i)^(infusion[ _-]?)?product$|^ip$|^car[- ]?t product$"
Source = Literal["auto", "tcr", "cells", "cells_cd8"]
Reference = Literal["auto", "baseline"]


def _meta(samples: pl.DataFrame) -> pl.DataFrame:
    cols = ["sample_id", "subject_id", "day"]
    out = samples.select(*cols, *[c for c in ("timepoint", "tissue") if c in samples.columns])
    for c in ("timepoint", "tissue"):
        if c not in out.columns:
            out = out.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    return out.unique("sample_id")


def reference_samples(samples: pl.DataFrame, *, reference: Reference = "auto"
                      ) -> pl.DataFrame:
    """Per patient: subject_id, reference sample_id, reference_day, reference ("infusion
    product" or "baseline"); `samples` are the samples holding clone counts. `reference`
    "auto": the product when the patient has one, else the baseline; "baseline": the
    baseline even when a product was sequenced (the product is then a later sample)."""
    m = _meta(samples).filter(pl.col("subject_id").is_not_null())
    product = (pl.col("timepoint").fill_null("").str.contains(PRODUCT_PATTERN)
               | pl.col("tissue").fill_null("").str.contains(PRODUCT_PATTERN))
    if reference == "baseline":
        m = m.filter(~product)
    ranked = m.with_columns(product.alias("_p"), (pl.col("day") > 0).fill_null(True)
                            .alias("_post"), pl.col("day").abs().alias("_d"))
    out = (ranked.sort(["subject_id", "_p", "_post", "_d"], descending=[False, True, False,
                                                                       False],
                       nulls_last=True)
           .group_by("subject_id", maintain_order=True).first())
    return out.select("subject_id", pl.col("sample_id").alias("reference_sample"),
                      pl.col("day").alias("reference_day"),
                      pl.when(pl.col("_p")).then(pl.lit("infusion product"))
                      .otherwise(pl.lit("baseline")).alias("reference"))


def clone_changes(counts: pl.DataFrame, samples: pl.DataFrame, *,
                  pairs: pl.DataFrame | None = None, reference: Reference = "auto",
                  rules: Rules | None = None) -> pl.DataFrame:
    """Per patient, pair of samples (A, B) and clone present in either: subject_id, sample_a,
    sample_b, day_a, day_b, timepoint_b, clonotype, count_a, count_b, total_a, total_b,
    freq_a, freq_b, log2_fc (frequencies with half a count added), p_value, q_value, class.

    `counts`: sample_id, clonotype, count. `pairs` (subject_id, sample_a, sample_b) defaults
    to the reference sample against every later sample of the patient."""
    rules = rules if rules is not None else DEFAULT_RULES
    schema = {"subject_id": pl.String, "sample_a": pl.String, "sample_b": pl.String,
              "day_a": pl.Int64, "day_b": pl.Int64, "timepoint_b": pl.String,
              "clonotype": pl.String, "count_a": pl.Float64, "count_b": pl.Float64,
              "total_a": pl.Float64, "total_b": pl.Float64, "freq_a": pl.Float64,
              "freq_b": pl.Float64, "log2_fc": pl.Float64, "p_value": pl.Float64,
              "q_value": pl.Float64, "class": pl.String}
    meta = _meta(samples).filter(pl.col("sample_id").is_in(
        counts.get_column("sample_id").unique().implode()))
    if pairs is None:
        ref = reference_samples(meta, reference=reference)
        pairs = (meta.join(ref, on="subject_id")
                 .filter((pl.col("sample_id") != pl.col("reference_sample"))
                         & (pl.col("day") > pl.col("reference_day")))
                 .select("subject_id", pl.col("reference_sample").alias("sample_a"),
                         pl.col("sample_id").alias("sample_b")))
    if pairs.height == 0 or counts.height == 0:
        return pl.DataFrame(schema=schema)
    totals = counts.group_by("sample_id").agg(pl.col("count").sum().alias("total"))
    a = counts.rename({"sample_id": "sample_a", "count": "count_a"})
    b = counts.rename({"sample_id": "sample_b", "count": "count_b"})
    joined = pairs.join(a, on="sample_a").select("subject_id", "sample_a", "sample_b",
                                                 "clonotype", "count_a")
    joined_b = pairs.join(b, on="sample_b").select("subject_id", "sample_a", "sample_b",
                                                   "clonotype", "count_b")
    df = (joined.join(joined_b, on=["subject_id", "sample_a", "sample_b", "clonotype"],
                      how="full", coalesce=True)
          .with_columns(pl.col("count_a").fill_null(0.0), pl.col("count_b").fill_null(0.0))
          .join(totals.rename({"sample_id": "sample_a", "total": "total_a"}), on="sample_a")
          .join(totals.rename({"sample_id": "sample_b", "total": "total_b"}), on="sample_b")
          .join(meta.select(pl.col("sample_id").alias("sample_a"), pl.col("day")
                            .alias("day_a")), on="sample_a", how="left")
          .join(meta.select(pl.col("sample_id").alias("sample_b"), pl.col("day")
                            .alias("day_b"), pl.col("timepoint").alias("timepoint_b")),
                on="sample_b", how="left"))
    p = fisher_counts(np.rint(df.get_column("count_a").to_numpy()),
                      n_a=np.rint(df.get_column("total_a").to_numpy()),
                      b=np.rint(df.get_column("count_b").to_numpy()),
                      n_b=np.rint(df.get_column("total_b").to_numpy()))
    df = df.with_columns(pl.Series("p_value", p), pl.int_range(pl.len()).alias("_row"))
    q = np.full(df.height, np.nan)
    for (_, _, _), grp in df.group_by("subject_id", "sample_a", "sample_b"):
        rows = grp.get_column("_row").to_numpy()
        q[rows] = bh(grp.get_column("p_value").to_numpy())
    fa = pl.col("count_a") / pl.col("total_a")
    fb = pl.col("count_b") / pl.col("total_b")
    df = df.with_columns(pl.Series("q_value", q), fa.alias("freq_a"), fb.alias("freq_b"),
                         (((pl.col("count_b") + 0.5) / pl.col("total_b"))
                          / ((pl.col("count_a") + 0.5) / pl.col("total_a"))).log(2)
                         .alias("log2_fc"))
    sig = pl.col("q_value") < rules.clone_fdr
    cls = (pl.when(pl.col("count_a") == 0).then(pl.lit("new"))
           .when(pl.col("count_b") == 0).then(pl.lit("lost"))
           .when(sig & (pl.col("freq_b") > pl.col("freq_a"))).then(pl.lit("expanded"))
           .when(sig & (pl.col("freq_b") < pl.col("freq_a"))).then(pl.lit("contracted"))
           .otherwise(pl.lit("persistent")))
    return (df.with_columns(cls.alias("class")).select(list(schema)).cast(schema)
            .sort(["subject_id", "day_b", "count_a", "count_b", "clonotype"],
                  descending=[False, False, True, True, False]))


def _dominant(counts: pl.DataFrame, ref: pl.DataFrame, top: int) -> pl.DataFrame:
    return (counts.join(ref, left_on="sample_id", right_on="reference_sample")
            .sort(["subject_id", "count", "clonotype"], descending=[False, True, False])
            .group_by("subject_id", maintain_order=True).head(top)
            .with_columns(pl.int_range(1, pl.len() + 1).over("subject_id").cast(pl.Int64)
                          .alias("rank"))
            .select("subject_id", "clonotype", "rank"))


def dominant_trajectories(counts: pl.DataFrame, samples: pl.DataFrame, *,
                          rules: Rules | None = None, reference: Reference = "auto",
                          subjects: Iterable[str] | None = None) -> pl.DataFrame:
    """The `clone_top` dominant clones of each patient's reference sample in every sample of
    the patient: subject_id, sample_id, day, timepoint, clonotype, rank, count, frequency,
    reference, class (vs the reference sample; "reference" at the reference itself)."""
    rules = rules if rules is not None else DEFAULT_RULES
    meta = _meta(samples).filter(pl.col("sample_id").is_in(
        counts.get_column("sample_id").unique().implode()))
    if subjects is not None:
        meta = meta.filter(pl.col("subject_id").is_in(list(subjects)))
    schema = {"subject_id": pl.String, "sample_id": pl.String, "day": pl.Int64,
              "timepoint": pl.String, "clonotype": pl.String, "rank": pl.Int64,
              "count": pl.Float64, "frequency": pl.Float64, "reference": pl.String,
              "class": pl.String}
    if meta.height == 0:
        return pl.DataFrame(schema=schema)
    ref = reference_samples(meta, reference=reference)
    tops = _dominant(counts, ref, rules.clone_top)
    totals = counts.group_by("sample_id").agg(pl.col("count").sum().alias("_total"))
    grid = meta.join(tops, on="subject_id").join(ref, on="subject_id")
    out = (grid.join(counts, on=["sample_id", "clonotype"], how="left")
           .with_columns(pl.col("count").fill_null(0.0))
           .join(totals, on="sample_id", how="left")
           .with_columns((pl.col("count") / pl.col("_total")).fill_nan(0.0).alias("frequency")))
    changes = clone_changes(counts.filter(pl.col("sample_id").is_in(
        meta.get_column("sample_id").implode())), meta, reference=reference, rules=rules)
    out = out.join(changes.select(pl.col("sample_b").alias("sample_id"), "clonotype", "class"),
                   on=["sample_id", "clonotype"], how="left")
    out = out.with_columns(
        pl.when(pl.col("sample_id") == pl.col("reference_sample")).then(pl.lit("reference"))
        .when(pl.col("day") < pl.col("reference_day")).then(pl.lit("before reference"))
        .otherwise(pl.col("class").fill_null("lost")).alias("class"))
    return out.select(list(schema)).cast(schema).sort("subject_id", "day", "rank")


def clone_states(trajectories: pl.DataFrame) -> pl.DataFrame:
    """The flows of an alluvial: per patient, dominant clone and timepoint from the reference
    on, its class; weight = its frequency at the reference. Columns subject_id, clonotype,
    rank, step, timepoint, day, class, weight."""
    ref = trajectories.filter(pl.col("class") == "reference").select(
        "subject_id", "clonotype", pl.col("frequency").alias("weight"))
    later = trajectories.filter(pl.col("class") != "before reference")
    out = later.join(ref, on=["subject_id", "clonotype"]).with_columns(
        pl.col("day").rank("dense").over("subject_id").cast(pl.Int64).alias("step"),
        pl.col("timepoint").fill_null(pl.format("D{}", "day")))
    return out.select("subject_id", "clonotype", "rank", "step", "timepoint", "day", "class",
                      "weight").sort("subject_id", "step", "rank")


def dominant_fate(trajectories: pl.DataFrame, *, groups: pl.DataFrame) -> pl.DataFrame:
    """Per patient and later timepoint: n_dominant, share_reference (summed frequency of the
    dominant clones at the reference), share (at the timepoint), share_ratio, n_expanded,
    n_persistent, n_contracted, n_lost, fraction_contracted_or_lost, response_group."""
    schema = {"subject_id": pl.String, "response_group": pl.String, "timepoint": pl.String,
              "day": pl.Int64, "n_dominant": pl.Int64, "share_reference": pl.Float64,
              "share": pl.Float64, "share_ratio": pl.Float64, "n_expanded": pl.Int64,
              "n_persistent": pl.Int64, "n_contracted": pl.Int64, "n_lost": pl.Int64,
              "fraction_contracted_or_lost": pl.Float64}
    if trajectories.height == 0:
        return pl.DataFrame(schema=schema)
    ref = (trajectories.filter(pl.col("class") == "reference").group_by("subject_id")
           .agg(pl.col("frequency").sum().alias("share_reference")))
    later = trajectories.filter(~pl.col("class").is_in(["reference", "before reference"]))
    out = later.group_by("subject_id", "sample_id").agg(
        pl.col("timepoint").first(), pl.col("day").first(),
        pl.len().cast(pl.Int64).alias("n_dominant"), pl.col("frequency").sum().alias("share"),
        *[(pl.col("class") == c).sum().cast(pl.Int64).alias(f"n_{c}")
          for c in ("expanded", "persistent", "contracted", "lost")])
    out = (out.join(ref, on="subject_id")
           .with_columns((pl.col("share") / pl.col("share_reference")).alias("share_ratio"),
                         ((pl.col("n_contracted") + pl.col("n_lost")) / pl.col("n_dominant"))
                         .alias("fraction_contracted_or_lost"))
           .join(groups.select("subject_id", "response_group"), on="subject_id", how="left")
           .with_columns(pl.col("response_group").fill_null(NOT_EVALUABLE)))
    return out.select(list(schema)).cast(schema).sort("subject_id", "day")


def fate_comparison(fate: pl.DataFrame, *, value: str = "share_ratio") -> pl.DataFrame:
    """Responders vs non-responders per timepoint, one value per patient (the mean over the
    patient's samples with that timepoint): timepoint, n_responders, n_non_responders,
    median_responders, median_non_responders, p_value, test (two-sided Mann-Whitney,
    analysis.stats)."""

    rows = []
    per = fate.group_by("subject_id", "response_group", "timepoint").agg(
        pl.col(value).mean(), pl.col("day").min())
    for (tp,), grp in per.sort("day").group_by("timepoint", maintain_order=True):
        a = grp.filter(pl.col("response_group") == RESPONDER).get_column(value).to_numpy()
        b = grp.filter(pl.col("response_group") == NON_RESPONDER).get_column(value).to_numpy()
        mw = mann_whitney(a, b)
        rows.append({"timepoint": tp, "value": value, "n_responders": len(a),
                     "n_non_responders": len(b),
                     "median_responders": float(np.median(a)) if len(a) else None,
                     "median_non_responders": float(np.median(b)) if len(b) else None,
                     "p_value": mw.p_value, "test": mw.test})
    return pl.DataFrame(rows, schema={"timepoint": pl.String, "value": pl.String,
                                      "n_responders": pl.Int64, "n_non_responders": pl.Int64,
                                      "median_responders": pl.Float64,
                                      "median_non_responders": pl.Float64,
                                      "p_value": pl.Float64, "test": pl.String})


# ---- the study ---------------------------------------------------------------------------------
def clone_counts(study: Study, *, source: Source = "auto") -> tuple[pl.DataFrame, pl.DataFrame,
                                                                  str]:
    """(counts: sample_id, clonotype, count; samples: sample_id, subject_id, day, timepoint;
    the source used: "tcr" bulk repertoire, "cells" or "cells_cd8"). "auto": single cells
    when the study's cells carry receptors, else the tcr table."""
    from analysis.repertoire import study_clonotypes

    cells = None
    if source in ("auto", "cells", "cells_cd8") and getattr(study, "single_cell", None) \
            is not None:
        from analysis.clonotypes import cell_clone_counts, study_cell_clonotypes

        clones = study_cell_clonotypes(study)
        clones = clones.filter(pl.col("cell").is_not_null())
        if clones.filter(pl.col("clonotype").is_not_null()).height:
            mask = None
            if source == "cells_cd8":
                mask = _cd8(study, clones)
            cells = (cell_clone_counts(clones, mask=mask),
                     clones.select("sample_id", "subject_id", "day", "timepoint").unique(
                         "sample_id"), "cells_cd8" if source == "cells_cd8" else "cells")
    if cells is not None:
        return cells
    if source in ("cells", "cells_cd8"):
        raise ValueError("the study's single cells carry no receptor chains (an airr "
                         "modality or [single_cell] receptor_files)")
    counts = study_clonotypes(study, "TRB").select("sample_id", "clonotype", "count")
    return counts, study.samples, "tcr"


def _cd8(study: Study, clones: pl.DataFrame) -> np.ndarray:
    from analysis.embedding import gene_vector, var_names

    names = set(var_names(study))
    rows = clones.get_column("cell").to_numpy()
    hit = np.zeros(clones.height, dtype=bool)
    for g in ("CD8A", "CD8B"):
        if g in names:
            hit |= gene_vector(study, gene=g)[rows] > 0
    return hit


@derived_table("clone_tracking", "Every clone of each patient between the reference sample "
               "(infusion product or baseline) and each later sample: counts, Fisher p, BH q "
               "and class (expanded, persistent, contracted, lost, new)",
               options={"source": Option(str, "auto", "bulk tcr table or single cells with "
                                         "receptors (cells_cd8: CD8 cells only)",
                                         choices=("auto", "tcr", "cells", "cells_cd8")),
                        "reference": Option(str, "auto", "reference sample: the infusion "
                                            "product when sequenced, else baseline; or "
                                            "always the baseline",
                                            choices=("auto", "baseline"))})
def clone_tracking_table(study: Study, *, source: str = "auto", reference: str = "auto",
                         rules: Rules | None = None) -> pl.DataFrame:
    """`clone_changes` for the study with dominant_rank (rank at the reference among the
    `clone_top` dominant clones, else null) and the clone source."""
    rules = rules if rules is not None else rules_for(study)
    counts, samples, used = clone_counts(study, source=source)  # type: ignore[arg-type]
    changes = clone_changes(counts, samples, reference=reference,  # type: ignore[arg-type]
                            rules=rules)
    ref = reference_samples(_meta(samples).filter(pl.col("sample_id").is_in(
        counts.get_column("sample_id").unique().implode())),
        reference=reference)  # type: ignore[arg-type]
    tops = _dominant(counts, ref, rules.clone_top).rename({"rank": "dominant_rank"})
    return (changes.join(tops, on=["subject_id", "clonotype"], how="left",
                         maintain_order="left")
            .with_columns(pl.lit(used).alias("source")))
