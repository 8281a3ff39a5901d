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
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from data_loaders.single_cell.backends import detect_format, open_backend
from data_loaders.single_cell.mapping import (
    CANONICAL_OBS,
    EMBEDDING_ORDER,
    OBS_ALIASES,
    MatrixKind,
    SingleCellConfig,
    find_obs_column,
    fold,
    matrix_kind,
)
from data_loaders.timepoints import label_day

__all__ = ["SingleCellStore", "Finding", "MatrixInfo", "Resolved", "TARGET_SUM"]

Progress = Callable[[float, str], None]
TARGET_SUM = 1e4
_CHUNK = 20_000
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


class SingleCellStore:
    """Lazy reader of one single-cell file; see the module docstring."""

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

    # ---- genes --------------------------------------------------------------------------------
    def _genes(self, loc: str | None) -> tuple[list[str], list[str]]:
        if loc is None:
            return [], []
        sym_col = self.resolved.gene_symbols
        with self.open() as h:
            ids = h.var_names(loc)
            if sym_col is None:
                symbols: list[str | None] = list(ids)
            elif sym_col in h.var_columns(loc):
                symbols = h.var_column(loc, sym_col)
            else:   # symbols only in the main var: align by id
                lookup = dict(zip(h.var_names("X"), h.var_column("X", sym_col), strict=True))
                symbols = [lookup.get(i) for i in ids]
        out, seen = [], set()
        for i, s in zip(ids, symbols, strict=True):
            label = str(s) if s and str(s).lower() not in ("nan", "none") else str(i)
            if label in seen and label != i:
                label = f"{label} ({i})"
            base, k = label, 0
            while label in seen:            # still taken: numbered as var_names_make_unique
                k += 1
                label = f"{base}-{k}"
            seen.add(label)
            out.append(label)
        return ids, out

    @cached_property
    def gene_names(self) -> list[str]:
        """Gene labels (symbols where known, unique) of the expression used for colouring
        and markers, in matrix column order."""
        return self._genes(self.resolved.lognorm)[1]

    @cached_property
    def gene_ids(self) -> list[str]:
        return self._genes(self.resolved.lognorm)[0]

    @cached_property
    def counts_gene_names(self) -> list[str]:
        return self._genes(self.resolved.counts)[1]

    @property
    def matrix_signature(self) -> str:
        """What the derived caches depend on besides the file bytes."""
        r = self.resolved
        return f"{self.modalities[0]}|{r.counts}|{r.lognorm}|{r.lognorm_how}"

    @property
    def files_folder(self) -> Path:
        """The folder that relative file names of the [single_cell] table start from."""
        return self.path.parent

    # ---- derived data on disk (the study's cache) -----------------------------------------
    @cached_property
    def content_key(self) -> str:
        """Content hash of the file and of the choice of matrices: the key of everything
        derived from it (embeddings, the gene-column cache, pseudobulk results)."""
        from data_loaders.single_cell.cache import cache_location, file_digest

        raw = file_digest(self.path, cache=cache_location(self.cache_root))
        return hashlib.blake2b(f"{raw}|{self.matrix_signature}".encode(),
                               digest_size=16).hexdigest()

    def cache_path(self, name: str) -> Path:
        """Where derived file `name` lives (the study's .cache, or the per-user folder)."""
        from data_loaders.single_cell.cache import cache_file

        return cache_file(self.cache_root, name)

    @property
    def cache_note(self) -> str:
        from data_loaders.single_cell.cache import cache_location

        return cache_location(self.cache_root).note

    def derived_array(self, name: str) -> np.ndarray | None:
        """A cached float32 array (an embedding's coordinates), or None."""
        from data_loaders.single_cell.cache import load_array

        path = self.cache_path(name)
        return load_array(path) if path.is_file() else None

    def save_derived_array(self, name: str, values: np.ndarray) -> Path:
        from data_loaders.single_cell.cache import save_array

        path = self.cache_path(name)
        save_array(path, values)
        return path

    def derived_frames(self, name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Cached frames and metadata (`save_derived_frames`), or None."""
        from data_loaders.single_cell.cache import load_frames

        path = self.cache_path(name)
        return load_frames(path) if path.is_file() else None

    def save_derived_frames(self, name: str, frames: dict[str, Any], meta: dict[str, Any]
                            ) -> Path:
        from data_loaders.single_cell.cache import save_frames

        path = self.cache_path(name)
        save_frames(path, frames, meta)
        return path

    # ---- gene columns (the gene-column cache: CSC of the log-normalised values) -----------
    def gene_index(self, gene: str) -> int:
        """Matrix column of a gene label or file id (KeyError when unknown)."""
        if gene in self._gene_positions:
            return self._gene_positions[gene]
        if gene in self.gene_ids:
            return self.gene_ids.index(gene)
        raise KeyError(gene)

    @cached_property
    def _gene_positions(self) -> dict[str, int]:
        return {g: j for j, g in enumerate(self.gene_names)}

    def gene_cache_ready(self) -> bool:
        """Whether the gene-column cache is built (one gene, and the marker test, then read
        at once; building it is a job: views.landscape.build_gene_store)."""
        return self.cache_path(f"genes-v4-{self.content_key[:24]}.h5").is_file()

    #: a converted store holds its own gene-major copy; a plain file gets a gene-column cache
    has_gene_major_copy = False

    def gene_cache(self, *, progress: Progress | None = None) -> Path:
        """Build (once) the log-normalised CSC gene-column cache with the marker ranks and
        return its path."""
        import scipy.sparse as sp

        from data_loaders.single_cell.cache import write_gene_store
        from data_loaders.single_cell.ranks import column_ranks

        path = self.cache_path(f"genes-v4-{self.content_key[:24]}.h5")
        if path.is_file():
            return path
        report = progress or (lambda f, m: None)
        report(0.0, "reading the expression matrix")
        blocks = []
        n = self.n_obs
        for _, hi, block in self.blocks("lognorm"):
            blocks.append(block)
            report(0.6 * hi / max(n, 1), "reading the expression matrix")
        g = len(self.gene_names)
        matrix = sp.vstack(blocks, format="csr") if blocks else \
            sp.csr_matrix((0, g), dtype=np.float32)
        del blocks
        report(0.6, "sorting by gene")
        csc = matrix.tocsc()
        del matrix
        csc.eliminate_zeros()
        csc.sort_indices()
        report(0.7, "ranking each gene (for marker tests)")
        ranks = column_ranks(csc)
        report(0.9, "writing the gene-column store")
        write_gene_store(path, csc, ranks=ranks.ranks, ties=ranks.ties,
                         normalised_from_counts=self.resolved.lognorm_how == "from_counts",
                         source=self.matrix_signature)
        report(1.0, "gene-column store written")
        return path

    def gene_column(self, gene: str) -> np.ndarray:
        """Log-normalised values of one gene (label or file id) in every cell (float32).
        KeyError for an unknown gene."""
        from data_loaders.single_cell.cache import read_gene_column

        j = self.gene_index(gene)
        return read_gene_column(self.gene_cache(), j)

    def gene_columns(self, columns: Sequence[int], *, progress: Progress | None = None
                     ) -> Any:
        """The log-normalised values of matrix columns `columns` as CSC (cells x len)."""
        import scipy.sparse as sp

        from data_loaders.single_cell.cache import read_gene_column

        path = self.gene_cache(progress=progress)
        cols = [sp.csc_matrix(read_gene_column(path, int(j))[:, None]) for j in columns]
        return sp.hstack(cols, format="csc") if cols else \
            sp.csc_matrix((self.n_obs, 0), dtype=np.float32)

    def expression(self, *, progress: Progress | None = None) -> Any:
        """The whole log-normalised matrix as scipy CSC (cells x genes). Small studies only:
        prefer `gene_column`, `expression_rows` and `marker_arrays`."""
        from data_loaders.single_cell.cache import read_gene_store

        return read_gene_store(self.gene_cache(progress=progress)).matrix

    def expression_rows(self, rows: Sequence[int] | np.ndarray) -> Any:
        """Log-normalised values of the cells `rows` (in that order) as CSR."""
        return self.expression().tocsr()[np.asarray(rows, dtype=np.int64)]

    def marker_arrays(self, *, progress: Progress | None = None) -> Any:
        """The values, within-gene ranks and per-gene totals the marker test reads
        (`data_loaders.single_cell.ranks.MarkerArrays`; in memory for the gene-column cache,
        read lazily by rows from a converted store); read once per store."""
        kept = self.__dict__.get("_marker_memo")
        if kept is None:
            kept = self.__dict__["_marker_memo"] = self._marker_arrays(progress=progress)
        return kept

    def _marker_arrays(self, *, progress: Progress | None = None) -> Any:
        import scipy.sparse as sp

        from data_loaders.single_cell.cache import read_gene_store
        from data_loaders.single_cell.ranks import ColumnRanks, MarkerArrays, gene_totals

        got = read_gene_store(self.gene_cache(progress=progress), with_ranks=True)
        csc = got.matrix
        totals = gene_totals(csc, ColumnRanks(got.ranks, got.ties))
        data = csc.tocsr()
        ranks = sp.csc_matrix((got.ranks, csc.indices, csc.indptr), shape=csc.shape).tocsr()
        return MarkerArrays(data, ranks, tuple(self.gene_names), totals["n_nonzero"],
                            totals["sum"], totals["tie_term"], totals["rank_sum"])

    def blocks(self, which: Literal["lognorm", "counts"] = "lognorm", *,
               chunk: int = _CHUNK) -> Iterator[tuple[int, int, Any]]:
        """(lo, hi, CSR float32 block of cells lo..hi) over every cell. "lognorm": the values
        for colouring and markers (log-normalised; computed from counts when the file has
        none); "counts": raw counts (ValueError when the file has none)."""
        r = self.resolved
        loc = r.lognorm if which == "lognorm" else r.counts
        if loc is None:
            raise ValueError(f"{self.path.name}: no {'log-normalised or count' if which == 'lognorm' else 'count'} "
                             "matrix (scaled values are not used)")
        how = r.lognorm_how if which == "lognorm" else "counts"
        with self.open() as h:
            read = h.rows(loc)
            n = h.shape(loc)[0]
            for lo in range(0, n, chunk):
                hi = min(lo + chunk, n)
                block = read(lo, hi)
                if how == "from_counts":
                    block = normalise_counts(block)
                elif how == "log1p":
                    block.data = np.log1p(block.data)
                yield lo, hi, block

    # ---- embeddings ---------------------------------------------------------------------------
    @cached_property
    def embeddings(self) -> tuple[str, ...]:
        """obsm (loom: 2-D col_attrs) embeddings, UMAP first, then t-SNE, PCA, others."""
        with self.open() as h:
            keys = h.embeddings()

        def rank(k: str) -> tuple[int, str]:
            f = fold(k)
            return next((i for i, n in enumerate(EMBEDDING_ORDER) if n in f),
                        len(EMBEDDING_ORDER)), k
        return tuple(sorted(keys, key=rank))

    def embedding(self, key: str) -> np.ndarray:
        """The first two dimensions of embedding `key` (float32, cells x 2; read once and
        kept, read-only: every view of the landscape asks for it)."""
        if key not in self.embeddings:
            raise KeyError(key)
        kept = self.__dict__.setdefault("_embedding_memo", {})
        if key not in kept:
            with self.open() as h:
                coords = np.asarray(h.embedding(key), dtype=np.float32)
            coords.setflags(write=False)
            kept.clear()            # one basis at a time: ten million cells are 80 MB
            kept[key] = coords
        return kept[key]

    # ---- receptors (MuData airr modality, 10x VDJ contigs, AIRR with cell_id) ----------------
    @cached_property
    def receptors(self) -> pl.DataFrame:
        """One row per receptor chain (cell_id, chain, locus, junction_aa, v_call, ...,
        productive, duplicate_count) of the airr modality and of the `receptor_files` of the
        [single_cell] table, with the cell's row in the expression data (`cell`, null when it
        has no expression profile), subject_id and sample_id. Empty without receptor data."""
        from data_loaders.single_cell.receptors import (
            CHAIN_SCHEMA,
            match_cells,
            read_receptor_file,
        )

        parts = []
        mod = self.modalities[1]
        if mod is not None:
            from data_loaders.single_cell.airr import read_airr_chains

            with open_backend(self.path, "h5mu", modality=mod) as h:
                ids = h.obs_names()
                if "obsm" in h.root and "airr" in h.root["obsm"]:
                    parts.append(read_airr_chains(h.root["obsm"]["airr"], ids))
        cells = pl.DataFrame({"cell_id": self.cell_names,
                              "cell": np.arange(self.n_obs, dtype=np.int64)})
        for c in ("subject_id", "sample_id"):
            s = self.canonical(c)
            if s is not None:
                cells = cells.with_columns(s.alias(c))
        for name, sample in self.config.receptor_files:
            path = Path(name) if Path(name).is_absolute() else self.files_folder / name
            if not path.is_file():
                raise ValueError(f"[single_cell] receptor_files: {name} not found next to "
                                 f"{self.path.name}")
            chains = match_cells(read_receptor_file(path), cells, sample_id=sample)
            parts.append(chains)
        if not parts:
            return pl.DataFrame(schema={**CHAIN_SCHEMA, "cell": pl.Int64,
                                        "subject_id": pl.String, "sample_id": pl.String})
        chains = pl.concat([p.select(list(CHAIN_SCHEMA)).cast(CHAIN_SCHEMA) for p in parts])
        out = chains.join(cells, on="cell_id", how="left", maintain_order="left")
        for c in ("subject_id", "sample_id"):
            if c not in out.columns:
                out = out.with_columns(pl.lit(None, dtype=pl.String).alias(c))
        return out

    @cached_property
    def other_modalities(self) -> tuple[str, ...]:
        """MuData modalities besides gene expression and receptors (e.g. CITE-seq "prot" /
        "adt"); empty for other formats."""
        if self.format != "h5mu":
            return ()
        import h5py

        gex, rec = self.modalities
        with h5py.File(self.path, "r") as f:
            return tuple(m for m in (f["mod"].keys() if "mod" in f else ())
                         if m not in (gex, rec))

    def modality_features(self, modality: str) -> list[str]:
        with open_backend(self.path, "h5mu", modality=modality) as h:
            return list(h.var_names("X"))

    def modality_column(self, modality: str, feature: str) -> np.ndarray:
        """One feature of another MuData modality (X as stored, e.g. ADT counts) for every cell
        of the expression data, matched by cell name (0 where the modality lacks the cell)."""
        with open_backend(self.path, "h5mu", modality=modality) as h:
            j = list(h.var_names("X")).index(feature)
            names = h.obs_names()
            read, n = h.rows("X"), h.shape("X")[0]
            values = np.concatenate([np.asarray(read(lo, min(lo + _CHUNK, n))[:, j].todense())
                                     .ravel() for lo in range(0, n, _CHUNK)]) if n else \
                np.zeros(0)
        lookup = dict(zip(names, values.tolist(), strict=True))
        return np.array([lookup.get(c, 0.0) for c in self.cell_names], dtype=np.float64)

    def counts_column(self, feature: str) -> np.ndarray:
        """Raw counts of one feature in every cell (float64; read block by block from the
        count matrix). KeyError for an unknown feature, ValueError without a count matrix."""
        names = self.counts_gene_names
        ids = self._genes(self.resolved.counts)[0]
        if feature in names:
            j = names.index(feature)
        elif feature in ids:
            j = ids.index(feature)
        else:
            raise KeyError(feature)
        out = np.zeros(self.n_obs, dtype=np.float64)
        for lo, hi, block in self.blocks("counts"):
            out[lo:hi] = np.asarray(block[:, j].todense()).ravel()
        return out

    def _receptor_clonotypes(self) -> pl.Series | None:
        mod = self.modalities[1]
        with open_backend(self.path, "h5mu", modality=mod) as h:
            col = find_obs_column(h.obs_columns(), OBS_ALIASES["clonotype"])
            if col is None:
                return None
            table = pl.DataFrame({"cell_id": h.obs_names(),
                                  "clonotype": h.obs_column(col).cast(pl.String)})
        return pl.DataFrame({"cell_id": self.cell_names}).join(
            table, on="cell_id", how="left", maintain_order="left").get_column("clonotype")

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


def normalise_counts(block: Any, *, target_sum: float = TARGET_SUM) -> Any:
    """log1p(counts / total counts of the cell * target_sum) of a CSR block (scanpy
    `normalize_total` + `log1p`)."""
    import scipy.sparse as sp

    block = sp.csr_matrix(block, dtype=np.float32, copy=True)
    totals = np.asarray(block.sum(axis=1)).ravel()
    scale = np.repeat(target_sum / np.maximum(totals, 1), np.diff(block.indptr))
    block.data = np.log1p(block.data * scale).astype(np.float32)
    return block
