"""The Import page's recipe: files -> proposal -> edits -> preview -> a new study.

The page calls only this module; the work is in data_loaders.importers (the same functions
`cli.py import` uses), so the page, the CLI and an earlier study.toml decide alike.
"""

from __future__ import annotations

from data_loaders.errors import StudyError
from data_loaders.importers.edits import (
    TABLE_CHOICES,
    settings_from_edits,
    settings_from_timepoints,
    timepoint_rows,
)
from data_loaders.importers.plan import ImportSettings, Proposal, preview, propose, write_study
from data_loaders.importers.uploads import safe_study_name, stage_uploads, upload_limit_mb

__all__ = ["TABLE_CHOICES", "ImportSettings", "Proposal", "StudyError", "propose", "preview", "write_study",
           "settings_from_edits", "settings_from_timepoints", "timepoint_rows",
           "safe_study_name", "stage_uploads", "upload_limit_mb"]
