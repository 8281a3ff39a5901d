"""Cell embeddings that stay fast at a million cells: compute once, cache on disk, draw a
subsample.

The pipeline follows the usual single-cell recipe (Luecken & Theis, Mol Syst Biol 2019; scanpy
`pp.highly_variable_genes` -> `pp.pca` -> `pp.neighbors` -> `tl.umap`):

1. a gene-column store: the log-normalised matrix written once as CSC to the cache, so one gene
   is read at a time (colouring) and the marker test scans columns without loading the file.
   Which matrix that is (X, .raw, a layer, or log1p of counts per 10,000 when the file holds
   only counts) is the single-cell store's decision (`data_loaders.single_cell`); scaled
   values are never used;
2. highly variable genes by normalised dispersion (Satija et al. 2015, Seurat v1 flavour: the
   variance/mean ratio z-scored within 20 bins of mean expression), on the raw counts
   normalised to log1p(counts per 10,000) when the file has counts, else on its
   log-normalised values;
3. PCA (scikit-learn, randomized SVD, Halko et al. 2011) on the HVG columns;
4. UMAP (McInnes et al. 2018, umap-learn) on the principal components.

Results are cached in `<study>/.cache/` (or a per-user cache folder when the study folder is not
writable), keyed by the content hash of the input file, the matrices chosen and the parameters,
so a rerun of the page never recomputes. An embedding already in the file (obsm X_umap, umap,
X_tsne, X_pca, ...) is used as it is. `stratified_subsample` picks the cells that are drawn
(seeded, by sample and cell type); statistics elsewhere always use all cells.

Every read and write of files goes through `data_loaders.single_cell` (the study's
single-cell store: obs, var, obsm, gene columns, rows of cells and the derived-data cache);
this module computes and opens no file.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from analysis.markers import MarkerIndex, index_from_arrays
from analysis.registry import derived_table
from analysis.vocab import NOT_EVALUABLE
from data_loaders.single_cell.cache import (
    CacheLocation,
    cache_file,
    cache_location,
    file_digest,
    load_array,
    save_array,
)
from data_loaders.single_cell.store import normalise_counts

if TYPE_CHECKING:
    from scipy import sparse

    from analysis.cohort import Cohort, Focus
    from data_loaders import Study

__all__ = ["EmbeddingParams", "Embedding", "CacheLocation", "cache_location", "file_digest",
           "cell_table", "obs_column", "var_names", "available_bases", "load_embedding",
           "embed_study", "embed_matrix", "embed_flow", "cached_flow_embedding", "drawn_cells",
           "DrawnCells", "flow_landscape", "annotate_points", "stratified_subsample",
           "gene_vector", "expression_store", "read_expression", "read_marker_index",
           "expression_rows", "content_key",
           "embedding_key", "highly_variable_genes", "embedding_input", "receptor_chains",
           "cell_type_source", "in_window", "in_polygon", "extent", "cell_table_cached",
           "CELL_COLUMNS",
           "COMPUTED_BASIS", "OBSM_BASES"]

Progress = Callable[[float, str], None]

OBSM_BASES = ("X_umap", "X_tsne", "X_pca")
COMPUTED_BASIS = "UMAP (computed)"
CELL_COLUMNS = ("cell", "subject_id", "sample_id", "day", "timepoint", "cell_type",
                "car_positive")
@dataclass(frozen=True)
class EmbeddingParams:
    """Parameters of a computed embedding (part of the cache key).

    `threads` 0 uses every core (UMAP's parallel optimisation is not bit-reproducible between
    runs); 1 runs single-threaded and reproduces exactly from `seed`. `method` "pca" stops after
    PCA and uses the first two components (fast; for previews and tests).
    """

    n_top_genes: int = 2000
    n_pcs: int = 30
    n_neighbors: int = 15
    min_dist: float = 0.3
    method: str = "umap"
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("umap", "pca"):
            raise ValueError("method must be 'umap' or 'pca'")
        if self.n_pcs < 2 or self.n_top_genes < 2 or self.n_neighbors < 2:
            raise ValueError("n_pcs, n_top_genes and n_neighbors must be at least 2")


@dataclass(frozen=True)
class Embedding:
    """2-D coordinates of every cell (float32, n x 2) and where they came from."""

    coords: np.ndarray
    basis: str                 # "X_umap" (from the file) or COMPUTED_BASIS
    source: str                # "file", "cache" or "computed"
    cache_file: Path | None = None
    note: str = ""

    @property
    def n(self) -> int:
        return int(self.coords.shape[0])




# ---- cache keys ------------------------------------------------------------------------------
def embedding_key(digest: str, params: EmbeddingParams, *, kind: str = "rna") -> str:
    """Cache key of an embedding: input content hash + every parameter."""
    text = json.dumps({"digest": digest, "kind": kind, **asdict(params)}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _store(study: Study) -> Any:
    if getattr(study, "single_cell", None) is None:
        raise ValueError("the study has no single-cell file")
    return study.single_cell


def content_key(study: Study) -> str:
    """Content hash of the single-cell data and of the store's choice of matrices (the key
    of everything derived from it)."""
    return _store(study).content_key


# ---- cells ---------------------------------------------------------------------------------------
def cell_table(study: Study) -> pl.DataFrame:
    """One row per cell of the single-cell file (all cells, file order): cell (row number),
    subject_id, sample_id, day, timepoint, cell_type, car_positive, plus response_group.

    The columns come from the store in the study's vocabulary (whatever the file calls them).
    Missing ones are derived: day and timepoint from the samples table via sample_id,
    sample_id as "<subject_id>_D<day>", cell_type "unannotated", car_positive from a CAR cell
    type."""
    from analysis.cohort import response_groups

    df = _store(study).cells(tuple(c for c in CELL_COLUMNS if c != "cell"))
    samples = study.samples.select("sample_id", "day", "timepoint") if study.samples.height \
        else pl.DataFrame(schema={"sample_id": pl.String, "day": pl.Int64,
                                  "timepoint": pl.String})
    if "sample_id" in df.columns:
        missing = [c for c in ("day", "timepoint") if c not in df.columns]
        if missing:
            df = df.join(samples.select("sample_id", *missing), on="sample_id", how="left",
                         maintain_order="left")
        if "day" not in missing and _store(study).resolved.day_from == "timepoint" \
                and samples.height:
            # days read from labels give way to the samples table's own day of the sample
            df = (df.join(samples.select("sample_id", pl.col("day").alias("_day")),
                          on="sample_id", how="left", maintain_order="left")
                  .with_columns(pl.coalesce("_day", "day").alias("day")).drop("_day"))
    if "subject_id" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("subject_id"))
    if "day" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.Int64).alias("day"))
    if "sample_id" not in df.columns:
        df = df.with_columns(pl.format("{}_D{}", "subject_id", "day").alias("sample_id"))
    if "timepoint" not in df.columns:
        df = df.with_columns(pl.format("D{}", "day").alias("timepoint"))
    if "cell_type" not in df.columns:
        df = df.with_columns(pl.lit("unannotated").alias("cell_type"))
    if "car_positive" not in df.columns:
        df = df.with_columns(pl.col("cell_type").str.contains(r"(?i)\bCAR").alias(
            "car_positive"))
    df = df.with_columns(pl.col("car_positive").fill_null(False),
                         pl.col("cell_type").fill_null("unannotated"))
    groups = response_groups(study).select("subject_id", "response_group")
    return (df.select(*CELL_COLUMNS).join(groups, on="subject_id", how="left",
                                          maintain_order="left")
            .with_columns(pl.col("response_group").fill_null(NOT_EVALUABLE)))


def obs_column(study: Study, *, column: str) -> pl.Series:
    """One obs column of the single-cell file for every cell (a canonical name such as
    cell_type gives the column the study maps to it). KeyError when absent."""
    store = _store(study)
    if column in store.obs_columns:
        return store.obs_column(column)
    s = store.canonical(column)
    if s is None:
        raise KeyError(column)
    return s


def cell_type_source(study: Study) -> str:
    """Where the cells' `cell_type` comes from, in words: "annotation (obs 'cell_type')",
    "clusters (obs 'leiden')" or "none" (every cell "unannotated")."""
    r = _store(study).resolved
    col = r.obs.get("cell_type")
    return f"{r.cell_type_kind} (obs {col!r})" if col else "none"


def var_names(study: Study) -> list[str]:
    """Gene labels of the single-cell expression (symbols when the file keys genes by
    Ensembl id), in matrix column order."""
    return list(_store(study).gene_names)


def available_bases(study: Study, *, params: EmbeddingParams | None = None) -> list[str]:
    """Embeddings that can be drawn now: those in the file (UMAP, t-SNE, PCA, others, under
    whatever obsm name), then the computed UMAP when it is in the cache."""
    store = _store(study)
    out = list(store.embeddings)
    if store.cache_path(_cache_name(study, params or EmbeddingParams())).is_file():
        out.append(COMPUTED_BASIS)
    return out


def _cache_name(study: Study, params: EmbeddingParams) -> str:
    return f"embedding-{embedding_key(content_key(study), params)}.npy"


def load_embedding(study: Study, *, basis: str, params: EmbeddingParams | None = None
                   ) -> Embedding:
    """The coordinates of `basis` (an embedding of the file, or COMPUTED_BASIS from the
    cache). Raises KeyError when that basis is not available (see `available_bases`)."""
    if basis == COMPUTED_BASIS:
        name = _cache_name(study, params or EmbeddingParams())
        coords = _store(study).derived_array(name)
        if coords is None:
            raise KeyError(basis)
        return Embedding(coords, basis, "cache", _store(study).cache_path(name))
    return Embedding(_store(study).embedding(basis), basis, "file")


@derived_table("receptors", "Receptor chains of the single-cell cells (MuData airr modality): "
               "one row per chain with the cell, patient and sample")
def receptor_chains(study: Study) -> pl.DataFrame:
    """cell_id, chain, locus, junction_aa, junction, v_call, d_call, j_call, c_call,
    productive, duplicate_count, consensus_count, sequence_id, cell, subject_id, sample_id
    (empty when the study's single-cell file holds no receptor data)."""
    if getattr(study, "single_cell", None) is None:
        return pl.DataFrame(schema={"cell_id": pl.String, "chain": pl.Int64,
                                    "locus": pl.String, "junction_aa": pl.String})
    return _store(study).receptors


# ---- genes (read through the single-cell store) ------------------------------------------------
def expression_store(study: Study, *, progress: Progress | None = None) -> Path | None:
    """Build (once) the store's gene-major copy when it has none of its own (the gene-column
    cache of a file that was not converted) and return its path; None for a converted store,
    which holds its gene-major copy."""
    store = _store(study)
    return None if store.has_gene_major_copy else store.gene_cache(progress=progress)


def gene_vector(study: Study, *, gene: str) -> np.ndarray:
    """Log-normalised expression of one gene (symbol or file id) in every cell (float32),
    read from the store's gene-major copy (built on first use). KeyError for an unknown
    gene."""
    return _store(study).gene_column(gene)


def read_expression(study: Study, *, progress: Progress | None = None) -> Any:
    """The whole log-normalised matrix as scipy CSC (cells x genes). Small studies only."""
    return _store(study).expression(progress=progress)


def expression_rows(study: Study, *, rows: Sequence[int] | np.ndarray) -> Any:
    """Log-normalised values of the cells `rows` (in that order) as CSR, read by rows."""
    return _store(study).expression_rows(rows)


def read_marker_index(study: Study, *, progress: Progress | None = None) -> MarkerIndex:
    """The study's matrix prepared for repeated marker tests (values, within-gene ranks and
    per-gene totals from the store; a converted store reads only the selected rows)."""
    return index_from_arrays(_store(study).marker_arrays(progress=progress))


def embedding_input(study: Study, *, progress: Progress | None = None) -> Any:
    """The cells x genes matrix an embedding is computed from (CSR float32): the raw counts
    normalised to log1p(counts per 10,000) when the file holds counts, else its
    log-normalised values (never scaled ones)."""
    import scipy.sparse as sp

    store = _store(study)
    report = progress or (lambda f, m: None)
    if store.resolved.counts is None:
        return read_expression(study, progress=progress).tocsr()
    n, blocks = store.n_obs, []
    for _, hi, block in store.blocks("counts"):
        blocks.append(normalise_counts(block))
        report(hi / max(n, 1), "normalising the counts")
    return sp.vstack(blocks, format="csr")


# ---- computing ---------------------------------------------------------------------------------
def highly_variable_genes(matrix: np.ndarray | sparse.spmatrix, *, n_top: int = 2000, n_bins: int = 20) -> np.ndarray:
    """Column indices of the `n_top` most variable genes of a log-normalised cells x genes
    matrix, sorted. Seurat v1 flavour (as scanpy's flavor="seurat"): mean and variance on the
    linear scale (expm1), log dispersion var/mean, z-scored within `n_bins` equal-width bins
    of log1p(mean)."""
    import scipy.sparse as sp

    n, g = matrix.shape
    if n_top >= g:
        return np.arange(g)
    if sp.issparse(matrix):
        lin = sp.csc_matrix(matrix, dtype=np.float64, copy=True)
        lin.data = np.expm1(lin.data)
        mean = np.asarray(lin.mean(axis=0)).ravel()
        lin.data **= 2
        var = np.asarray(lin.mean(axis=0)).ravel() - mean**2
    else:
        lin = np.expm1(np.asarray(matrix, dtype=np.float64))
        mean, var = lin.mean(axis=0), lin.var(axis=0)
    var = np.maximum(var, 0) * n / max(n - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        disp = np.log(np.where(mean > 0, var / mean, np.nan))
    lmean = np.log1p(mean)
    edges = np.linspace(lmean.min(), lmean.max() + 1e-12, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, lmean, side="right") - 1, 0, n_bins - 1)
    z = np.full(g, -np.inf)
    for b in np.unique(bins):
        m = (bins == b) & np.isfinite(disp)
        if m.sum() == 0:
            continue
        sd = disp[m].std(ddof=1) if m.sum() > 1 else 0.0
        z[m] = (disp[m] - disp[m].mean()) / sd if sd > 0 else 1.0   # lone gene: as scanpy
    z[mean <= 0] = -np.inf
    return np.sort(np.argsort(-z, kind="stable")[:n_top])


def _pca(dense: np.ndarray, *, n_pcs: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    k = max(2, min(n_pcs, dense.shape[1] - 1, dense.shape[0] - 1))
    return PCA(n_components=k, svd_solver="randomized", random_state=seed).fit_transform(
        dense).astype(np.float32)


def _umap(pcs: np.ndarray, params: EmbeddingParams) -> np.ndarray:
    import umap

    kw: dict[str, Any] = {"n_neighbors": min(params.n_neighbors, max(2, pcs.shape[0] - 1)),
                          "min_dist": params.min_dist}
    if params.threads == 1:
        kw["random_state"] = params.seed
    else:
        np.random.seed(params.seed)    # seeds the parts of umap-learn that use numpy
        kw["n_jobs"] = params.threads or -1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return umap.UMAP(**kw).fit_transform(pcs).astype(np.float32)


def embed_matrix(matrix: np.ndarray | sparse.spmatrix, *, params: EmbeddingParams = EmbeddingParams(),
                 select_genes: bool = True, progress: Progress | None = None) -> np.ndarray:
    """Cells x features -> n x 2 float32 coordinates: HVG (when `select_genes`), PCA, UMAP."""
    import scipy.sparse as sp

    report = progress or (lambda f, m: None)
    n = matrix.shape[0]
    if n < 3:
        raise ValueError("an embedding needs at least 3 cells")
    cols = highly_variable_genes(matrix, n_top=params.n_top_genes) if select_genes else \
        np.arange(matrix.shape[1])
    report(0.7, f"PCA on {len(cols):,} features of {n:,} cells")
    sub = matrix[:, cols]
    dense = sub.toarray().astype(np.float32) if sp.issparse(sub) else \
        np.asarray(sub, dtype=np.float32)
    del sub
    pcs = _pca(dense, n_pcs=params.n_pcs, seed=params.seed)
    del dense
    if params.method == "pca":
        return np.ascontiguousarray(pcs[:, :2])
    report(0.8, f"UMAP of {n:,} cells")
    return _umap(pcs, params)


def embed_study(study: Study, *, params: EmbeddingParams = EmbeddingParams(),
                force: bool = False, progress: Progress | None = None) -> Embedding:
    """Compute (or load from the cache) the embedding of the study's single-cell matrix."""
    store = _store(study)
    name = _cache_name(study, params)
    report = progress or (lambda f, m: None)
    hit = None if force else store.derived_array(name)
    if hit is not None:
        report(1.0, "already cached")
        return Embedding(hit, COMPUTED_BASIS, "cache", store.cache_path(name), store.cache_note)
    matrix = embedding_input(study, progress=lambda f, m: report(0.6 * f, m))
    coords = embed_matrix(matrix, params=params, progress=report)
    path = store.save_derived_array(name, coords)
    report(1.0, "done")
    return Embedding(coords, COMPUTED_BASIS, "computed", path, store.cache_note)


def _flow_path(study: Study, digest: str, markers: Sequence[str], params: EmbeddingParams
               ) -> Path:
    key = embedding_key(f"{digest}|{','.join(markers)}", params, kind="flow")
    return cache_file(study.path, f"flow-embedding-{key}.npy")


def cached_flow_embedding(study: Study, *, digest: str, markers: Sequence[str],
                          params: EmbeddingParams) -> Embedding | None:
    """The cached embedding of flow events (keyed by `FlowEvents.digest` and the markers),
    or None."""
    path = _flow_path(study, digest, markers, params)
    return Embedding(load_array(path), f"{params.method.upper()} (flow)", "cache", path) \
        if path.is_file() else None


def embed_flow(study: Study, events: pl.DataFrame, *, markers: Sequence[str], digest: str,
               params: EmbeddingParams = EmbeddingParams(), force: bool = False,
               progress: Progress | None = None) -> Embedding:
    """Embed transformed cytometry events on `markers` (no gene selection), cached on disk."""
    if len(markers) < 2:
        raise ValueError("choose at least two markers to embed")
    hit = cached_flow_embedding(study, digest=digest, markers=markers, params=params)
    if hit is not None and not force:
        return hit
    matrix = events.select(list(markers)).to_numpy().astype(np.float32)
    coords = embed_matrix(matrix, params=params, select_genes=False, progress=progress)
    path = _flow_path(study, digest, markers, params)
    save_array(path, coords)
    return Embedding(coords, f"{params.method.upper()} (flow)", "computed", path,
                     cache_location(study.path).note)


@dataclass(frozen=True)
class DrawnCells:
    """The cells sent to the browser (x, y added) and how many cells they stand for."""

    frame: pl.DataFrame
    n_total: int


def drawn_cells(study: Study, *, basis: str, cohort: Cohort | None = None,
                max_points: int = 150_000, seed: int = 0,
                params: EmbeddingParams | None = None) -> DrawnCells:
    """Cells of the cohort (all of them counted), a stratified subsample of at most
    `max_points` of them with their embedding coordinates x, y (float32)."""
    from analysis.cohort import Cohort, apply_cohort, response_groups

    emb = load_embedding(study, basis=basis, params=params)
    cells = cell_table(study)
    if cohort is not None and cohort != Cohort():
        cells = apply_cohort(cells, cohort, groups=response_groups(study))
    pick = stratified_subsample(cells, max_points=max_points, seed=seed)
    sub = cells[pick]
    rows = sub.get_column("cell").to_numpy()
    return DrawnCells(sub.with_columns(pl.Series("x", emb.coords[rows, 0]),
                                       pl.Series("y", emb.coords[rows, 1])), cells.height)


# ---- drawing subsample --------------------------------------------------------------------------
def stratified_subsample(cells: pl.DataFrame, *, max_points: int = 150_000,
                         by: Sequence[str] = ("sample_id", "cell_type"), seed: int = 0,
                         min_per_group: int = 20) -> np.ndarray:
    """Row positions of `cells` to draw: every row when there are at most `max_points`, else a
    seeded sample proportional to each (sample, cell type) stratum, keeping at least
    `min_per_group` cells of small strata (so rare populations stay visible). Sorted; the total
    stays within `max_points`."""
    n = cells.height
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    keys = [c for c in by if c in cells.columns]
    # stratum of each row, numbered in (key1, key2, ...) order: per-key codes in sorted value
    # order combined (as a struct rank, but a million string rows take 0.1 s, not 2.5 s)
    codes = np.zeros(n, dtype=np.int64)
    for k in keys:
        vals = cells.get_column(k).cast(pl.String)
        cats = vals.drop_nulls().unique().sort()
        code = vals.replace_strict(cats, pl.Series(np.arange(cats.len(), dtype=np.int64)),
                                   default=cats.len(), return_dtype=pl.Int64)   # nulls last
        codes = codes * (cats.len() + 1) + code.to_numpy()
    codes = np.unique(codes, return_inverse=True)[1].astype(np.int64)
    sizes = np.bincount(codes)
    floor = np.minimum(sizes, max(1, min(min_per_group, max_points // (2 * len(sizes)))))
    frac = max_points / n
    quota = floor
    for _ in range(30):   # shrink the proportional part until the total fits
        quota = np.minimum(sizes, np.maximum(np.floor(sizes * frac).astype(np.int64), floor))
        if quota.sum() <= max_points:
            break
        frac *= max_points / quota.sum() * 0.999
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(n), codes))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos_in_group = np.empty(n, dtype=np.int64)
    pos_in_group[order] = np.arange(n) - np.repeat(starts, sizes)
    return np.flatnonzero(pos_in_group < quota[codes])


def flow_landscape(study: Study, *, markers: tuple[str, ...], per_file: int, cofactor: float,
                   params: EmbeddingParams = EmbeddingParams()) -> Embedding:
    """Embedding of the study's flow events (as `flow_events` reads them) on `markers`:
    from the cache, else computed and cached."""
    from data_loaders.formats.fcs import flow_events

    events = flow_events(study, per_file=per_file, cofactor=cofactor)
    return embed_flow(study, events.frame, markers=markers, digest=events.digest,
                      params=params)


def annotate_points(points: pl.DataFrame, *, windows: Sequence[Any] = (),
                    facet_windows: Sequence[Any] = (), focus: Focus | None = None) -> pl.DataFrame:
    """Colour and panel columns for drawn cells: `window` (first of `windows` holding the day,
    else "other"), `car_status` (CAR+/CAR-), `focus` ("in focus"/"other" for a Focus with
    subjects and a day window) and `facet` (label of the facet window holding the day; rows
    outside every facet window are dropped when facet windows are given)."""
    def label(ws: Sequence[Any], default: str | None) -> pl.Expr:
        expr = pl.lit(default, dtype=pl.String)
        for w in reversed(list(ws)):
            expr = pl.when(w.contains(pl.col("day"))).then(pl.lit(w.label)).otherwise(expr)
        return expr

    out = points.with_columns(label(windows, "other").alias("window"))
    if "car_positive" in out.columns:
        out = out.with_columns(pl.when(pl.col("car_positive")).then(pl.lit("CAR+"))
                               .otherwise(pl.lit("CAR-")).alias("car_status"))
    if focus is not None:
        inside = pl.col("subject_id").is_in(list(focus.subjects)) & focus.days.contains("day")
        out = out.with_columns(pl.when(inside).then(pl.lit("in focus"))
                               .otherwise(pl.lit("other")).alias("focus"))
    if facet_windows:
        out = out.with_columns(label(facet_windows, None).alias("facet")).filter(
            pl.col("facet").is_not_null())
    return out


# ---- regions of an embedding (selections against every cell, not only drawn ones) ---------------
def cell_table_cached(study: Study) -> pl.DataFrame:
    """`cell_table`, computed once per study and process (the raster view re-reads it on every
    zoom; at ten million cells it takes seconds)."""
    return _cell_table_memo(study)


@lru_cache(maxsize=2)
def _cell_table_memo(study: Study) -> pl.DataFrame:
    return cell_table(study)


def extent(coords: np.ndarray, *, pad: float = 0.02) -> tuple[tuple[float, float],
                                                               tuple[float, float]]:
    """(x range, y range) holding every finite point, padded by `pad` of each side's span."""
    if coords.shape[0] == 0:
        return (0.0, 1.0), (0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN: handled below
        lo = np.nanmin(np.where(np.isinf(coords), np.nan, coords), axis=0).astype(float) \
            if not np.isfinite(coords).all() else coords.min(axis=0).astype(float)
        hi = np.nanmax(np.where(np.isinf(coords), np.nan, coords), axis=0).astype(float) \
            if not np.isfinite(coords).all() else coords.max(axis=0).astype(float)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return (0.0, 1.0), (0.0, 1.0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return ((lo[0] - pad * span[0], hi[0] + pad * span[0]),
            (lo[1] - pad * span[1], hi[1] + pad * span[1]))


def in_window(coords: np.ndarray, *, x_range: Sequence[float], y_range: Sequence[float]
              ) -> np.ndarray:
    """Boolean mask of the points inside the rectangle (edges included)."""
    x, y = coords[:, 0], coords[:, 1]
    x0, x1 = sorted(float(v) for v in x_range)
    y0, y1 = sorted(float(v) for v in y_range)
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def in_polygon(coords: np.ndarray, *, xs: Sequence[float], ys: Sequence[float]
               ) -> np.ndarray:
    """Boolean mask of the points inside a polygon (a lasso; even-odd rule), tested against
    every point. Points outside the polygon's bounding box are rejected first, so a lasso over
    ten million cells costs about as much as the cells near it."""
    px, py = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    out = np.zeros(coords.shape[0], dtype=bool)
    if px.size < 3:
        return out
    near = np.flatnonzero(in_window(coords, x_range=(px.min(), px.max()),
                                    y_range=(py.min(), py.max())))
    x, y = coords[near, 0].astype(np.float64), coords[near, 1].astype(np.float64)
    inside = np.zeros(near.size, dtype=bool)
    for i in range(px.size):
        xa, ya, xb, yb = px[i - 1], py[i - 1], px[i], py[i]
        crosses = (ya > y) != (yb > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = xa + (y - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (x < at)
    out[near] = inside
    return out
