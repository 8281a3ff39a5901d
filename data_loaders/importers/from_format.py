"""One file in a known format (SDTM, Olink, AIRR, 10x VDJ, MAF, 10x matrix) converted once into
a study folder (`cli.py import --from FORMAT`): canonical Parquet tables named after the format,
added to study.toml [tables] (written with tomli-w), or single_cell.h5ad for a 10x matrix."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import tomli_w

from data_loaders.analytes import catalogue_with
from data_loaders.discovery import conventional_files
from data_loaders.errors import ValidationReport
from data_loaders.formats import read_file

__all__ = ["IMPORT_FORMATS", "FormatImport", "import_format"]

# the names `--from` accepts (10xvdj is 10x_vdj written without the underscore)
IMPORT_FORMATS = ("sdtm", "olink", "airr", "10xvdj", "10x_vdj", "maf", "10x")


@dataclass
class FormatImport:
    """What a conversion wrote (file names in the study folder) and what the reader found."""

    fmt: str
    written: list[str] = field(default_factory=list)
    report: ValidationReport = field(default_factory=ValidationReport)


def import_format(src: Path, out: Path, *, fmt: str, options: dict[str, Any]) -> FormatImport:
    """Convert `src` (a file or folder in format `fmt`) into the study folder `out` (made when
    missing). Tables already named in out/study.toml keep their files; the converted file is
    added to each table's [tables.NAME] files."""
    fmt = {"10xvdj": "10x_vdj"}.get(fmt, fmt)
    if fmt not in IMPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "study.toml"
    config = tomllib.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    result = FormatImport(fmt)
    if fmt == "10x":
        from data_loaders import load_study
        from data_loaders.formats.tenx import write_single_cell

        samples = load_study(out).samples if any(out.iterdir()) else None
        target = out / "single_cell.h5ad"
        write_single_cell(src, target, options, samples, result.report, label=src.name)
        result.written.append(target.name)
        return result
    catalogue = catalogue_with(config.get("analytes", {}) or {})
    raws = read_file(src, fmt, options, result.report, label=src.name, catalogue=catalogue)
    by_table: dict[str, list[pl.DataFrame]] = {}
    for raw in raws:
        by_table.setdefault(raw.table, []).append(raw.frame.drop("_row", strict=False))
    tables_cfg = config.setdefault("tables", {})
    for table, frames in by_table.items():
        name = f"{table}_{fmt}.parquet"
        pl.concat(frames, how="diagonal_relaxed").write_parquet(out / name)
        result.written.append(name)
        cfg = tables_cfg.setdefault(table, {})
        files = list(cfg.get("files") or ([cfg["file"]] if cfg.get("file") else []))
        if not files:
            files = [p.name for p in conventional_files(out, table)]
        cfg.pop("file", None)
        cfg["files"] = list(dict.fromkeys([*files, name]))
    config.setdefault("study", {}).setdefault("title", out.name)
    cfg_path.write_text("# study.toml (tables written by python cli.py import)\n"
                        + tomli_w.dumps(config), encoding="utf-8")
    return result
