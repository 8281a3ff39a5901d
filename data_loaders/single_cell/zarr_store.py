"""The converted single-cell store (`cli.py convert`), read lazily from a folder or any fsspec
URL (file://, s3://, gs://, memory:// ...), so several app hosts can share one copy.

It is an AnnData zarr store (anndata.read_zarr / read_lazy and scanpy open it as they open any
other) with two layouts of the same log-normalised values, as CELLxGENE's hosted explorer
keeps row- and column-major copies of X:

- `X`: CSR, chunked by cells: a selection of cells reads only its rows;
- `layers/X_by_gene`: CSC, chunked by genes: one gene (a colour, a violin) reads one column;
- `layers/marker_ranks`: CSR with X's structure, each entry's rank within its gene (the
  Wilcoxon marker test sums the ranks of the selected cells' rows, nothing else);
- `layers/counts`: raw counts (CSR) when the source file has them (pseudobulk);
- `var`: gene labels (index), file ids (`gene_ids`) and per-gene totals of the marker test
  (`n_nonzero`, `sum`, `tie_term`, `rank_sum`);
- `obs`: the file's own columns plus the study's canonical columns as the store decided them
  (subject_id, sample_id, day, ...), so no decision is made again on reading;
- `obsm`: the embeddings (first two dimensions);
- the root attribute `cart_store`: the manifest (source file, its content key, the obs
  mapping, how the values were normalised).

`ConvertedStore` answers every question `SingleCellStore` answers; its group is opened once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np
import polars as pl

from data_loaders.single_cell.backends import AnnDataHandle
from data_loaders.single_cell.mapping import SingleCellConfig
from data_loaders.single_cell.store import Finding, Resolved, SingleCellStore

__all__ = ["ConvertedStore", "MANIFEST_KEY", "STORE_VERSION", "STORE_SUFFIX", "RowReader",
           "is_url", "open_group", "read_manifest", "store_location"]

MANIFEST_KEY = "cart_store"
STORE_VERSION = 1
STORE_SUFFIX = ".store.zarr"
BY_GENE = "layers/X_by_gene"
RANKS = "layers/marker_ranks"
COUNTS = "layers/counts"
_CHUNK = 50_000
# stored values up to which the marker test's arrays are held in memory (12 bytes each)
MARKERS_IN_MEMORY = 150_000_000


def is_url(location: str | Path) -> bool:
    """True for an fsspec URL (scheme://...), False for a plain path."""
    return "://" in str(location)


def store_location(source: Path, config: SingleCellConfig) -> str:
    """Where the converted copy of `source` lives: `[single_cell] store` of study.toml (a
    folder relative to the study, or a URL), else `<source stem>.store.zarr` beside it."""
    if config.store:
        if is_url(config.store) or Path(config.store).is_absolute():
            return str(config.store)
        return str(source.parent / config.store)
    return str(source.parent / f"{source.name.split('.')[0]}{STORE_SUFFIX}")


def open_group(location: str | Path, *, mode: Literal["r", "w"] = "r") -> Any:
    """The zarr group at a folder or fsspec URL."""
    import zarr

    if is_url(location):
        from zarr.storage import FsspecStore

        options = {"auto_mkdir": True} if mode == "w" and str(location).startswith("file:") \
            else None
        store = FsspecStore.from_url(str(location), read_only=mode == "r",
                                     storage_options=options)
        return zarr.open_group(store, mode=mode)
    return zarr.open_group(str(location), mode=mode)


def read_manifest(location: str | Path) -> dict[str, Any] | None:
    """The manifest of a converted store, or None when there is none (not converted here)."""
    try:
        if not is_url(location) and not Path(location).is_dir():
            return None
        root = open_group(location)
    except Exception:  # noqa: BLE001 - absent or unreadable: not a converted store
        return None
    got = root.attrs.get(MANIFEST_KEY)
    return dict(got) if isinstance(got, dict) else None


class RowReader:
    """Rows of a sparse matrix element of the store (`reader[rows]` -> scipy CSR in the order
    asked; `shape`); only the chunks holding those rows are read."""

    def __init__(self, elem: Any) -> None:
        from anndata.io import sparse_dataset

        self._ds = sparse_dataset(elem)
        self.shape = tuple(int(v) for v in self._ds.shape)

    def __getitem__(self, rows: Any) -> Any:
        import scipy.sparse as sp

        idx = np.asarray(rows, dtype=np.int64)
        if idx.size == 0:
            return sp.csr_matrix((0, self.shape[1]), dtype=np.float32)
        uniq, inverse = np.unique(idx, return_inverse=True)
        got = sp.csr_matrix(self._ds[uniq], dtype=np.float32)
        return got if uniq.size == idx.size and np.array_equal(uniq, idx) else got[inverse]

    def block(self, lo: int, hi: int) -> Any:
        import scipy.sparse as sp

        return sp.csr_matrix(self._ds[lo:hi], dtype=np.float32)


class ConvertedStore(SingleCellStore):
    """A converted store (see the module docstring). `source` is the store of the file it was
    converted from when that file is at hand (receptor chains and other MuData modalities are
    read from it); without it the converted store stands alone."""

    def __init__(self, location: str | Path, *, source: SingleCellStore | None = None,
                 config: SingleCellConfig | None = None,
                 cache_root: str | Path | None = None) -> None:
        self.location = str(location)
        self.source = source
        local = not is_url(location)
        path = Path(location) if local else Path(urlparse(self.location).path or "store.zarr")
        root = cache_root if cache_root is not None else (
            source.cache_root if source is not None else (path.parent if local else
                                                          Path(os.getcwd())))
        cfg = config or (source.config if source is not None else SingleCellConfig())
        super().__init__(path, SingleCellConfig(format="zarr", obs=cfg.obs,
                                                receptor_files=cfg.receptor_files,
                                                store=cfg.store), cache_root=root)
        self.format = "zarr"

    @property
    def files_folder(self) -> Path:
        return self.cache_root if is_url(self.location) else self.path.parent

    # ---- opening (once) ---------------------------------------------------------------------
    @cached_property
    def _root(self) -> Any:
        return open_group(self.location)

    @cached_property
    def manifest(self) -> dict[str, Any]:
        got = self._root.attrs.get(MANIFEST_KEY)
        if not isinstance(got, dict):
            raise ValueError(f"{self.location}: not a store written by `cli.py convert` (no "
                             f"{MANIFEST_KEY} manifest)")
        if int(got.get("version", 0)) > STORE_VERSION:
            raise ValueError(f"{self.location}: written by a newer version (store version "
                             f"{got['version']}); upgrade the app or convert again")
        return dict(got)

    @contextlib.contextmanager
    def open(self) -> Iterator[Any]:
        yield AnnDataHandle(self._root)

    @cached_property
    def modalities(self) -> tuple[str | None, str | None]:
        return None, None

    @cached_property
    def resolved(self) -> Resolved:
        m = self.manifest
        obs = {str(k): str(v) for k, v in dict(m["obs"]).items()}
        note = Finding("note", f"reading the converted store {self.location} (cell-major and "
                       f"gene-major copies, converted from {m['source']['name']})")
        return Resolved(obs, str(m.get("cell_type_kind", "none")),
                         "day" if "day" in obs else "none",
                         COUNTS if m.get("counts") else None, "X",
                         str(m.get("lognorm_how", "file")), None, {}, (note,))

    @property
    def matrix_signature(self) -> str:
        return str(self.manifest["matrix_signature"])

    @cached_property
    def content_key(self) -> str:
        return str(self.manifest["content_key"])

    # ---- cells ------------------------------------------------------------------------------
    def canonical(self, name: str) -> pl.Series | None:
        """A canonical column as written by the conversion (read once per store: validation,
        the cell table and the samples all ask for the same columns)."""
        kept = self.__dict__.setdefault("_canonical_memo", {})
        if name not in kept:
            kept[name] = self._canonical(name)
        return kept[name]

    def _canonical(self, name: str) -> pl.Series | None:
        col = self.resolved.obs.get(name)
        if col is None:
            return None
        s = self.obs_column(col)
        if name == "day":
            return s.cast(pl.Float64, strict=False).round().cast(pl.Int64).alias("day")
        if name == "car_positive":
            return s.cast(pl.Boolean).alias(name)
        return s.cast(pl.String).alias(name)

    # ---- genes ------------------------------------------------------------------------------
    @cached_property
    def gene_names(self) -> list[str]:
        with self.open() as h:
            return h.var_names("X")

    @cached_property
    def gene_ids(self) -> list[str]:
        with self.open() as h:
            if "gene_ids" in h.var_columns("X"):
                return [str(v) for v in h.var_column("X", "gene_ids")]
            return h.var_names("X")

    @cached_property
    def counts_gene_names(self) -> list[str]:
        return self.gene_names if self.manifest.get("counts") else []

    def _genes(self, loc: str | None) -> tuple[list[str], list[str]]:
        if loc is None:
            return [], []
        return self.gene_ids, self.gene_names

    #: gene reads use the store's own gene-major copy (X_by_gene), so nothing calls the
    #: inherited gene_cache on the way to a gene
    has_gene_major_copy = True

    def gene_cache_ready(self) -> bool:
        return True      # the gene-major copy is part of the store

    @cached_property
    def _by_gene(self) -> Any:
        return self._root["layers"]["X_by_gene"]

    @cached_property
    def _by_gene_indptr(self) -> np.ndarray:
        return np.asarray(self._by_gene["indptr"][:], dtype=np.int64)

    def _column(self, j: int) -> np.ndarray:
        lo, hi = int(self._by_gene_indptr[j]), int(self._by_gene_indptr[j + 1])
        out = np.zeros(self.n_obs, dtype=np.float32)
        if hi > lo:
            out[np.asarray(self._by_gene["indices"][lo:hi])] = self._by_gene["data"][lo:hi]
        return out

    def gene_column(self, gene: str) -> np.ndarray:
        return self._column(self.gene_index(gene))

    def gene_columns(self, columns: Sequence[int], *, progress: Any = None) -> Any:
        import scipy.sparse as sp

        cols = [sp.csc_matrix(self._column(int(j))[:, None]) for j in columns]
        return sp.hstack(cols, format="csc") if cols else \
            sp.csc_matrix((self.n_obs, 0), dtype=np.float32)

    def expression(self, *, progress: Any = None) -> Any:
        import scipy.sparse as sp
        from anndata.io import sparse_dataset

        return sp.csc_matrix(sparse_dataset(self._by_gene).to_memory(), dtype=np.float32)

    @cached_property
    def _rows(self) -> RowReader:
        return RowReader(self._root["X"])

    def expression_rows(self, rows: Sequence[int] | np.ndarray) -> Any:
        return self._rows[np.asarray(rows, dtype=np.int64)]

    def marker_arrays(self, *, progress: Any = None) -> Any:
        """The marker test's arrays, read once per store: in memory (values and ranks sharing
        one index structure) up to MARKERS_IN_MEMORY stored values, above that read by rows
        for each selection (only the chunks holding the selected cells)."""
        kept = self.__dict__.get("_marker_memo")
        if kept is None:
            kept = self.__dict__["_marker_memo"] = self._marker_arrays()
        return kept

    def _marker_arrays(self) -> Any:
        import scipy.sparse as sp

        from data_loaders.single_cell.ranks import MarkerArrays

        with self.open() as h:
            cols = {c: h.read_column(self._root["var"], c).to_numpy()
                    for c in ("n_nonzero", "sum", "tie_term", "rank_sum")}
        x, ranks = self._root["X"], self._root["layers"]["marker_ranks"]
        shape = (self.n_obs, len(self.gene_names))
        if int(x["data"].shape[0]) <= MARKERS_IN_MEMORY:
            indices = np.asarray(x["indices"][:])
            indptr = np.asarray(x["indptr"][:])
            data: Any = sp.csr_matrix((np.asarray(x["data"][:], dtype=np.float32), indices,
                                       indptr), shape=shape)
            rank_rows: Any = sp.csr_matrix((np.asarray(ranks["data"][:], dtype=np.float32),
                                            indices, indptr), shape=shape)
        else:
            data, rank_rows = self._rows, RowReader(ranks)
        return MarkerArrays(data, rank_rows, tuple(self.gene_names), cols["n_nonzero"],
                            cols["sum"], cols["tie_term"], cols["rank_sum"])

    def blocks(self, which: Literal["lognorm", "counts"] = "lognorm", *,
               chunk: int = _CHUNK) -> Iterator[tuple[int, int, Any]]:
        """(lo, hi, CSR float32 block) over every cell: the stored values as they are (they
        were normalised when converted)."""
        if which == "counts" and not self.manifest.get("counts"):
            raise ValueError(f"{self.location}: no count matrix in the converted store")
        reader = self._rows if which == "lognorm" else RowReader(self._root["layers"]["counts"])
        n = self.n_obs
        for lo in range(0, n, chunk):
            hi = min(lo + chunk, n)
            yield lo, hi, reader.block(lo, hi)

    # ---- what stays with the source file -----------------------------------------------------
    @cached_property
    def receptors(self) -> pl.DataFrame:
        if self.source is not None:
            return self.source.receptors
        return super().receptors

    @cached_property
    def other_modalities(self) -> tuple[str, ...]:
        return self.source.other_modalities if self.source is not None else ()

    def modality_features(self, modality: str) -> list[str]:
        if self.source is None:
            raise KeyError(modality)
        return self.source.modality_features(modality)

    def modality_column(self, modality: str, feature: str) -> np.ndarray:
        if self.source is None:
            raise KeyError(modality)
        return self.source.modality_column(modality, feature)

    def config_table(self, file: str | None = None) -> dict[str, Any]:
        if self.source is not None:
            return {**self.source.config_table(file), "store": self.location}
        return {"file": file or self.location, "format": "zarr"}

    def to_anndata(self) -> Any:
        """X (log-normalised), obs, var and obsm as an in-memory AnnData (the gene-major
        copy and the ranks are left out). For small stores and tests."""
        import anndata as ad
        from anndata.io import read_elem

        root = self._root
        obsm = {k: read_elem(root["obsm"][k]) for k in root["obsm"].keys()} \
            if "obsm" in root else {}
        return ad.AnnData(X=read_elem(root["X"]), obs=read_elem(root["obs"]),
                          var=read_elem(root["var"]), obsm=obsm)
