"""Derived tables: one registry shared by the CLI (`cli.py table NAME`) and the app's downloads.

An analysis module registers a derived table with the `derived_table` decorator:

    @derived_table("kinetics", "CAR-T kinetics per patient and assay",
                   options={"auc_end": Option(int, 28, "end of the AUC window (day)")})
    def kinetics_table(study, *, auc_end=28) -> pl.DataFrame: ...

Every module in `analysis/` is imported on first use, so registration needs no list to edit.

A table that depends on rule settings takes the keyword `rules` (an `analysis.rules.Rules`;
None = the study's own, `rules_for(study)`). An option named like a rule setting (e.g.
`ti_window`) that the function does not take itself is a shorthand for that setting: it is
folded into `rules`, so `table responses --ti-window 28` and `--rule ti_window=28` agree.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["Option", "DerivedTable", "derived_table", "derived_tables", "get_derived",
           "study_table", "table_listing"]


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

    @property
    def uses_rules(self) -> bool:
        """Whether the table depends on rule settings (its function takes `rules`)."""
        return "rules" in inspect.signature(self.func).parameters

    def rule_options(self) -> list[str]:
        """Options that are shorthands for rule settings."""
        from analysis.rules import rule_fields

        params = inspect.signature(self.func).parameters
        return [k for k in self.options if k in rule_fields() and k not in params]

    def rules_for(self, study: Study, rules: Any = None, **kwargs: Any) -> Any:
        """The settings this table runs with: `rules` (default the study's), with the
        rule-shorthand options in `kwargs` applied."""
        from analysis.rules import rules_for

        base = rules if rules is not None else rules_for(study)
        changes = {k: kwargs[k] for k in self.rule_options() if kwargs.get(k) is not None}
        return base.with_(**changes) if changes else base

    def __call__(self, study: Study, *, rules: Any = None, **kwargs: Any) -> pl.DataFrame:
        shorthand = set(self.rule_options())
        opts = {k: v for k, v in kwargs.items()
                if k in self.options and k not in shorthand and v is not None}
        if self.uses_rules:
            return self.func(study, rules=self.rules_for(study, rules, **kwargs), **opts)
        if rules is not None:
            raise ValueError(f"table {self.name!r} does not depend on rule settings")
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


def table_listing() -> list[str]:
    """One line per table `cli.py table` writes (canonical, then derived): its name, what it
    holds and the options it takes (`cli.py tables`)."""
    from data_loaders.schema import RNA_SPEC, TABLES
    from data_loaders.study import TABLE_NAMES

    def flags(names: Mapping[str, Option]) -> list[str]:
        return [f"--{o.replace('_', '-')}" for o in names]

    derived = derived_tables()
    lines = []
    for name in TABLE_NAMES:
        spec = RNA_SPEC if name == "rna_counts" else TABLES[name]
        twin = derived.get(f"derived_{name}")
        extra = "" if twin is None else \
            f"  [with {' '.join(flags(twin.options))}: derived_{name}]"
        lines.append(f"{name:18s} {spec.description}{extra}")
    for name, t in derived.items():
        opts = " ".join(flags(t.options) + (["--rule KEY=VALUE"] if t.uses_rules else []))
        lines.append(f"{name:18s} {t.description}" + (f"  [{opts}]" if opts else ""))
    return lines


def study_table(study: Study, name: str, *, options: Mapping[str, Any] | None = None,
                rule_changes: Mapping[str, Any] | None = None) -> pl.DataFrame:
    """A table by name, as `cli.py table NAME` writes it: a recorded table of the study, or a
    derived table run with its `options` (keys it does not take are ignored, None means "not
    given") and the study's rule settings with `rule_changes` applied. A recorded table that
    has a derived twin (responses -> derived_responses) becomes the twin when an option or a
    rule change is given. Raises ValueError naming what is wrong."""
    from analysis.rules import rules_for
    from data_loaders.study import TABLE_NAMES

    options = dict(options or {})
    changes = dict(rule_changes or {})
    tables = derived_tables()
    twin = tables.get(f"derived_{name}") if name in TABLE_NAMES else None
    if name in TABLE_NAMES and not (twin is not None and (
            changes or any(options.get(k) is not None for k in twin.options))):
        if changes:
            raise ValueError(f"{name} is a recorded table and does not depend on rule "
                             "settings; --rule applies to derived tables (python cli.py tables)")
        return study.table(name)
    table = twin if twin is not None else tables.get(name)
    if table is None:
        names = ", ".join([*TABLE_NAMES, *tables])
        raise ValueError(f"unknown table {name!r}; choose one of: {names}")
    rules = None
    if changes:
        if not table.uses_rules:
            raise ValueError(f"{table.name} does not depend on rule settings; --rule applies "
                             "to the derived tables listed with [rules] by: python cli.py "
                             "tables")
        rules = rules_for(study).with_(**changes)
    return table(study, rules=rules, **{k: options.get(k) for k in table.options})
