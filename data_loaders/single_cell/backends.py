"""Readers of the on-disk single-cell layouts, one element at a time (nothing is read whole
unless asked): AnnData groups (.h5ad, one modality of a MuData .h5mu, AnnData zarr) and loom.

A backend's `open()` is a context manager giving a handle with the same small interface:
obs names and columns, var of a matrix location, matrix locations, a block of rows of one
matrix (scipy CSR, float32), obsm embeddings. Locations: "X", "raw/X", "layers/<name>".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

__all__ = ["open_backend", "detect_format", "AnnDataHandle", "LoomHandle", "FORMATS"]

FORMATS = ("h5ad", "h5mu", "zarr", "loom")


def detect_format(path: Path) -> str | None:
    """h5ad, h5mu, zarr or loom from the name (and, for folders, the zarr metadata)."""
    suffix = path.suffix.lower()
    if path.is_dir():
        if suffix == ".zarr" or any((path / m).exists() for m in (".zgroup", "zarr.json")):
            return "zarr"
        return None
    return {".h5ad": "h5ad", ".h5mu": "h5mu", ".loom": "loom", ".h5": None}.get(suffix)


def _text(values: Any) -> list[str]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]


def _series(name: str, values: Any) -> pl.Series:
    import pandas as pd

    if isinstance(values, pd.Categorical | pd.Series | pd.api.extensions.ExtensionArray):
        s = pd.Series(values)
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object).where(s.notna(), None)
            return pl.Series(name, [None if v is None else str(v) for v in s], pl.String)
        return pl.from_pandas(s).alias(name)
    arr = np.asarray(values)
    if arr.dtype.kind in "OSU":
        return pl.Series(name, [None if v is None else (v.decode() if isinstance(v, bytes)
                                                        else str(v)) for v in arr], pl.String)
    return pl.Series(name, arr)


class AnnDataHandle:
    """An AnnData group as anndata writes it (h5py or zarr)."""

    def __init__(self, root: Any) -> None:
        self.root = root

    # ---- obs ------------------------------------------------------------------------------
    def _index_key(self, group: Any) -> str:
        return str(group.attrs.get("_index", "_index"))

    def obs_columns(self) -> list[str]:
        obs = self.root["obs"]
        order = [str(c) for c in np.asarray(obs.attrs.get("column-order", [])).tolist()]
        rest = sorted(k for k in obs.keys() if k not in order and k != self._index_key(obs)
                      and not k.startswith("__"))
        return order + rest

    def obs_names(self) -> list[str]:
        from anndata.io import read_elem

        obs = self.root["obs"]
        return _text(read_elem(obs[self._index_key(obs)]))

    @property
    def n_obs(self) -> int:
        obs = self.root["obs"]
        return int(obs[self._index_key(obs)].shape[0])

    def obs_column(self, name: str) -> pl.Series:
        return self.read_column(self.root["obs"], name)

    def read_column(self, group: Any, name: str) -> pl.Series:
        from anndata.io import read_elem

        elem = group[name]
        if elem.attrs.get("encoding-type") == "categorical":
            # codes + categories straight from the file: far faster than pandas' astype(str)
            cats = pl.Series(name, _text(read_elem(elem["categories"])), pl.String)
            codes = np.asarray(elem["codes"][:]).astype(np.int64)
            out = cats.gather(np.where(codes < 0, 0, codes)) if cats.len() else \
                pl.Series(name, [None] * len(codes), pl.String)
            return out.scatter(np.flatnonzero(codes < 0), None) if (codes < 0).any() else out
        return _series(name, read_elem(elem))

    def obs_frame(self) -> Any:
        from anndata.io import read_elem

        return read_elem(self.root["obs"])

    # ---- var and matrices -------------------------------------------------------------------
    def _var_group(self, loc: str) -> Any:
        return self.root["raw"]["var"] if loc.startswith("raw") else self.root["var"]

    def var_names(self, loc: str) -> list[str]:
        from anndata.io import read_elem

        g = self._var_group(loc)
        return _text(read_elem(g[self._index_key(g)]))

    def var_columns(self, loc: str) -> list[str]:
        g = self._var_group(loc)
        return [k for k in g.keys() if k != self._index_key(g) and not k.startswith("__")]

    def var_column(self, loc: str, name: str) -> list[str | None]:
        return self.read_column(self._var_group(loc), name).cast(pl.String).to_list()

    def locations(self) -> list[str]:
        out = ["X"] if "X" in self.root else []
        if "raw" in self.root and "X" in self.root["raw"]:
            out.append("raw/X")
        if "layers" in self.root:
            out += [f"layers/{k}" for k in self.root["layers"].keys()]
        return out

    def _elem(self, loc: str) -> Any:
        if loc == "X":
            return self.root["X"]
        if loc == "raw/X":
            return self.root["raw"]["X"]
        if loc.startswith("layers/"):
            return self.root["layers"][loc.split("/", 1)[1]]
        raise KeyError(loc)

    def shape(self, loc: str) -> tuple[int, int]:
        elem = self._elem(loc)
        if hasattr(elem, "keys"):
            return tuple(int(v) for v in elem.attrs["shape"])  # type: ignore[return-value]
        return tuple(int(v) for v in elem.shape)  # type: ignore[return-value]

    def encoding(self, loc: str) -> str:
        elem = self._elem(loc)
        return str(elem.attrs.get("encoding-type", "array" if not hasattr(elem, "keys")
                                  else "csr_matrix"))

    def sample(self, loc: str, *, max_values: int = 200_000) -> np.ndarray:
        """Stored values of the first cells (sparse: the non-zeros), for telling counts from
        log-normalised or scaled values without reading the matrix."""
        elem = self._elem(loc)
        if hasattr(elem, "keys"):
            return np.asarray(elem["data"][:max_values])
        n, g = elem.shape
        rows = max(1, min(n, max_values // max(g, 1)))
        return np.asarray(elem[:rows])

    def rows(self, loc: str) -> Iterator[Any]:
        """A reader `read(lo, hi) -> CSR float32` of row blocks of matrix `loc`."""
        import scipy.sparse as sp
        from anndata.io import sparse_dataset

        elem = self._elem(loc)
        if hasattr(elem, "keys"):
            ds = sparse_dataset(elem)
            if ds.format == "csr":
                return lambda lo, hi: sp.csr_matrix(ds[lo:hi], dtype=np.float32)
            full = sp.csr_matrix(ds.to_memory(), dtype=np.float32)
            return lambda lo, hi: full[lo:hi]
        return lambda lo, hi: sp.csr_matrix(np.asarray(elem[lo:hi], dtype=np.float32))

    # ---- embeddings -------------------------------------------------------------------------
    def embeddings(self) -> list[str]:
        if "obsm" not in self.root:
            return []
        obsm = self.root["obsm"]
        return [k for k in obsm.keys() if not hasattr(obsm[k], "keys")
                and getattr(obsm[k], "ndim", 0) == 2 and obsm[k].shape[1] >= 2]

    def embedding(self, key: str) -> np.ndarray:
        return np.asarray(self.root["obsm"][key][:, :2], dtype=np.float32)


class LoomHandle:
    """A loom file (loompy, SeuratDisk/loomR, velocyto): /matrix genes x cells, /layers,
    /row_attrs (genes), /col_attrs (cells; 2-D ones are embeddings)."""

    _CELL_IDS = ("CellID", "obs_names", "cell_names", "CellIDs", "cell_id", "barcode")
    _GENE_IDS = ("Gene", "var_names", "gene_names", "Accession", "gene_ids")

    def __init__(self, f: Any) -> None:
        self.f = f
        n_genes = self._n_attr("row_attrs")
        shape = f["matrix"].shape
        # the spec stores genes x cells; some writers transpose
        self.genes_first = n_genes is None or shape[0] == n_genes

    def _n_attr(self, group: str) -> int | None:
        g = self.f.get(group)
        keys = list(g.keys()) if g is not None else []
        return int(g[keys[0]].shape[0]) if keys else None

    def _cells(self) -> Any:
        return self.f["col_attrs"]

    @property
    def n_obs(self) -> int:
        shape = self.f["matrix"].shape
        return int(shape[1] if self.genes_first else shape[0])

    def obs_columns(self) -> list[str]:
        ca = self._cells()
        return [k for k in ca.keys() if ca[k].ndim == 1 and k not in self._CELL_IDS]

    def obs_names(self) -> list[str]:
        ca = self._cells()
        for k in self._CELL_IDS:
            if k in ca:
                return _text(ca[k][:])
        return [str(i) for i in range(self.n_obs)]

    def obs_column(self, name: str) -> pl.Series:
        return _series(name, self._cells()[name][:])

    def obs_frame(self) -> Any:
        import pandas as pd

        cols = {c: self.obs_column(c).to_pandas() for c in self.obs_columns()}
        return pd.DataFrame(cols, index=pd.Index(self.obs_names()))

    def var_names(self, loc: str) -> list[str]:
        ra = self.f["row_attrs"]
        for k in self._GENE_IDS:
            if k in ra:
                return _text(ra[k][:])
        return [f"gene{i}" for i in range(self.shape("X")[1])]

    def var_columns(self, loc: str) -> list[str]:
        return [k for k in self.f["row_attrs"].keys() if self.f["row_attrs"][k].ndim == 1]

    def var_column(self, loc: str, name: str) -> list[str | None]:
        return _text(self.f["row_attrs"][name][:])

    def locations(self) -> list[str]:
        layers = self.f.get("layers")
        return ["X"] + ([f"layers/{k}" for k in layers.keys()] if layers is not None else [])

    def _elem(self, loc: str) -> Any:
        return self.f["matrix"] if loc == "X" else self.f["layers"][loc.split("/", 1)[1]]

    def shape(self, loc: str) -> tuple[int, int]:
        a, b = self._elem(loc).shape
        return (int(b), int(a)) if self.genes_first else (int(a), int(b))

    def encoding(self, loc: str) -> str:
        return "array"

    def sample(self, loc: str, *, max_values: int = 200_000) -> np.ndarray:
        n, g = self.shape(loc)
        rows = max(1, min(n, max_values // max(g, 1)))
        return self._block(loc, 0, rows)

    def _block(self, loc: str, lo: int, hi: int) -> np.ndarray:
        elem = self._elem(loc)
        return np.asarray(elem[:, lo:hi]).T if self.genes_first else np.asarray(elem[lo:hi])

    def rows(self, loc: str) -> Any:
        import scipy.sparse as sp

        return lambda lo, hi: sp.csr_matrix(self._block(loc, lo, hi).astype(np.float32))

    _PAIRS = (("_1", "_2"), ("1", "2"), ("_X", "_Y"))

    def embeddings(self) -> list[str]:
        ca = self._cells()
        out = [k for k in ca.keys() if ca[k].ndim == 2 and ca[k].shape[1] >= 2]
        keys = set(ca.keys())
        for k in sorted(keys):
            for a, b in self._PAIRS:
                base = k[: -len(a)]
                if k.endswith(a) and base + b in keys and ca[k].ndim == 1:
                    name = base or "layout"
                    if name not in out:
                        out.append(name)
                    break
        return out

    def embedding(self, key: str) -> np.ndarray:
        ca = self._cells()
        if key in ca and ca[key].ndim == 2:
            return np.asarray(ca[key][:, :2], dtype=np.float32)
        base = "" if key == "layout" else key
        for a, b in self._PAIRS:
            if base + a in ca and base + b in ca:
                return np.column_stack([ca[base + a][:], ca[base + b][:]]).astype(np.float32)
        raise KeyError(key)


@contextlib.contextmanager
def open_backend(path: Path, fmt: str, *, modality: str | None = None) -> Iterator[Any]:
    """A handle on the file (closed on exit). `modality` picks the MuData modality."""
    if fmt == "zarr":
        import zarr

        yield AnnDataHandle(zarr.open_group(str(path), mode="r"))
        return
    import h5py

    with h5py.File(path, "r") as f:
        if fmt == "loom":
            yield LoomHandle(f)
        elif fmt == "h5mu":
            if modality is None or "mod" not in f or modality not in f["mod"]:
                raise KeyError(f"modality {modality!r} not in the .h5mu file")
            yield AnnDataHandle(f["mod"][modality])
        else:
            yield AnnDataHandle(f)
