"""Computing an embedding and caching it: highly variable genes (Seurat v1 dispersion), PCA
(randomized SVD), UMAP; of the single-cell matrix (`embed_study`) or of transformed flow
cytometry events on chosen markers (`embed_flow`). Results are cached by the content hash of
the input, the matrices chosen and every parameter (`embedding_key`), so a rerun never
recomputes; `available_bases` and `load_embedding` offer the file's own embeddings and the
computed one. Files are read and written through the single-cell store and
data_loaders.single_cell.cache.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import polars as pl

from analysis.embedding.cells import Progress, content_key, embedding_input, store_of
from data_loaders.single_cell.cache import cache_file, cache_location, load_array, save_array

if TYPE_CHECKING:
    from scipy import sparse

    from data_loaders import Study

__all__ = ["EmbeddingParams", "EmbeddingMethod", "EMBEDDING_METHODS", "Embedding", "OBSM_BASES",
           "COMPUTED_BASIS", "embedding_key", "cache_name", "available_bases", "load_embedding",
           "highly_variable_genes", "embed_matrix", "embed_study", "cached_flow_embedding",
           "embed_flow", "flow_landscape"]

OBSM_BASES = ("X_umap", "X_tsne", "X_pca")
COMPUTED_BASIS = "UMAP (computed)"


EmbeddingMethod = Literal["umap", "pca"]
EMBEDDING_METHODS: tuple[EmbeddingMethod, ...] = get_args(EmbeddingMethod)


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
    method: EmbeddingMethod = "umap"
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        if self.method not in EMBEDDING_METHODS:
            raise ValueError(f"method must be one of {', '.join(map(repr, EMBEDDING_METHODS))}")
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


def available_bases(study: Study, *, params: EmbeddingParams | None = None) -> list[str]:
    """Embeddings that can be drawn now: those in the file (UMAP, t-SNE, PCA, others, under
    whatever obsm name), then the computed UMAP when it is in the cache."""
    store = store_of(study)
    out = list(store.embeddings)
    if store.cache_path(cache_name(study, params or EmbeddingParams())).is_file():
        out.append(COMPUTED_BASIS)
    return out


def cache_name(study: Study, params: EmbeddingParams) -> str:
    """File name of the computed embedding of `params` in the study's cache."""
    return f"embedding-{embedding_key(content_key(study), params)}.npy"


def load_embedding(study: Study, *, basis: str, params: EmbeddingParams | None = None
                   ) -> Embedding:
    """The coordinates of `basis` (an embedding of the file, or COMPUTED_BASIS from the
    cache). Raises KeyError when that basis is not available (see `available_bases`)."""
    if basis == COMPUTED_BASIS:
        name = cache_name(study, params or EmbeddingParams())
        coords = store_of(study).derived_array(name)
        if coords is None:
            raise KeyError(basis)
        return Embedding(coords, basis, "cache", store_of(study).cache_path(name))
    return Embedding(store_of(study).embedding(basis), basis, "file")


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
    store = store_of(study)
    name = cache_name(study, params)
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


def flow_landscape(study: Study, *, markers: tuple[str, ...], per_file: int, cofactor: float,
                   params: EmbeddingParams = EmbeddingParams()) -> Embedding:
    """Embedding of the study's flow events (as `flow_events` reads them) on `markers`:
    from the cache, else computed and cached."""
    from data_loaders.formats.fcs import flow_events

    events = flow_events(study, per_file=per_file, cofactor=cofactor)
    return embed_flow(study, events.frame, markers=markers, digest=events.digest,
                      params=params)
