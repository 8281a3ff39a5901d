"""Derived tables: one registry shared by the CLI (`cli.py table NAME`) and the app's downloads.

An analysis module registers a derived table with the `derived_table` decorator:

    @derived_table("kinetics", "CAR-T kinetics per patient and assay",
                   options={"auc_end": Option(int, 28, "end of the AUC window (day)")})
    def kinetics_table(study, *, auc_end=28) -> pl.DataFrame: ...

Every module in `analysis/` is imported on first use, so registration needs no list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

__all__ = ["Option", "DerivedTable", "derived_table", "derived_tables", "get_derived"]


@dataclass(frozen=True)
class Option:
    type: type
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class DerivedTable:
    name: str
    description: str
    func: Callable[..., pl.DataFrame]
    options: dict[str, Option] = field(default_factory=dict)

    def __call__(self, study: Any, **kwargs: Any) -> pl.DataFrame:
        opts = {k: v for k, v in kwargs.items() if k in self.options and v is not None}
        return self.func(study, **opts)


_REGISTRY: dict[str, DerivedTable] = {}
_LOADED = False


def derived_table(name: str, description: str, *, options: dict[str, Option] | None = None
                  ) -> Callable[[Callable[..., pl.DataFrame]], Callable[..., pl.DataFrame]]:
    def deco(fn: Callable[..., pl.DataFrame]) -> Callable[..., pl.DataFrame]:
        _REGISTRY[name] = DerivedTable(name, description, fn, dict(options or {}))
        return fn
    return deco


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    import analysis

    for mod in pkgutil.iter_modules(analysis.__path__):
        if mod.name != "registry":
            importlib.import_module(f"analysis.{mod.name}")
    _LOADED = True


def derived_tables() -> dict[str, DerivedTable]:
    """Every registered derived table, by name."""
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def get_derived(name: str) -> DerivedTable:
    tables = derived_tables()
    if name not in tables:
        raise KeyError(name)
    return tables[name]
