"""The read-only `Study`: canonical polars tables of one study folder plus its findings.

A `Study` is made once per folder (and per change of its files) by `load_study` and shared by
every page and session. Nothing mutates it; accessors return new frames. Vocabulary (DESIGN.md
section 2): subject_id, day (integer, day 0 = CAR-T infusion), analyte, value, unit, timepoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from data_loaders.analytes import Analyte
from data_loaders.errors import ValidationReport
from data_loaders.schema import RNA_SPEC, TABLES

__all__ = ["Study", "SourceInfo", "TABLE_NAMES", "empty_table"]

TABLE_NAMES = ("patients", "measurements", "events", "responses", "samples", "proteomics",
               "rna_counts", "mutations", "tcr")

# Above this size an .h5ad is opened backed (on disk) instead of read into memory.


def empty_table(name: str) -> pl.DataFrame:
    """The canonical empty frame of a table (its required and optional columns, typed)."""
    if name == "rna_counts":
        return pl.DataFrame(schema=RNA_SPEC.polars_schema())
    return pl.DataFrame(schema=TABLES[name].polars_schema())


@dataclass(frozen=True)
class SourceInfo:
    """Where a table's rows came from and how the file was read."""

    table: str
    file: str
    format: str
    rows_read: int
    rows_loaded: int
    encoding: str | None = None
    delimiter: str | None = None


@dataclass(frozen=True, eq=False)
class Study:
    path: Path
    study_id: str
    title: str
    config: Mapping[str, Any]
    catalogue: Mapping[str, Analyte]
    report: ValidationReport
    fingerprint: str
    sources: tuple[SourceInfo, ...] = ()
    single_cell_file: Path | None = None
    single_cell: Any = None     # data_loaders.single_cell.SingleCellStore (None: no cells)
    patients: pl.DataFrame = field(default_factory=lambda: empty_table("patients"))
    measurements: pl.DataFrame = field(default_factory=lambda: empty_table("measurements"))
    events: pl.DataFrame = field(default_factory=lambda: empty_table("events"))
    responses: pl.DataFrame = field(default_factory=lambda: empty_table("responses"))
    samples: pl.DataFrame = field(default_factory=lambda: empty_table("samples"))
    proteomics: pl.DataFrame = field(default_factory=lambda: empty_table("proteomics"))
    rna_counts: pl.DataFrame = field(default_factory=lambda: empty_table("rna_counts"))
    mutations: pl.DataFrame = field(default_factory=lambda: empty_table("mutations"))
    tcr: pl.DataFrame = field(default_factory=lambda: empty_table("tcr"))
    # gated flow cytometry: one row per FCS sample and gate (data_loaders/flow.py)
    populations: pl.DataFrame = field(default_factory=lambda: _empty_populations())

    # ---- identity -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def cache_key(self) -> str:
        """Changes whenever a study file changes on disk: keys every derived cache."""
        return f"{self.path}|{self.fingerprint}"

    def __hash__(self) -> int:
        return hash(self.cache_key)

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 over the study's files (names and bytes), for provenance on exports."""
        h = hashlib.sha256()
        for p in sorted(_study_files(self.path)):
            h.update(str(p.relative_to(self.path)).encode())
            with p.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()

    # ---- tables ---------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        """True when the table (or "single_cell") was loaded and holds at least one row."""
        if name == "single_cell":
            return self.single_cell_file is not None
        return self.table(name).height > 0

    def table(self, name: str) -> pl.DataFrame:
        if name not in TABLE_NAMES:
            raise KeyError(f"unknown table {name!r}; tables are {', '.join(TABLE_NAMES)}")
        return getattr(self, name)

    @property
    def subject_ids(self) -> list[str]:
        return self.patients.get_column("subject_id").to_list()

    @property
    def loaded_tables(self) -> list[str]:
        out = [t for t in TABLE_NAMES if self.has(t)]
        return out + (["single_cell"] if self.has("single_cell") else [])

    # ---- tidy accessors -------------------------------------------------------------------
    def series(self, *, analytes: Iterable[str] | None = None,
               panels: Iterable[str] | None = None, subjects: Iterable[str] | None = None,
               with_patient: Iterable[str] = ()) -> pl.DataFrame:
        """Long measurements (subject_id, day, analyte, value, unit, panel, lloq, ...), filtered,
        optionally joined with columns of `patients` (scanpy `get.obs_df` in spirit)."""
        df = self.measurements
        if analytes is not None:
            df = df.filter(pl.col("analyte").is_in(list(analytes)))
        if panels is not None:
            df = df.filter(pl.col("panel").is_in(list(panels)))
        if subjects is not None:
            df = df.filter(pl.col("subject_id").is_in(list(subjects)))
        cols = [c for c in with_patient if c != "subject_id"]
        if cols:
            df = df.join(self.patients.select("subject_id", *cols), on="subject_id", how="left")
        return df.sort("subject_id", "analyte", "day")

    def with_samples(self, frame: pl.DataFrame,
                     columns: Iterable[str] = ("subject_id", "day", "timepoint", "tissue")
                     ) -> pl.DataFrame:
        """Join a sample-keyed frame (proteomics, mutations, tcr) with its sample's patient/day."""
        cols = [c for c in columns if c in self.samples.columns and c not in frame.columns]
        return frame.join(self.samples.select("sample_id", *cols), on="sample_id", how="left")

    def analyte_label(self, analyte: str) -> str:
        a = self.catalogue.get(analyte)
        return f"{a.label} ({a.unit})" if a and a.unit else analyte

    def analytes_present(self, panel: str | None = None) -> list[str]:
        df = self.measurements
        if panel is not None:
            df = df.filter(pl.col("panel") == panel)
        present = set(df.get_column("analyte").unique().to_list())
        order = [a for a in self.catalogue if a in present]
        return order + sorted(present - set(order))

    # ---- single cell ----------------------------------------------------------------------
    @cached_property
    def adata(self) -> Any:
        """The single-cell data as AnnData (read-only; an .h5ad is opened backed on disk when
        large). Prefer the store (`single_cell`): it reads one column or gene at a time."""
        if self.single_cell is None:
            return None
        return self.single_cell.to_anndata()

    @cached_property
    def obs(self) -> Any:
        """The cells' annotations alone (pandas, as `adata.obs`, plus the canonical columns
        subject_id, sample_id, day, ... where the file names them otherwise; None without
        single-cell data). Reads only obs, not the matrices."""
        if self.single_cell is None:
            return None
        return self.single_cell.obs_frame()


def _empty_populations() -> pl.DataFrame:
    from data_loaders.flow import POPULATION_SCHEMA

    return pl.DataFrame(schema=POPULATION_SCHEMA)


def _study_files(path: Path) -> list[Path]:
    out = []
    for p in path.rglob("*"):
        rel = p.relative_to(path).parts
        if p.is_file() and not any(part.startswith(".") for part in rel):
            out.append(p)
    return out


def fingerprint(path: Path) -> str:
    """Cheap change detector: names, sizes and modification times of the study's files."""
    h = hashlib.blake2b(digest_size=12)
    for p in sorted(_study_files(path)):
        st = p.stat()
        h.update(f"{p.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
