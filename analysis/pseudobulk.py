"""Pseudobulk differential expression with the patient as the replicate.

One job: pseudobulk differential expression, from the cell selection to the per-gene result
(with its cache).

Cells are never the unit of a responder/non-responder comparison (DESIGN.md section 3): with
five patients a cell-level test turns thousands of cells into thousands of "replicates" and its
p-values say nothing about patients (Squair et al., Nat Commun 2021, "Confronting false
discoveries in single-cell differential expression"; Crowell et al., Nat Commun 2020, muscat).
The recipe here is theirs:

1. choose cells (a cell type or cluster, a CAR status, or a lasso selection: `CellSelection`);
2. sum the raw UMI counts of those cells per sample (`sum_by_group`). Only the count matrix the
   single-cell store names as counts is summed (layers["counts"], .raw, an integer X);
   log-normalised or scaled values are never summed, and a file without counts is refused with
   a message saying so;
3. keep samples with at least `min_cells` chosen cells, then one sample per patient: in a day
   window (`analysis.differential.parse_window`: the sample closest to the window centre) for
   group comparisons, or a pre and a post sample of the same patients for the paired design;
4. drop lowly expressed genes with edgeR's `filterByExpr` rule (Chen, Lun & Smyth,
   F1000Research 2016; edgeR 3.x defaults): keep a gene when its CPM is at least
   min_count / median library size x 1e6 in at least n samples (n = the smaller group, or
   large_n + (n - large_n) x min_prop above large_n), and its total count is at least
   min_total_count (`filter_by_expr`);
5. fit DESeq2 (Love, Huber & Anders, Genome Biol 2014) with pydeseq2 0.5.4: design ~ group
   for responders vs non-responders, ~ subject + time for post vs pre in the same patients;
   Wald p-values; q = Benjamini-Hochberg over the tested genes (`analysis.stats.bh`). DESeq2's
   own independent filtering is off because step 4 already filtered (double filtering would
   change the FDR family without saying so).

`deseq2_test` is a pure function of arrays (the heavy part; a job runner can call it as it
is). `pseudobulk_de` reads counts through the single-cell store and caches the result on disk
by a hash of the file, the selection and every parameter, so a second request is instant.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from analysis.registry import Option, derived_table
from analysis.rules import Rules
from analysis.vocab import NON_RESPONDER, RESPONDER

if TYPE_CHECKING:
    from scipy import sparse

    from data_loaders import Study

__all__ = ["CellSelection", "PseudobulkParams", "PseudobulkCounts", "PseudobulkResult",
           "sum_by_group", "filter_by_expr", "deseq2_test", "pseudobulk_counts",
           "selection_cells",
           "choose_samples", "pseudobulk_de", "params_for", "cached_result", "pseudobulk_table",
           "RESULT_SCHEMA"]

Progress = Callable[[float, str], None]
Design = Literal["groups", "paired"]

RESULT_SCHEMA = {"gene": pl.String, "n_a": pl.Int64, "n_b": pl.Int64, "base_mean": pl.Float64,
                 "log2fc": pl.Float64, "lfc_se": pl.Float64, "stat": pl.Float64,
                 "p_value": pl.Float64, "q_value": pl.Float64}


# ---- which cells ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CellSelection:
    """The cells summed into each sample's pseudobulk. Every given criterion must hold:
    `cell_type` (a cell-type or cluster label), `car_status` ("CAR+" or "CAR-"), `cells` (row
    numbers of a box/lasso selection). Empty: every cell."""

    cell_type: str | None = None
    car_status: str | None = None
    cells: tuple[int, ...] = ()
    label: str = ""

    def describe(self) -> str:
        if self.label:
            return self.label
        parts = [p for p in (self.cell_type, self.car_status) if p]
        if self.cells:
            parts.append(f"{len(self.cells):,} selected cells")
        return ", ".join(parts) or "all cells"

    def mask(self, cells: pl.DataFrame) -> np.ndarray:
        """Boolean mask over the rows of a cell table (`analysis.embedding.cell_table`)."""
        keep = np.ones(cells.height, dtype=bool)
        if self.cell_type is not None:
            if "cell_type" not in cells.columns:
                raise ValueError("the cells have no cell type or cluster column")
            keep &= (cells.get_column("cell_type") == self.cell_type).fill_null(False) \
                .to_numpy()
        if self.car_status is not None:
            if "car_positive" not in cells.columns:
                raise ValueError("the cells carry no CAR status (obs car_positive)")
            pos = cells.get_column("car_positive").fill_null(False).to_numpy().astype(bool)
            keep &= pos if self.car_status == "CAR+" else ~pos
        if self.cells:
            rows = np.zeros(cells.height, dtype=bool)
            where = np.isin(cells.get_column("cell").to_numpy(), np.asarray(self.cells))
            rows[where] = True
            keep &= rows
        return keep


@dataclass(frozen=True)
class PseudobulkParams:
    """Everything a pseudobulk test depends on besides the file (part of the cache key).

    design "groups": `group_a` vs `group_b` of patient column `groups` in `window`;
    "paired": `window` (post) vs `baseline` (pre) in patients with both. log2fc is
    log2(a / b): a = group_a or the post sample."""

    selection: CellSelection = field(default_factory=CellSelection)
    design: Design = "groups"
    window: str = "D28"
    baseline: str = "baseline"
    groups: str = "response_group"
    group_a: str = RESPONDER
    group_b: str = NON_RESPONDER
    min_cells: int = 10
    min_count: int = 10
    min_total_count: int = 15
    large_n: int = 10
    min_prop: float = 0.7
    subjects: tuple[str, ...] = ()      # the cohort's patients; empty = every patient

    def __post_init__(self) -> None:
        if self.design not in ("groups", "paired"):
            raise ValueError("design must be 'groups' or 'paired'")
        if self.min_cells < 1:
            raise ValueError("min_cells must be at least 1")

    def contrast(self) -> str:
        if self.design == "paired":
            return f"{self.window} vs {self.baseline} (same patients)"
        return f"{self.group_a} vs {self.group_b} ({self.groups}) in {self.window}"


# ---- pure array functions ------------------------------------------------------------------
def sum_by_group(block: np.ndarray | sparse.spmatrix, *, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Column sums of the rows of a cells x genes matrix (CSR or dense) per group code
    (0..n_groups-1; -1 = left out): an n_groups x genes int64 array. Values must be counts
    (non-negative integers): anything else raises ValueError."""
    import scipy.sparse as sp

    m = sp.csr_matrix(block)
    data = m.data
    if data.size and (data.min() < 0 or not np.all(np.equal(np.mod(data, 1), 0))):
        raise ValueError("the matrix holds non-integer or negative values, not raw counts")
    codes = np.asarray(codes, dtype=np.int64)
    keep = codes >= 0
    rows = np.flatnonzero(keep)
    ind = sp.csr_matrix((np.ones(rows.size, dtype=np.float64), (codes[keep], rows)),
                        shape=(n_groups, m.shape[0]))
    return np.rint(np.asarray((ind @ m.astype(np.float64)).todense())).astype(np.int64)


def filter_by_expr(counts: np.ndarray, *, group: Sequence[Any] | None = None,
                   min_count: int = 10, min_total_count: int = 15, large_n: int = 10,
                   min_prop: float = 0.7) -> np.ndarray:
    """edgeR `filterByExpr` (edgeR 3.x defaults) on a samples x genes count array: a boolean
    mask of the genes to keep. The CPM cut-off is min_count / median library size x 1e6; a
    gene passes when at least n samples reach it (n = size of the smallest group, else all
    samples; above large_n, n = large_n + (n - large_n) x min_prop, less a 1e-14 tolerance as
    edgeR) and its total count is at least min_total_count."""
    counts = np.asarray(counts, dtype=np.float64)
    lib = counts.sum(axis=1)
    if counts.shape[0] == 0 or not np.any(lib > 0):
        return np.zeros(counts.shape[1], dtype=bool)
    if group is not None and len(group):
        _, sizes = np.unique(np.asarray(group, dtype=str), return_counts=True)
        n = float(sizes[sizes > 0].min())
    else:
        n = float(counts.shape[0])
    if n > large_n:
        n = large_n + (n - large_n) * min_prop
    cutoff = min_count / np.median(lib) * 1e6
    cpm = counts / np.maximum(lib, 1)[:, None] * 1e6
    enough = (cpm >= cutoff).sum(axis=0) >= n - 1e-14
    return enough & (counts.sum(axis=0) >= min_total_count - 1e-14)


def deseq2_test(counts: np.ndarray, *, genes: Sequence[str], subjects: Sequence[str],
                condition: Sequence[str], paired: bool = False,
                progress: Progress | None = None) -> pl.DataFrame:
    """DESeq2 Wald test of condition "a" vs "b" with pydeseq2 on a samples x genes count
    array (already filtered). `condition` holds "a"/"b" per sample; `paired` fits
    ~ subject + condition (each subject once in each condition), else ~ condition. Returns
    gene, base_mean, log2fc (log2 a/b), lfc_se, stat, p_value, q_value (BH over the genes
    with a p-value), sorted by p."""
    import pandas as pd
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    from analysis.stats import bh

    report = progress or (lambda f, m: None)
    cond = np.asarray(condition, dtype=str)
    if set(cond) - {"a", "b"} or min((cond == "a").sum(), (cond == "b").sum()) < 2:
        raise ValueError("DESeq2 needs at least 2 samples in each condition")
    index = [f"s{i}" for i in range(len(cond))]
    meta = pd.DataFrame({"condition": cond}, index=index)
    if paired:
        codes = {s: f"p{i}" for i, s in enumerate(dict.fromkeys(subjects))}
        meta["subject"] = [codes[s] for s in subjects]
    frame = pd.DataFrame(np.asarray(counts, dtype=np.int64), index=index,
                         columns=[f"g{j}" for j in range(len(genes))])
    inference = DefaultInference(n_cpus=1)
    dds = DeseqDataSet(counts=frame, metadata=meta,
                       design="~subject + condition" if paired else "~condition",
                       refit_cooks=True, inference=inference, quiet=True)
    steps = [("size factors", dds.fit_size_factors), ("gene-wise dispersions",
             dds.fit_genewise_dispersions), ("dispersion trend", dds.fit_dispersion_trend),
             ("dispersion prior", dds.fit_dispersion_prior),
             ("shrunken dispersions", dds.fit_MAP_dispersions),
             ("log fold changes", dds.fit_LFC), ("Cook's distances", dds.calculate_cooks),
             ("outlier refit", dds.refit), ("outlier genes", dds.cooks_outlier)]
    # the order of DeseqDataSet.deseq2() in pydeseq2 0.5.4, one step at a time for progress
    for k, (name, step) in enumerate(steps):
        report(k / (len(steps) + 1), f"DESeq2: {name}")
        step()
    report(len(steps) / (len(steps) + 1), "DESeq2: Wald tests")
    ds = DeseqStats(dds, contrast=["condition", "a", "b"], independent_filter=False,
                    inference=inference, quiet=True)
    ds.summary()
    res = ds.results_df
    p = res["pvalue"].to_numpy(dtype=np.float64)
    out = pl.DataFrame({"gene": list(genes), "base_mean": res["baseMean"].to_numpy(),
                        "log2fc": res["log2FoldChange"].to_numpy(),
                        "lfc_se": res["lfcSE"].to_numpy(), "stat": res["stat"].to_numpy(),
                        "p_value": p, "q_value": bh(p)}).with_columns(
        pl.col(pl.Float64).fill_nan(None))
    report(1.0, "DESeq2: done")
    return out.sort("p_value", "gene", nulls_last=True)


# ---- study-level: counts through the single-cell store ---------------------------------------
@dataclass(frozen=True)
class PseudobulkCounts:
    """Summed counts (samples x genes, int64), one row of `samples` per row of `counts`
    (sample_id, subject_id, day, n_cells, library_size), the gene labels."""

    counts: np.ndarray
    samples: pl.DataFrame
    genes: tuple[str, ...]


def _store(study: Study) -> Any:
    store = getattr(study, "single_cell", None)
    if store is None:
        raise ValueError("the study has no single-cell file")
    if store.resolved.counts is None:
        raise ValueError(
            f"{store.path.name}: no raw count matrix (layers['counts'], .raw or an integer X); "
            "pseudobulk tests sum UMI counts and never sum log-normalised or scaled values. "
            "Add the counts to the file, or name the layer in study.toml [single_cell] counts.")
    return store


def selection_cells(study: Study, *, selection: CellSelection) -> pl.DataFrame:
    """The cell table a selection is applied to (sample_id made when the file has none);
    with a CAR-status criterion, car_positive is the call of `analysis.car_status` (the
    study's cut on the CAR transcript or ADT counts), not the file's own column."""
    from analysis.embedding import cell_table

    if selection.car_status is not None:
        from analysis.car_status import car_cells

        cells = car_cells(study)
    else:
        cells = cell_table(study)
    if "sample_id" not in cells.columns:
        cells = cells.with_columns(pl.format("{}_D{}", "subject_id", "day").alias("sample_id"))
    return cells


def pseudobulk_counts(study: Study, *, selection: CellSelection = CellSelection(),
                      progress: Progress | None = None) -> PseudobulkCounts:
    """Raw counts of the selected cells summed per sample (every sample with at least one
    selected cell), read block by block from the single-cell store's count matrix."""
    store = _store(study)
    report = progress or (lambda f, m: None)
    cells = selection_cells(study, selection=selection)
    keep = selection.mask(cells)
    sub = cells.filter(pl.Series(keep))
    samples = (sub.group_by("sample_id").agg(pl.col("subject_id").first(),
                                             pl.col("day").drop_nulls().first(),
                                             pl.len().cast(pl.Int64).alias("n_cells"))
               .sort("subject_id", "day", "sample_id", nulls_last=True))
    order = {s: i for i, s in enumerate(samples.get_column("sample_id").to_list())}
    codes = np.full(cells.height, -1, dtype=np.int64)
    codes[keep] = sub.get_column("sample_id").replace_strict(order, return_dtype=pl.Int64) \
        .to_numpy()
    genes = tuple(store.counts_gene_names)
    total = np.zeros((samples.height, len(genes)), dtype=np.int64)
    n = store.n_obs
    for lo, hi, block in store.blocks("counts"):
        if np.any(codes[lo:hi] >= 0):
            total += sum_by_group(block, codes=codes[lo:hi], n_groups=samples.height)
        report(hi / max(n, 1), "summing counts per sample")
    samples = samples.with_columns(pl.Series("library_size", total.sum(axis=1)))
    return PseudobulkCounts(total, samples, genes)


def choose_samples(samples: pl.DataFrame, *, params: PseudobulkParams,
                   groups: pl.DataFrame | None = None) -> pl.DataFrame:
    """The samples a test uses, one or two per patient, with `condition` "a"/"b": for
    "groups" the sample closest to the window centre of each patient in group_a or group_b
    (`groups`: subject_id plus the params' groups column); for "paired" the window and the
    baseline sample of each patient having both. Samples with fewer than min_cells cells are
    dropped first."""
    from analysis.differential import parse_window

    ok = samples.filter(pl.col("n_cells") >= params.min_cells).filter(
        pl.col("day").is_not_null())
    if params.subjects:
        ok = ok.filter(pl.col("subject_id").is_in(list(params.subjects)))

    def closest(window: str) -> pl.DataFrame:
        w = parse_window(window)
        inside = pl.lit(True)
        if w.lo is not None:
            inside = inside & (pl.col("day") >= w.lo)
        if w.hi is not None:
            inside = inside & (pl.col("day") <= w.hi)
        return (ok.filter(inside).with_columns((pl.col("day") - w.centre).abs().alias("_d"))
                .sort("subject_id", "_d", "day").group_by("subject_id", maintain_order=True)
                .first().drop("_d"))

    if params.design == "paired":
        post = closest(params.window).with_columns(pl.lit("a").alias("condition"))
        pre = closest(params.baseline).with_columns(pl.lit("b").alias("condition"))
        both = set(post.get_column("subject_id")) & set(pre.get_column("subject_id"))
        out = pl.concat([post, pre]).filter(pl.col("subject_id").is_in(sorted(both)))
        return out.filter(pl.col("sample_id").is_unique()).sort("subject_id", "condition")
    if groups is None or params.groups not in groups.columns:
        raise ValueError(f"no patient column {params.groups!r} to define the groups")
    g = groups.select("subject_id", pl.col(params.groups).cast(pl.String).alias("_g"))
    picked = closest(params.window).join(g, on="subject_id", how="inner")
    return (picked.filter(pl.col("_g").is_in([params.group_a, params.group_b]))
            .with_columns(pl.when(pl.col("_g") == params.group_a).then(pl.lit("a"))
                          .otherwise(pl.lit("b")).alias("condition")).drop("_g")
            .sort("condition", "subject_id"))


@dataclass(frozen=True)
class PseudobulkResult:
    """A pseudobulk test: one row per tested gene (RESULT_SCHEMA, sorted by p), the samples
    used (with condition a/b), the parameters and notes (genes filtered, samples dropped)."""

    table: pl.DataFrame
    samples: pl.DataFrame
    params: PseudobulkParams
    n_genes_tested: int
    n_genes_total: int
    notes: tuple[str, ...] = ()
    from_cache: bool = False


def _group_frame(study: Study, column: str) -> pl.DataFrame:
    from analysis.cohort import response_groups

    groups = response_groups(study)
    if column not in groups.columns and column in study.patients.columns:
        groups = groups.join(study.patients.select("subject_id", column), on="subject_id",
                             how="left")
    return groups


def _key(study: Study, params: PseudobulkParams) -> str:
    from analysis.embedding import content_key

    text = json.dumps({"digest": content_key(study), "v": 1, **asdict(params)}, sort_keys=True,
                      default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _cache_name(study: Study, params: PseudobulkParams) -> str:
    return f"pseudobulk-{_key(study, params)}.zip"


def cached_result(study: Study, *, params: PseudobulkParams) -> PseudobulkResult | None:
    """The cached result of these parameters on this file, or None (nothing is computed)."""
    store = getattr(study, "single_cell", None)
    got = store.derived_frames(_cache_name(study, params)) if store is not None else None
    if got is None:
        return None
    frames, meta = got
    return PseudobulkResult(frames["table"], frames["samples"], params,
                            int(meta["n_genes_tested"]), int(meta["n_genes_total"]),
                            tuple(meta["notes"]), from_cache=True)


def pseudobulk_de(study: Study, *, params: PseudobulkParams = PseudobulkParams(),
                  progress: Progress | None = None, use_cache: bool = True
                  ) -> PseudobulkResult:
    """Pseudobulk DESeq2 test of `params` (see the module docstring), cached on disk."""
    if use_cache and (hit := cached_result(study, params=params)) is not None:
        return hit
    report = progress or (lambda f, m: None)
    pb = pseudobulk_counts(study, selection=params.selection,
                           progress=lambda f, m: report(0.4 * f, m))
    groups = None if params.design == "paired" else _group_frame(study, params.groups)
    used = choose_samples(pb.samples, params=params, groups=groups)
    notes = []
    small = pb.samples.filter(pl.col("n_cells") < params.min_cells).height
    if small:
        notes.append(f"{small} sample(s) with fewer than {params.min_cells} selected cells "
                     "left out")
    n_a = used.filter(pl.col("condition") == "a").height
    n_b = used.filter(pl.col("condition") == "b").height
    if min(n_a, n_b) < 2:
        raise ValueError(f"{params.contrast()}: {n_a} and {n_b} patient(s) with at least "
                         f"{params.min_cells} cells of {params.selection.describe()}; "
                         "DESeq2 needs at least 2 in each")
    rows = pb.samples.with_row_index("_row").join(used.select("sample_id"), on="sample_id",
                                                    how="semi")
    row_of = dict(zip(rows.get_column("sample_id"), rows.get_column("_row"), strict=True))
    idx = np.asarray([row_of[s] for s in used.get_column("sample_id")], dtype=np.int64)
    counts = pb.counts[idx]
    cond = used.get_column("condition").to_list()
    report(0.42, "filtering lowly expressed genes")
    keep = filter_by_expr(counts, group=cond, min_count=params.min_count,
                          min_total_count=params.min_total_count, large_n=params.large_n,
                          min_prop=params.min_prop)
    if not keep.any():
        raise ValueError(f"{params.selection.describe()}: no gene passes the expression filter "
                         f"(min_count {params.min_count}, min_total_count "
                         f"{params.min_total_count})")
    notes.append(f"{int(keep.sum()):,} of {len(pb.genes):,} genes tested (edgeR filterByExpr "
                 f"rule: min_count {params.min_count}, min_total_count "
                 f"{params.min_total_count})")
    genes = [g for g, k in zip(pb.genes, keep, strict=True) if k]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        table = deseq2_test(counts[:, keep], genes=genes,
                            subjects=used.get_column("subject_id").to_list(), condition=cond,
                            paired=params.design == "paired",
                            progress=lambda f, m: report(0.45 + 0.55 * f, m))
    notes += list(dict.fromkeys(f"pydeseq2: {w.message}" for w in caught
                                if issubclass(w.category, UserWarning)))
    n_pat_a = used.filter(pl.col("condition") == "a").get_column("subject_id").n_unique()
    n_pat_b = used.filter(pl.col("condition") == "b").get_column("subject_id").n_unique()
    table = table.with_columns(pl.lit(n_pat_a, pl.Int64).alias("n_a"),
                               pl.lit(n_pat_b, pl.Int64).alias("n_b")).select(
        list(RESULT_SCHEMA)).cast(RESULT_SCHEMA)
    result = PseudobulkResult(table, used, params, int(keep.sum()), len(pb.genes),
                              tuple(notes))
    study.single_cell.save_derived_frames(
        _cache_name(study, params), {"table": table, "samples": used},
        {"n_genes_tested": result.n_genes_tested, "n_genes_total": result.n_genes_total,
         "notes": list(notes)})
    return result


@derived_table("pseudobulk", "Pseudobulk DESeq2 per gene, patient as the replicate: responders "
               "vs non-responders in a window, or post vs pre in the same patients (gene, n_a, "
               "n_b, log2fc, p_value, q_value; sorted by p)",
               options={"cell_type": Option(str, "", "cell type or cluster to sum (empty: "
                                                     "all cells)"),
                        "car_status": Option(str, "", "CAR+ or CAR- cells only", ("", "CAR+",
                                                                                 "CAR-")),
                        "window": Option(str, "D28", "baseline, D14, D28, M3, M6, M12 or "
                                                     "start:end (days)"),
                        "groups": Option(str, "response_group", "patient column defining "
                                                                "the two groups"),
                        "group_a": Option(str, RESPONDER, "first group (log2fc = a / b)"),
                        "group_b": Option(str, NON_RESPONDER, "second group"),
                        "paired": Option(bool, False, "post (window) vs pre (baseline) in "
                                                      "the same patients, ~ subject + time"),
                        "pseudobulk_min_cells": Option(int, 10, "fewest selected cells for "
                                                                "a sample (rule setting)")})
def pseudobulk_table(study: Study, *, cell_type: str = "", car_status: str = "",
                     window: str = "D28", groups: str = "response_group",
                     group_a: str = RESPONDER, group_b: str = NON_RESPONDER,
                     paired: bool = False, rules: Rules | None = None) -> pl.DataFrame:
    """`pseudobulk_de` as a table (cached); sample and gene filters from the rule settings
    pseudobulk_min_cells, pseudobulk_min_count and pseudobulk_min_total_count."""
    params = params_for(study, rules=rules, design="paired" if paired else "groups",
                        selection=CellSelection(cell_type=cell_type or None,
                                                car_status=car_status or None),
                        window=window, groups=groups, group_a=group_a, group_b=group_b)
    return pseudobulk_de(study, params=params).table


def params_for(study: Study, *, rules: Rules | None = None, **fields: Any) -> PseudobulkParams:
    """PseudobulkParams with the study's rule settings for the sample and gene filters."""
    from analysis.rules import rules_for

    r = rules if rules is not None else rules_for(study)
    return PseudobulkParams(min_cells=r.pseudobulk_min_cells, min_count=r.pseudobulk_min_count,
                            min_total_count=r.pseudobulk_min_total_count, **fields)
