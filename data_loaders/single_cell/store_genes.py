"""The genes and expression matrix of a single-cell store (`SingleCellStore` takes these methods
from `GeneReading`): gene labels (symbols where the file has them, made unique), the
log-normalised values block by block (log1p of counts per 10,000 when the file holds only
counts, scanpy's `normalize_total` + `log1p`), the gene-column cache (CSC with within-gene
ranks for the marker test) and what is read from it: one gene, some genes, rows of cells, the
marker arrays; raw counts of one feature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from data_loaders.single_cell.store import Resolved

__all__ = ["GeneReading", "normalise_counts", "TARGET_SUM", "CHUNK"]

Progress = Callable[[float, str], None]
TARGET_SUM = 1e4
CHUNK = 20_000          # cells per block read


class GeneReading:
    """Gene and matrix reads of a single-cell store (a mixin of `SingleCellStore`, which
    gives `path`, `n_obs`, `resolved`, `open`, `cache_path`, `content_key` and
    `matrix_signature`)."""

    path: Path
    n_obs: int
    resolved: Resolved

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
               chunk: int = CHUNK) -> Iterator[tuple[int, int, Any]]:
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



def normalise_counts(block: Any, *, target_sum: float = TARGET_SUM) -> Any:
    """log1p(counts / total counts of the cell * target_sum) of a CSR block (scanpy
    `normalize_total` + `log1p`)."""
    import scipy.sparse as sp

    block = sp.csr_matrix(block, dtype=np.float32, copy=True)
    totals = np.asarray(block.sum(axis=1)).ravel()
    scale = np.repeat(target_sum / np.maximum(totals, 1), np.diff(block.indptr))
    block.data = np.log1p(block.data * scale).astype(np.float32)
    return block
