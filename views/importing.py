"""The Import page's recipe: files -> proposal -> edits -> preview -> a new study.

The page calls only this module; the work is in data_loaders.importers (the same functions
`cli.py import` uses), so the page, the CLI and an earlier study.toml decide alike. The page's
option lists, the settings its choices make, the validation table and where a new study is
written (its default rule) are here, so the page only reads widgets.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import polars as pl

from data_loaders.errors import StudyError
from data_loaders.importers.edits import (
    TABLE_CHOICES,
    settings_from_edits,
    settings_from_timepoints,
    timepoint_rows,
)
from data_loaders.importers.plan import ImportSettings, Proposal, preview, propose, write_study
from data_loaders.importers.uploads import safe_study_name, stage_uploads, upload_limit_mb
from views.spec import TableSpec

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["TABLE_CHOICES", "ImportSettings", "Proposal", "StudyError", "propose", "preview",
           "write_study", "settings_from_edits", "settings_from_timepoints", "timepoint_rows",
           "safe_study_name", "stage_uploads", "upload_limit_mb", "DATE_ORDERS", "TISSUES",
           "table_options", "with_choices", "edited_settings", "validation", "preview_tables",
           "target_folder", "source_folder", "PREVIEW_ROWS", "restage", "discard", "Upload",
           "upload_key", "restage_uploads", "mapping_rows", "visit_labels",
           "preview_caption"]

DateOrder = Literal["ask", "day-first", "month-first"]
DATE_ORDERS: dict[str, bool | None] = {"ask": None, "day-first": True, "month-first": False}
AS_GIVEN = "(as given)"
TISSUES = (AS_GIVEN, "blood", "marrow")
# formats a whole file can be read as, besides the canonical tables
_FORMATS = ("sdtm", "olink", "airr", "10x_vdj", "maf", "fcs", "single_cell")
PREVIEW_ROWS = 200


def table_options() -> list[str]:
    """What a file or sheet can be mapped to: a canonical table, skip, or a whole-file
    format."""
    return [*TABLE_CHOICES, *_FORMATS]


def with_choices(settings: ImportSettings, *, order: DateOrder, tissue: str) -> ImportSettings:
    """`settings` with the page's date order ("ask": ambiguous dates are a question) and the
    tissue of the measurements ("(as given)": the file's own)."""
    return settings.with_(day_first=DATE_ORDERS[order],
                          tissue=None if tissue == AS_GIVEN else tissue)


def edited_settings(settings: ImportSettings, *, rows: pl.DataFrame, edited: pl.DataFrame,
                    labels: pl.DataFrame | None = None,
                    edited_labels: pl.DataFrame | None = None) -> ImportSettings:
    """The settings the edited mapping (and the edited visit labels) make. Raises ValueError
    naming the row that cannot be used."""
    new = settings_from_edits(settings, rows, edited)
    if labels is not None and edited_labels is not None:
        new = settings_from_timepoints(new, labels, edited_labels)
    return new


def restage(files: list[tuple[str, bytes]], *, previous: str | None, limit_mb: int) -> Path:
    """Stage uploaded files (name, bytes) in a new private folder and remove the previous
    one. Raises StudyError (too large, a name that cannot be used) and keeps the previous
    folder then."""
    folder = stage_uploads(files, limit_mb=limit_mb)
    discard(previous)
    return folder


class Upload(Protocol):
    """An uploaded file as the page gets it (streamlit's UploadedFile)."""

    name: str
    size: int

    def getvalue(self) -> bytes: ...


def upload_key(files: Sequence[Upload]) -> tuple[tuple[str, int], ...]:
    """What identifies a set of uploads (names and sizes): the page stages them again only
    when it changes."""
    return tuple((f.name, f.size) for f in files)


def restage_uploads(files: Sequence[Upload], *, previous: str | None, limit_mb: int) -> Path:
    """`restage` for the uploaded files as the page gets them."""
    return restage([(f.name, f.getvalue()) for f in files], previous=previous,
                   limit_mb=limit_mb)


def mapping_rows(proposal: Proposal) -> pl.DataFrame:
    """The detected mapping as the page's editable table: one row per file, sheet and
    column (`Proposal.rows`)."""
    return proposal.rows()


def visit_labels(proposal: Proposal) -> pl.DataFrame | None:
    """The visit labels the files use, with the study day each maps to (editable); None
    when the files name days, not visits."""
    labels = timepoint_rows(proposal)
    return labels if labels.height else None


def preview_caption(study: Study) -> str:
    """How many patients and which tables the previewed study holds."""
    return f"{len(study.subject_ids)} patients; tables: {', '.join(study.loaded_tables)}"


def discard(folder: str | None) -> None:
    """Remove a staged upload folder (after saving, the uploads live in the study)."""
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def source_folder(text: str) -> Path | None:
    """The folder or file typed in (None when empty). Raises StudyError when it does not
    exist."""
    if not text.strip():
        return None
    path = Path(text).expanduser()
    if not path.exists():
        raise StudyError(f"{path} does not exist")
    return path


def validation(study: Study, *, cohort: None = None, params: None = None,
               focus: None = None) -> TableSpec:
    """The validation report of a previewed study: one row per finding (severity, table,
    file, message), its summary as the caption. (The study is the preview of a proposal, not
    a folder, so the record is not rebuilt from code.)"""
    report = study.report
    rows = pl.DataFrame([{"severity": f.severity, "table": f.table, "file": f.file,
                          "message": f.message} for f in report.findings],
                        schema={"severity": pl.String, "table": pl.String, "file": pl.String,
                                "message": pl.String})
    return TableSpec("validation", "Validation report", rows, None, report.summary())


def preview_tables(study: Study) -> dict[str, pl.DataFrame]:
    """The first PREVIEW_ROWS rows of each loaded table."""
    return {name: getattr(study, name).head(PREVIEW_ROWS) for name in study.loaded_tables}


def target_folder(name: str, *, root: str | None) -> Path | None:
    """Where a new study named `name` is written: under STUDIES_ROOT on a server (a safe
    name only), else the path typed when it has a "/", else ~/cart-studies/<name>. None for
    an empty name; StudyError for a name a server refuses."""
    if not name.strip():
        return None
    if root:
        return Path(root) / safe_study_name(name)
    return Path(name).expanduser() if "/" in name else Path.home() / "cart-studies" / name
