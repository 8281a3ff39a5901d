"""Data & quality recipes: the validation report, the table inventory, sample availability and
the empty CSV templates a lab fills in (one per canonical table, required columns first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import polars as pl

from analysis.cohort import Cohort
from analysis.quality import sample_availability, table_inventory
from components.figures.quality import availability_matrix
from data_loaders.schema import RNA_SPEC, TABLES, template_frame
from views import common
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders.study import Study

__all__ = ["Template", "ReportParams", "templates", "report", "inventory", "availability"]

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    frame: pl.DataFrame


@dataclass(frozen=True)
class ReportParams:
    """The severities of the validation findings listed."""

    severities: tuple[Severity, ...] = ("error", "warning", "note")


def templates() -> list[Template]:
    """One empty frame per canonical table and the RNA count matrix, in table order."""
    return [Template(name, (RNA_SPEC if name == "rna_counts" else TABLES[name]).description,
                     template_frame(name)) for name in [*TABLES, "rna_counts"]]


@recipe
def report(study: Study, *, cohort: Cohort | None = None,
           params: ReportParams = ReportParams(), focus: Focus | None = None) -> TableSpec:
    """The loader's findings (file, row, column, what to do) of the chosen severities; the
    whole study's, whatever the cohort (a broken row may belong to no patient)."""
    findings = study.report.to_frame()
    return TableSpec(key="dq-report", title="Validation report", params=params,
                     data=findings.filter(pl.col("severity").is_in(list(params.severities))))


@recipe
def inventory(study: Study, *, cohort: Cohort | None = None, params: None = None,
              focus: Focus | None = None) -> TableSpec:
    """Each table: the files it came from, rows read and rows loaded."""
    return TableSpec(key="dq-inventory", title="What was loaded", data=table_inventory(study))


@recipe
def availability(study: Study, *, cohort: Cohort | None = None, params: None = None,
                 focus: Focus | None = None) -> FigureSpec | None:
    """Samples per patient, timepoint and assay for the cohort; None when nothing was
    sampled."""
    avail = common.apply(study, sample_availability(study), cohort)
    if avail.height == 0:
        return None
    return FigureSpec(key="dq-availability", title="Sample availability",
                      fig=availability_matrix(avail), data=avail)
