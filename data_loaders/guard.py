"""Limits on what a study file may make the loader do, checked before the file is read.

One job: the limits a study file is checked against before it is read (one check per file
type, and the settings that raise them).

A small file can ask for a great deal: an .xlsx of 1.6 KB whose sheet declares the whole grid
(16,384 x 1,048,576 cells), a .csv.gz of 2.4 MB that unpacks to 1 GB, a CSV header of 10^6
columns, an .h5ad whose obs declares 10^9 rows in a few unwritten HDF5 chunks. Each of these is
refused here with a finding naming the file, the number it declares, the limit and the setting
that raises it; the other files of the study still load. What the checks cannot foresee is
caught by loading in a worker process with memory and time limits (`data_loaders.worker`).

Limits (defaults below, `Limits` field = setting name):

    max_file_mb      2048        size of one table file on disk
    max_unpacked_mb  512         what a .gz, or the members of an .xlsx, unpack to
    max_columns      50000       columns of one table (a counts matrix has one per sample)
    max_rows         20000000    rows of one table
    max_sheet_cells  20000000    rows x columns of an Excel sheet, as declared or as used
    max_cells        20000000    cells (obs rows) of a single-cell file

They are set, in this order, by the defaults, by `STUDIES_ROOT/server.toml` `[limits]` and by
the study's own `study.toml` `[limits]`. On a server (a `server.toml` or `STUDIES_ROOT` in
force) a study may only lower the server's limits, never raise them: a study folder is data,
not configuration of the server.
"""

from __future__ import annotations

import contextvars
import gzip
import os
import re
import tomllib
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from data_loaders.errors import StudyError

__all__ = ["Limits", "limits_for", "server_config", "server_root", "using", "active_limits",
           "check_file_size", "read_gzip", "check_text_shape", "check_parquet",
           "check_xlsx", "check_h5ad", "check_single_cell", "on_file", "note_reading", "skipping",
           "SERVER_CONFIG"]

SERVER_CONFIG = "server.toml"
_MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one study file may declare or unpack to (see the module docstring)."""

    max_file_mb: float = 2048
    max_unpacked_mb: float = 512
    max_columns: int = 50_000
    max_rows: int = 20_000_000
    max_sheet_cells: int = 20_000_000
    max_cells: int = 20_000_000

    def with_settings(self, settings: Mapping[str, Any], *, cap: bool = False,
                      source: str = "study.toml") -> Limits:
        """These limits with `settings` applied; `cap` keeps each at most its current value."""
        changes: dict[str, Any] = {}
        for f in fields(self):
            if f.name not in settings:
                continue
            value = settings[f.name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise StudyError(f"[limits] {f.name} = {value!r} is not a positive number",
                                 file=source, fix=f"give a number, e.g. {getattr(self, f.name)}")
            current = getattr(self, f.name)
            value = type(current)(value)
            changes[f.name] = min(value, current) if cap else value
        return replace(self, **changes)


# ---- configuration -------------------------------------------------------------------------
def server_root(study_dir: str | Path | None = None) -> Path | None:
    """The STUDIES_ROOT whose rules apply to `study_dir`: the environment's STUDIES_ROOT, else
    the study's parent folder when it holds a server.toml (how the CLI, run by hand on the
    server, knows it is on one)."""
    env = os.environ.get("STUDIES_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    if study_dir is not None:
        parent = Path(study_dir).expanduser().resolve().parent
        if (parent / SERVER_CONFIG).is_file():
            return parent
    return None


def server_config(study_dir: str | Path | None = None) -> dict[str, Any]:
    """`server.toml` of the STUDIES_ROOT that applies (empty when none or unreadable)."""
    root = server_root(study_dir)
    if root is None or not (root / SERVER_CONFIG).is_file():
        return {}
    try:
        return tomllib.loads((root / SERVER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def limits_for(study_dir: str | Path, config: Mapping[str, Any] | None = None) -> Limits:
    """Defaults, then server.toml [limits], then study.toml [limits] (capped on a server)."""
    limits = Limits()
    server = server_config(study_dir)
    if isinstance(server.get("limits"), Mapping):
        limits = limits.with_settings(server["limits"], source=SERVER_CONFIG)
    own = (config or {}).get("limits")
    if isinstance(own, Mapping):
        limits = limits.with_settings(own, cap=server_root(study_dir) is not None)
    return limits


_ACTIVE: contextvars.ContextVar[Limits | None] = contextvars.ContextVar("limits", default=None)


@contextmanager
def using(limits: Limits) -> Iterator[Limits]:
    """Readers called inside this block (also format readers) check these limits."""
    token = _ACTIVE.set(limits)
    try:
        yield limits
    finally:
        _ACTIVE.reset(token)


def active_limits() -> Limits:
    return _ACTIVE.get() or Limits()


# ---- which file is being read (the worker reports it when loading dies) ---------------------
_ON_FILE: list[Callable[[str], None]] = []
_SKIP: dict[str, str] = {}


def on_file(callback: Callable[[str], None] | None) -> None:
    """Call `callback(name)` whenever a reader starts on a file (None: stop)."""
    _ON_FILE.clear()
    if callback is not None:
        _ON_FILE.append(callback)


def note_reading(name: str) -> None:
    """A reader starts on `name`; refuses it when an earlier attempt died on it."""
    for cb in _ON_FILE:
        cb(name)
    reason = _SKIP.get(name)
    if reason is not None:
        raise StudyError(f"was not read: {reason}", file=name,
                         fix="split the file into smaller ones, or ask the server's "
                         "administrator to raise the worker limits in server.toml [worker]")


@contextmanager
def skipping(files: Mapping[str, str]) -> Iterator[None]:
    """Within this block, `note_reading` refuses the files named (name -> why)."""
    _SKIP.clear()
    _SKIP.update(files)
    try:
        yield
    finally:
        _SKIP.clear()


# ---- checks ----------------------------------------------------------------------------------
def _size(n: float) -> str:
    for unit, div in (("GB", 1024**3), ("MB", _MB), ("KB", 1024)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} bytes"


def _raise_fix(setting: str) -> str:
    return (f"split the file, or raise [limits] {setting} in study.toml (on a shared server "
            f"the administrator raises it in {SERVER_CONFIG})")


def check_file_size(path: Path, name: str, limits: Limits | None = None) -> int:
    """The file's size; `StudyError` when it exceeds max_file_mb."""
    limits = limits or active_limits()
    size = path.stat().st_size
    if size > limits.max_file_mb * _MB:
        raise StudyError(f"is {_size(size)}, above the limit of {_size(limits.max_file_mb * _MB)}"
                         " for one file", file=name, fix=_raise_fix("max_file_mb"))
    return size


def read_gzip(path: Path, name: str, limits: Limits | None = None) -> bytes:
    """Unpack a .gz file, stopping as soon as it grows past max_unpacked_mb."""
    limits = limits or active_limits()
    cap = int(limits.max_unpacked_mb * _MB)
    parts, total = [], 0
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            total += len(chunk)
            if total > cap:
                raise StudyError(f"unpacks to more than {_size(cap)} (a {_size(path.stat().st_size)}"
                                 " file); not read", file=name, fix=_raise_fix("max_unpacked_mb"))
            parts.append(chunk)
    return b"".join(parts)


_DELIMS = (b",", b";", b"\t", b"|")


def check_text_shape(path: Path | None, name: str, *, data: bytes | None = None,
                     limits: Limits | None = None) -> None:
    """Columns of the header line and number of lines of a delimited text file, counted in one
    streaming pass (no parsing, no decoded copy) against max_columns and max_rows."""
    limits = limits or active_limits()
    chunks: Iterator[bytes]
    if data is not None:
        size = len(data)
        chunks = iter([data[i:i + (1 << 24)] for i in range(0, len(data), 1 << 24)])
    else:
        assert path is not None
        size = path.stat().st_size
        chunks = _file_chunks(path)
    counts = dict.fromkeys(_DELIMS, 0)
    in_header, lines = True, 0
    # a table of n rows has at least 2n bytes ("x\n"): smaller files need no line count
    need_lines = size > 2 * limits.max_rows
    for chunk in chunks:
        if in_header:
            head, nl, _ = chunk.partition(b"\n")
            for d in _DELIMS:
                counts[d] += head.count(d)
            if max(counts.values()) + 1 > limits.max_columns:
                raise StudyError(f"has more than {limits.max_columns:,} columns in its header "
                                 "line; not read", file=name, fix=_raise_fix("max_columns"))
            in_header = not nl
            if not need_lines and not in_header:
                return
        if need_lines:
            lines += chunk.count(b"\n")
            if lines - 1 > limits.max_rows:
                raise StudyError(f"has more than {limits.max_rows:,} rows; not read", file=name,
                                 fix=_raise_fix("max_rows"))


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            yield chunk


def check_parquet(path: Path, name: str, limits: Limits | None = None) -> None:
    """Rows, columns and unpacked size from the Parquet footer, before any column is read."""
    import pyarrow.parquet as pq

    limits = limits or active_limits()
    meta = pq.read_metadata(path)
    if meta.num_columns > limits.max_columns:
        raise StudyError(f"has {meta.num_columns:,} columns, above the limit of "
                         f"{limits.max_columns:,}; not read", file=name,
                         fix=_raise_fix("max_columns"))
    if meta.num_rows > limits.max_rows:
        raise StudyError(f"has {meta.num_rows:,} rows, above the limit of {limits.max_rows:,}; "
                         "not read", file=name, fix=_raise_fix("max_rows"))
    unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if unpacked > limits.max_unpacked_mb * _MB:
        raise StudyError(f"unpacks to {_size(unpacked)}, above the limit of "
                         f"{_size(limits.max_unpacked_mb * _MB)}; not read", file=name,
                         fix=_raise_fix("max_unpacked_mb"))


# Excel cell references: <dimension ref="A1:XFD1048576"/>, <row r="12">, <c r="AB12">.
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"\$?([A-Z]{1,3})\$?(\d+)"
                        rb"(?::\$?([A-Z]{1,3})\$?(\d+))?\"")
_ROW_REF = re.compile(rb"<(?:\w+:)?row\b[^>]*?\sr=\"(\d+)\"")
_CELL_REF = re.compile(rb"<(?:\w+:)?c\b[^>]*?\sr=\"([A-Z]{1,3})\d+\"")


def _col_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + (ch - 64)
    return n


def check_xlsx(path: Path, name: str, limits: Limits | None = None) -> None:
    """An .xlsx is a zip of XML: the members' unpacked size, each sheet's declared dimension
    and the extent of the cells it uses, against the limits (one streaming pass per sheet)."""
    limits = limits or active_limits()
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # not a zip (an .xls, or damaged): the Excel reader reports it
    with zf:
        members = zf.infolist()
        unpacked = sum(m.file_size for m in members)
        if unpacked > limits.max_unpacked_mb * _MB:
            raise StudyError(f"unpacks to {_size(unpacked)} (its parts as declared in the "
                             f"workbook), above the limit of {_size(limits.max_unpacked_mb * _MB)}"
                             "; not read", file=name, fix=_raise_fix("max_unpacked_mb"))
        for m in members:
            if not (m.filename.startswith("xl/worksheets/") and m.filename.endswith(".xml")):
                continue
            sheet = m.filename.rsplit("/", 1)[-1].removesuffix(".xml")
            _check_sheet(zf, m, sheet, name, limits)


def _check_sheet(zf: zipfile.ZipFile, member: zipfile.ZipInfo, sheet: str, name: str,
                 limits: Limits) -> None:
    max_row = max_col = 0
    declared: tuple[int, int] | None = None
    tail = b""
    try:
        with zf.open(member) as fh:
            while chunk := fh.read(1 << 20):
                text = tail + chunk
                if declared is None and (m := _DIMENSION.search(text)):
                    first_col, first_row = _col_number(m.group(1)), int(m.group(2))
                    last_col = _col_number(m.group(3)) if m.group(3) else first_col
                    last_row = int(m.group(4)) if m.group(4) else first_row
                    declared = (last_row - first_row + 1, last_col - first_col + 1)
                    _sheet_limit(*declared, "declares", sheet, name, limits)
                for r in _ROW_REF.findall(text):
                    max_row = max(max_row, int(r))
                for c in _CELL_REF.findall(text):
                    max_col = max(max_col, _col_number(c))
                _sheet_limit(max_row, max_col, "uses cells up to", sheet, name, limits)
                tail = text[-256:]
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError):
        return  # a damaged member: the Excel reader reports it


def _sheet_limit(rows: int, cols: int, verb: str, sheet: str, name: str, limits: Limits) -> None:
    what = f"sheet {sheet} {verb} {rows:,} rows x {cols:,} columns"
    if cols > limits.max_columns:
        raise StudyError(f"{what}, above the limit of {limits.max_columns:,} columns; not read",
                         file=name, fix=_raise_fix("max_columns"))
    if rows > limits.max_rows:
        raise StudyError(f"{what}, above the limit of {limits.max_rows:,} rows; not read",
                         file=name, fix=_raise_fix("max_rows"))
    if rows * cols > limits.max_sheet_cells:
        raise StudyError(f"{what} ({rows * cols:,} cells), above the limit of "
                         f"{limits.max_sheet_cells:,} cells; not read", file=name,
                         fix="delete unused rows and columns (select them, Delete) and save "
                         "again, or raise [limits] max_sheet_cells")


def check_h5ad(fh: Any, name: str, limits: Limits | None = None) -> int:
    """The number of cells an open .h5ad (h5py.File) declares, checked against max_cells, and
    every obs column, X and obsm array against that number. Only shapes are read."""
    limits = limits or active_limits()
    if "obs" not in fh:
        raise StudyError("has no obs group (the cell table)", file=name,
                         fix="write the file with anndata (adata.write_h5ad)")
    obs = fh["obs"]
    lengths: dict[str, int] = {}
    if hasattr(obs, "keys"):
        for key in obs.keys():
            n = _elem_length(obs[key])
            if n is not None:
                lengths[key] = n
        index = obs.attrs.get("_index", "_index")
        index = index.decode() if isinstance(index, bytes) else str(index)
        n_obs = lengths.get(index, max(lengths.values(), default=0))
    else:  # an old compound-type obs table
        n_obs = int(obs.shape[0]) if obs.shape else 0
    if n_obs > limits.max_cells:
        raise StudyError(f"declares {n_obs:,} cells in obs, above the limit of "
                         f"{limits.max_cells:,}; not read", file=name, column="obs",
                         fix="split the file by sample, or raise [limits] max_cells")
    if hasattr(obs, "keys"):
        _check_categories(obs, name, limits)
    for key, n in lengths.items():
        if n != n_obs:
            raise StudyError(f"obs column {key!r} declares {n:,} rows but obs has {n_obs:,} "
                             "cells; not read", file=name, column=f"obs.{key}",
                             fix="re-write the file with anndata (adata.write_h5ad); it is "
                             "damaged or was not written by anndata")
    arrays = [("X", fh["X"])] if "X" in fh else []
    if "obsm" in fh and hasattr(fh["obsm"], "keys"):
        arrays += [(f"obsm/{k}", fh["obsm"][k]) for k in fh["obsm"].keys()]
    for label, elem in arrays:
        n = _elem_length(elem)
        if n is not None and n != n_obs:
            raise StudyError(f"{label} declares {n:,} rows but obs has {n_obs:,} cells; "
                             "not read", file=name, column=label,
                             fix="re-write the file with anndata (adata.write_h5ad)")
    return n_obs


def _elem_length(elem: Any) -> int | None:
    """Rows of an AnnData element: a dataset's first dimension; a sparse matrix's declared
    shape; a categorical's codes; a nullable array's values."""
    shape = getattr(elem, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    attrs = getattr(elem, "attrs", {})
    if "shape" in attrs:
        return int(attrs["shape"][0])
    for part in ("codes", "values"):
        if part in elem:
            return _elem_length(elem[part])
    return None


def _check_categories(obs: Any, name: str, limits: Limits) -> None:
    for key in obs.keys():
        elem = obs[key]
        if hasattr(elem, "keys") and "categories" in elem:
            n = _elem_length(elem["categories"]) or 0
            if n > limits.max_cells:
                raise StudyError(f"obs column {key!r} declares {n:,} categories, above the "
                                 f"limit of {limits.max_cells:,}; not read", file=name,
                                 column=f"obs.{key}", fix="re-write the file with anndata")


def check_single_cell(path: Path, name: str, limits: Limits | None = None) -> None:
    """Size and declared shapes of a single-cell file (.h5ad, each modality of an .h5mu, an
    AnnData zarr folder; a .loom's matrix and cell attributes) before any column is read.
    A file that cannot be opened at all is left to the single-cell reader to report."""
    limits = limits or active_limits()
    if path.is_dir():
        try:
            import zarr

            root = zarr.open_group(str(path), mode="r")
        except Exception:  # noqa: BLE001 - not a zarr store: the reader says so
            return
        check_h5ad(root, name, limits)
        return
    check_file_size(path, name, limits)
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError:
        return
    with fh:
        suffix = path.suffix.lower()
        if suffix == ".h5mu" and "mod" in fh:
            for mod in fh["mod"].keys():
                check_h5ad(fh["mod"][mod], f"{name} (modality {mod})", limits)
        elif suffix == ".loom":
            _check_loom(fh, name, limits)
        else:
            check_h5ad(fh, name, limits)


def _check_loom(fh: Any, name: str, limits: Limits) -> None:
    """A .loom holds genes x cells in /matrix and one array per cell in /col_attrs."""
    if "matrix" not in fh:
        return
    n_cells = int(fh["matrix"].shape[1]) if len(fh["matrix"].shape) == 2 else 0
    if n_cells > limits.max_cells:
        raise StudyError(f"declares {n_cells:,} cells in its matrix, above the limit of "
                         f"{limits.max_cells:,}; not read", file=name, column="matrix",
                         fix="split the file by sample, or raise [limits] max_cells")
    for key in fh["col_attrs"].keys() if "col_attrs" in fh else ():
        n = _elem_length(fh["col_attrs"][key])
        if n is not None and n != n_cells:
            raise StudyError(f"col_attrs/{key} declares {n:,} rows but the matrix has "
                             f"{n_cells:,} cells; not read", file=name,
                             column=f"col_attrs.{key}", fix="re-write the file with loompy")
