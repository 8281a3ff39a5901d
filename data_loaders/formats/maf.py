"""Mutation Annotation Format (GDC/TCGA MAF, tab-separated, optional `#version` lines) ->
mutations.

- Hugo_Symbol -> gene, Tumor_Sample_Barcode -> sample_id (or `sample_map`, e.g. to cut TCGA
  barcodes to the sample ids of the samples table), Variant_Classification -> classification.
- variant: HGVSp_Short, else Protein_Change, else genomic "chr:start ref>alt" (non-coding rows).
- VAF: t_alt_count / t_depth; else a percentage column such as i_TumorVAF_WU (the TCGA LAML
  file) divided by 100; `vaf_column` / `vaf_percent` choose another. depth = t_depth.
- Column names are matched without regard to case (the TCGA LAML file writes End_position).
- `classifications` (a list) keeps only those Variant_Classification values; what it leaves out is
  counted in a note. By default every row is kept.
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

__all__ = ["read_maf", "PERCENT_VAF_COLUMNS"]

PERCENT_VAF_COLUMNS = ("i_TumorVAF_WU", "i_TumorVAF", "TumorVAF", "tumor_vaf_pct")
_OPTIONS = {"vaf_column", "vaf_percent", "classifications", "sample_map"}


@register_reader("maf")
def read_maf(path: Path, options: dict[str, Any], report: ValidationReport, *,
             label: str | None = None) -> list[RawTable]:
    """Read one MAF file (.maf, .maf.gz, .txt)."""
    name = label or path.name
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        report.add("warning", "study", name, f"unknown maf option(s): {', '.join(unknown)}",
                   fix=f"the maf reader takes: {', '.join(sorted(_OPTIONS))}")
    frame, encoding, sep = read_delimited(path, name=name, what="MAF", separators=("\t",),
                                          comment="#")
    cols = require_columns(frame, {"gene": ("Hugo_Symbol",),
                                   "sample": ("Tumor_Sample_Barcode",)},
                           name=name, what="MAF", delimiter="\t")
    n_read, n_samples = frame.height, frame.get_column(cols["sample"]).n_unique()
    frame, vaf, depth, how = _vaf(frame, options, report, name)
    frame = frame.with_columns(vaf.alias("_vaf"))
    classification = find_column(frame, ["Variant_Classification"])
    keep = options.get("classifications")
    if keep and classification:
        wanted = [str(k) for k in keep]
        dropped = frame.filter(~pl.col(classification).is_in(wanted))
        if dropped.height:
            counts = dropped.group_by(classification).len().sort("len", descending=True)
            text = ", ".join(f"{r[classification]} {r['len']:,}" for r in counts.iter_rows(
                named=True))
            report.add("note", "mutations", name, f"{dropped.height:,} variant(s) of other "
                       f"classifications left out (options.classifications): {text}",
                       column=classification)
            frame = frame.filter(pl.col(classification).is_in(wanted))
    frame = frame.with_columns(_variant(frame).alias("_variant"),
                               _genomic(frame).alias("_genomic"))
    # Two different DNA changes can share one short protein notation (e.g. adjacent frame-shift
    # insertions): keep both, told apart by their genomic position.
    clash = (pl.struct(cols["sample"], cols["gene"], "_variant").is_duplicated()
             & pl.col("_genomic").is_not_null()
             & ~pl.struct(cols["sample"], cols["gene"], "_variant", "_genomic").is_duplicated())
    n_clash = frame.filter(clash).height
    if n_clash:
        report.add("note", "mutations", name,
                   f"{n_clash} variant(s) share a protein change with another DNA change in the "
                   "same sample and gene; the genomic position was added to their variant",
                   rows=frame.filter(clash).get_column("_row").to_list(), column="variant")
        frame = frame.with_columns(pl.when(clash).then(pl.concat_str(
            [pl.col("_variant"), pl.lit(" ("), pl.col("_genomic"), pl.lit(")")]))
            .otherwise(pl.col("_variant")).alias("_variant"))
    sample = pl.col(cols["sample"])
    if options.get("sample_map"):
        mapping = {str(k): str(v) for k, v in dict(options["sample_map"]).items()}
        sample = sample.replace(mapping)
    out = frame.select(
        "_row", sample.alias("sample_id"), pl.col(cols["gene"]).alias("gene"),
        pl.col("_vaf").round(6).cast(pl.String).alias("vaf"), pl.col("_variant").alias("variant"),
        (depth if depth is not None else pl.lit(None, pl.Float64)).round().cast(pl.Int64)
        .cast(pl.String).alias("depth"),
        (pl.col(classification) if classification else pl.lit(None, pl.String))
        .alias("classification"))
    no_vaf = out.filter(pl.col("vaf").is_null())
    if no_vaf.height:
        report.add("warning", "mutations", name,
                   f"{no_vaf.height:,} variant(s) without a VAF ({how} empty) left out",
                   column="vaf", rows=no_vaf.get_column("_row").to_list(),
                   fix="give t_alt_count and t_depth for every variant")
        out = out.filter(pl.col("vaf").is_not_null())
    report.add("note", "mutations", name,
               f"{n_read:,} variants of {n_samples:,} samples; "
               f"VAF from {how}")
    return [RawTable("mutations", name, out, "maf", encoding, sep)]


def _vaf(frame: pl.DataFrame, options: dict[str, Any], report: ValidationReport, name: str
         ) -> tuple[pl.DataFrame, pl.Expr, pl.Expr | None, str]:
    """(frame with numeric count columns, VAF as a fraction, depth or None, description).
    Rows whose counts or VAF are not numbers are reported as errors and left out."""
    alt, dp = find_column(frame, ["t_alt_count"]), find_column(frame, ["t_depth"])
    chosen = options.get("vaf_column")
    pct = find_column(frame, list(PERCENT_VAF_COLUMNS))
    if chosen:
        col = find_column(frame, [str(chosen)])
        if col is None:
            raise StudyError(f"option vaf_column {chosen!r} is not a column of the file",
                             file=name, fix="name an existing column")
        percent = bool(options.get("vaf_percent", False))
        vaf, how = pl.col(col) / (100.0 if percent else 1.0), col + (
            " (percent / 100)" if percent else "")
        numeric = [col]
    elif alt and dp:
        vaf, how = pl.when(pl.col(dp) > 0).then(pl.col(alt) / pl.col(dp)), \
            "t_alt_count / t_depth"
        numeric = [alt]
    elif pct:
        vaf, how, numeric = pl.col(pct) / 100.0, f"{pct} (percent / 100)", [pct]
    else:
        raise StudyError("has no variant allele fraction: needs t_alt_count and t_depth, or a "
                         f"percentage column ({', '.join(PERCENT_VAF_COLUMNS)})", file=name,
                         fix="export the MAF with read counts, or name the VAF column with "
                         "options.vaf_column")
    if dp:
        numeric.append(dp)
    for col in numeric:
        frame = numeric_or_report(frame, col, report=report, table="mutations", file=name,
                                  fix="give read counts and allele fractions as plain numbers")
    return frame, vaf, (pl.col(dp) if dp else None), how


def _genomic(frame: pl.DataFrame) -> pl.Expr:
    """"chr:start ref>alt" (null when the file lacks these columns)."""
    chrom, start = find_column(frame, ["Chromosome"]), find_column(frame, ["Start_Position"])
    ref = find_column(frame, ["Reference_Allele"])
    alt = find_column(frame, ["Tumor_Seq_Allele2", "Tumor_Seq_Allele1"])
    if not (chrom and start and ref and alt):
        return pl.lit(None, pl.String)
    return pl.concat_str([pl.col(chrom), pl.lit(":"), pl.col(start), pl.lit(" "), pl.col(ref),
                          pl.lit(">"), pl.col(alt)])


def _variant(frame: pl.DataFrame) -> pl.Expr:
    protein = [c for c in (find_column(frame, ["HGVSp_Short"]),
                           find_column(frame, ["Protein_Change"])) if c]
    parts = [pl.col(c).replace(".", None) for c in protein] + [_genomic(frame)]
    return pl.coalesce(parts)
