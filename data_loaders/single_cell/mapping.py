"""How a single-cell file's own names map to the study's vocabulary: the `[single_cell]` table
of study.toml, the aliases tried when it does not say, and what a matrix holds.

Every choice can be written down (study.toml `[single_cell]`), so a file never has to be edited:

    [single_cell]
    file = "cells.h5ad"
    counts = "layers/counts"        # raw integer counts: highly variable genes, normalisation
    lognorm = "raw/X"               # log-normalised: colouring and marker genes
    gene_symbols = "feature_name"   # var column with symbols when var_names are Ensembl ids
    cell_type_from = "annotation"   # or "clusters" (a cluster column shown as clusters)
    [single_cell.obs]               # canonical name = column of the file's obs
    subject_id = "donor_id"
    sample_id = "orig.ident"
    timepoint = "visit"
    cell_type = "predicted.celltype.l2"
    [single_cell.timepoints]        # label = study day (defaults: data_loaders.timepoints)
    Baseline = -7

Matrix locations are written `X`, `raw/X` or `layers/<name>`; `lognorm = "counts"` means
log1p(counts per 10,000) computed from the counts. Scaled (centred) values are never used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["SingleCellConfig", "MatrixKind", "matrix_kind", "OBS_ALIASES", "CLUSTER_COLUMNS",
           "SYMBOL_COLUMNS", "COUNTS_LAYERS", "LOGNORM_LAYERS", "looks_like_ensembl",
           "fold", "find_obs_column", "EMBEDDING_ORDER", "CANONICAL_OBS", "nested",
           "CONSTANT_KEYS"]

MatrixKind = Literal["counts", "lognorm", "normalised", "scaled", "empty", "invalid"]
CANONICAL_OBS = ("subject_id", "sample_id", "day", "timepoint", "cell_type", "tissue",
                 "car_positive", "clonotype")

# obs column names tried in order (compared after folding case, dots, dashes and spaces).
OBS_ALIASES: dict[str, tuple[str, ...]] = {
    "subject_id": ("subject_id", "subject", "donor_id", "donor", "patient_id", "patient",
                   "patientid", "participant_id", "participant", "individual", "pid",
                   "usubjid", "subjid"),
    "sample_id": ("sample_id", "sample", "samples", "sample_name", "samplename", "library_id",
                  "orig.ident", "batch", "channel", "gem_group", "sampleid"),
    "day": ("day", "study_day", "days", "day_post_infusion", "days_post_infusion", "dpi",
            "time_days", "studyday"),
    "timepoint": ("timepoint", "time_point", "visit", "visit_name", "timepoint_label", "time",
                  "tp", "collection_timepoint", "sampling_time", "condition_time"),
    "cell_type": ("cell_type", "celltype", "cell_types", "cell_type_fine", "celltype_fine",
                  "cell_type_l2", "predicted.celltype.l2", "predicted.celltype.l3",
                  "predicted.celltype.l1", "predicted_celltype", "cell_type_coarse",
                  "celltype_coarse", "annotation", "annotations", "cell_annotation",
                  "majority_voting", "predicted_labels", "author_cell_type",
                  "cell_ontology_class", "free_annotation", "labels", "celltype_major",
                  "celltype_minor", "cell_label", "identity", "ident"),
    "tissue": ("tissue", "tissue_type", "compartment", "source", "sample_type", "specimen"),
    "car_positive": ("car_positive", "car_status", "car", "is_car", "car_detected", "car_t",
                     "carpos"),
    "clonotype": ("clonotype", "clone_id", "clonotype_id", "raw_clonotype_id", "clonotype_orig",
                  "cdr3s_aa"),
}
CLUSTER_COLUMNS = ("seurat_clusters", "leiden", "louvain", "clusters", "cluster", "cluster_orig",
                   "phenograph", "kmeans")
CLUSTER_PATTERN = re.compile(r"(_snn_res\.|^leiden_|^louvain_|^clusters?_)", re.IGNORECASE)
SYMBOL_COLUMNS = ("feature_name", "gene_symbols", "gene_symbol", "gene_name", "gene_names",
                  "symbol", "symbols", "gene_short_name", "hgnc_symbol", "external_gene_name",
                  "features", "gene", "genes", "name", "Gene")
COUNTS_LAYERS = ("counts", "raw_counts", "umi_counts", "umis", "umi", "count", "raw")
LOGNORM_LAYERS = ("logcounts", "log1p", "lognorm", "log_normalized", "log_norm",
                  "lognormalized", "normalized", "data", "norm")
EMBEDDING_ORDER = ("umap", "tsne", "pca")
CONSTANT_KEYS = ("subject_id", "sample_id", "day", "timepoint")
_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")


def fold(name: str) -> str:
    """Column names compared without case, dots, dashes, spaces and underscores."""
    return re.sub(r"[\s._\-]+", "", str(name).lower())


def find_obs_column(columns: Sequence[str], candidates: Iterable[str],
                    exclude: Iterable[str] = ()) -> str | None:
    """The first column (as the file spells it) matching a candidate after folding."""
    taken = {fold(c) for c in exclude}
    by_fold: dict[str, str] = {}
    for c in columns:
        by_fold.setdefault(fold(c), c)
    for cand in candidates:
        key = fold(cand)
        if key in by_fold and key not in taken:
            return by_fold[key]
    return None


def looks_like_ensembl(names: Sequence[str], *, share: float = 0.5) -> bool:
    """True when at least `share` of the (first 2,000) names are Ensembl gene ids."""
    sample = [str(n) for n in list(names[:2000])]
    return bool(sample) and sum(bool(_ENSEMBL.match(n)) for n in sample) >= share * len(sample)


def matrix_kind(values: np.ndarray) -> MatrixKind:
    """What a sample of a matrix's stored values holds: negative values -> "scaled" (centred,
    z-scored); all whole numbers -> "counts"; non-negative with a maximum up to 30 ->
    "lognorm" (log1p of counts per 10^4 tops out near 9, log2 CPM near 20); larger ->
    "normalised" (linear, e.g. counts per 10^4 or CPM)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return "empty"
    if not np.all(np.isfinite(v)):
        return "invalid"
    if v.min() < 0:
        return "scaled"
    nz = v[v != 0]
    if nz.size == 0:
        return "empty"
    if np.all(nz == np.round(nz)):
        return "counts"
    return "lognorm" if nz.max() <= 30 else "normalised"


def nested(table: Mapping[str, Any] | None) -> dict[str, Any]:
    """The table with dotted keys (`obs.subject_id = "donor"`, `timepoints.Baseline = -3`, as
    given on a command line) folded into their sub-tables, where they win over the
    sub-table's own entry; sub-tables are copied."""
    out: dict[str, Any] = {}
    dotted: list[tuple[str, str, Any]] = []
    for k, v in dict(table or {}).items():
        head, dot, rest = str(k).partition(".")
        if dot and head in ("obs", "timepoints"):
            dotted.append((head, rest, v))
        elif isinstance(v, Mapping):
            out.setdefault(str(k), {}).update(v)
        else:
            out[str(k)] = v
    for head, rest, v in dotted:
        out.setdefault(head, {})[rest] = v
    return out


@dataclass(frozen=True)
class SingleCellConfig:
    """The `[single_cell]` table of study.toml (every field optional: None = detect)."""

    file: str | None = None
    format: str | None = None
    modality: str | None = None            # .h5mu: the gene-expression modality
    receptors: str | None = None           # .h5mu: the airr (receptor) modality
    counts: str | None = None
    lognorm: str | None = None
    gene_symbols: str | None = None
    cell_type_from: str | None = None      # "annotation" or "clusters"
    obs: Mapping[str, str] = field(default_factory=dict)
    timepoints: Mapping[str, int] = field(default_factory=dict)
    # one value for every cell when obs has no such column (a one-sample file, a 10x run):
    # subject_id, sample_id, day or timepoint at the top of the table
    constants: Mapping[str, Any] = field(default_factory=dict)
    # 10x VDJ contig CSVs / AIRR TSVs with cell_id: (file, sample_id or None), see receptors.py
    receptor_files: tuple[tuple[str, str | None], ...] = ()
    # the converted, chunked copy (`cli.py convert`): a folder or an fsspec URL
    store: str | None = None

    @classmethod
    def from_config(cls, table: Mapping[str, Any] | None) -> SingleCellConfig:
        t = nested(table)
        obs = {str(k): str(v) for k, v in dict(t.get("obs", {}) or {}).items() if v}
        tps = {str(k): int(v) for k, v in dict(t.get("timepoints", {}) or {}).items()
               if v is not None and str(v).lstrip("+-").isdigit()}

        def opt(key: str) -> str | None:
            v = t.get(key)
            return str(v) if v not in (None, "") else None

        from data_loaders.single_cell.receptors import receptor_file_entries

        consts = {k: t[k] for k in CONSTANT_KEYS if t.get(k) not in (None, "")}
        return cls(opt("file"), opt("format"), opt("modality"), opt("receptors"),
                   opt("counts"), opt("lognorm"), opt("gene_symbols"), opt("cell_type_from"),
                   obs, tps, consts, tuple(receptor_file_entries(t.get("receptor_files"))),
                   store=opt("store"))
