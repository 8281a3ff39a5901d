"""The single-cell store as a de-identified study shows it (see data_loaders/deid.py).

`DeidentifiedStore` wraps a `SingleCellStore` and answers the same questions, with three
differences: only whitelisted obs columns exist (those the store maps to canonical names,
cluster and QC columns, and the study's `[deid] safe_columns` "obs.NAME"); subject and sample
ids are the study's pseudonyms wherever they appear (columns, cell names); and dates inside
text values become "[date]". Matrices, genes and embeddings are passed through unchanged.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import polars as pl

from data_loaders.deid import OBS_SAFE_COLUMNS, Pseudonyms, scrub_dates

__all__ = ["DeidentifiedStore"]

_ID_COLUMNS = {"subject_id": "subjects", "sample_id": "samples"}


class DeidentifiedStore:
    """A read-only, de-identified view of a `SingleCellStore`."""

    deidentified = True

    def __init__(self, inner: Any, *, ids: Pseudonyms, safe: frozenset[str] = frozenset()
                 ) -> None:
        self._inner = inner
        self._ids = ids
        self._safe = safe

    def __getattr__(self, name: str) -> Any:
        # matrices, genes, embeddings, format, path, findings ...: as the file has them
        if name.startswith("__") or name in ("_inner", "_ids", "_safe"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __getstate__(self) -> dict[str, Any]:
        return {"_inner": self._inner, "_ids": self._ids, "_safe": self._safe}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # ---- which columns exist ------------------------------------------------------------------
    @cached_property
    def _roles(self) -> dict[str, str]:
        """file column -> canonical name, for the columns the store mapped."""
        return {col: name for name, col in self._inner.resolved.obs.items()}

    @cached_property
    def obs_columns(self) -> tuple[str, ...]:
        keep = set(self._roles) | self._safe
        return tuple(c for c in self._inner.obs_columns
                     if c in keep or c.lower() in OBS_SAFE_COLUMNS)

    def obs_column(self, name: str) -> pl.Series:
        if name not in self.obs_columns:
            raise KeyError(name)
        return self._clean(self._roles.get(name, name), self._inner.obs_column(name))

    def canonical(self, name: str) -> pl.Series | None:
        s = self._inner.canonical(name)
        return None if s is None else self._clean(name, s)

    def _clean(self, role: str, s: pl.Series) -> pl.Series:
        mapping = getattr(self._ids, _ID_COLUMNS[role]) if role in _ID_COLUMNS else None
        if mapping:
            return s.cast(pl.String).replace_strict(mapping, default=None,
                                                    return_dtype=pl.String).alias(s.name)
        if s.dtype == pl.String or s.dtype == pl.Categorical or isinstance(s.dtype, pl.Enum):
            return self._ids.series(s).alias(s.name)
        return s

    # ---- what is built from them --------------------------------------------------------------
    def cells(self, columns: tuple[str, ...] | None = None) -> pl.DataFrame:
        from data_loaders.single_cell.mapping import CANONICAL_OBS

        out = pl.DataFrame({"cell": range(self._inner.n_obs)}, schema={"cell": pl.Int64})
        for name in columns or CANONICAL_OBS:
            s = self.canonical(name)
            if s is not None:
                out = out.with_columns(s.alias(name))
        return out

    @cached_property
    def cell_names(self) -> list[str]:
        names = [str(c) for c in self._inner.cell_names]
        if not self._ids.active and not any(_has_date(n) for n in names[:1000]):
            return names
        return self._ids.series(pl.Series("cell", names)).to_list()

    def obs_frame(self) -> Any:
        import pandas as pd

        from data_loaders.single_cell.mapping import CANONICAL_OBS

        data: dict[str, Any] = {}
        for col in self.obs_columns:
            data[col] = self.obs_column(col).to_pandas().to_numpy()
        for name in CANONICAL_OBS:
            if name in data:
                continue
            s = self.canonical(name)
            if s is not None and s.null_count() < s.len():
                data[name] = s.to_pandas().to_numpy()
        return pd.DataFrame(data, index=pd.Index(self.cell_names))

    def samples(self) -> pl.DataFrame:
        frame = self._inner.samples()
        exprs = [pl.col(c).replace_strict(getattr(self._ids, attr), default=None,
                                          return_dtype=pl.String)
                 for c, attr in _ID_COLUMNS.items()
                 if c in frame.columns and getattr(self._ids, attr)]
        if "timepoint" in frame.columns:
            exprs.append(self._ids.series(frame.get_column("timepoint")))
        return frame.with_columns(exprs) if exprs else frame

    @cached_property
    def receptors(self) -> pl.DataFrame:
        frame = self._inner.receptors
        text = [c for c, t in frame.schema.items() if t == pl.String]
        return frame.with_columns([self._ids.series(frame.get_column(c)) for c in text]) \
            if text else frame

    def to_anndata(self) -> Any:
        import anndata as ad

        inner = self._inner.to_anndata()
        obs = self.obs_frame()
        return ad.AnnData(X=inner.X, obs=obs, var=inner.var, obsm=dict(inner.obsm))


def _has_date(text: str) -> bool:
    return scrub_dates(text) != text
