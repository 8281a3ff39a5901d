"""`SingleCellStore`: the one reader of a study's single-cell file (.h5ad, .h5mu, AnnData zarr,
.loom). It is opened lazily: obs columns are read one at a time, the matrix block by block, one
gene at a time through the gene-column cache; nothing reads the whole file to answer "which
patients are in it".

On opening it works out, from the `[single_cell]` table of study.toml and where that is silent
from the file itself:
- which matrix holds raw counts (layers["counts"], .raw, X ...) and which log-normalised values
  (X, .raw, layers["logcounts"] ...), never using scaled (centred) values; without a
  log-normalised matrix the counts are normalised to log1p(counts per 10,000);
- gene symbols from a var column when var_names are Ensembl ids;
- which obs columns are the patient, sample, time, cell type (else a cluster column, shown as
  clusters), tissue, CAR status and clonotype, and the day of each timepoint label;
- the embeddings in obsm under any common name;
- in a MuData file, the gene-expression modality and the receptor (airr) modality.
Each decision is a `Finding`, so the importer can print it and the loader can report it.

This module opens the file, reads its layout and cells and makes those decisions; the genes
and matrix (store_genes), the derived-data cache (store_derived) and the embeddings,
receptors and other modalities (store_other) are mixins of `SingleCellStore` in their own
modules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from data_loaders.single_cell.backends import detect_format, open_backend
from data_loaders.single_cell.mapping import (
    CANONICAL_OBS,
    MatrixKind,
    SingleCellConfig,
    matrix_kind,
)
from data_loaders.single_cell.store_derived import DerivedData
from data_loaders.single_cell.store_genes import TARGET_SUM, GeneReading, normalise_counts
from data_loaders.single_cell.store_other import OtherData
from data_loaders.timepoints import label_day

__all__ = ["SingleCellStore", "Finding", "MatrixInfo", "Resolved", "TARGET_SUM",
           "normalise_counts"]

_BACKED_BYTES = 400 * 1024**2
_TRUE = {"true", "t", "yes", "y", "1", "car+", "pos", "positive", "car_positive", "+"}
_GEX_MODALITIES = ("gex", "rna", "expression", "gene_expression")


@dataclass(frozen=True)
class Finding:
    """One thing detected (or not) in the file: severity note/warning/error, what and what to
    do; `options` lists the alternatives when the choice is ambiguous."""

    severity: str
    message: str
    fix: str = ""
    options: tuple[str, ...] = ()
    column: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"severity": self.severity, "message": self.message}
        if self.fix:
            d["fix"] = self.fix
        if self.options:
            d["options"] = list(self.options)
        return d


@dataclass(frozen=True)
class MatrixInfo:
    location: str           # "X", "raw/X", "layers/<name>"
    kind: MatrixKind
    shape: tuple[int, int]


@dataclass(frozen=True)
class Resolved:
    """What a store decided about its file once: the obs columns, cell-type and day sources,
    the matrices and gene symbols (a converted store reads it back instead of deciding again)."""

    obs: dict[str, str]                      # canonical -> obs column of the file
    cell_type_kind: str                      # "annotation", "clusters" or "none"
    day_from: str                            # "day", "timepoint" or "none"
    counts: str | None                       # matrix location of raw counts
    lognorm: str | None                      # location of log-normalised values (or counts)
    lognorm_how: str                         # "file", "log1p" or "from_counts"
    gene_symbols: str | None
    timepoints: dict[str, int | None]
    findings: tuple[Finding, ...] = field(default_factory=tuple)


class SingleCellStore(GeneReading, DerivedData, OtherData):
    """Lazy reader of one single-cell file; see the module docstring. Its reads of genes and
    the matrix (store_genes.GeneReading), its derived-data cache (store_derived.DerivedData)
    and its embeddings, receptors and other modalities (store_other.OtherData) are in their
    own modules."""

    def __init__(self, path: str | Path, config: SingleCellConfig | None = None, *,
                 cache_root: str | Path | None = None) -> None:
        self.path = Path(path)
        self.config = config or SingleCellConfig()
        # the study folder whose .cache holds what is derived from this file
        self.cache_root = Path(cache_root) if cache_root is not None else self.path.parent
        fmt = self.config.format or detect_format(self.path)
        if fmt is None:
            raise ValueError(f"{self.path.name}: not a single-cell file this reader knows "
                             "(.h5ad, .h5mu, .loom or an AnnData .zarr folder)")
        self.format = fmt

    # ---- opening ------------------------------------------------------------------------------
    @cached_property
    def modalities(self) -> tuple[str | None, str | None]:
        """(gene-expression modality, receptor modality) of a MuData file; (None, None) else."""
        if self.format != "h5mu":
            return None, None
        import h5py

        with h5py.File(self.path, "r") as f:
            mods = list(f["mod"].keys()) if "mod" in f else []
            receptors = self.config.receptors or next(
                (m for m in mods if m.lower() == "airr" or ("obsm" in f["mod"][m]
                                                            and "airr" in f["mod"][m]["obsm"])),
                None)
            gex = self.config.modality or next(
                (m for m in mods if m.lower() in _GEX_MODALITIES), None)
            if gex is None:
                sized = [(f["mod"][m]["var"][f["mod"][m]["var"].attrs.get("_index", "_index")]
                          .shape[0], m) for m in mods if m != receptors]
                gex = max(sized)[1] if sized else None
        if gex is None:
            raise ValueError(f"{self.path.name}: no gene-expression modality in the .h5mu "
                             f"file (modalities: {', '.join(mods) or 'none'})")
        return gex, receptors

    @contextlib.contextmanager
    def open(self) -> Iterator[Any]:
        """A handle on the expression data (the file is closed on exit)."""
        with open_backend(self.path, self.format, modality=self.modalities[0]) as h:
            yield h

    @property
    def files_folder(self) -> Path:
        """The folder that relative file names of the [single_cell] table start from."""
        return self.path.parent

    # ---- layout -------------------------------------------------------------------------------
    @cached_property
    def n_obs(self) -> int:
        with self.open() as h:
            return h.n_obs

    @cached_property
    def obs_columns(self) -> tuple[str, ...]:
        with self.open() as h:
            return tuple(h.obs_columns())

    @cached_property
    def matrices(self) -> tuple[MatrixInfo, ...]:
        with self.open() as h:
            out = []
            for loc in h.locations():
                try:
                    shape = h.shape(loc)
                    kind = matrix_kind(h.sample(loc)) if shape[1] else "empty"
                except (KeyError, ValueError, OSError):
                    continue
                out.append(MatrixInfo(loc, kind, shape))
            return tuple(out)

    def matrix(self, location: str) -> MatrixInfo | None:
        return next((m for m in self.matrices if m.location == location), None)

    def obs_column(self, name: str) -> pl.Series:
        """One obs column of the file as it is (KeyError when absent)."""
        if name not in self.obs_columns:
            raise KeyError(name)
        with self.open() as h:
            return h.obs_column(name)

    @cached_property
    def cell_names(self) -> list[str]:
        with self.open() as h:
            return h.obs_names()

    # ---- decisions ----------------------------------------------------------------------------
    @cached_property
    def resolved(self) -> Resolved:
        from data_loaders.single_cell.decide import (
            resolve_matrices,
            resolve_obs,
            resolve_symbols,
        )

        findings: list[Finding] = []
        obs, kind, day_from, tps = resolve_obs(self, findings)
        counts, lognorm, how = resolve_matrices(self, findings)
        symbols = resolve_symbols(self, lognorm or counts, findings) if (lognorm or counts) \
            else None
        return Resolved(obs, kind, day_from, counts, lognorm, how, symbols, tps,
                         tuple(findings))

    @property
    def findings(self) -> tuple[Finding, ...]:
        return self.resolved.findings

    # ---- cells --------------------------------------------------------------------------------
    def canonical(self, name: str) -> pl.Series | None:
        """A canonical obs column (study vocabulary) for every cell, or None when the file
        has none: subject_id, sample_id, timepoint, cell_type, tissue, clonotype (strings),
        day (Int64, from a day column or the timepoint labels), car_positive (Boolean)."""
        r = self.resolved
        consts = self.config.constants
        if name == "day" and r.day_from == "constant":
            day = consts.get("day")
            if day is None:
                day = label_day(consts["timepoint"], overrides=self.config.timepoints)
            return pl.Series("day", [None if day is None else int(day)] * self.n_obs,
                             pl.Int64)
        if name in consts and name != "day" and name not in r.obs:
            return pl.Series(name, [str(consts[name])] * self.n_obs, pl.String)
        if name == "day":
            if r.day_from == "day":
                return self.obs_column(r.obs["day"]).cast(pl.Float64, strict=False).round() \
                    .cast(pl.Int64).alias("day")
            if r.day_from == "timepoint":
                labels = self.obs_column(r.obs["timepoint"]).cast(pl.String)
                return labels.replace_strict(r.timepoints, default=None,
                                             return_dtype=pl.Int64).alias("day")
            return None
        if name == "clonotype" and "clonotype" not in r.obs and self.modalities[1]:
            return self._receptor_clonotypes()
        col = r.obs.get(name)
        if col is None:
            return None
        s = self.obs_column(col)
        if name == "car_positive":
            if s.dtype == pl.Boolean:
                return s.alias(name)
            return s.cast(pl.String).str.strip_chars().str.to_lowercase().is_in(
                list(_TRUE)).alias(name)
        s = s.cast(pl.String).alias(name)
        if name == "cell_type" and r.cell_type_kind == "clusters":
            s = pl.select(pl.when(s.str.contains(r"^\d+(\.\d+)?$"))
                          .then(pl.lit("Cluster ") + s).otherwise(s)).to_series().alias(name)
        return s

    def cells(self, columns: tuple[str, ...] = CANONICAL_OBS) -> pl.DataFrame:
        """`cell` (row number) plus the canonical columns the file gives, in file order."""
        out = pl.DataFrame({"cell": np.arange(self.n_obs, dtype=np.int64)})
        for name in columns:
            s = self.canonical(name)
            if s is not None:
                out = out.with_columns(s.alias(name))
        return out

    def obs_frame(self) -> Any:
        """obs as pandas, with the canonical columns added where the file names them
        otherwise (the file's own columns are kept)."""
        with self.open() as h:
            obs = h.obs_frame()
        for name in CANONICAL_OBS:
            if name in obs.columns:
                continue
            s = self.canonical(name)
            if s is not None and s.null_count() < s.len():
                obs[name] = s.to_pandas().to_numpy()
        return obs

    def samples(self) -> pl.DataFrame:
        """One row per sample of the cells: sample_id, subject_id, day, timepoint, tissue,
        n_cells (sample_id made "<subject>_D<day>" when the file has no sample column)."""
        df = self.cells(("subject_id", "sample_id", "day", "timepoint", "tissue"))
        if "subject_id" not in df.columns:
            return pl.DataFrame(schema={"sample_id": pl.String, "subject_id": pl.String,
                                        "day": pl.Int64, "timepoint": pl.String,
                                        "tissue": pl.String, "n_cells": pl.Int64})
        for c, t in (("day", pl.Int64), ("timepoint", pl.String), ("tissue", pl.String)):
            if c not in df.columns:
                df = df.with_columns(pl.lit(None, dtype=t).alias(c))
        if "sample_id" not in df.columns:
            df = df.with_columns(pl.format("{}_D{}", "subject_id", "day").alias("sample_id"))
        return (df.group_by("sample_id", maintain_order=True)
                .agg(pl.col("subject_id").first(), pl.col("day").drop_nulls().first(),
                     pl.col("timepoint").drop_nulls().first(),
                     pl.col("tissue").drop_nulls().first(),
                     pl.len().cast(pl.Int64).alias("n_cells"))
                .sort("subject_id", "day", "sample_id", nulls_last=True))

    # ---- study.toml ---------------------------------------------------------------------------
    def config_table(self, file: str | None = None) -> dict[str, Any]:
        """The `[single_cell]` table recording every choice (for study.toml)."""
        r = self.resolved
        out: dict[str, Any] = {"file": file or self.path.name, "format": self.format}
        gex, rec = self.modalities
        if gex:
            out["modality"] = gex
        if rec:
            out["receptors"] = rec
        if self.config.receptor_files:
            out["receptor_files"] = [{"file": f, "sample_id": smp} if smp else f
                                     for f, smp in self.config.receptor_files]
        if r.counts:
            out["counts"] = r.counts
        if r.lognorm:
            out["lognorm"] = "counts" if r.lognorm_how == "from_counts" else r.lognorm
        if r.gene_symbols:
            out["gene_symbols"] = r.gene_symbols
        if r.cell_type_kind != "none":
            out["cell_type_from"] = r.cell_type_kind
        out.update({k: v for k, v in self.config.constants.items()})
        out["obs"] = dict(r.obs)
        if r.timepoints and r.day_from == "timepoint":
            out["timepoints"] = {k: v for k, v in r.timepoints.items() if v is not None}
        return out

    def to_anndata(self) -> Any:
        """The expression data as AnnData: an .h5ad as anndata reads it (opened backed on disk
        above 400 MB), other formats in memory (X = the log-normalised values, obs with
        canonical columns, obsm embeddings). For small files, exports and tests; the app
        reads columns, genes and rows through the store."""
        import anndata as ad
        import pandas as pd
        import scipy.sparse as sp

        if self.format == "h5ad":
            backed = "r" if self.path.stat().st_size > _BACKED_BYTES else None
            return ad.read_h5ad(self.path, backed=backed)
        blocks = [b for _, _, b in self.blocks("lognorm")] if self.resolved.lognorm else []
        x = sp.vstack(blocks, format="csr") if blocks else None
        obs = self.obs_frame()
        obs.index = pd.Index(self.cell_names)
        var = pd.DataFrame(index=pd.Index(self.gene_names)) if x is not None else None
        obsm = {k if k.startswith("X_") else f"X_{k}": self.embedding(k)
                for k in self.embeddings}
        return ad.AnnData(X=x, obs=obs, var=var, obsm=obsm)


