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
this package opens no file. Its modules, by job: `cells` (the cell table, obs columns, genes
and matrix rows from the store), `compute` (HVG, PCA, UMAP and their cache), `drawing` (the
drawn subsample, point annotations, regions tested against every cell). Every public name is
importable from `analysis.embedding`.
"""

from analysis.embedding.cells import (
    CELL_COLUMNS,
    cell_table,
    cell_table_cached,
    cell_type_source,
    content_key,
    embedding_input,
    expression_rows,
    expression_store,
    gene_vector,
    obs_column,
    read_expression,
    read_marker_index,
    receptor_chains,
    var_names,
)
from analysis.embedding.compute import (
    COMPUTED_BASIS,
    OBSM_BASES,
    Embedding,
    EmbeddingParams,
    available_bases,
    cached_flow_embedding,
    embed_flow,
    embed_matrix,
    embed_study,
    embedding_key,
    flow_landscape,
    highly_variable_genes,
    load_embedding,
)
from analysis.embedding.drawing import (
    DrawnCells,
    annotate_points,
    drawn_cells,
    extent,
    in_polygon,
    in_window,
    stratified_subsample,
)
from data_loaders.single_cell.cache import CacheLocation, cache_location, file_digest

__all__ = ["EmbeddingParams", "Embedding", "CacheLocation", "cache_location", "file_digest",
           "cell_table", "obs_column", "var_names", "available_bases", "load_embedding",
           "embed_study", "embed_matrix", "embed_flow", "cached_flow_embedding", "drawn_cells",
           "DrawnCells", "flow_landscape", "annotate_points", "stratified_subsample",
           "gene_vector", "expression_store", "read_expression", "read_marker_index",
           "expression_rows", "content_key", "embedding_key", "highly_variable_genes",
           "embedding_input", "receptor_chains", "cell_type_source", "in_window", "in_polygon",
           "extent", "cell_table_cached", "CELL_COLUMNS", "COMPUTED_BASIS", "OBSM_BASES"]
