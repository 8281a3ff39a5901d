"""Immune receptor repertoires -> tcr: AIRR rearrangement TSV and 10x Genomics VDJ contigs.

- AIRR Rearrangement TSV (AIRR Community standard v1.x, the `airr` package schema): one row per
  rearrangement with junction_aa, v_call, j_call, productive, duplicate_count (or
  consensus_count), optional cell_id, locus and sample_id.
- 10x Cell Ranger `filtered_contig_annotations.csv[.gz]`: one row per contig with barcode,
  is_cell, high_confidence, chain, v_gene, j_gene, productive, cdr3, umis.

A clonotype is junction_aa + v_call + j_call within a sample and locus (gene level: the first
call of a comma-separated list, allele "*01" removed, so both formats agree). Productive
rearrangements only by default. 10x contigs (one per chain and cell) are collapsed to the number
of distinct cells per clonotype; AIRR rows are summed by duplicate_count (or cells when a cell_id
column is given). The sample comes from options: `sample_id` (one sample per file),
`barcode_suffix` (10x: the "-1" suffix of a barcode -> sample_id, as after `cellranger aggr`) or
`sample_column` (a column of the file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from data_loaders.errors import StudyError, ValidationReport
from data_loaders.formats import register_reader
from data_loaders.formats._common import (
    find_column,
    numeric_or_report,
    read_delimited,
    require_columns,
)
from data_loaders.raw import RawTable

__all__ = ["read_airr", "read_10x_vdj", "gene_call"]

_LOCI = ("TRA", "TRB", "TRG", "TRD", "IGH", "IGK", "IGL")
_TRUE = ("T", "TRUE", "1", "YES")
_OPTIONS = {"sample_id", "sample_column", "barcode_suffix", "productive_only", "cells_only",
            "high_confidence_only", "keep_alleles"}


def gene_call(col: str, *, keep_alleles: bool = False) -> pl.Expr:
    """The first gene of a call list ("TRBV7-9*01,TRBV7-8*01" -> "TRBV7-9"); 10x "None" -> null."""
    first = pl.col(col).str.split(",").list.first().str.strip_chars()
    if not keep_alleles:
        first = first.str.replace(r"\*.*$", "")
    return pl.when(first.is_in(["None", "", "NA"])).then(None).otherwise(first)


def _label(path: Path, label: str | None) -> str:
    return label or path.name


def _check_options(options: dict[str, Any], report: ValidationReport, name: str, fmt: str
                   ) -> None:
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        report.add("warning", "study", name, f"unknown {fmt} option(s): {', '.join(unknown)}",
                   fix=f"the {fmt} reader takes: {', '.join(sorted(_OPTIONS))}")


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return str(value).strip().lower() in ("1", "true", "yes", "y", "t")


def _sample_expr(frame: pl.DataFrame, options: dict[str, Any], name: str, *,
                 barcode: str | None) -> pl.Expr:
    if options.get("sample_id"):
        return pl.lit(str(options["sample_id"]))
    if options.get("barcode_suffix") and barcode:
        mapping = {str(k): str(v) for k, v in dict(options["barcode_suffix"]).items()}
        return pl.col(barcode).str.extract(r"-(\w+)$").replace_strict(mapping, default=None)
    col = options.get("sample_column")
    found = find_column(frame, [str(col)] if col else ["sample_id", "sample", "repertoire_id"])
    if found:
        return pl.col(found)
    raise StudyError("does not say which sample it belongs to", file=name,
                     fix="give options.sample_id (one sample per file), options.sample_column, "
                     "or for 10x options.barcode_suffix = { \"1\" = \"SAMPLE\" }")


def _report_unassigned(df: pl.DataFrame, report: ValidationReport, name: str) -> pl.DataFrame:
    lost = df.filter(pl.col("sample_id").is_null())
    if lost.height:
        report.add("warning", "tcr", name,
                   f"{lost.height:,} row(s) could not be given a sample_id (barcode suffix not "
                   "in options.barcode_suffix or empty sample column); left out",
                   column="sample_id", rows=lost.get_column("_row").to_list(),
                   fix="add the suffix to options.barcode_suffix")
    return df.filter(pl.col("sample_id").is_not_null())


def _finish(df: pl.DataFrame, count: pl.Expr, name: str, fmt: str, encoding: str,
            sep: str) -> RawTable:
    key = ["sample_id", "locus", "junction_aa", "v_call", "j_call"]
    out = (df.group_by(key, maintain_order=True).agg(count.alias("count"))
           .sort("sample_id", "count", "junction_aa", descending=[False, True, False],
                 nulls_last=True))
    out = out.select(pl.col("sample_id"), pl.col("junction_aa"),
                     pl.col("count").cast(pl.String), pl.col("v_call"), pl.col("j_call"),
                     pl.lit("true").alias("productive"), pl.col("locus"))
    return RawTable("tcr", name, out, fmt, encoding, sep)


def _productive(df: pl.DataFrame, col: str | None, options: dict[str, Any],
                report: ValidationReport, name: str, unit: str) -> pl.DataFrame:
    if not _flag(options.get("productive_only"), True) or col is None:
        if col is None:
            report.add("note", "tcr", name, "no productive column: every rearrangement kept")
        return df
    prod = pl.col(col).cast(pl.String).str.to_uppercase().is_in(list(_TRUE))
    n_out = df.filter(~prod).height
    if n_out:
        report.add("note", "tcr", name,
                   f"{n_out:,} non-productive {unit} left out (productive only)",
                   column=col, fix="set options.productive_only = false to keep them")
    return df.filter(prod)


def _missing_junction(df: pl.DataFrame, report: ValidationReport, name: str, col: str,
                      unit: str) -> pl.DataFrame:
    none = df.filter(pl.col("junction_aa").is_null())
    if none.height:
        report.add("note", "tcr", name,
                   f"{none.height:,} {unit} without a CDR3 amino-acid sequence left out",
                   column=col)
    return df.filter(pl.col("junction_aa").is_not_null())


# --------------------------------------------------------------------------------------------
# AIRR rearrangement TSV
# --------------------------------------------------------------------------------------------
@register_reader("airr")
def read_airr(path: Path, options: dict[str, Any], report: ValidationReport, *,
              label: str | None = None) -> list[RawTable]:
    """Read an AIRR rearrangement TSV into clonotype counts per sample."""
    name = _label(path, label)
    _check_options(options, report, name, "airr")
    frame, encoding, sep = read_delimited(path, name=name, what="AIRR rearrangement",
                                          separators=("\t",))
    cols = require_columns(frame, {"junction_aa": ("junction_aa",), "v_call": ("v_call",),
                                   "j_call": ("j_call",)},
                           name=name, what="AIRR rearrangement", delimiter="\t")
    productive = find_column(frame, ["productive"])
    count_col = find_column(frame, ["duplicate_count", "consensus_count"])
    cell = find_column(frame, ["cell_id"])
    locus = find_column(frame, ["locus"])
    sample = _sample_expr(frame, options, name, barcode=None)
    df = frame.with_columns(sample.alias("sample_id"))
    df = _report_unassigned(df, report, name)
    df = _productive(df, productive, options, report, name, "rearrangement(s)")
    keep = _flag(options.get("keep_alleles"), False)
    df = df.with_columns(
        pl.col(cols["junction_aa"]).alias("junction_aa"),
        gene_call(cols["v_call"], keep_alleles=keep).alias("v_call"),
        gene_call(cols["j_call"], keep_alleles=keep).alias("j_call"))
    df = df.with_columns((pl.col(locus).str.to_uppercase() if locus else
                          pl.col("v_call").str.slice(0, 3).str.to_uppercase()).alias("locus"))
    df = _missing_junction(df, report, name, cols["junction_aa"], "rearrangement(s)")
    if cell:
        count = pl.col(cell).n_unique()
        what = f"distinct {cell} per clonotype"
    elif count_col:
        df = numeric_or_report(df, count_col, report=report, table="tcr", file=name,
                               fix=f"{count_col} is a whole number of reads or molecules")
        count = pl.col(count_col).fill_null(1).sum().round().cast(pl.Int64)
        what = f"sum of {count_col}"
    else:
        count = pl.len()
        what = "rearrangements per clonotype (no duplicate_count column)"
    raw = _finish(df, count, name, "airr", encoding, sep)
    report.add("note", "tcr", name,
               f"{df.height:,} rearrangement(s) collapsed to {raw.frame.height:,} clonotype(s) "
               f"(junction_aa + v_call + j_call; count = {what})")
    return [raw]


# --------------------------------------------------------------------------------------------
# 10x Genomics VDJ contigs
# --------------------------------------------------------------------------------------------
@register_reader("10x_vdj")
def read_10x_vdj(path: Path, options: dict[str, Any], report: ValidationReport, *,
                 label: str | None = None) -> list[RawTable]:
    """Read Cell Ranger filtered_contig_annotations.csv[.gz] into clonotype cell counts."""
    name = _label(path, label)
    _check_options(options, report, name, "10x_vdj")
    frame, encoding, sep = read_delimited(path, name=name, what="10x VDJ contig annotations",
                                          separators=(",",))
    cols = require_columns(frame, {"barcode": ("barcode",), "chain": ("chain",),
                                   "cdr3": ("cdr3",), "v_gene": ("v_gene",),
                                   "j_gene": ("j_gene",)},
                           name=name, what="10x VDJ contig annotations", delimiter=",")
    n_contigs = frame.height
    df = frame.with_columns(_sample_expr(frame, options, name, barcode=cols["barcode"])
                            .alias("sample_id"))
    for opt, col, text in (("cells_only", "is_cell", "contigs of barcodes that are not cells"),
                           ("high_confidence_only", "high_confidence",
                            "low-confidence contigs")):
        found = find_column(df, [col])
        if found and _flag(options.get(opt), True):
            ok = pl.col(found).str.to_uppercase().is_in(list(_TRUE))
            n = df.filter(~ok).height
            if n:
                report.add("note", "tcr", name, f"{n:,} {text} left out", column=found,
                           fix=f"set options.{opt} = false to keep them")
            df = df.filter(ok)
    df = _report_unassigned(df, report, name)
    df = _productive(df, find_column(df, ["productive"]), options, report, name, "contig(s)")
    chain = pl.col(cols["chain"]).str.to_uppercase()
    odd = df.filter(~chain.is_in(list(_LOCI)))
    if odd.height:
        kinds = ", ".join(odd.get_column(cols["chain"]).unique().sort().to_list())
        report.add("note", "tcr", name, f"{odd.height:,} contig(s) with chain {kinds} (not one "
                   "locus) left out", column=cols["chain"])
        df = df.filter(chain.is_in(list(_LOCI)))
    keep = _flag(options.get("keep_alleles"), False)
    df = df.with_columns(
        gene_call(cols["cdr3"], keep_alleles=True).alias("junction_aa"),
        gene_call(cols["v_gene"], keep_alleles=keep).alias("v_call"),
        gene_call(cols["j_gene"], keep_alleles=keep).alias("j_call"),
        chain.alias("locus"))
    df = _missing_junction(df, report, name, cols["cdr3"], "contig(s)")
    raw = _finish(df, pl.col(cols["barcode"]).n_unique(), name, "10x_vdj", encoding, sep)
    n_cells = df.get_column(cols["barcode"]).n_unique()
    report.add("note", "tcr", name,
               f"{n_contigs:,} contigs -> {df.height:,} productive chains of {n_cells:,} cells -> "
               f"{raw.frame.height:,} clonotype(s) per chain (junction_aa + v_call + j_call; "
               "count = cells)")
    return [raw]


# `python cli.py import --from 10xvdj` and format = "10xvdj" name the same reader.
register_reader("10xvdj")(read_10x_vdj)
