"""The embeddings, receptor chains and other MuData modalities of a single-cell store
(`SingleCellStore` takes these methods from `OtherData`): obsm embeddings under any common
name (UMAP first), receptor chains of the airr modality and of 10x VDJ / AIRR files matched
to the cells, the clonotype column of a receptor modality, and features of other modalities
(e.g. CITE-seq ADT counts).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from data_loaders.single_cell.backends import open_backend
from data_loaders.single_cell.mapping import EMBEDDING_ORDER, OBS_ALIASES, find_obs_column, fold
from data_loaders.single_cell.store_genes import CHUNK

if TYPE_CHECKING:
    from data_loaders.single_cell.mapping import SingleCellConfig

__all__ = ["OtherData"]


class OtherData:
    """Embeddings, receptors and other modalities of a single-cell store (a mixin of
    `SingleCellStore`, which gives `path`, `format`, `config`, `n_obs`, `cell_names`,
    `modalities`, `open`, `canonical` and `files_folder`)."""

    path: Path
    format: str
    config: SingleCellConfig
    n_obs: int

    # ---- embeddings ---------------------------------------------------------------------------
    @cached_property
    def embeddings(self) -> tuple[str, ...]:
        """obsm (loom: 2-D col_attrs) embeddings, UMAP first, then t-SNE, PCA, others."""
        with self.open() as h:
            keys = h.embeddings()

        def rank(k: str) -> tuple[int, str]:
            f = fold(k)
            return next((i for i, n in enumerate(EMBEDDING_ORDER) if n in f),
                        len(EMBEDDING_ORDER)), k
        return tuple(sorted(keys, key=rank))

    def embedding(self, key: str) -> np.ndarray:
        """The first two dimensions of embedding `key` (float32, cells x 2; read once and
        kept, read-only: every view of the landscape asks for it)."""
        if key not in self.embeddings:
            raise KeyError(key)
        kept = self.__dict__.setdefault("_embedding_memo", {})
        if key not in kept:
            with self.open() as h:
                coords = np.asarray(h.embedding(key), dtype=np.float32)
            coords.setflags(write=False)
            kept.clear()            # one basis at a time: ten million cells are 80 MB
            kept[key] = coords
        return kept[key]

    # ---- receptors (MuData airr modality, 10x VDJ contigs, AIRR with cell_id) ----------------
    @cached_property
    def receptors(self) -> pl.DataFrame:
        """One row per receptor chain (cell_id, chain, locus, junction_aa, v_call, ...,
        productive, duplicate_count) of the airr modality and of the `receptor_files` of the
        [single_cell] table, with the cell's row in the expression data (`cell`, null when it
        has no expression profile), subject_id and sample_id. Empty without receptor data."""
        from data_loaders.single_cell.receptors import (
            CHAIN_SCHEMA,
            match_cells,
            read_receptor_file,
        )

        parts = []
        mod = self.modalities[1]
        if mod is not None:
            from data_loaders.single_cell.airr import read_airr_chains

            with open_backend(self.path, "h5mu", modality=mod) as h:
                ids = h.obs_names()
                if "obsm" in h.root and "airr" in h.root["obsm"]:
                    parts.append(read_airr_chains(h.root["obsm"]["airr"], ids))
        cells = pl.DataFrame({"cell_id": self.cell_names,
                              "cell": np.arange(self.n_obs, dtype=np.int64)})
        for c in ("subject_id", "sample_id"):
            s = self.canonical(c)
            if s is not None:
                cells = cells.with_columns(s.alias(c))
        for name, sample in self.config.receptor_files:
            path = Path(name) if Path(name).is_absolute() else self.files_folder / name
            if not path.is_file():
                raise ValueError(f"[single_cell] receptor_files: {name} not found next to "
                                 f"{self.path.name}")
            chains = match_cells(read_receptor_file(path), cells, sample_id=sample)
            parts.append(chains)
        if not parts:
            return pl.DataFrame(schema={**CHAIN_SCHEMA, "cell": pl.Int64,
                                        "subject_id": pl.String, "sample_id": pl.String})
        chains = pl.concat([p.select(list(CHAIN_SCHEMA)).cast(CHAIN_SCHEMA) for p in parts])
        out = chains.join(cells, on="cell_id", how="left", maintain_order="left")
        for c in ("subject_id", "sample_id"):
            if c not in out.columns:
                out = out.with_columns(pl.lit(None, dtype=pl.String).alias(c))
        return out

    @cached_property
    def other_modalities(self) -> tuple[str, ...]:
        """MuData modalities besides gene expression and receptors (e.g. CITE-seq "prot" /
        "adt"); empty for other formats."""
        if self.format != "h5mu":
            return ()
        import h5py

        gex, rec = self.modalities
        with h5py.File(self.path, "r") as f:
            return tuple(m for m in (f["mod"].keys() if "mod" in f else ())
                         if m not in (gex, rec))

    def modality_features(self, modality: str) -> list[str]:
        with open_backend(self.path, "h5mu", modality=modality) as h:
            return list(h.var_names("X"))

    def modality_column(self, modality: str, feature: str) -> np.ndarray:
        """One feature of another MuData modality (X as stored, e.g. ADT counts) for every cell
        of the expression data, matched by cell name (0 where the modality lacks the cell)."""
        with open_backend(self.path, "h5mu", modality=modality) as h:
            j = list(h.var_names("X")).index(feature)
            names = h.obs_names()
            read, n = h.rows("X"), h.shape("X")[0]
            values = np.concatenate([np.asarray(read(lo, min(lo + CHUNK, n))[:, j].todense())
                                     .ravel() for lo in range(0, n, CHUNK)]) if n else \
                np.zeros(0)
        lookup = dict(zip(names, values.tolist(), strict=True))
        return np.array([lookup.get(c, 0.0) for c in self.cell_names], dtype=np.float64)

    def _receptor_clonotypes(self) -> pl.Series | None:
        mod = self.modalities[1]
        with open_backend(self.path, "h5mu", modality=mod) as h:
            col = find_obs_column(h.obs_columns(), OBS_ALIASES["clonotype"])
            if col is None:
                return None
            table = pl.DataFrame({"cell_id": h.obs_names(),
                                  "clonotype": h.obs_column(col).cast(pl.String)})
        return pl.DataFrame({"cell_id": self.cell_names}).join(
            table, on="cell_id", how="left", maintain_order="left").get_column("clonotype")

