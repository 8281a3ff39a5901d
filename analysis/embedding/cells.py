"""The cells and genes of a study's single-cell data as analysis reads them: the cell table in
the study's vocabulary (patient, sample, day, timepoint, cell type, CAR status, response
group), obs columns, gene labels, one gene's values, rows of cells, the marker-test arrays and
the matrix an embedding is computed from. Every value comes from the study's single-cell store
(`data_loaders.single_cell`); this module opens no file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from analysis.markers import MarkerIndex, index_from_arrays
from analysis.registry import derived_table
from analysis.vocab import NOT_EVALUABLE
from data_loaders.single_cell.store import normalise_counts

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CELL_COLUMNS", "Progress", "store_of", "content_key", "cell_table", "obs_column",
           "cell_type_source", "var_names", "receptor_chains", "expression_store",
           "gene_vector", "read_expression", "expression_rows", "read_marker_index",
           "embedding_input", "cell_table_cached"]

Progress = Callable[[float, str], None]
CELL_COLUMNS = ("cell", "subject_id", "sample_id", "day", "timepoint", "cell_type",
                "car_positive")


def store_of(study: Study) -> Any:
    """The study's single-cell store (data_loaders.single_cell); ValueError without one."""
    if getattr(study, "single_cell", None) is None:
        raise ValueError("the study has no single-cell file")
    return study.single_cell


def content_key(study: Study) -> str:
    """Content hash of the single-cell data and of the store's choice of matrices (the key
    of everything derived from it)."""
    return store_of(study).content_key


# ---- cells ---------------------------------------------------------------------------------------
def cell_table(study: Study) -> pl.DataFrame:
    """One row per cell of the single-cell file (all cells, file order): cell (row number),
    subject_id, sample_id, day, timepoint, cell_type, car_positive, plus response_group.

    The columns come from the store in the study's vocabulary (whatever the file calls them).
    Missing ones are derived: day and timepoint from the samples table via sample_id,
    sample_id as "<subject_id>_D<day>", cell_type "unannotated", car_positive from a CAR cell
    type."""
    from analysis.cohort import response_groups

    df = store_of(study).cells(tuple(c for c in CELL_COLUMNS if c != "cell"))
    samples = study.samples.select("sample_id", "day", "timepoint") if study.samples.height \
        else pl.DataFrame(schema={"sample_id": pl.String, "day": pl.Int64,
                                  "timepoint": pl.String})
    if "sample_id" in df.columns:
        missing = [c for c in ("day", "timepoint") if c not in df.columns]
        if missing:
            df = df.join(samples.select("sample_id", *missing), on="sample_id", how="left",
                         maintain_order="left")
        if "day" not in missing and store_of(study).resolved.day_from == "timepoint" \
                and samples.height:
            # days read from labels give way to the samples table's own day of the sample
            df = (df.join(samples.select("sample_id", pl.col("day").alias("_day")),
                          on="sample_id", how="left", maintain_order="left")
                  .with_columns(pl.coalesce("_day", "day").alias("day")).drop("_day"))
    if "subject_id" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("subject_id"))
    if "day" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.Int64).alias("day"))
    if "sample_id" not in df.columns:
        df = df.with_columns(pl.format("{}_D{}", "subject_id", "day").alias("sample_id"))
    if "timepoint" not in df.columns:
        df = df.with_columns(pl.format("D{}", "day").alias("timepoint"))
    if "cell_type" not in df.columns:
        df = df.with_columns(pl.lit("unannotated").alias("cell_type"))
    if "car_positive" not in df.columns:
        df = df.with_columns(pl.col("cell_type").str.contains(r"(?i)\bCAR").alias(
            "car_positive"))
    df = df.with_columns(pl.col("car_positive").fill_null(False),
                         pl.col("cell_type").fill_null("unannotated"))
    groups = response_groups(study).select("subject_id", "response_group")
    return (df.select(*CELL_COLUMNS).join(groups, on="subject_id", how="left",
                                          maintain_order="left")
            .with_columns(pl.col("response_group").fill_null(NOT_EVALUABLE)))


def obs_column(study: Study, *, column: str) -> pl.Series:
    """One obs column of the single-cell file for every cell (a canonical name such as
    cell_type gives the column the study maps to it). KeyError when absent."""
    store = store_of(study)
    if column in store.obs_columns:
        return store.obs_column(column)
    s = store.canonical(column)
    if s is None:
        raise KeyError(column)
    return s


def cell_type_source(study: Study) -> str:
    """Where the cells' `cell_type` comes from, in words: "annotation (obs 'cell_type')",
    "clusters (obs 'leiden')" or "none" (every cell "unannotated")."""
    r = store_of(study).resolved
    col = r.obs.get("cell_type")
    return f"{r.cell_type_kind} (obs {col!r})" if col else "none"


def var_names(study: Study) -> list[str]:
    """Gene labels of the single-cell expression (symbols when the file keys genes by
    Ensembl id), in matrix column order."""
    return list(store_of(study).gene_names)


@derived_table("receptors", "Receptor chains of the single-cell cells (MuData airr modality): "
               "one row per chain with the cell, patient and sample")
def receptor_chains(study: Study) -> pl.DataFrame:
    """cell_id, chain, locus, junction_aa, junction, v_call, d_call, j_call, c_call,
    productive, duplicate_count, consensus_count, sequence_id, cell, subject_id, sample_id
    (empty when the study's single-cell file holds no receptor data)."""
    if getattr(study, "single_cell", None) is None:
        return pl.DataFrame(schema={"cell_id": pl.String, "chain": pl.Int64,
                                    "locus": pl.String, "junction_aa": pl.String})
    return store_of(study).receptors


# ---- genes (read through the single-cell store) ------------------------------------------------
def expression_store(study: Study, *, progress: Progress | None = None) -> Path | None:
    """Build (once) the store's gene-major copy when it has none of its own (the gene-column
    cache of a file that was not converted) and return its path; None for a converted store,
    which holds its gene-major copy."""
    store = store_of(study)
    return None if store.has_gene_major_copy else store.gene_cache(progress=progress)


def gene_vector(study: Study, *, gene: str) -> np.ndarray:
    """Log-normalised expression of one gene (symbol or file id) in every cell (float32),
    read from the store's gene-major copy (built on first use). KeyError for an unknown
    gene."""
    return store_of(study).gene_column(gene)


def read_expression(study: Study, *, progress: Progress | None = None) -> Any:
    """The whole log-normalised matrix as scipy CSC (cells x genes). Small studies only."""
    return store_of(study).expression(progress=progress)


def expression_rows(study: Study, *, rows: Sequence[int] | np.ndarray) -> Any:
    """Log-normalised values of the cells `rows` (in that order) as CSR, read by rows."""
    return store_of(study).expression_rows(rows)


def read_marker_index(study: Study, *, progress: Progress | None = None) -> MarkerIndex:
    """The study's matrix prepared for repeated marker tests (values, within-gene ranks and
    per-gene totals from the store; a converted store reads only the selected rows)."""
    return index_from_arrays(store_of(study).marker_arrays(progress=progress))


def embedding_input(study: Study, *, progress: Progress | None = None) -> Any:
    """The cells x genes matrix an embedding is computed from (CSR float32): the raw counts
    normalised to log1p(counts per 10,000) when the file holds counts, else its
    log-normalised values (never scaled ones)."""
    import scipy.sparse as sp

    store = store_of(study)
    report = progress or (lambda f, m: None)
    if store.resolved.counts is None:
        return read_expression(study, progress=progress).tocsr()
    n, blocks = store.n_obs, []
    for _, hi, block in store.blocks("counts"):
        blocks.append(normalise_counts(block))
        report(hi / max(n, 1), "normalising the counts")
    return sp.vstack(blocks, format="csr")


def cell_table_cached(study: Study) -> pl.DataFrame:
    """`cell_table`, computed once per study and process (the raster view re-reads it on every
    zoom; at ten million cells it takes seconds)."""
    return _cell_table_memo(study)


@lru_cache(maxsize=2)
def _cell_table_memo(study: Study) -> pl.DataFrame:
    return cell_table(study)
