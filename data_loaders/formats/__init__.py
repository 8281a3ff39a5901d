"""Readers for the formats labs receive (SDTM, Olink NPX, AIRR/10x VDJ, MAF, 10x, FCS).

A study names them in `study.toml`:

    [[sources]]
    format = "sdtm"          # a key of READERS
    path = "sdtm"            # file or folder inside the study folder
    options = { ... }        # reader-specific

Each reader maps its format onto canonical tables and returns `RawTable`s (all-text frames with
canonical column names) that go through the same validation as canonical CSV files. What a
reader cannot map it reports as findings; it never drops data silently.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data_loaders.errors import StudyError, ValidationReport
from data_loaders.raw import RawTable

__all__ = ["READERS", "register_reader", "read_source", "read_file"]

Reader = Callable[[Path, dict[str, Any], ValidationReport], list[RawTable]]
READERS: dict[str, Reader] = {}


def register_reader(name: str) -> Callable[[Reader], Reader]:
    def deco(fn: Reader) -> Reader:
        READERS[name] = fn
        return fn
    return deco


def load_readers() -> None:
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


def read_source(root: Path, source: dict[str, Any], report: ValidationReport, *,
                catalogue: dict[str, Any] | None = None) -> list[RawTable]:
    """Run the reader a `[[sources]]` entry names; problems become findings, never raises.

    A reader that declares keyword-only `label` gets the source path as written in study.toml
    (to name files in findings); one that declares `catalogue` gets the study's analytes.
    """
    load_readers()
    fmt = str(source.get("format", "")).lower()
    rel = str(source.get("path", ""))
    path = root / rel
    if fmt not in READERS:
        report.add("error", "study", "study.toml", f"source format {fmt!r} is not known",
                   fix=f"use one of: {', '.join(sorted(READERS)) or '(none installed)'}")
        return []
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except OSError:
        inside = False
    if not rel or not inside or not path.exists():
        report.add("error", "study", rel or "study.toml",
                   f"source path for format {fmt!r} does not exist inside the study folder",
                   fix="give a path relative to the study folder in [[sources]] path")
        return []
    try:
        return read_file(path, fmt, dict(source.get("options", {}) or {}), report, label=rel,
                         catalogue=catalogue)
    except StudyError as err:
        report.add_error(err, table=fmt, file=rel)
        return []


def read_file(path: Path, fmt: str, options: dict[str, Any], report: ValidationReport, *,
              label: str, catalogue: dict[str, Any] | None = None) -> list[Any]:
    """The `fmt` reader run on one file or folder: its RawTables (problems become findings;
    a file the reader cannot use at all raises StudyError). `label` names the file in
    findings; a reader that declares `catalogue` gets the study's analytes."""
    load_readers()
    if fmt not in READERS:
        raise ValueError(f"format {fmt!r} is not known; use one of: {', '.join(sorted(READERS))}")
    reader = READERS[fmt]
    wanted = inspect.signature(reader).parameters
    extra = {k: v for k, v in (("label", label), ("catalogue", catalogue)) if k in wanted}
    return reader(path, options, report, **extra)
