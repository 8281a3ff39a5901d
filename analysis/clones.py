"""Somatic clones: variant allele fraction (VAF) over time per gene and patient, and the
oncoprint grid (patients x genes) at baseline and last follow-up.

Clonal haematopoiesis in aplastic anaemia (PIGA, BCOR/BCORL1 favourable; DNMT3A, ASXL1
unfavourable; Yoshizato et al., NEJM 2015) is followed as the largest VAF of each gene in each
sequenced sample. A sample counts as sequenced when it holds at least one variant or the samples
table lists it with a mutation assay; a gene absent from a sequenced sample is recorded as VAF 0
("not detected"), so clearance shows as a fall to zero rather than a gap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["sequenced_samples", "vaf_tracks", "oncoprint_grid", "gene_recurrence",
           "MUTATION_ASSAYS"]

# assay names (lower case, in samples.assay) that mean "sequenced for somatic variants"
MUTATION_ASSAYS = ("mutations", "mutation", "ngs", "panel", "dna", "wes", "wgs", "targeted_ngs",
                   "myeloid_panel")


def sequenced_samples(study: Study) -> pl.DataFrame:
    """sample_id, subject_id, day, timepoint of every sample sequenced for somatic variants."""
    samples = study.samples
    listed = samples.filter(pl.col("assay").str.to_lowercase().is_in(list(MUTATION_ASSAYS))) \
        if "assay" in samples.columns else samples.clear()
    ids = set(listed.get_column("sample_id").to_list()) | set(
        study.mutations.get_column("sample_id").to_list())
    cols = [c for c in ("sample_id", "subject_id", "day", "timepoint") if c in samples.columns]
    out = samples.filter(pl.col("sample_id").is_in(sorted(ids))).select(cols)
    if "timepoint" not in out.columns:
        out = out.with_columns(pl.lit(None, pl.String).alias("timepoint"))
    return out.unique("sample_id").sort("subject_id", "day")


def vaf_tracks(study: Study) -> pl.DataFrame:
    """subject_id, gene, sample_id, day, timepoint, vaf, detected, variant, classification.

    One row per patient, gene (any gene ever mutated in that patient) and sequenced sample;
    `vaf` is the largest VAF of the gene's variants in the sample, 0 when not detected.
    """
    schema = {"subject_id": pl.String, "gene": pl.String, "sample_id": pl.String,
              "day": pl.Int64, "timepoint": pl.String, "vaf": pl.Float64,
              "detected": pl.Boolean, "variant": pl.String, "classification": pl.String}
    seq = sequenced_samples(study)
    muts = study.mutations
    if muts.height == 0 or seq.height == 0:
        return pl.DataFrame(schema=schema)
    per_gene = (muts.sort("vaf", descending=True)
                .group_by("sample_id", "gene", maintain_order=True)
                .agg(pl.col("vaf").first(),
                     pl.col("variant").drop_nulls().unique().sort().str.join(", "),
                     pl.col("classification").drop_nulls().first()))
    per_gene = per_gene.join(seq.select("sample_id", "subject_id"), on="sample_id", how="inner")
    genes = per_gene.select("subject_id", "gene").unique()
    grid = seq.join(genes, on="subject_id", how="inner")
    out = (grid.join(per_gene.drop("subject_id"), on=["sample_id", "gene"], how="left")
           .with_columns(pl.col("vaf").is_not_null().alias("detected"),
                         pl.col("vaf").fill_null(0.0)))
    # the variant and classification of a gene are the patient's, also where not detected
    out = out.with_columns(
        pl.col("variant").fill_null(pl.col("variant").drop_nulls().first().over(
            "subject_id", "gene")),
        pl.col("classification").fill_null(pl.col("classification").drop_nulls().first().over(
            "subject_id", "gene")))
    return out.select(list(schema)).cast(schema).sort("subject_id", "gene", "day")


def oncoprint_grid(study: Study) -> pl.DataFrame:
    """Patients x genes at baseline and at last follow-up: subject_id, gene, when
    ("Baseline" / "Last follow-up"), sample_id, day, vaf, detected, classification.

    Baseline is the sequenced sample closest to day 0 on or before it (else the first); last
    follow-up is the latest sequenced sample after day 0. Every gene mutated anywhere in the
    study gets a cell for every patient with a sample at that time point (VAF 0 = not detected).
    """
    schema = {"subject_id": pl.String, "gene": pl.String, "when": pl.String,
              "sample_id": pl.String, "day": pl.Int64, "vaf": pl.Float64,
              "detected": pl.Boolean, "classification": pl.String}
    seq = sequenced_samples(study)
    muts = study.mutations
    if seq.height == 0 or muts.height == 0:
        return pl.DataFrame(schema=schema)
    base = (seq.with_columns((pl.col("day") > 0).alias("_post"), pl.col("day").abs().alias("_d"))
            .sort("subject_id", "_post", "_d").group_by("subject_id", maintain_order=True)
            .first().with_columns(pl.lit("Baseline").alias("when")))
    last = (seq.filter(pl.col("day") > 0).sort("subject_id", "day")
            .group_by("subject_id", maintain_order=True).last()
            .with_columns(pl.lit("Last follow-up").alias("when")))
    picked = pl.concat([base.select("subject_id", "sample_id", "day", "when"),
                        last.select("subject_id", "sample_id", "day", "when")])
    genes = muts.select("gene").unique()
    per_gene = (muts.sort("vaf", descending=True)
                .group_by("sample_id", "gene", maintain_order=True)
                .agg(pl.col("vaf").first(), pl.col("classification").drop_nulls().first()))
    out = (picked.join(genes, how="cross")
           .join(per_gene, on=["sample_id", "gene"], how="left")
           .with_columns(pl.col("vaf").is_not_null().alias("detected"),
                         pl.col("vaf").fill_null(0.0)))
    return out.select(list(schema)).cast(schema).sort("when", "subject_id", "gene")


def gene_recurrence(tracks: pl.DataFrame) -> pl.DataFrame:
    """Genes ranked as an oncoprint orders them: by patients with the gene detected, then by
    detected samples and highest VAF. Columns gene, n_patients, n_samples, max_vaf."""
    detected = tracks.filter(pl.col("detected")) if "detected" in tracks.columns else \
        tracks.filter(pl.col("vaf") > 0)
    return (detected.group_by("gene")
            .agg(pl.col("subject_id").n_unique().alias("n_patients"),
                 pl.col("sample_id").n_unique().alias("n_samples"),
                 pl.col("vaf").max().alias("max_vaf"))
            .sort(["n_patients", "n_samples", "max_vaf", "gene"],
                  descending=[True, True, True, False]))
