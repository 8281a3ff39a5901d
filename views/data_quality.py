"""Data & quality recipes: the table inventory, sample availability and the empty CSV templates
a lab fills in (one per canonical table, required columns first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from analysis.quality import sample_availability, table_inventory
from data_loaders.schema import RNA_SPEC, TABLES, template_frame

if TYPE_CHECKING:
    from data_loaders.study import Study

__all__ = ["Template", "templates", "inventory", "availability"]


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    frame: pl.DataFrame


def templates() -> list[Template]:
    """One empty frame per canonical table and the RNA count matrix, in table order."""
    return [Template(name, (RNA_SPEC if name == "rna_counts" else TABLES[name]).description,
                     template_frame(name)) for name in [*TABLES, "rna_counts"]]


def inventory(study: Study) -> pl.DataFrame:
    return table_inventory(study)


def availability(study: Study) -> pl.DataFrame:
    return sample_availability(study)
