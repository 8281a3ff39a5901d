"""The single-cell store: the one reader of single-cell files (h5ad, h5mu, AnnData zarr, loom)
and of the derived caches built from them. See `store.SingleCellStore`."""

from data_loaders.single_cell.backends import FORMATS, detect_format
from data_loaders.single_cell.mapping import SingleCellConfig, matrix_kind
from data_loaders.single_cell.store import Finding, MatrixInfo, SingleCellStore, normalise_counts

__all__ = ["SingleCellStore", "SingleCellConfig", "Finding", "MatrixInfo", "FORMATS",
           "detect_format", "matrix_kind", "normalise_counts"]
