"""Within-gene ranks of a log-normalised matrix's non-zero entries: the index the Wilcoxon
marker test (analysis.markers) reads. They do not depend on the selection, so the store
computes them once, when its gene-major copy is written (`cli.py convert`) or when the
gene-column cache is built, and keeps them next to the values they rank."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ColumnRanks", "column_ranks", "clean_csc", "MarkerArrays", "gene_totals"]


@dataclass(frozen=True)
class ColumnRanks:
    """Average ranks (1-based, ties averaged) of each column's non-zero entries, aligned with
    the CSC `data` array, and each column's tie term sum(t^3 - t) over those entries."""

    ranks: np.ndarray
    ties: np.ndarray


def clean_csc(matrix: Any) -> Any:
    """float32 CSC with explicit zeros removed and sorted indices (ValueError on negative
    values: scaled, centred data is not ranked)."""
    import scipy.sparse as sp

    csc = sp.csc_matrix(matrix, dtype=np.float32, copy=False)
    if csc.data.size and (csc.data == 0).any():
        csc = csc.copy()
        csc.eliminate_zeros()
    if csc.data.size and csc.data.min() < 0:
        raise ValueError("rank_markers expects non-negative log-normalised expression")
    if not csc.has_sorted_indices:
        csc = csc.sorted_indices()
    return csc


def column_ranks(matrix: Any) -> ColumnRanks:
    """Ranks of the non-zero entries of a CSC matrix (explicit zeros removed), column by
    column."""
    csc = clean_csc(matrix)
    ranks = np.empty(csc.data.shape[0], dtype=np.float32)
    ties = np.zeros(csc.shape[1])
    for j in range(csc.shape[1]):
        lo, hi = csc.indptr[j], csc.indptr[j + 1]
        if hi == lo:
            continue
        vals = csc.data[lo:hi]
        order = np.argsort(vals, kind="stable")
        ordered = vals[order]
        new = np.empty(ordered.size, dtype=bool)
        new[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
        first = np.flatnonzero(new)
        counts = np.diff(np.append(first, ordered.size)).astype(np.float64)
        avg = first + (counts + 1) / 2.0          # average 1-based rank of each tie group
        ranks[lo + order] = np.repeat(avg, counts.astype(np.int64))
        ties[j] = float(np.sum(counts**3 - counts))
    return ColumnRanks(ranks, ties)


@dataclass(frozen=True)
class MarkerArrays:
    """What the marker test needs of the store: `data[rows]` and `ranks[rows]` give CSR
    blocks (values and within-gene ranks of those cells, same structure), `shape` the full
    matrix; per gene the non-zero count, the sum, the tie term of the non-zeros and the sum
    of their ranks."""

    data: Any
    ranks: Any
    genes: tuple[str, ...]
    nnz: np.ndarray
    total: np.ndarray
    ties_nonzero: np.ndarray
    rank_total: np.ndarray


def gene_totals(csc: Any, ranks: ColumnRanks) -> dict[str, np.ndarray]:
    """Per-gene n_nonzero, sum, tie term and rank sum of a clean CSC matrix and its ranks."""
    nnz = np.diff(csc.indptr).astype(np.int64)
    seg = np.repeat(np.arange(csc.shape[1]), nnz)
    g = csc.shape[1]
    return {"n_nonzero": nnz,
            "sum": np.bincount(seg, weights=csc.data, minlength=g),
            "tie_term": np.asarray(ranks.ties, dtype=np.float64),
            "rank_sum": np.bincount(seg, weights=ranks.ranks, minlength=g)}
