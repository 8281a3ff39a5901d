"""Uploaded files for an import: size limit, safe names, and a private staging folder.

Uploads are held in a temporary folder outside every study (the importer reads files from
disk); nothing is written where the study will go before the user saves it. A session that
ends without saving leaves its folder behind (Streamlit tells the app nothing when a browser
tab closes), so each new staging removes this user's staging folders untouched for
`IMPORT_STAGING_HOURS` (default 24).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from data_loaders.errors import StudyError

__all__ = ["DEFAULT_LIMIT_MB", "DEFAULT_STAGING_HOURS", "upload_limit_mb", "staging_hours",
           "stage_uploads", "sweep_stale", "safe_study_name"]

DEFAULT_LIMIT_MB = 200
DEFAULT_STAGING_HOURS = 24.0
PREFIX = "cart-import-upload-"


def upload_limit_mb() -> int:
    """The size limit of one import's uploads together: `IMPORT_MAX_MB` (default 200)."""
    try:
        return max(1, int(os.environ.get("IMPORT_MAX_MB", DEFAULT_LIMIT_MB)))
    except ValueError:
        return DEFAULT_LIMIT_MB


def staging_hours() -> float:
    """How long an unsaved import's uploads are kept: `IMPORT_STAGING_HOURS` (default 24)."""
    try:
        return max(0.0, float(os.environ.get("IMPORT_STAGING_HOURS", DEFAULT_STAGING_HOURS)))
    except ValueError:
        return DEFAULT_STAGING_HOURS


def sweep_stale(*, hours: float | None = None, root: Path | None = None,
                now: float | None = None) -> list[Path]:
    """Remove this user's staging folders (in `root`, default the temporary folder) whose
    newest file is older than `hours`; return what was removed. Folders of other users and
    anything not named like a staging folder are never touched."""
    limit = (staging_hours() if hours is None else hours) * 3600
    base = Path(root or tempfile.gettempdir())
    clock = time.time() if now is None else now
    removed = []
    for folder in base.glob(f"{PREFIX}*"):
        try:
            if not folder.is_dir() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            newest = max([folder.stat().st_mtime,
                          *(f.stat().st_mtime for f in folder.iterdir())])
        except OSError:
            continue
        if clock - newest > limit:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _safe_name(name: str) -> str:
    base = Path(str(name).replace("\\", "/")).name.strip()
    if not base or base in (".", "..") or base.startswith("."):
        raise StudyError("is not a usable file name", file=repr(name)[:80],
                         fix="rename the file (letters, digits, dots, dashes) and upload again")
    return base


def stage_uploads(files: Iterable[tuple[str, bytes]], *, limit_mb: int | None = None) -> Path:
    """Write uploads (name, content) into a new private temporary folder and return it.
    Refuses, before writing anything, uploads larger than the limit together and repeated
    or unsafe names."""
    items = [(_safe_name(n), data) for n, data in files]
    limit = (limit_mb or upload_limit_mb()) * 1024 * 1024
    total = sum(len(d) for _, d in items)
    if total > limit:
        raise StudyError(f"the uploads are {total / 1024 / 1024:.1f} MB together, over the "
                         f"limit of {limit // 1024 // 1024} MB", file="upload",
                         fix="import large files with `python cli.py import` on the server, or "
                         "ask the administrator to raise IMPORT_MAX_MB")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise StudyError("two uploads have the same name", file="upload",
                         fix="rename one of them")
    sweep_stale()
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    for name, data in items:
        (folder / name).write_bytes(data)
    return folder


def safe_study_name(name: str) -> str:
    """A new study's folder name under STUDIES_ROOT: letters, digits, `-`, `_`, `.` (not
    first), at most 64 characters; anything else is refused, never rewritten."""
    text = str(name).strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", text) or ".." in text:
        raise StudyError("is not a usable study name", file=repr(text)[:80],
                         fix="use letters, digits, '-', '_' and '.', starting with a letter "
                         "or digit (at most 64)")
    return text
