"""Data & quality recipes: the validation report, the table inventory, sample availability and
the empty CSV templates a lab fills in (one per canonical table, required columns first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

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

__all__ = ["Severity", "SEVERITIES", "Template", "ReportParams", "LoadSummary", "summary",
           "templates", "report", "inventory", "availability"]

Severity = Literal["error", "warning", "note"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    frame: pl.DataFrame


@dataclass(frozen=True)
class ReportParams:
    """The severities of the validation findings listed."""

    severities: tuple[Severity, ...] = SEVERITIES


@dataclass(frozen=True)
class LoadSummary:
    """What loading the study came to: counts for the page's metrics and its verdict, with
    the level to show it at."""

    patients: int
    tables: int
    errors: int
    warnings: int
    level: Literal["error", "warning", "success"]
    verdict: str


def summary(study: Study) -> LoadSummary:
    """Patients, tables loaded, errors and warnings of the study's validation report, and
    what they mean for the reader."""
    rep = study.report
    errors, warnings = len(rep.errors), len(rep.warnings)
    if errors:
        level, verdict = "error", (
            f"{errors} problem(s) need fixing. Rows with errors were left out; everything "
            "else loaded. Each line names the file, row (header = row 1), column and what "
            "to do.")
    elif warnings:
        level, verdict = "warning", ("The study loaded; some rows were adjusted or dropped "
                                     "(see warnings).")
    else:
        level, verdict = "success", "Every file passed validation."
    return LoadSummary(len(study.subject_ids), len(study.loaded_tables), errors, warnings,
                       level, verdict)


def templates() -> list[Template]:
    """One empty frame per canonical table and the RNA count matrix, in table order."""
    return [Template(name, (RNA_SPEC if name == "rna_counts" else TABLES[name]).description,
                     template_frame(name)) for name in [*TABLES, "rna_counts"]]


@recipe
def report(study: Study, *, cohort: Cohort | None = None,
           params: ReportParams = ReportParams(), focus: Focus | None = None
           ) -> TableSpec | None:
    """The loader's findings (file, row, column, what to do) of the chosen severities; the
    whole study's, whatever the cohort (a broken row may belong to no patient). None when
    no finding has those severities."""
    findings = study.report.to_frame()
    shown = findings.filter(pl.col("severity").is_in(list(params.severities)))
    if shown.height == 0:
        return None
    return TableSpec(key="dq-report", title="Validation report", params=params, data=shown)


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
