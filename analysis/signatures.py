"""Gene-signature scores per cell, per sample and per pseudobulk, compared at patient level.

Two per-cell scores (both on the log-normalised expression the single-cell store chooses;
genes of a set that the file does not measure, or that never vary, are left out and counted):
- "mean_z" (the default): for each gene, z = (x - mean) / SD over all cells of the study; the
  score is the mean z of the set's genes. Simple, linear, comparable between sets of
  different size and between patients of one study (not between studies). The same idea as
  scanpy's `score_genes` without its random control genes, so it is reproducible exactly.
- "aucell": the AUCell rank score (Aibar et al., Nat Methods 2017, SCENIC): genes ranked by
  expression within each cell; AUC of the set's recovery curve over the top `max_rank` genes
  (default 5% of the genes, AUCell's aucMaxRank), divided by max_rank x set size. Scale-free
  and robust to depth; genes with zero counts are never counted as recovered (AUCell ranks
  them at random) and ties are broken by gene order.

Per sample, a cell score is averaged over the chosen cells of the sample; a pseudobulk score
is the mean over set genes of the z-score, across samples, of log2(CPM + 1) of the summed raw
counts (`pseudobulk_scores`). Patient-level comparison (`compare_signatures`) takes one sample
per patient in a day window and tests with `analysis.stats` (Mann-Whitney exact or
permutation p, Hedges' g, BH-FDR over the signatures).

decoupler 2.2 installs against the project's pins but is not used: it scores an in-memory
AnnData (the whole matrix dense per block), while these scores stream one gene column or one
block of cells from the store, and it would add four plotting packages (docs/signatures.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from analysis.pseudobulk import CellSelection
from analysis.registry import Option, derived_table
from analysis.vocab import NON_RESPONDER, RESPONDER

if TYPE_CHECKING:
    from scipy import sparse

    from data_loaders import Study

__all__ = ["Method", "METHODS", "DEFAULT_METHOD", "set_indices", "mean_z_scores",
           "aucell_scores", "pseudobulk_scores", "SignatureScores", "cell_scores",
           "sample_scores", "study_pseudobulk_scores", "compare_signatures",
           "signatures_table", "signature_comparison_table", "SCORE_UNITS",
           "expression_units", "expression_summary"]

Method = Literal["mean_z", "aucell"]
METHODS: tuple[str, ...] = ("mean_z", "aucell")
DEFAULT_METHOD: Method = "mean_z"
SCORE_UNITS = {"mean_z": "mean z-score of log-normalised expression",
               "aucell": "AUCell rank score (0-1)",
               "pseudobulk": "mean z-score of pseudobulk log2(CPM + 1)"}
Progress = Callable[[float, str], None]


def set_indices(genes: Sequence[str], members: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Column positions of a set's genes in `genes` (case-insensitive match) and the genes
    not found."""
    where = {g.upper(): j for j, g in enumerate(genes)}
    idx = [where.get(m.upper()) for m in members]
    return (np.asarray([i for i in idx if i is not None], dtype=np.int64),
            [m for m, i in zip(members, idx, strict=True) if i is None])


# ---- pure array functions ------------------------------------------------------------------
def mean_z_scores(matrix: np.ndarray | sparse.spmatrix, *, sets: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean z-score per cell (rows of a cells x genes sparse or dense matrix) for each set of
    column positions: (cells x sets float32 scores, genes used per set). Genes with zero SD
    are left out; a set with no usable gene scores NaN."""
    import scipy.sparse as sp

    m = sp.csc_matrix(matrix)
    n = m.shape[0]
    out = np.zeros((n, len(sets)), dtype=np.float64)
    used = np.zeros(len(sets), dtype=np.int64)
    z_cache: dict[int, np.ndarray | None] = {}
    for k, cols in enumerate(sets):
        for j in np.unique(cols):
            if j not in z_cache:
                col = np.asarray(m[:, [int(j)]].todense(), dtype=np.float64).ravel()
                sd = col.std()
                z_cache[j] = None if not np.isfinite(sd) or sd <= 0 else (col - col.mean()) / sd
            z = z_cache[j]
            if z is not None:
                out[:, k] += z
                used[k] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(used > 0, out / np.maximum(used, 1), np.nan)
    return out.astype(np.float32), used


def aucell_scores(block: np.ndarray | sparse.spmatrix, *, sets: Sequence[np.ndarray], max_rank: int) -> np.ndarray:
    """AUCell-style rank score per cell (rows of a CSR block) and set: sum over the set's
    genes ranked r < max_rank (0 = highest expression in the cell) of (max_rank - r), divided
    by max_rank x set size. Zero-valued genes are never recovered."""
    import scipy.sparse as sp

    m = sp.csr_matrix(block)
    n = m.shape[0]
    out = np.zeros((n, len(sets)), dtype=np.float64)
    if m.nnz == 0:
        return out.astype(np.float32)
    row = np.repeat(np.arange(n), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, row))      # within a row: highest first
    rank = np.empty(m.nnz, dtype=np.int64)
    rank[order] = np.arange(m.nnz) - m.indptr[row[order]]
    top = rank < max_rank
    gene_sets = np.zeros((m.shape[1], len(sets)), dtype=bool)
    for k, cols in enumerate(sets):
        gene_sets[cols, k] = True
    sizes = np.array([max(len(np.unique(c)), 1) for c in sets], dtype=np.float64)
    for k in range(len(sets)):
        hit = top & gene_sets[m.indices, k]
        np.add.at(out[:, k], row[hit], max_rank - rank[hit])
    return (out / (max_rank * sizes)).astype(np.float32)


def pseudobulk_scores(counts: np.ndarray, *, sets: Sequence[np.ndarray]) -> np.ndarray:
    """Per sample (rows of a samples x genes count array) and set: the mean over the set's
    genes of the z-score across samples of log2(CPM + 1); genes without spread are left out
    (a set with none scores NaN)."""
    counts = np.asarray(counts, dtype=np.float64)
    lib = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    logcpm = np.log2(counts / lib * 1e6 + 1)
    sd = logcpm.std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (logcpm - logcpm.mean(axis=0)) / sd
    out = np.full((counts.shape[0], len(sets)), np.nan)
    for k, cols in enumerate(sets):
        good = [j for j in np.unique(cols) if sd[j] > 0]
        if good:
            out[:, k] = z[:, good].mean(axis=1)
    return out


def expression_units(study: Study) -> str:
    """What the expression values that colour cells are, as the single-cell store decided:
    e.g. "log-normalised expression, ln(1+CP10k)" when computed from counts."""
    store = getattr(study, "single_cell", None)
    if store is None:
        return "expression"
    r = store.resolved
    if r.lognorm_how == "from_counts":
        return "log-normalised expression, ln(1+CP10k) of the counts"
    if r.lognorm_how == "log1p":
        return f"ln(1 + x) of the file's {r.lognorm} values"
    return f"log-normalised expression (file's {r.lognorm})"


def expression_summary(frame: pl.DataFrame, *, value: str = "value",
                       by: Sequence[str] = ("feature", "group")) -> pl.DataFrame:
    """Per group of `by`: mean of `value`, fraction of cells above zero (for a gene: the
    fraction expressing; for a score: the fraction above the study mean) and n_cells; the
    frame behind a dot plot."""
    return (frame.group_by(list(by)).agg(pl.col(value).mean().alias("mean"),
                                         (pl.col(value) > 0).mean().alias("fraction"),
                                         pl.len().cast(pl.Int64).alias("n_cells"))
            .sort(list(by)))


# ---- study level ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SignatureScores:
    """Per-cell scores (`cell` plus one Float32 column per set, in file order) and one row per
    set: signature, n_genes, n_used, missing (genes the file lacks), source, method."""

    cells: pl.DataFrame
    sets: pl.DataFrame
    method: str


def _sets_frame(gene_sets: Sequence[Any], genes: Sequence[str], used: Sequence[int] | None,
                method: str) -> tuple[list[np.ndarray], pl.DataFrame]:
    idx, rows = [], []
    for k, gs in enumerate(gene_sets):
        cols, missing = set_indices(genes, gs.genes)
        idx.append(cols)
        rows.append({"signature": gs.name, "n_genes": len(gs.genes),
                     "n_used": int(used[k]) if used is not None else len(cols),
                     "missing": ", ".join(missing), "source": gs.source, "method": method})
    return idx, pl.DataFrame(rows, schema={"signature": pl.String, "n_genes": pl.Int64,
                                           "n_used": pl.Int64, "missing": pl.String,
                                           "source": pl.String, "method": pl.String})


def _gene_sets(gene_sets: Sequence[Any] | None) -> Sequence[Any]:
    if gene_sets is not None:
        return gene_sets
    from data_loaders.gene_sets import shipped_gene_sets

    return shipped_gene_sets()


def cell_scores(study: Study, *, gene_sets: Sequence[Any] | None = None,
                method: Method = DEFAULT_METHOD, max_rank: int | None = None,
                progress: Progress | None = None) -> SignatureScores:
    """Per-cell scores of `gene_sets` (default: the shipped curated sets) over every cell of
    the study's single-cell file, by `method` ("mean_z" reads only the sets' gene columns
    from the gene-column store; "aucell" streams blocks of cells)."""

    from analysis.embedding import var_names

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    gene_sets = _gene_sets(gene_sets)
    store = study.single_cell
    if store is None:
        raise ValueError("the study has no single-cell file")
    report = progress or (lambda f, m: None)
    genes = var_names(study)
    idx, _ = _sets_frame(gene_sets, genes, None, method)
    n = store.n_obs
    if method == "mean_z":
        wanted = np.unique(np.concatenate([c for c in idx if c.size] or [np.zeros(0, int)]))
        sub = store.gene_columns([int(j) for j in wanted],
                                 progress=lambda f, m: report(0.5 * f, m))
        report(0.9, "read the set genes")
        local = {int(j): i for i, j in enumerate(wanted)}
        scores, used = mean_z_scores(sub, sets=[np.asarray([local[int(j)] for j in c],
                                                           dtype=np.int64) for c in idx])
    else:
        k = max_rank or max(1, int(np.ceil(0.05 * len(genes))))
        parts = []
        for _, hi, block in store.blocks("lognorm"):
            parts.append(aucell_scores(block, sets=idx, max_rank=k))
            report(hi / max(n, 1), "ranking genes in each cell")
        scores = np.vstack(parts) if parts else np.zeros((0, len(idx)), np.float32)
        used = np.asarray([len(np.unique(c)) for c in idx], dtype=np.int64)
    report(1.0, "scored")
    _, sets = _sets_frame(gene_sets, genes, used, method)
    frame = pl.DataFrame({"cell": np.arange(n, dtype=np.int64)}).with_columns(
        [pl.Series(gs.name, scores[:, k], dtype=pl.Float32) for k, gs in enumerate(gene_sets)])
    return SignatureScores(frame, sets, method)


def sample_scores(study: Study, *, gene_sets: Sequence[Any] | None = None,
                  method: Method = DEFAULT_METHOD,
                  selection: CellSelection = CellSelection(), min_cells: int = 10,
                  scores: SignatureScores | None = None) -> pl.DataFrame:
    """Per sample and set, the mean per-cell score of the selected cells: sample_id,
    subject_id, day, signature, score, n_cells, n_used, method (samples with fewer than
    `min_cells` selected cells are left out)."""
    from analysis.pseudobulk import selection_cells

    scores = scores or cell_scores(study, gene_sets=gene_sets, method=method)
    cells = selection_cells(study, selection=selection)
    keep = pl.Series(selection.mask(cells))
    names = scores.sets.get_column("signature").to_list()
    joined = cells.select("cell", "sample_id", "subject_id", "day").filter(keep).join(
        scores.cells, on="cell", how="inner")
    long = (joined.unpivot(index=["cell", "sample_id", "subject_id", "day"], on=names,
                           variable_name="signature", value_name="score")
            .group_by("sample_id", "subject_id", "day", "signature")
            .agg(pl.col("score").cast(pl.Float64).mean(), pl.len().cast(pl.Int64)
                 .alias("n_cells"))
            .filter(pl.col("n_cells") >= min_cells))
    return (long.join(scores.sets.select("signature", "n_used", "method"), on="signature",
                      how="left")
            .sort("signature", "subject_id", "day", "sample_id"))


def study_pseudobulk_scores(study: Study, *, gene_sets: Sequence[Any] | None = None,
                            selection: CellSelection = CellSelection(), min_cells: int = 10
                            ) -> pl.DataFrame:
    """Per sample and set, the pseudobulk score (`pseudobulk_scores`) of the selected cells'
    summed raw counts, in the shape of `sample_scores` (method "pseudobulk")."""
    from analysis.pseudobulk import pseudobulk_counts

    gene_sets = _gene_sets(gene_sets)
    pb = pseudobulk_counts(study, selection=selection)
    ok = (pb.samples.get_column("n_cells") >= min_cells).to_numpy()
    idx, sets = _sets_frame(gene_sets, pb.genes, None, "pseudobulk")
    values = pseudobulk_scores(pb.counts[ok], sets=idx)
    samples = pb.samples.filter(pl.Series(ok))
    rows = [samples.select("sample_id", "subject_id", "day", "n_cells").with_columns(
        pl.lit(gs.name).alias("signature"), pl.Series("score", values[:, k]))
        for k, gs in enumerate(gene_sets)]
    return (pl.concat(rows).join(sets.select("signature", "n_used", "method"),
                                 on="signature", how="left")
            .select("sample_id", "subject_id", "day", "signature", "score", "n_cells",
                    "n_used", "method")
            .with_columns(pl.col("score").fill_nan(None))
            .sort("signature", "subject_id", "day", "sample_id"))


def compare_signatures(scores: pl.DataFrame, *, groups: pl.DataFrame, window: str = "D28",
                       column: str = "response_group", group_a: str = RESPONDER,
                       group_b: str = NON_RESPONDER) -> pl.DataFrame:
    """Patient-level comparison of sample scores (`sample_scores` shape) between two patient
    groups in a day window: one sample per patient (closest to the window centre); per
    signature n_a, n_b, mean_a, mean_b, hedges_g, cliffs_delta, p_value, test, q_value (BH
    over the signatures)."""
    from analysis.differential import parse_window
    from analysis.stats import bh, effect_sizes, mann_whitney_rows

    w = parse_window(window)
    inside = pl.lit(True)
    if w.lo is not None:
        inside = inside & (pl.col("day") >= w.lo)
    if w.hi is not None:
        inside = inside & (pl.col("day") <= w.hi)
    per = (scores.filter(inside & pl.col("score").is_not_null())
           .with_columns((pl.col("day") - w.centre).abs().alias("_d"))
           .sort("signature", "subject_id", "_d", "day")
           .group_by("signature", "subject_id", maintain_order=True).first()
           .join(groups.select("subject_id", pl.col(column).cast(pl.String).alias("_g")),
                 on="subject_id", how="inner")
           .filter(pl.col("_g").is_in([group_a, group_b])))
    schema = {"signature": pl.String, "window": pl.String, "n_a": pl.Int64, "n_b": pl.Int64,
              "mean_a": pl.Float64, "mean_b": pl.Float64, "hedges_g": pl.Float64,
              "cliffs_delta": pl.Float64, "p_value": pl.Float64, "test": pl.String,
              "q_value": pl.Float64}
    if per.height == 0:
        return pl.DataFrame(schema=schema)
    wide = per.pivot(on="subject_id", index="signature", values="score")
    subjects = [c for c in wide.columns if c != "signature"]
    grp = dict(zip(per.get_column("subject_id"), per.get_column("_g"), strict=False))
    in_a = np.asarray([grp[s] == group_a for s in subjects])
    in_b = np.asarray([grp[s] == group_b for s in subjects])
    x = wide.select(subjects).to_numpy().astype(np.float64)
    _, p, test = mann_whitney_rows(x, in_a=in_a, in_b=in_b)
    eff = effect_sizes(x, in_a=in_a, in_b=in_b)
    return pl.DataFrame({
        "signature": wide.get_column("signature"), "window": [w.label] * wide.height,
        "n_a": eff["n_a"].astype(np.int64), "n_b": eff["n_b"].astype(np.int64),
        "mean_a": eff["mean_a"], "mean_b": eff["mean_b"], "hedges_g": eff["hedges_g"],
        "cliffs_delta": eff["cliffs_delta"], "p_value": p, "test": [str(t) for t in test],
        "q_value": bh(p)}, schema=schema).with_columns(
        pl.col(pl.Float64).fill_nan(None)).sort("p_value", "signature", nulls_last=True)


def _table_sets(gene_sets: str) -> Sequence[Any] | None:
    if not gene_sets:
        return None
    from data_loaders.gene_sets import read_gmt

    return read_gmt(gene_sets)


_OPTIONS = {"method": Option(str, DEFAULT_METHOD, "per-cell score (mean_z, aucell) or "
                             "pseudobulk", (*METHODS, "pseudobulk")),
            "cell_type": Option(str, "", "cell type or cluster (empty: all cells)"),
            "car_status": Option(str, "", "CAR+ or CAR- cells only", ("", "CAR+", "CAR-")),
            "gene_sets": Option(str, "", "a GMT file of gene sets (empty: the shipped "
                                         "curated sets, resources/gene_sets.gmt)")}


def _scores(study: Study, method: str, cell_type: str, car_status: str, gene_sets: str
            ) -> pl.DataFrame:
    sel = CellSelection(cell_type=cell_type or None, car_status=car_status or None)
    sets = _table_sets(gene_sets)
    if method == "pseudobulk":
        return study_pseudobulk_scores(study, gene_sets=sets, selection=sel)
    return sample_scores(study, gene_sets=sets, method=method, selection=sel)  # type: ignore[arg-type]


@derived_table("signatures", "Gene-signature score per single-cell sample and set (mean z, "
               "AUCell or pseudobulk; curated sets of resources/gene_sets.gmt or a GMT file)",
               options=_OPTIONS)
def signatures_table(study: Study, *, method: str = DEFAULT_METHOD, cell_type: str = "",
                     car_status: str = "", gene_sets: str = "") -> pl.DataFrame:
    """`sample_scores` (or the pseudobulk scores) with each patient's response group."""
    from analysis.cohort import response_groups

    out = _scores(study, method, cell_type, car_status, gene_sets)
    return out.join(response_groups(study).select("subject_id", "response_group"),
                    on="subject_id", how="left")


@derived_table("signature_comparison", "Gene-signature scores, responders vs non-responders "
               "in a day window, one sample per patient (Mann-Whitney, Hedges' g, BH-FDR)",
               options={**_OPTIONS, "window": Option(str, "D28", "baseline, D14, D28, M3, M6, "
                                                                 "M12 or start:end (days)")})
def signature_comparison_table(study: Study, *, method: str = DEFAULT_METHOD, cell_type: str = "",
                               car_status: str = "", gene_sets: str = "", window: str = "D28"
                               ) -> pl.DataFrame:
    """`compare_signatures` of the sample scores between the response groups."""
    from analysis.cohort import response_groups

    return compare_signatures(_scores(study, method, cell_type, car_status, gene_sets),
                              groups=response_groups(study), window=window)
