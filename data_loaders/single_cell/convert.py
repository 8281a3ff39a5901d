"""Write a study's single-cell data once as the chunked, lazily read store of
`data_loaders.single_cell.zarr_store` (`python cli.py convert --study DIR`).

AnnData zarr rather than TileDB-SOMA: the app already reads AnnData zarr (anndata and zarr are
pinned dependencies), the result opens in anndata/scanpy unchanged, zarr reads from any fsspec
URL (a lab's object store), and the two layouts the app needs (cells and genes) are two
sparse elements of one store. TileDB-SOMA would add a large native dependency for the same
two access patterns. See docs/single-cell-store.md.

The conversion never holds the matrix in memory. One pass over the source's cells writes the
cell-major copy block by block and spills each block's entries, sorted by gene, into one
temporary file per range of genes; each gene range is then assembled into its columns, ranked
within each gene (the marker test's index) and written gene-major, and its ranks are scattered
back into a memory-mapped array in cell-major order. Peak memory is one gene range (about
`bucket_entries` non-zeros), not the matrix.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data_loaders.single_cell.mapping import CANONICAL_OBS
from data_loaders.single_cell.ranks import ColumnRanks, column_ranks, gene_totals
from data_loaders.single_cell.zarr_store import (
    MANIFEST_KEY,
    STORE_VERSION,
    is_url,
    open_group,
)

__all__ = ["write_store", "ConvertReport", "CELL_CHUNK", "GENE_CHUNK"]

Progress = Callable[[float, str], None]
CELL_CHUNK = 1 << 20        # stored entries per chunk of the cell-major arrays
GENE_CHUNK = 1 << 18        # ... of the gene-major arrays (one gene reads one or two)
_BLOCK_CELLS = 100_000
_BUCKET_ENTRIES = 40_000_000


@dataclass(frozen=True)
class ConvertReport:
    location: str
    n_cells: int
    n_genes: int
    n_nonzero: int
    counts: bool
    manifest: dict[str, Any]


def _obs_frame(source: Any) -> tuple[Any, dict[str, str]]:
    """The file's obs plus the canonical columns (as categoricals), and canonical -> column.
    A canonical column whose name the file already uses for something else is written as
    `study_<name>`."""
    import pandas as pd

    with source.open() as h:
        obs = h.obs_frame()
    obs.index = pd.Index([str(c) for c in source.cell_names])
    mapping: dict[str, str] = {}
    for name in CANONICAL_OBS:
        s = source.canonical(name)
        if s is None:
            continue
        if source.resolved.obs.get(name) == name and name not in ("day", "car_positive",
                                                                  "cell_type"):
            mapping[name] = name            # the file's own column, used as it is
            continue
        col = name if name not in obs.columns else f"study_{name}"
        if name == "day":
            values: Any = pd.array(s.to_list(), dtype="Int64")
        elif name == "car_positive":
            values = s.fill_null(False).to_numpy()
        else:
            values = pd.Categorical(s.to_list())
        obs[col] = values
        mapping[name] = col
    for c in obs.columns:     # plain text columns as categoricals: codes, not strings per cell
        if obs[c].dtype == object:
            obs[c] = pd.Categorical(obs[c])
    return obs, mapping


class _Appender:
    """A CSR element of the store written block by block (anndata's on-disk encoding)."""

    def __init__(self, group: Any, name: str, n_genes: int) -> None:
        self.group, self.name, self.n_genes = group, name, n_genes
        self.ds: Any = None

    def add(self, block: Any) -> None:
        from anndata.io import sparse_dataset, write_elem

        if self.ds is None:
            write_elem(self.group, self.name, block,
                       dataset_kwargs={"chunks": (CELL_CHUNK,), "compressors": _codecs()})
            self.ds = sparse_dataset(self.group[self.name])
        elif block.shape[0]:
            self.ds.append(block)

    def finish(self) -> None:
        import scipy.sparse as sp

        if self.ds is None:
            self.add(sp.csr_matrix((0, self.n_genes), dtype=np.float32))


def _spill(block: Any, lo: int, offset: int, edges: np.ndarray, folder: Path) -> None:
    """Append the block's entries, in gene order, to each gene range's spill files: cell
    (int32), value (float32), position in the cell-major data array (int64), and the
    block's count per gene."""
    import scipy.sparse as sp

    pos = sp.csr_matrix((np.arange(offset, offset + block.nnz, dtype=np.int64),
                         block.indices, block.indptr), shape=block.shape).tocsc()
    pos.sort_indices()
    gpos = pos.data
    vals = block.data[gpos - offset]
    rows = (pos.indices + lo).astype(np.int32)
    per_gene = np.diff(pos.indptr).astype(np.int64)
    for k in range(len(edges) - 1):
        a, b = int(pos.indptr[edges[k]]), int(pos.indptr[edges[k + 1]])
        stem = folder / f"b{k}"
        for suffix, arr in (("rows", rows[a:b]), ("vals", vals[a:b]), ("pos", gpos[a:b]),
                            ("counts", per_gene[edges[k]:edges[k + 1]])):
            with open(f"{stem}.{suffix}", "ab") as fh:
                arr.tofile(fh)


def _gene_range(folder: Path, k: int, n_genes: int, n_blocks: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The spilled entries of gene range k reordered gene-major (cells ascending within a
    gene): (indptr, cells, values, cell-major positions)."""
    stem = folder / f"b{k}"
    rows = np.fromfile(f"{stem}.rows", dtype=np.int32)
    vals = np.fromfile(f"{stem}.vals", dtype=np.float32)
    gpos = np.fromfile(f"{stem}.pos", dtype=np.int64)
    counts = np.fromfile(f"{stem}.counts", dtype=np.int64).reshape(n_blocks, n_genes)
    per_gene = counts.sum(axis=0)
    indptr = np.concatenate([[0], np.cumsum(per_gene)]).astype(np.int64)
    # entries are block-major then gene; a segment (block b, gene g) goes to the start of
    # gene g plus the entries of g in earlier blocks
    dest = indptr[:-1][None, :] + (np.cumsum(counts, axis=0) - counts)
    src = np.cumsum(counts.ravel()) - counts.ravel()
    where = np.repeat(dest.ravel() - src, counts.ravel()) + np.arange(rows.size,
                                                                       dtype=np.int64)
    out_rows, out_vals, out_pos = (np.empty_like(rows), np.empty_like(vals),
                                   np.empty_like(gpos))
    out_rows[where], out_vals[where], out_pos[where] = rows, vals, gpos
    return indptr, out_rows, out_vals, out_pos


def _codecs() -> list[Any]:
    """Blosc LZ4 with byte shuffle: as small as zarr's default zstd on these arrays, and
    three times cheaper to read (a selection decodes every chunk it touches)."""
    from zarr.codecs import BloscCodec

    return [BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")]


def _array(group: Any, name: str, n: int, dtype: Any, chunk: int) -> Any:
    return group.create_array(name, shape=(n,), chunks=(max(1, min(chunk, max(n, 1))),),
                              dtype=dtype, compressors=_codecs())


def _sparse_group(parent: Any, name: str, encoding: str, shape: tuple[int, int]) -> Any:
    g = parent.create_group(name)
    g.attrs.update({"encoding-type": encoding, "encoding-version": "0.1.0",
                    "shape": [int(shape[0]), int(shape[1])]})
    return g


def write_store(source: Any, location: str | Path, *, block_cells: int = _BLOCK_CELLS,
                bucket_entries: int = _BUCKET_ENTRIES, progress: Progress | None = None
                ) -> ConvertReport:
    """Convert the single-cell store `source` (a `SingleCellStore`) into the chunked store at
    `location` (a folder, written to a temporary sibling and renamed when complete, or an
    fsspec URL). One function so it can run as a job."""
    with warnings.catch_warnings():
        # zarr 3.1 announces a future default (sharding); the chunking here is explicit
        warnings.filterwarnings("ignore", message=".*autosharding.*")
        return _write_store(source, location, block_cells=block_cells,
                            bucket_entries=bucket_entries, progress=progress)


def _write_store(source: Any, location: str | Path, *, block_cells: int,
                 bucket_entries: int, progress: Progress | None) -> ConvertReport:
    import pandas as pd
    from anndata.io import write_elem

    report = progress or (lambda f, m: None)
    n, genes, ids = source.n_obs, list(source.gene_names), list(source.gene_ids)
    g = len(genes)
    if not g:
        raise ValueError(f"{source.path.name}: no log-normalised or count matrix to convert")
    local = not is_url(location)
    final = Path(location) if local else None
    target: str | Path = location
    if final is not None:
        final.parent.mkdir(parents=True, exist_ok=True)
        target = final.parent / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(target, ignore_errors=True)
    root = open_group(target, mode="w")
    root.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
    spill = Path(tempfile.mkdtemp(prefix="cart-convert-", dir=final.parent if final else None))
    try:
        report(0.0, "writing obs and embeddings")
        obs, mapping = _obs_frame(source)
        write_elem(root, "obs", obs)
        write_elem(root, "obsm", {k: np.asarray(source.embedding(k), dtype=np.float32)
                                  for k in source.embeddings})
        write_elem(root, "uns", {})
        layers = root.create_group("layers")
        layers.attrs.update({"encoding-type": "dict", "encoding-version": "0.1.0"})

        # ---- pass 1: cell-major copy + spill by gene range ---------------------------------
        x = _Appender(root, "X", g)
        edges: np.ndarray | None = None
        offset, n_blocks = 0, 0
        for lo, hi, block in source.blocks("lognorm", chunk=block_cells):
            block.eliminate_zeros()
            block.sort_indices()
            if edges is None:     # gene ranges of about bucket_entries entries each
                est = block.nnz * n / max(hi - lo, 1)
                k = int(min(g, max(1, np.ceil(est / bucket_entries))))
                edges = np.unique(np.linspace(0, g, k + 1).round().astype(np.int64))
            x.add(block)
            _spill(block, lo, offset, edges, spill)
            offset += block.nnz
            n_blocks += 1
            report(0.45 * hi / max(n, 1), f"cells: {hi:,} of {n:,}")
        x.finish()
        nnz = offset
        if edges is None:
            edges = np.array([0, g], dtype=np.int64)
        has_counts = source.resolved.counts is not None
        if has_counts:
            counts = _Appender(layers, "counts", len(source.counts_gene_names))
            for _, hi, block in source.blocks("counts", chunk=block_cells):
                counts.add(block)
                report(0.45 + 0.1 * hi / max(n, 1), f"counts: {hi:,} of {n:,}")
            counts.finish()

        # ---- pass 2: gene-major copy, ranks --------------------------------------------------
        by_gene = _sparse_group(layers, "X_by_gene", "csc_matrix", (n, g))
        g_data = _array(by_gene, "data", nnz, np.float32, GENE_CHUNK)
        g_indices = _array(by_gene, "indices", nnz, np.int32, GENE_CHUNK)
        ranks_cells = np.lib.format.open_memmap(spill / "ranks.npy", mode="w+",
                                                dtype=np.float32, shape=(max(nnz, 1),))
        indptr_all = [np.zeros(1, dtype=np.int64)]
        totals: dict[str, list[np.ndarray]] = {}
        done = 0
        for k in range(len(edges) - 1):
            width = int(edges[k + 1] - edges[k])
            if n_blocks:
                indptr, rows, vals, gpos = _gene_range(spill, k, width, n_blocks)
            else:
                indptr = np.zeros(width + 1, np.int64)
                rows, vals, gpos = (np.zeros(0, np.int32), np.zeros(0, np.float32),
                                    np.zeros(0, np.int64))
            import scipy.sparse as sp

            csc = sp.csc_matrix((vals, rows, indptr), shape=(n, width))
            ranks = column_ranks(csc) if csc.nnz else ColumnRanks(np.zeros(0, np.float32),
                                                                   np.zeros(width))
            for key, arr in gene_totals(csc, ranks).items():
                totals.setdefault(key, []).append(arr)
            if vals.size:
                g_data[done:done + vals.size] = vals
                g_indices[done:done + vals.size] = rows
                ranks_cells[gpos] = ranks.ranks
            indptr_all.append(indptr[1:] + done)
            done += vals.size
            for suffix in ("rows", "vals", "pos", "counts"):
                Path(spill / f"b{k}.{suffix}").unlink(missing_ok=True)
            report(0.55 + 0.35 * edges[k + 1] / g, f"genes: {int(edges[k + 1]):,} of {g:,}")
        indptr_g = np.concatenate(indptr_all)
        by_gene.create_array("indptr", shape=indptr_g.shape, dtype=np.int64,
                             chunks=indptr_g.shape)[:] = indptr_g

        # ---- ranks in cell-major order (X's structure) ------------------------------------
        report(0.9, "writing the marker ranks")
        rk = _sparse_group(layers, "marker_ranks", "csr_matrix", (n, g))
        r_data = _array(rk, "data", nnz, np.float32, CELL_CHUNK)
        r_indices = _array(rk, "indices", nnz, np.int32, CELL_CHUNK)
        step = CELL_CHUNK * 8
        for lo in range(0, nnz, step):
            hi = min(lo + step, nnz)
            r_data[lo:hi] = ranks_cells[lo:hi]
            r_indices[lo:hi] = root["X"]["indices"][lo:hi]
        x_indptr = np.asarray(root["X"]["indptr"][:], dtype=np.int64)
        rk.create_array("indptr", shape=x_indptr.shape, dtype=np.int64,
                        chunks=x_indptr.shape)[:] = x_indptr
        del ranks_cells

        var = pd.DataFrame({"gene_ids": np.asarray([str(i) for i in ids], dtype=object)},
                           index=pd.Index(genes))
        for key, parts in totals.items():
            var[key] = np.concatenate(parts) if parts else np.zeros(0)
        write_elem(root, "var", var)
        manifest = {
            "version": STORE_VERSION, "written": dt.datetime.now(dt.UTC).isoformat(
                timespec="seconds"),
            "source": _source_stamp(source), "content_key": source.content_key,
            "matrix_signature": source.matrix_signature, "obs": mapping,
            "cell_type_kind": source.resolved.cell_type_kind,
            "lognorm_how": source.resolved.lognorm_how,
            "lognorm_source": source.resolved.lognorm, "counts": has_counts,
            "counts_source": source.resolved.counts, "n_obs": n, "n_vars": g,
            "n_nonzero": int(nnz),
            "layouts": {"cells": "X", "genes": "layers/X_by_gene",
                        "ranks": "layers/marker_ranks"},
        }
        root.attrs[MANIFEST_KEY] = manifest
    except BaseException:
        if final is not None:
            shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    if final is not None:
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        if final.exists():
            final.rename(old)
        Path(target).rename(final)
        shutil.rmtree(old, ignore_errors=True)
    report(1.0, "converted")
    return ConvertReport(str(location), n, g, int(nnz), has_counts, manifest)


def _source_stamp(source: Any) -> dict[str, Any]:
    """Name, size and modification time of the source (a quick freshness check; the content
    key decides when they differ)."""
    path = Path(source.path)
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return {"name": path.name, "size": int(sum(p.stat().st_size for p in files)),
            "mtime_ns": int(max((p.stat().st_mtime_ns for p in files), default=0))}
