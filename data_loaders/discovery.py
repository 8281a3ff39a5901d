"""Finding a study's files: study.toml, the tables named there or by their conventional names
(patients.csv, measurements.xlsx, ...), the format sources ([[sources]]) and the single-cell
file; each read as text with its column names folded to the canonical ones."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from data_loaders.analytes import catalogue_with
from data_loaders.errors import StudyError, ValidationReport
from data_loaders.raw import RawTable
from data_loaders.readers import read_table
from data_loaders.schema import COLUMN_ALIASES, TABLES, TABULAR_SUFFIXES

__all__ = ["read_config", "conventional_files", "collect_sources", "relative_name",
           "inside_folder", "standardise_columns"]


def read_config(root: Path, report: ValidationReport) -> dict[str, Any]:
    """study.toml as a dict ({} when there is none; a syntax error is reported, not raised)."""
    cfg_path = root / "study.toml"
    if not cfg_path.exists():
        return {}
    try:
        return tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        report.add("error", "study", "study.toml", f"is not valid TOML: {exc}",
                   fix="fix the syntax (see docs/data-format.md); files are found by their "
                   "conventional names meanwhile")
        return {}


def conventional_files(root: Path, table: str) -> list[Path]:
    """The files holding `table` by its conventional name (patients.csv, patients.xlsx, ...)."""
    out = []
    for suffix in TABULAR_SUFFIXES + (".csv.gz", ".tsv.gz"):
        p = root / f"{table}{suffix}"
        if p.is_file():
            out.append(p)
    return out


def collect_sources(root: Path, config: dict[str, Any], report: ValidationReport
                    ) -> tuple[list[RawTable], Path | None]:
    """Every table file of the study read as text (RawTable), and the single-cell file."""
    from data_loaders.formats import read_source

    raws: list[RawTable] = []
    table_cfg = config.get("tables", {}) or {}
    for table in list(TABLES) + ["rna_counts"]:
        cfg = table_cfg.get(table, {}) or {}
        names = cfg.get("files") or ([cfg["file"]] if cfg.get("file") else None)
        paths = [root / n for n in names] if names else conventional_files(root, table)
        for p in paths:
            rel = relative_name(root, p)
            if not inside_folder(root, p):
                report.add("error", table, rel, "lies outside the study folder",
                           fix="keep every study file inside the study folder")
                continue
            if not p.is_file():
                report.add("error", table, rel, "is named in study.toml but does not exist",
                           fix="correct the file name in study.toml [tables."
                           f"{table}] or add the file")
                continue
            try:
                res = read_table(p, name=rel)
            except StudyError as err:
                report.add_error(err, table=table, file=rel)
                continue
            if res.frame.height == 0:
                report.add("error", table, rel, "has a header but no data rows",
                           fix="add data rows or remove the file")
                continue
            frame = standardise_columns(
                res.frame, cfg.get("rename", {}) or {}, wide=table == "rna_counts",
                canonical=TABLES[table].columns if table in TABLES else ())
            raws.append(RawTable(table, rel, frame, res.format, res.encoding, res.delimiter))
            if res.encoding and res.encoding != "utf-8":
                report.add("note", table, rel, f"read with encoding {res.encoding}",
                           fix="save as UTF-8 to avoid mis-read accents")
            if res.delimiter and res.delimiter not in (",", "\t"):
                report.add("note", table, rel, f"read with delimiter {res.delimiter!r}",
                           fix="nothing to do; a comma-separated UTF-8 file is the most "
                           "portable")
            if res.sheets:
                others = list(res.sheets[1:])
                report.add("note", table, rel,
                           f"read the first worksheet {res.sheets[0]!r} of an Excel workbook"
                           + (f"; other sheets not read: {', '.join(others[:6])}" if others
                              else ""),
                           fix="keep one table per workbook on its first sheet, or save each "
                           "sheet as its own CSV file")
    catalogue = catalogue_with(config.get("analytes", {}) or {})
    for source in config.get("sources", []) or []:
        if str(source.get("format", "")).lower() == "10x":
            continue  # single-cell counts become AnnData once the samples table is validated
        raws.extend(read_source(root, source, report, catalogue=catalogue))

    from data_loaders.single_cell.check import find_single_cell_file

    single_cell = find_single_cell_file(root, config)
    return raws, single_cell


def relative_name(root: Path, p: Path) -> str:
    """`p` relative to the study folder (as written when it lies outside)."""
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)


def inside_folder(root: Path, p: Path) -> bool:
    """Whether `p` (links resolved) lies inside the study folder."""
    try:
        p.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def standardise_columns(frame: pl.DataFrame, rename: dict[str, str], *, wide: bool = False,
                        canonical: Iterable[str] = ()) -> pl.DataFrame:
    """Apply study.toml renames, then fold names (case, spaces) and known aliases. A name that
    is already one of the table's `canonical` columns is never re-mapped by an alias."""
    frame = frame.rename({k: v for k, v in rename.items() if k in frame.columns})
    if wide:
        # A counts matrix: the first column holds the gene symbols whatever its header says.
        return frame if "gene" in frame.columns else frame.rename({frame.columns[0]: "gene"})
    mapping: dict[str, str] = {}
    taken = set()
    folded = {c: c.strip().lower().replace(" ", "_").replace("-", "_") for c in frame.columns}
    # the first header to fold to a name takes it; later ones keep their name as written.
    # (One set lookup per column: a counts matrix has one column per sample.)
    for c, f in folded.items():
        if f in taken:
            continue
        mapping[c] = f
        taken.add(f)
    own = set(canonical)
    for c, f in list(mapping.items()):
        alias = COLUMN_ALIASES.get(f)
        if alias and alias not in taken and f not in own:
            mapping[c] = alias
            taken.add(alias)
    return frame.rename(mapping)
