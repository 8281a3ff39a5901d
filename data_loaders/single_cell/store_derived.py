"""What is derived from a single-cell file and kept on disk (`SingleCellStore` takes these
methods from `DerivedData`): the content key of the file and of the store's choice of
matrices (the key of every embedding, gene-column cache and pseudobulk result), and the
arrays and frames cached under it in the study's .cache (or the per-user folder when the
study folder is not writable; data_loaders.single_cell.cache).
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from data_loaders.single_cell.store import Resolved

__all__ = ["DerivedData"]


class DerivedData:
    """The derived-data cache of a single-cell store (a mixin of `SingleCellStore`, which
    gives `path`, `cache_root`, `modalities` and `resolved`)."""

    path: Path
    cache_root: Path
    resolved: Resolved

    @property
    def matrix_signature(self) -> str:
        """What the derived caches depend on besides the file bytes."""
        r = self.resolved
        return f"{self.modalities[0]}|{r.counts}|{r.lognorm}|{r.lognorm_how}"

    # ---- derived data on disk (the study's cache) -----------------------------------------
    @cached_property
    def content_key(self) -> str:
        """Content hash of the file and of the choice of matrices: the key of everything
        derived from it (embeddings, the gene-column cache, pseudobulk results)."""
        from data_loaders.single_cell.cache import cache_location, file_digest

        raw = file_digest(self.path, cache=cache_location(self.cache_root))
        return hashlib.blake2b(f"{raw}|{self.matrix_signature}".encode(),
                               digest_size=16).hexdigest()

    def cache_path(self, name: str) -> Path:
        """Where derived file `name` lives (the study's .cache, or the per-user folder)."""
        from data_loaders.single_cell.cache import cache_file

        return cache_file(self.cache_root, name)

    @property
    def cache_note(self) -> str:
        from data_loaders.single_cell.cache import cache_location

        return cache_location(self.cache_root).note

    def derived_array(self, name: str) -> np.ndarray | None:
        """A cached float32 array (an embedding's coordinates), or None."""
        from data_loaders.single_cell.cache import load_array

        path = self.cache_path(name)
        return load_array(path) if path.is_file() else None

    def save_derived_array(self, name: str, values: np.ndarray) -> Path:
        from data_loaders.single_cell.cache import save_array

        path = self.cache_path(name)
        save_array(path, values)
        return path

    def derived_frames(self, name: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Cached frames and metadata (`save_derived_frames`), or None."""
        from data_loaders.single_cell.cache import load_frames

        path = self.cache_path(name)
        return load_frames(path) if path.is_file() else None

    def save_derived_frames(self, name: str, frames: dict[str, Any], meta: dict[str, Any]
                            ) -> Path:
        from data_loaders.single_cell.cache import save_frames

        path = self.cache_path(name)
        save_frames(path, frames, meta)
        return path

