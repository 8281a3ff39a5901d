"""Edits of the proposed mapping (the Import page's editable tables) -> import settings.

The page shows `Proposal.rows()` (file -> table, column -> canonical name) and the visit-label
table; a changed cell becomes a setting, and the proposal is made again from the settings, so
the page, the CLI options and an earlier study.toml all go through the same decisions.
"""

from __future__ import annotations

import polars as pl

from data_loaders.importers.headers import ROLE_NAMES
from data_loaders.importers.plan import ImportSettings, Proposal
from data_loaders.schema import TABLES

__all__ = ["settings_from_edits", "timepoint_rows", "settings_from_timepoints", "ROLES",
           "TABLE_CHOICES"]

ROLES = tuple(r for r in ROLE_NAMES if not r.startswith("_")) + tuple(
    c for spec in TABLES.values() for c in spec.columns
    if c not in ROLE_NAMES)
TABLE_CHOICES = (*TABLES, "rna_counts", "skip")


def _changed(before: pl.DataFrame, after: pl.DataFrame, column: str) -> list[int]:
    if before.height != after.height:
        raise ValueError("rows were added or removed; only the table and maps_to cells can "
                         "change")
    old = before.get_column(column).cast(pl.String).fill_null("").to_list()
    new = after.get_column(column).cast(pl.String).fill_null("").to_list()
    return [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]


def settings_from_edits(settings: ImportSettings, before: pl.DataFrame, after: pl.DataFrame
                        ) -> ImportSettings:
    """The settings that make the proposal show `after` where it showed `before`."""
    tables = dict(settings.tables)
    columns = dict(settings.columns)
    analytes = dict(settings.analytes)
    for i in _changed(before, after, "table"):
        row = after.row(i, named=True)
        key = f"{row['file']}#{row['sheet']}" if row["sheet"] else row["file"]
        value = str(row["table"] or "").strip()
        if value not in TABLE_CHOICES:
            raise ValueError(f"{key}: table {value!r} is not one of {', '.join(TABLE_CHOICES)}")
        tables[key] = value
    for i in _changed(before, after, "maps_to"):
        row = after.row(i, named=True)
        header = row["column"]
        value = str(row["maps_to"] or "").strip()
        if not header:
            continue
        if value in ROLES:
            columns[header] = value
            analytes.pop(header, None)
        else:
            analytes[header] = value or "skip"
            columns.pop(header, None)
    return settings.with_(tables=tuple(tables.items()), columns=tuple(columns.items()),
                          analytes=tuple(analytes.items()))


def timepoint_rows(prop: Proposal) -> pl.DataFrame:
    """Every visit label the proposal placed, with its day (one row per distinct label)."""
    seen: dict[str, int] = {}
    for d in prop.items:
        for label, day in (d.options.get("timepoints") or {}).items():
            seen.setdefault(str(label), int(day))
    return pl.DataFrame({"label": list(seen), "day": list(seen.values())},
                        schema={"label": pl.String, "day": pl.Int64})


def settings_from_timepoints(settings: ImportSettings, before: pl.DataFrame,
                             after: pl.DataFrame) -> ImportSettings:
    """Changed days of visit labels -> the timepoint settings."""
    tp = dict(settings.timepoints)
    for i in _changed(before, after, "day"):
        row = after.row(i, named=True)
        if row["day"] is None:
            raise ValueError(f"visit label {row['label']!r} needs a study day")
        tp[str(row["label"])] = int(row["day"])
    return settings.with_(timepoints=tuple(tp.items()))
