"""Receptors joined to cells: one T-cell clonotype per cell from its receptor chains, its clone
size, and the clone-by-phenotype table.

Clonotype definition (default; the conventions of scirpy's `index_chains` and
`define_clonotypes`, re-implemented here because scirpy 0.22 needs Python 3.12 and awkward,
and the project runs on 3.11):
- chains: T-cell receptor loci only (VJ arm TRA/TRG, VDJ arm TRB/TRD), productive (a missing
  flag counts as productive), with a CDR3 (junction_aa; `junction` with sequence="nt");
- per cell and arm the chains are ranked by UMIs (duplicate_count, then consensus_count): the
  first is the primary chain, the second the secondary; a cell with more than two chains in an
  arm is "multichain" (likely a doublet) and gets no clonotype;
- chain pairing as scirpy names it: single pair, extra VJ, extra VDJ, two full chains, orphan VJ,
  orphan VDJ, multichain, no IR;
- a clonotype is the identical CDR3 amino-acid sequence of the primary VJ and the primary VDJ
  chain (scirpy receptor_arms="all", dual_ir="primary_only"); a cell with one arm only
  (orphan) shares a clonotype only with cells that have the same single chain and no other;
- clonotypes are defined within a patient (the same CDR3 pair in two patients is two clones,
  named "<subject_id>:C<n>", numbered by size in the patient);
- clone_size = the clonotype's cells in the cell's sample; clone_size_patient = in all the
  patient's samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from analysis.registry import Option, derived_table

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["VJ_LOCI", "VDJ_LOCI", "EXPANSION_BINS", "cell_clonotypes", "study_cell_clonotypes",
           "clonotype_table", "expansion_label", "clone_phenotype", "cell_clone_counts"]

VJ_LOCI = ("TRA", "TRG")
VDJ_LOCI = ("TRB", "TRD")
EXPANSION_BINS = ("1", "2", "3-5", "6-20", ">20")
Sequence = Literal["aa", "nt"]

_SCHEMA = {"cell_id": pl.String, "cell": pl.Int64, "subject_id": pl.String,
           "sample_id": pl.String, "chain_pairing": pl.String, "cdr3_vj": pl.String,
           "cdr3_vdj": pl.String, "v_call_vdj": pl.String, "clonotype": pl.String,
           "clone_size": pl.Int64, "clone_size_patient": pl.Int64}


def cell_clonotypes(chains: pl.DataFrame, *, sequence: Sequence = "aa") -> pl.DataFrame:
    """One row per cell with at least one receptor chain: cell_id, cell, subject_id,
    sample_id, chain_pairing, cdr3_vj, cdr3_vdj, v_call_vdj, clonotype (null for multichain
    and no-IR cells), clone_size, clone_size_patient. `chains` has the columns of
    `SingleCellStore.receptors`."""
    if chains.height == 0:
        return pl.DataFrame(schema=_SCHEMA)
    seq = "junction_aa" if sequence == "aa" else "junction"
    df = chains.with_columns(pl.col("locus").cast(pl.String).str.to_uppercase())
    for c in ("duplicate_count", "consensus_count", "cell", "subject_id", "sample_id",
              "v_call"):
        if c not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.Int64 if c in (
                "duplicate_count", "consensus_count", "cell") else pl.String).alias(c))
    cells = df.group_by("cell_id", maintain_order=True).agg(
        pl.col("cell").first(), pl.col("subject_id").first(), pl.col("sample_id").first())
    ok = (pl.col("productive").fill_null(True) & pl.col(seq).is_not_null()
          & (pl.col(seq) != ""))
    arm = (pl.when(pl.col("locus").is_in(list(VJ_LOCI))).then(pl.lit("VJ"))
           .when(pl.col("locus").is_in(list(VDJ_LOCI))).then(pl.lit("VDJ")))
    good = (df.filter(ok).with_columns(arm.alias("arm")).filter(pl.col("arm").is_not_null())
            .sort(["cell_id", "arm", "duplicate_count", "consensus_count", seq],
                  descending=[False, False, True, True, False], nulls_last=True)
            .with_columns(pl.int_range(pl.len()).over("cell_id", "arm").alias("_rank")))
    per = good.group_by("cell_id").agg(
        (pl.col("arm") == "VJ").sum().alias("n_vj"), (pl.col("arm") == "VDJ").sum()
        .alias("n_vdj"),
        pl.col(seq).filter((pl.col("arm") == "VJ") & (pl.col("_rank") == 0)).first()
        .alias("cdr3_vj"),
        pl.col(seq).filter((pl.col("arm") == "VDJ") & (pl.col("_rank") == 0)).first()
        .alias("cdr3_vdj"),
        pl.col("v_call").filter((pl.col("arm") == "VDJ") & (pl.col("_rank") == 0)).first()
        .alias("v_call_vdj"))
    out = cells.join(per, on="cell_id", how="left").with_columns(
        pl.col("n_vj").fill_null(0), pl.col("n_vdj").fill_null(0))
    vj, vdj = pl.col("n_vj"), pl.col("n_vdj")
    pairing = (pl.when((vj > 2) | (vdj > 2)).then(pl.lit("multichain"))
               .when((vj == 0) & (vdj == 0)).then(pl.lit("no IR"))
               .when(vdj == 0).then(pl.lit("orphan VJ"))
               .when(vj == 0).then(pl.lit("orphan VDJ"))
               .when((vj == 1) & (vdj == 1)).then(pl.lit("single pair"))
               .when((vj == 2) & (vdj == 2)).then(pl.lit("two full chains"))
               .when(vj == 2).then(pl.lit("extra VJ"))
               .otherwise(pl.lit("extra VDJ")))
    out = out.with_columns(pairing.alias("chain_pairing"))
    has = ~pl.col("chain_pairing").is_in(["multichain", "no IR"])
    out = out.with_columns(pl.when(has).then(pl.col("subject_id").fill_null("unknown")
                                             + "|" + pl.col("cdr3_vj").fill_null("-") + "|"
                                             + pl.col("cdr3_vdj").fill_null("-"))
                           .alias("_key"))
    sized = (out.filter(pl.col("_key").is_not_null())
             .group_by("_key").agg(pl.col("subject_id").first(), pl.len().alias("_n"))
             .sort(["subject_id", "_n", "_key"], descending=[False, True, False],
                   nulls_last=True)
             .with_columns(pl.int_range(1, pl.len() + 1).over("subject_id").alias("_i"))
             .select("_key", (pl.col("subject_id").fill_null("unknown") + ":C"
                              + pl.col("_i").cast(pl.String)).alias("clonotype")))
    out = out.join(sized, on="_key", how="left", maintain_order="left")
    out = out.with_columns(
        pl.when(pl.col("clonotype").is_not_null())
        .then(pl.len().over("clonotype", "sample_id")).cast(pl.Int64).alias("clone_size"),
        pl.when(pl.col("clonotype").is_not_null())
        .then(pl.len().over("clonotype")).cast(pl.Int64).alias("clone_size_patient"))
    return out.select(list(_SCHEMA)).cast(_SCHEMA)


def study_cell_clonotypes(study: Study, *, sequence: Sequence = "aa") -> pl.DataFrame:
    """`cell_clonotypes` of the study's single-cell receptors (airr modality or the
    [single_cell] receptor_files), with cell_type and day from the cell table. Empty when the
    study has no receptor data per cell."""
    if getattr(study, "single_cell", None) is None:
        return pl.DataFrame(schema={**_SCHEMA, "cell_type": pl.String, "day": pl.Int64})
    # chains of barcodes without an expression profile belong to no sample: left out
    chains = study.single_cell.receptors.filter(pl.col("cell").is_not_null())
    out = cell_clonotypes(chains, sequence=sequence)
    from analysis.embedding import cell_table

    cells = cell_table(study).select("cell", "cell_type", "day", "timepoint")
    return out.join(cells, on="cell", how="left", maintain_order="left")


@derived_table("clonotypes", "Clonotype of every cell with a receptor (paired CDR3 amino acids "
               "of the primary chains, within a patient) and its clone size in the sample",
               options={"sequence": Option(str, "aa", "CDR3 identity on amino acids or "
                                           "nucleotides", choices=("aa", "nt"))})
def clonotype_table(study: Study, *, sequence: str = "aa") -> pl.DataFrame:
    """cell_id, sample_id, subject_id, day, cell_type, clonotype, clone_size,
    clone_size_patient, chain_pairing, cdr3_vj, cdr3_vdj (cells whose receptors give a
    clonotype; see the module docstring)."""
    got = study_cell_clonotypes(study, sequence="nt" if sequence == "nt" else "aa")
    cols = ["cell_id", "sample_id", "subject_id", "day", "cell_type", "clonotype",
            "clone_size", "clone_size_patient", "chain_pairing", "cdr3_vj", "cdr3_vdj"]
    return got.filter(pl.col("clonotype").is_not_null()).select(cols).sort(
        ["subject_id", "sample_id", "clone_size", "clonotype"],
        descending=[False, False, True, False], nulls_last=True)


def expansion_label(size: pl.Expr) -> pl.Expr:
    """Clone size in bins (EXPANSION_BINS; "no clonotype" when null)."""
    return (pl.when(size.is_null()).then(pl.lit("no clonotype"))
            .when(size <= 1).then(pl.lit("1")).when(size == 2).then(pl.lit("2"))
            .when(size <= 5).then(pl.lit("3-5")).when(size <= 20).then(pl.lit("6-20"))
            .otherwise(pl.lit(">20")))


def clone_phenotype(clones: pl.DataFrame, *, min_size: int = 2) -> pl.DataFrame:
    """Clone-by-phenotype: per clonotype of at least `min_size` cells (in the patient), the
    cells of each cell type: subject_id, clonotype, clone_size_patient, cell_type, n_cells,
    share (of the clone), dominant_type."""
    df = clones.filter(pl.col("clonotype").is_not_null()
                       & (pl.col("clone_size_patient") >= min_size))
    if df.height == 0:
        return pl.DataFrame(schema={"subject_id": pl.String, "clonotype": pl.String,
                                    "clone_size_patient": pl.Int64, "cell_type": pl.String,
                                    "n_cells": pl.Int64, "share": pl.Float64,
                                    "dominant_type": pl.String})
    out = (df.with_columns(pl.col("cell_type").fill_null("unannotated"))
           .group_by("subject_id", "clonotype", "cell_type")
           .agg(pl.len().cast(pl.Int64).alias("n_cells"),
                pl.col("clone_size_patient").first()))
    out = out.with_columns((pl.col("n_cells") / pl.col("n_cells").sum().over("clonotype"))
                           .alias("share"))
    dom = (out.sort("n_cells", descending=True).group_by("clonotype").first()
           .select("clonotype", pl.col("cell_type").alias("dominant_type")))
    return (out.join(dom, on="clonotype").select(
        "subject_id", "clonotype", "clone_size_patient", "cell_type", "n_cells", "share",
        "dominant_type").sort(["clone_size_patient", "clonotype", "n_cells"],
                              descending=[True, False, True]))


def cell_clone_counts(clones: pl.DataFrame, *, mask: np.ndarray | None = None
                      ) -> pl.DataFrame:
    """Cells per sample and clonotype (sample_id, clonotype, count), the input of clone
    tracking and repertoire metrics from single cells; `mask` (aligned with `clones`) keeps
    some cells only (e.g. CD8 T cells)."""
    df = clones if mask is None else clones.filter(pl.Series(np.asarray(mask, bool)))
    return (df.filter(pl.col("clonotype").is_not_null() & pl.col("sample_id").is_not_null())
            .group_by("sample_id", "clonotype").agg(pl.len().cast(pl.Float64).alias("count"))
            .sort(["sample_id", "count", "clonotype"], descending=[False, True, False]))
