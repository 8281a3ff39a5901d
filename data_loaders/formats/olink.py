"""Olink NPX long exports (Olink NPX Manager / Explore / Olink Analyze `read_NPX` layout) ->
proteomics.

One row per sample and assay: SampleID, OlinkID, UniProt, Assay, Panel, LOD, NPX, QC_Warning,
Sample_Type, plus newer columns (Assay_Warning, Normalization, PlateID, ExploreVersion; Explore
HT's SampleType, SampleQC and AssayQC are accepted as the same things). The file is comma- or
semicolon-separated (European exports use ';' and may use ',' as the decimal mark).

- NPX is Olink's log2 scale. A value below the assay's LOD is kept and flagged in `below_lod`
  ("true"/"false"; empty when the file gives no LOD), as Olink recommends keeping them for
  analysis rather than replacing them.
- QC_Warning (sample) and Assay_Warning are kept in `qc_warning` ("WARN", or "WARN (assay)").
- Control samples are left out: by Sample_Type (`control_sample_types`, default the Olink control
  types) and by SampleID pattern (`control_pattern`); how many is reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from data_loaders.errors import StudyError, ValidationReport
from data_loaders.formats import register_reader
from data_loaders.formats._common import (
    NA_TOKENS,
    file_label,
    find_column,
    numeric_or_report,
    read_delimited,
    require_columns,
)
from data_loaders.raw import RawTable

__all__ = ["read_olink", "CONTROL_SAMPLE_TYPES", "CONTROL_PATTERN"]

CONTROL_SAMPLE_TYPES = ("CONTROL", "SAMPLE_CONTROL", "PLATE_CONTROL", "NEGATIVE_CONTROL",
                        "NEG_CONTROL", "CALIBRATOR")
# Olink control sample ids: CONTROL_SAMPLE_..., Neg Ctrl, IPC (inter-plate control), Plate ctrl.
CONTROL_PATTERN = r"(?i)(^control|ctrl|^ipc|^neg[ _-]?control|^plate[ _-]?control)"
_OPTIONS = {"control_sample_types", "control_pattern", "value_column"}


@register_reader("olink")
def read_olink(path: Path, options: dict[str, Any], report: ValidationReport, *,
               label: str | None = None) -> list[RawTable]:
    """Read one Olink NPX long file (or every .csv/.txt/.tsv file of a folder)."""
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        report.add("warning", "study", label or path.name,
                   f"unknown olink option(s): {', '.join(unknown)}",
                   fix=f"the olink reader takes: {', '.join(sorted(_OPTIONS))}")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".txt", ".tsv")) \
        if path.is_dir() else [path]
    if not files:
        raise StudyError("holds no Olink NPX file (.csv, .txt)", file=label or path.name)
    return [_read_one(p, file_label(p, path, label), options, report) for p in files]


def _read_one(p: Path, name: str, options: dict[str, Any], report: ValidationReport
              ) -> RawTable:
    frame, encoding, sep = read_delimited(p, name=name, what="Olink NPX",
                                          separators=(";", ",", "\t"))
    value_col = str(options.get("value_column", "NPX"))
    cols = require_columns(frame, {"sample": ("SampleID", "Sample_ID"),
                                   "assay": ("Assay", "OlinkID"), "value": (value_col,)},
                           name=name, what="Olink NPX", delimiter=";")
    opt = {role: find_column(frame, names) for role, names in {
        "olink_id": ("OlinkID",), "uniprot": ("UniProt",), "panel": ("Panel",),
        "lod": ("LOD", "PlateLOD", "MaxLOD"), "qc": ("QC_Warning", "SampleQC"),
        "assay_qc": ("Assay_Warning", "AssayQC"),
        "type": ("Sample_Type", "SampleType")}.items()}
    n_read = frame.height
    frame = _drop_controls(frame, cols["sample"], opt["type"], options, report, name)
    if frame.height == 0:
        report.add("error", "proteomics", name,
                   f"all {n_read:,} rows are control samples; nothing left to load",
                   column=opt["type"] or cols["sample"],
                   fix="set options.control_sample_types = [] or options.control_pattern if "
                   "study samples are labelled as controls")
        return RawTable("proteomics", name, pl.DataFrame(), "olink", encoding, sep)
    missing = frame.filter(pl.col(cols["value"]).is_null() |
                           pl.col(cols["value"]).is_in(list(NA_TOKENS)))
    if missing.height:
        report.add("note", "proteomics", name,
                   f"{missing.height:,} row(s) without an {value_col} value (NA) left out",
                   column=cols["value"], rows=missing.get_column("_row").to_list())
        frame = frame.filter(~pl.col("_row").is_in(missing.get_column("_row").implode()))
    frame = numeric_or_report(frame, cols["value"], report=report, table="proteomics",
                              file=name, what=value_col,
                              fix="NPX values are numbers on Olink's log2 scale")
    lod = pl.lit(None, pl.Float64)
    if opt["lod"]:
        frame = numeric_or_report(frame, opt["lod"], report=report, table="proteomics",
                                  file=name, what="LOD")
        lod = pl.col(opt["lod"])
    feature = pl.col(cols["assay"])
    if opt["olink_id"] and opt["olink_id"] != cols["assay"]:
        feature = pl.coalesce(feature, pl.col(opt["olink_id"]))
    qc = pl.col(opt["qc"]) if opt["qc"] else pl.lit(None, pl.String)
    if opt["assay_qc"]:
        warn = pl.col(opt["assay_qc"]).str.to_uppercase().is_in(["WARN", "WARNING", "FAIL"])
        qc = pl.when(warn).then(pl.concat_str([pl.coalesce(qc, pl.lit("PASS")),
                                               pl.lit(" (assay "), pl.col(opt["assay_qc"]),
                                               pl.lit(")")])).otherwise(qc)
    below = pl.when(lod.is_null()).then(None).otherwise(pl.col(cols["value"]) < lod)
    out = frame.select(
        "_row", pl.col(cols["sample"]).alias("sample_id"), feature.alias("feature"),
        pl.col(cols["value"]).cast(pl.String).alias("value"),
        (pl.col(opt["uniprot"]) if opt["uniprot"] else pl.lit(None, pl.String)).alias("uniprot"),
        lod.cast(pl.String).alias("lod"),
        (pl.col(opt["panel"]) if opt["panel"] else pl.lit(None, pl.String)).alias("panel"),
        qc.alias("qc_warning"),
        below.cast(pl.String).str.to_lowercase().alias("below_lod"))
    n_below = out.filter(pl.col("below_lod") == "true").height
    if opt["lod"]:
        report.add("note", "proteomics", name,
                   f"{n_below:,} of {out.height:,} NPX values are below the assay LOD: kept and "
                   "flagged in column below_lod")
    else:
        report.add("note", "proteomics", name, "no LOD column: values below the limit of "
                   "detection cannot be flagged", fix="export NPX with LOD (Olink NPX Manager / "
                   "olink_lod in OlinkAnalyze)")
    n_warn = out.filter(pl.col("qc_warning").is_not_null() &
                        (pl.col("qc_warning").str.to_uppercase() != "PASS")).height
    if n_warn:
        report.add("note", "proteomics", name,
                   f"{n_warn:,} value(s) carry a QC warning: kept, see column qc_warning",
                   column="qc_warning", fix="filter on qc_warning in analyses that need it")
    return RawTable("proteomics", name, out, "olink", encoding, sep)


def _drop_controls(frame: pl.DataFrame, sample: str, type_col: str | None,
                   options: dict[str, Any], report: ValidationReport, name: str
                   ) -> pl.DataFrame:
    types = [str(t).upper() for t in options.get("control_sample_types", CONTROL_SAMPLE_TYPES)]
    pattern = str(options.get("control_pattern", CONTROL_PATTERN) or "")
    is_control = pl.lit(False)
    reasons = []
    if type_col and types:
        is_control = is_control | pl.col(type_col).str.to_uppercase().is_in(types).fill_null(False)
        reasons.append(f"{type_col} in {', '.join(types)}")
    if pattern:
        try:
            pl.select(pl.lit("x").str.contains(pattern))
        except pl.exceptions.PolarsError:
            raise StudyError(f"option control_pattern {pattern!r} is not a valid regular "
                             "expression", file=name) from None
        is_control = is_control | pl.col(sample).str.contains(pattern).fill_null(False)
        reasons.append(f"SampleID matching {pattern!r}")
    controls = frame.filter(is_control)
    if controls.height:
        ids = controls.get_column(sample).unique(maintain_order=True).to_list()
        report.add("note", "proteomics", name,
                   f"{len(ids)} control sample(s) left out ({controls.height:,} rows; "
                   f"{' or '.join(reasons)}): {', '.join(ids[:8])}"
                   + (" ..." if len(ids) > 8 else ""),
                   fix="change options.control_sample_types / control_pattern to keep them")
    return frame.filter(~is_control)
