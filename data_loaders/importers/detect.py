"""What each file of an export is: a format with its own reader (SDTM, Olink, AIRR, 10x VDJ,
MAF, FCS), a single-cell file, or a sheet (patients, measurements long or wide, events,
responses, samples, omics tables), and for a sheet which column holds what.

Everything here reads and decides; nothing is written. The decisions are plain dicts (the
reader options of data_loaders/importers/sheet.py) so that study.toml can record them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from data_loaders.analytes import CATALOGUE, Analyte
from data_loaders.importers.dates import looks_like_dates
from data_loaders.importers.headers import (
    column_role,
    is_unit,
    resolve_analyte,
    split_header,
    suggest,
    unit_known,
)
from data_loaders.importers.sheet import find_header, find_units_row, frame_from_grid, read_grids
from data_loaders.schema import COLUMN_ALIASES, TABLES

__all__ = ["Detected", "detect_path", "guess_sheet", "table_choice", "TABULAR", "SINGLE_CELL_SUFFIXES"]

TABULAR = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xls", ".parquet")
SINGLE_CELL_SUFFIXES = (".h5ad", ".h5mu", ".loom")
_SKIP = {".md", ".pdf", ".json", ".html", ".png", ".jpg", ".jpeg", ".docx", ".doc", ".log",
         ".toml", ".yaml", ".yml", ".py", ".r", ".rds", ".zip"}

# Patient-level columns (after the loader's own name folding) and their Chinese spellings.
_PATIENT_ROLES = {"age": ("age", "年龄"), "sex": ("sex", "gender", "性别"),
                  "diagnosis": ("diagnosis", "诊断", "疾病"), "weight_kg": ("weight", "weight_kg",
                                                                         "体重", "体重kg"),
                  "dose_per_kg": ("dose_per_kg", "剂量"), "death_day": ("death_day",),
                  "last_contact_day": ("last_contact_day",), "hsct_day": ("hsct_day",),
                  "progression_day": ("progression_day",)}
_COMMENT = ("备注", "comment", "comments", "remark", "remarks", "note", "notes", "结论",
            "临床意义", "参考范围", "reference_range", "flag", "标志")


@dataclass
class Detected:
    """One input (a file, a folder read as a whole, or one worksheet)."""

    path: str                       # relative to the import source
    kind: str                       # sheet | rna_counts | sdtm | olink | airr | 10x_vdj | maf |
    #                                 fcs | single_cell | skip
    sheet: str | None = None
    table: str | None = None        # canonical table for a sheet
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)       # what was decided and why
    questions: list[str] = field(default_factory=list)   # what must be answered to write
    subjects: list[str] = field(default_factory=list)    # patient ids seen (sheets)
    frame: pl.DataFrame | None = field(default=None, repr=False)   # the sheet as read

    @property
    def key(self) -> str:
        return f"{self.path}#{self.sheet}" if self.sheet else self.path


def _fold(text: str) -> str:
    import re

    return re.sub(r"[\s_\-.]", "", str(text).lower())


def detect_path(root: Path, path: Path, *, catalogue: dict[str, Analyte] | None = None,
                chosen_analytes: dict[str, str] | None = None,
                chosen_columns: dict[str, str] | None = None,
                tables: dict[str, str] | None = None) -> list[Detected]:
    """Detect one file or folder (relative names against `root`). `tables` holds the user's
    choices of table per "file" or "file#sheet" ("skip" leaves it out)."""
    tables = tables or {}
    rel = str(path.relative_to(root)) if path != root else path.name
    name = path.name.lower()
    if path.is_dir():
        if name.endswith(".zarr") or any((path / m).exists() for m in (".zgroup", "zarr.json")):
            return [Detected(rel, "single_cell", notes=["AnnData zarr store"])]
        if any((path / f).exists() for f in ("matrix.mtx.gz", "matrix.mtx")):
            return [Detected(rel, "single_cell", notes=["10x matrix folder (matrix.mtx)"])]
        return []
    suffix = path.suffix.lower()
    inner = Path(path.stem).suffix.lower() if suffix == ".gz" else suffix
    if inner in SINGLE_CELL_SUFFIXES:
        return [Detected(rel, "single_cell", notes=[f"{inner} file"])]
    if suffix == ".h5":
        return [Detected(rel, "single_cell", notes=["HDF5 file (10x feature-barcode matrix)"])]
    if suffix == ".xpt":
        return [Detected(rel, "sdtm", notes=["SAS transport file (CDISC SDTM domain)"])]
    if suffix == ".fcs":
        return [Detected(rel, "fcs", notes=["flow cytometry standard file"])]
    if inner == ".maf":
        return [Detected(rel, "maf", notes=["mutation annotation format"])]
    if name.startswith(".") or suffix in _SKIP or inner not in TABULAR:
        return [Detected(rel, "skip", notes=["not a table this import reads"])]
    from data_loaders.errors import StudyError

    try:
        grids = read_grids(path, name=rel)
    except StudyError as err:
        return [Detected(rel, "skip", questions=[str(err)])]
    out = []
    for sheet, grid in grids.items():
        key = f"{rel}#{sheet}" if sheet else rel
        wanted = table_choice(tables, key, rel)
        if wanted == "skip":
            out.append(Detected(rel, "skip", sheet=sheet or None, notes=["left out (--table)"]))
            continue
        out.append(guess_sheet(grid, rel, sheet or None, catalogue=catalogue,
                               chosen_analytes=chosen_analytes, chosen_columns=chosen_columns,
                               table=wanted))
    return out


def table_choice(tables: dict[str, str], key: str, path: str) -> str | None:
    """The user's table for "file#sheet" or "file"; a pattern such as `gating/*` or `*.txt`
    matches too (exact names win, then the first matching pattern)."""
    from fnmatch import fnmatchcase

    if key in tables or path in tables:
        return tables.get(key) or tables.get(path)
    return next((v for k, v in tables.items() if any(ch in k for ch in "*?[")
                 and (fnmatchcase(key, k) or fnmatchcase(path, k))), None)


def _format_of(headers: list[str]) -> tuple[str, str] | None:
    folded = {_fold(h) for h in headers}
    if {"olinkid", "npx"} <= folded or {"olinkid", "sampleid"} <= folded:
        return "olink", "Olink NPX export (OlinkID, NPX)"
    if {"barcode", "contigid", "chain"} <= folded:
        return "10x_vdj", "10x Cell Ranger VDJ contig annotations"
    if {"sequenceid", "vcall"} <= folded and folded & {"junctionaa", "junction", "productive"}:
        return "airr", "AIRR rearrangement table"
    if {"hugosymbol", "tumorsamplebarcode"} <= folded:
        return "maf", "MAF columns (Hugo_Symbol, Tumor_Sample_Barcode)"
    return None


def guess_sheet(grid: pl.DataFrame, rel: str, sheet: str | None, *,
                catalogue: dict[str, Analyte] | None = None,
                chosen_analytes: dict[str, str] | None = None,
                chosen_columns: dict[str, str] | None = None,
                table: str | None = None) -> Detected:
    """What one grid holds: its format or canonical table, layout and column mapping."""
    det = Detected(rel, "sheet", sheet=sheet)
    if grid.height == 0 or grid.width == 0:
        det.kind = "skip"
        det.notes.append("empty sheet")
        return det
    header = find_header(grid)
    units_row = find_units_row(grid, header)
    frame, row_units = frame_from_grid(grid, header, units_row)
    headers = [c for c in frame.columns if c != "_row"]
    fmt = _format_of(headers) if sheet is None and table is None else None
    if fmt:
        det.kind, note = fmt
        det.notes.append(note)
        folded = {_fold(h) for h in headers}
        if det.kind in ("airr", "10x_vdj") and not folded & {"sampleid", "sample",
                                                             "repertoireid"}:
            stem = Path(rel).name.split(".")[0]
            det.options = {"sample_id": stem}
            det.notes.append(f"no sample column: every row is sample {stem!r} (the file name; "
                             "change with --option sample_id=NAME)")
        return det
    if header:
        det.notes.append(f"header on row {header + 1} (rows above it are titles)")
    if units_row:
        det.notes.append(f"units row under the header (row {header + 2})")
    det.options = {"header_row": header + 1, "units_row": header + 2 if units_row else 0}
    det.frame = frame
    chosen_columns = chosen_columns or {}
    chosen_analytes = chosen_analytes or {}
    roles: dict[str, str] = {}
    analytes: dict[str, str] = {}
    units: dict[str, str] = {}
    unplaced: list[str] = []
    left_out: list[str] = []
    folded_canon = {_fold(c): c for spec in TABLES.values() for c in spec.columns} | {
        _fold(a): c for a, c in COLUMN_ALIASES.items()}
    patient_of = {_fold(n): r for r, names in _PATIENT_ROLES.items() for n in names}
    for h in headers:
        values = frame.get_column(h).drop_nulls()
        if h in chosen_columns:
            role = chosen_columns[h]
            if role == "skip":
                left_out.append(h)
            elif role not in roles:
                roles[role] = h
            continue
        choice = chosen_analytes.get(h) or chosen_analytes.get(split_header(h)[0])
        if choice == "skip":
            left_out.append(h)
            continue
        role = column_role(h)
        if role == "time" and "date" not in roles and looks_like_dates(values.head(200).to_list()):
            role = "date"           # 采样时间 "2025-01-03 08:30": a date with its time
            det.notes.append(f"{h!r} holds dates (with times): used as the date")
        if role and choice is None:
            if role == "_identifying":
                left_out.append(h)
                det.notes.append(f"{h!r} identifies a person: left out")
            elif role not in roles:
                roles[role] = h
            continue
        fold = _fold(h)
        if choice is None and fold in patient_of and patient_of[fold] not in roles:
            roles[patient_of[fold]] = h
            continue
        if choice is None and fold in folded_canon and folded_canon[fold] not in roles:
            roles[folded_canon[fold]] = h
            continue
        name, unit = split_header(h)
        unit = unit or row_units.get(h)
        canon, why = resolve_analyte(name, unit, catalogue,
                                     chosen={name: choice, h: choice} if choice else None)
        if canon is not None:
            if canon in analytes.values():
                det.questions.append(f"{rel}{_at(sheet)}: columns {h!r} and "
                                     f"{[k for k, v in analytes.items() if v == canon][0]!r} "
                                     f"both hold {canon}; leave one out with --analyte "
                                     f"\"{h}=skip\"")
            analytes[h] = canon
            if unit:
                units[h] = unit
                if not unit_known(canon, unit, catalogue):
                    from data_loaders.units import known_units_for

                    ok = ", ".join(known_units_for(canon, (catalogue or CATALOGUE)[canon].unit)[:5])
                    det.questions.append(
                        f"{rel}{_at(sheet)}: column {h!r} ({canon}) has unit {unit!r}, which the "
                        f"unit table cannot convert to {(catalogue or CATALOGUE)[canon].unit}"
                        f" (known: {ok}); correct the unit in the export, or leave the column "
                        f"out: --analyte \"{name}=skip\"")
            if why.startswith("percentage"):
                det.notes.append(f"{h!r} is a percentage: {canon}, not an absolute count")
            continue
        if _fold(h) in {_fold(c) for c in _COMMENT} or values.len() == 0:
            left_out.append(h)
            continue
        numeric = values.str.replace(",", ".").str.strip_chars("<>↑↓ HL*")\
            .cast(pl.Float64, strict=False).is_not_null().mean() or 0.0
        if looks_like_dates(values.head(200).to_list()) and "date" not in roles:
            roles["date"] = h
            continue
        if numeric >= 0.5:
            unplaced.append((h, why))
        else:
            left_out.append(h)
    if left_out:
        det.notes.append("not imported: " + ", ".join(repr(h) for h in left_out[:12])
                         + (" ..." if len(left_out) > 12 else ""))
    det.table = table or _table_for(roles, analytes, headers, frame)
    if det.table is None and "subject_id" not in roles and not analytes and not unplaced:
        det.kind = "skip"
        det.notes.append("left out: no patient column, no analyte and no table's columns "
                         f"(import it with --table \"{det.key}=TABLE\")")
        return det
    if det.table is None:
        det.kind = "skip"
        det.questions.append(f"{rel}{_at(sheet)}: cannot tell which table this is (columns "
                             f"{', '.join(headers[:8])}); say so with --table "
                             f"\"{rel}{'#' + sheet if sheet else ''}=TABLE\" or =skip")
        return det
    if det.table == "rna_counts":
        det.kind = "rna_counts"
        return det
    wide = det.table == "measurements" and "analyte" not in roles
    for h, why in unplaced:
        if not wide:
            det.notes.append(f"{h!r} kept as an extra column")
            continue
        hint = suggest(h, catalogue)
        name = split_header(h)[0]
        det.questions.append(
            f"{rel}{_at(sheet)}: column {h!r} holds numbers but names no known analyte"
            + (f" ({why})" if why.startswith("a percentage") else "")
            + (f" (closest: {', '.join(hint)})" if hint else "")
            + f"; say what it is: --analyte \"{name}=NAME\" or leave it out: "
            f"--analyte \"{name}=skip\"")
    det.options.update({"table": det.table, "layout": "wide" if wide else "long"})
    if sheet:
        det.options["sheet"] = sheet
    if "subject_id" in roles:
        det.subjects = sorted(set(frame.get_column(roles["subject_id"]).drop_nulls().to_list()))
    det.options["columns"] = dict(roles)
    if wide:
        det.options["analytes"] = analytes
        det.options["units"] = units
    return det


def _at(sheet: str | None) -> str:
    return f" [{sheet}]" if sheet else ""


def _table_for(roles: dict[str, str], analytes: dict[str, str], headers: list[str],
               frame: pl.DataFrame) -> str | None:
    has = set(roles)
    if {"analyte", "value"} <= has:
        return "measurements"
    if analytes and "subject_id" in has and has & {"date", "day", "visit"}:
        return "measurements"
    if "response" in has and "subject_id" in has:
        return "responses"
    if "category" in has and "subject_id" in has:
        return "events"
    if "vaf" in has and "gene" in has:
        return "mutations"
    if "junction_aa" in has:
        return "tcr"
    if "feature" in has and "value" in has:
        return "proteomics"
    if "sample_id" in has and "subject_id" in has:
        return "samples"
    if "subject_id" in has and has & ({"infusion_date", *_PATIENT_ROLES}):
        return "patients"
    first = headers[0] if headers else ""
    if _fold(first) in ("gene", "geneid", "symbol", "genesymbol", "ensemblid") and \
            len(headers) > 2 and not is_unit(first):
        return "rna_counts"
    return None
