"""Marker genes of a cell selection against all other cells.

Wilcoxon rank-sum (Mann-Whitney U) test per gene on log-normalised expression, two-sided, normal
approximation with tie correction (Mann & Whitney 1947; the default test of scanpy's
`tl.rank_genes_groups`), log2 fold change of the mean expression on the linear scale
(log2((expm1(mean_sel) + eps) / (expm1(mean_rest) + eps)), as scanpy), and Benjamini-Hochberg
FDR over all tested genes (statsmodels). Sparse matrices are ranked column by column using only
their non-zero entries: all zeros share one average rank, so a million-cell column costs as much
as its non-zeros.

These are cell-level tests: the cells of one patient are not independent replicates, so with a
few patients every p-value is far too small to be evidence about patients (Squair et al., Nat
Commun 2021;12:5692, on false discoveries in single-cell differential expression). The table
labels them exploratory and states how many patients stand behind the selection and the rest;
patient-level comparisons (pseudobulk per patient) are the Compare page's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from analysis.stats import bh
from data_loaders.single_cell.ranks import ColumnRanks, MarkerArrays, clean_csc, column_ranks

if TYPE_CHECKING:
    from scipy import sparse

__all__ = ["rank_markers", "EXPLORATORY", "marker_index", "MarkerIndex", "selection_mask", "column_ranks",
           "ColumnRanks", "MARKER_COLUMNS", "index_from_arrays", "rank_groups",
           "GROUP_COLUMNS", "GroupCodes", "group_codes", "GroupSums", "group_sums",
           "groups_table"]

MARKER_COLUMNS = ("rank", "gene", "log2_fold_change", "mean_selected", "mean_rest",
                  "pct_selected", "pct_rest", "u_statistic", "z_score", "p_value", "fdr",
                  "n_cells_selected", "n_patients_selected", "n_patients_rest", "evidence")
EXPLORATORY = "exploratory: cell-level test, cells are not independent patients"
_EPS = 1e-9


def selection_mask(n: int, *, cells: Sequence[int] | np.ndarray) -> np.ndarray:
    """Boolean mask of length n, True at the given cell positions."""
    mask = np.zeros(n, dtype=bool)
    idx = np.asarray(cells, dtype=np.int64)
    mask[idx[(idx >= 0) & (idx < n)]] = True
    return mask


@dataclass(frozen=True)
class MarkerIndex:
    """A matrix prepared for repeated marker tests: rows of the values and of each entry's
    within-column rank (`data[rows]`, `ranks[rows]` give CSR blocks: scipy CSR in memory, or
    the single-cell store's lazy row readers), and the per-gene totals that do not depend on
    the selection. A selection then costs one pass over the non-zeros of the selected (or, if
    smaller, the unselected) cells."""

    data: Any                   # cells x genes, log-normalised: `data[rows]` -> CSR
    ranks: Any                  # same structure: rank within column
    genes: tuple[str, ...]
    nnz: np.ndarray             # non-zeros per gene
    total: np.ndarray           # sum per gene
    ties: np.ndarray            # tie term per gene, zeros included
    rank_total: np.ndarray | None = None   # sum of the non-zeros' ranks per gene

    @property
    def n_cells(self) -> int:
        return int(self.data.shape[0])


def marker_index(matrix: np.ndarray | sparse.spmatrix, *, genes: Sequence[str], ranks: ColumnRanks | None = None
                 ) -> MarkerIndex:
    """Prepare a cells x genes log-normalised matrix for `rank_markers`."""
    import scipy.sparse as sp

    csc = clean_csc(matrix)
    n, g = csc.shape
    if len(genes) != g:
        raise ValueError(f"{len(genes)} gene names for {g} columns")
    if ranks is None or ranks.ranks.shape != csc.data.shape:
        ranks = column_ranks(csc)
    nnz = np.diff(csc.indptr).astype(np.float64)
    n0 = n - nnz
    total = np.asarray(csc.sum(axis=0), dtype=np.float64).ravel()
    ties = ranks.ties + np.where(n0 > 1, n0**3 - n0, 0.0)
    data = csc.tocsr()
    rank_m = sp.csc_matrix((ranks.ranks, csc.indices, csc.indptr), shape=csc.shape).tocsr()
    return MarkerIndex(data, rank_m, tuple(str(x) for x in genes), nnz, total, ties)


def index_from_arrays(arrays: MarkerArrays) -> MarkerIndex:
    """A `MarkerIndex` over the arrays the single-cell store keeps for marker tests (row
    readers of the values and ranks, per-gene totals): nothing is loaded whole."""
    n = int(arrays.data.shape[0])
    n0 = n - arrays.nnz
    ties = arrays.ties_nonzero + np.where(n0 > 1, n0**3 - n0, 0.0)
    return MarkerIndex(arrays.data, arrays.ranks, tuple(arrays.genes),
                       np.asarray(arrays.nnz, np.float64), np.asarray(arrays.total, np.float64),
                       ties, np.asarray(arrays.rank_total, np.float64))


def _row_sums(index: MarkerIndex, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    g = len(index.genes)
    sub, sub_r = index.data[rows], index.ranks[rows]
    cols = sub.indices
    nz = np.bincount(cols, minlength=g).astype(np.float64)
    total = np.bincount(cols, weights=sub.data, minlength=g)
    rank = np.bincount(sub_r.indices, weights=sub_r.data, minlength=g)
    return nz, total, rank


def _distinct(ids: np.ndarray) -> int:
    """Distinct non-null patient ids (strings or None)."""
    return pl.Series(ids.tolist(), dtype=pl.String, strict=False).drop_nulls().n_unique()


def _statistics(index: MarkerIndex, *, n1: int, nz_sel: np.ndarray, sum_sel: np.ndarray,
                rank_nz_sel: np.ndarray, top: int) -> pl.DataFrame:
    """The Wilcoxon statistics, fold changes and FDR of one selection of `n1` cells from its
    per-gene non-zero counts, sums and non-zero rank sums (the module docstring)."""
    from scipy.stats import norm

    n = index.n_cells
    n2 = n - n1
    n0 = n - index.nnz
    rank_sums = (n1 - nz_sel) * (n0 + 1) / 2.0 + rank_nz_sel + n0 * nz_sel
    u = rank_sums - n1 * (n1 + 1) / 2.0
    sigma = np.sqrt(np.maximum(n1 * n2 / 12.0 * ((n + 1) - index.ties / (n * (n - 1.0))),
                               0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sigma > 0, (u - n1 * n2 / 2.0) / sigma, 0.0)
    p = np.clip(2 * norm.sf(np.abs(z)), 0.0, 1.0)
    fdr = bh(p)
    # The rest's sum is a difference of two sums: rounding can leave it a hair below zero.
    mean_sel = np.maximum(sum_sel / n1, 0.0)
    mean_rest = np.maximum((index.total - sum_sel) / n2, 0.0)
    lfc = np.log2((np.expm1(mean_sel) + _EPS) / (np.expm1(mean_rest) + _EPS))
    out = pl.DataFrame({
        "gene": list(index.genes), "log2_fold_change": lfc, "mean_selected": mean_sel,
        "mean_rest": mean_rest, "pct_selected": 100 * nz_sel / n1,
        "pct_rest": 100 * (index.nnz - nz_sel) / n2, "u_statistic": u, "z_score": z,
        "p_value": p, "fdr": fdr,
    }).sort(["z_score", "log2_fold_change"], descending=True)
    return out.head(top) if top > 0 else out


def rank_markers(data: MarkerIndex | np.ndarray | sparse.spmatrix, *, selected: np.ndarray, genes: Sequence[str] | None = None,
                 top: int = 25, patients: Sequence[str] | np.ndarray | None = None
                 ) -> pl.DataFrame:
    """Genes ranked by how much higher they are in the `selected` cells (boolean mask) than in
    the rest: the `top` genes with the largest positive z-score (all genes when top <= 0).

    `data`: a `MarkerIndex` (fast for repeated selections) or a cells x genes log-normalised
    matrix (scipy sparse or numpy) with `genes`. Columns: rank, gene, log2_fold_change,
    mean_selected, mean_rest, pct_selected, pct_rest, u_statistic, z_score, p_value, fdr
    (Benjamini-Hochberg over every gene tested), n_cells_selected, n_patients_selected and
    n_patients_rest (the distinct `patients`, one subject_id per cell, when given) and evidence
    (the p-values are exploratory: cell-level).
    """
    index = data if isinstance(data, MarkerIndex) else marker_index(
        data, genes=list(genes) if genes is not None else [f"gene{i}" for i in
                                                          range(data.shape[1])])
    n = index.n_cells
    mask = np.asarray(selected, dtype=bool)
    if mask.shape != (n,):
        raise ValueError(f"selected has {mask.shape[0]} entries for {n} cells")
    n1, n2 = int(mask.sum()), int(n - mask.sum())
    if n1 == 0 or n2 == 0:
        raise ValueError("the selection and the rest must both hold at least one cell")
    if n1 <= n2:
        nz_sel, sum_sel, rank_nz_sel = _row_sums(index, np.flatnonzero(mask))
    else:   # fewer rows to read on the other side
        nz_rest, sum_rest, rank_rest = _row_sums(index, np.flatnonzero(~mask))
        all_ranks = index.rank_total if index.rank_total is not None else \
            np.asarray(index.ranks.sum(axis=0), dtype=np.float64).ravel()
        nz_sel, sum_sel = index.nnz - nz_rest, index.total - sum_rest
        rank_nz_sel = all_ranks - rank_rest
    out = _statistics(index, n1=n1, nz_sel=nz_sel, sum_sel=sum_sel,
                      rank_nz_sel=rank_nz_sel, top=top)
    n_sel = n_rest = None
    if patients is not None:
        ids = np.asarray(patients, dtype=object)
        if ids.shape != (n,):
            raise ValueError(f"patients has {ids.shape[0]} entries for {n} cells")
        n_sel, n_rest = _distinct(ids[mask]), _distinct(ids[~mask])
    return _labelled(out, n1=n1, n_sel=n_sel, n_rest=n_rest)


def _labelled(out: pl.DataFrame, *, n1: int, n_sel: int | None, n_rest: int | None
              ) -> pl.DataFrame:
    evidence = EXPLORATORY + ("" if n_sel is None else
                              f" ({n_sel} vs {n_rest} patients)")
    return out.with_row_index("rank", offset=1).with_columns(
        pl.col("rank").cast(pl.Int64), pl.lit(n1, pl.Int64).alias("n_cells_selected"),
        pl.lit(n_sel, pl.Int64).alias("n_patients_selected"),
        pl.lit(n_rest, pl.Int64).alias("n_patients_rest"), pl.lit(evidence).alias("evidence"))


GROUP_COLUMNS = ("group", "n_cells_group", *MARKER_COLUMNS)
_BLOCK_ROWS = 50_000        # cells read per pass step: bounded memory at any store size


@dataclass(frozen=True)
class GroupCodes:
    """Each cell's group as a number: `groups` (sorted labels) and `codes` (the position of a
    cell's label in `groups`, -1 for a cell without one)."""

    groups: tuple[str, ...]
    codes: np.ndarray


def group_codes(labels: Sequence[str | None] | np.ndarray) -> GroupCodes:
    """The `GroupCodes` of one label per cell (None: no group)."""
    names = pl.Series("label", np.asarray(labels, dtype=object).tolist(), dtype=pl.String,
                      strict=False)
    groups = tuple(sorted(names.drop_nulls().unique().to_list()))
    code_of = {name: k for k, name in enumerate(groups)}
    return GroupCodes(groups, names.replace_strict(code_of, default=-1,
                                                   return_dtype=pl.Int64).to_numpy())


@dataclass(frozen=True)
class GroupSums:
    """Per group and gene (group-major, groups x genes flattened): the non-zero count, the sum
    and the sum of within-gene ranks of the group's cells in a range of cells. Sums of
    disjoint ranges add up (`+`)."""

    nz: np.ndarray
    total: np.ndarray
    rank: np.ndarray

    def __add__(self, other: GroupSums) -> GroupSums:
        return GroupSums(self.nz + other.nz, self.total + other.total, self.rank + other.rank)


def group_sums(index: MarkerIndex, *, codes: GroupCodes, lo: int = 0, hi: int | None = None,
               progress: Callable[[float, str], None] | None = None) -> GroupSums:
    """The `GroupSums` of cells lo..hi, read in blocks of cells (bounded memory at any store
    size); `progress` after each block."""
    n, g, k = index.n_cells, len(index.genes), len(codes.groups)
    if codes.codes.shape != (n,):
        raise ValueError(f"labels has {codes.codes.shape[0]} entries for {n} cells")
    hi = n if hi is None else min(hi, n)
    nz, total, rank = np.zeros(k * g), np.zeros(k * g), np.zeros(k * g)
    report = progress or (lambda f, m: None)
    for a in range(lo, hi, _BLOCK_ROWS):
        b = min(hi, a + _BLOCK_ROWS)
        rows = np.arange(a, b)
        block = index.data[rows]
        flat, keep = _entries(block, codes.codes[a:b], g)
        nz += np.bincount(flat, minlength=k * g)
        total += np.bincount(flat, weights=block.data[keep], minlength=k * g)
        block = index.ranks[rows]
        flat, keep = _entries(block, codes.codes[a:b], g)
        rank += np.bincount(flat, weights=block.data[keep], minlength=k * g)
        report((b - lo) / max(hi - lo, 1), f"{b:,} of {n:,} cells read")
    return GroupSums(nz, total, rank)


def groups_table(index: MarkerIndex, *, sums: GroupSums, codes: GroupCodes, top: int = 25,
                 patients: Sequence[str] | np.ndarray | None = None) -> pl.DataFrame:
    """The `rank_groups` table from the `GroupSums` of every cell."""
    n, g, k = index.n_cells, len(index.genes), len(codes.groups)
    with_patients = _patients_per_group(patients, codes.codes, k) if patients is not None \
        else None
    sizes = np.bincount(codes.codes[codes.codes >= 0], minlength=k)
    tables = []
    for j, name in enumerate(codes.groups):
        n1 = int(sizes[j])
        if n1 >= n:
            continue
        part = slice(j * g, (j + 1) * g)
        out = _statistics(index, n1=n1, nz_sel=sums.nz[part], sum_sel=sums.total[part],
                          rank_nz_sel=sums.rank[part], top=top)
        n_sel, n_rest = (None, None) if with_patients is None else \
            (int(with_patients[0][j]), int(with_patients[1][j]))
        tables.append(_labelled(out, n1=n1, n_sel=n_sel, n_rest=n_rest).select(
            pl.lit(name, pl.String).alias("group"), pl.lit(n1, pl.Int64).alias("n_cells_group"),
            *MARKER_COLUMNS))
    if not tables:
        return pl.DataFrame(schema={"group": pl.String, "n_cells_group": pl.Int64,
                                    **_empty_marker_schema()})
    return pl.concat(tables)


def rank_groups(index: MarkerIndex, *, labels: Sequence[str | None] | np.ndarray,
                top: int = 25, patients: Sequence[str] | np.ndarray | None = None,
                progress: Callable[[float, str], None] | None = None) -> pl.DataFrame:
    """Marker genes of every group of cells (cell type, cluster) against all other cells:
    for each distinct non-null label, the `rank_markers` table of its cells vs the rest (the
    same Wilcoxon rank-sum, fold change, BH-FDR over the genes of that group, exploratory),
    its `top` genes (all when top <= 0), stacked with `group` and `n_cells_group` in front.

    One pass over the matrix in blocks of cells serves every group (`group_sums`: per group
    and gene the non-zero count, the sum and the sum of within-gene ranks), so it costs one
    read of the store however many groups there are; ranges of cells can be summed apart (on
    several workers) and added. Cells without a label count in every group's rest. A label
    held by every cell has no rest and is left out. `progress(fraction, message)` is called
    after each block."""
    codes = group_codes(labels)
    report = progress or (lambda f, m: None)
    sums = group_sums(index, codes=codes, progress=lambda f, m: report(0.95 * f, m))
    out = groups_table(index, sums=sums, codes=codes, top=top, patients=patients)
    report(1.0, f"markers of {out.get_column('group').n_unique()} groups")
    return out


def _entries(block: Any, codes: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray]:
    """(group x gene position of each stored entry of a CSR block of labelled cells, which
    entries belong to a labelled cell)."""
    per_entry = codes[np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))]
    keep = per_entry >= 0
    return per_entry[keep] * g + block.indices[keep], keep


def _patients_per_group(patients: Sequence[str] | np.ndarray, codes: np.ndarray, k: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(distinct patients among each group's cells, distinct patients among the rest): a
    patient is in group j's rest unless every one of its cells is in group j."""
    ids = pl.Series("p", np.asarray(patients, dtype=object).tolist(), dtype=pl.String,
                    strict=False)
    if ids.len() != codes.shape[0]:
        raise ValueError(f"patients has {ids.len()} entries for {codes.shape[0]} cells")
    pairs = pl.DataFrame({"p": ids, "code": codes}).drop_nulls("p").unique()
    inside = np.bincount(pairs.filter(pl.col("code") >= 0).get_column("code").to_numpy(),
                         minlength=k)
    only = (pairs.group_by("p").agg(pl.col("code").first(), pl.len().alias("n"))
            .filter((pl.col("n") == 1) & (pl.col("code") >= 0)).get_column("code").to_numpy())
    n_patients = pairs.get_column("p").n_unique()
    return inside, n_patients - np.bincount(only, minlength=k)


def _empty_marker_schema() -> dict[str, pl.DataType]:
    kinds: dict[str, pl.DataType] = {c: pl.Float64() for c in MARKER_COLUMNS}
    for c in ("rank", "n_cells_selected", "n_patients_selected", "n_patients_rest"):
        kinds[c] = pl.Int64()
    kinds["gene"] = kinds["evidence"] = pl.String()
    return kinds
