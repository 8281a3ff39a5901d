"""Receptor chains per cell from the files a single-cell study comes with, in the one chain
shape of `airr.RECEPTOR_COLUMNS` (cell_id, chain, locus, junction_aa, junction, v_call, ...):

- 10x Genomics Cell Ranger VDJ contigs (`filtered_contig_annotations.csv[.gz]` or
  `all_contig_annotations.csv`): one row per contig, the cell is its `barcode`; contigs of
  barcodes that are not cells (`is_cell`) and low-confidence contigs (`high_confidence`) are
  left out, as Cell Ranger's own clonotypes do; `umis` becomes `duplicate_count`;
- AIRR Rearrangement TSV with a `cell_id` column (AIRR Community standard v1.x);
- the MuData `airr` modality (read in `airr.read_airr_chains`).

A `[single_cell] receptor_files` list in study.toml names the first two, relative to the folder
of the single-cell file; `sample_id` per file is given as `{ file = "...", sample_id = "S1" }`
when barcodes repeat between samples. Chains are joined to cells by the exact cell name; when
none match, by the 10x barcode (16 nucleotides plus "-N") inside the cell name, within the
file's sample when one is given.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["CHAIN_SCHEMA", "read_10x_contig_chains", "read_airr_cell_chains",
           "read_receptor_file", "match_cells"]

CHAIN_SCHEMA = {"cell_id": pl.String, "chain": pl.Int64, "locus": pl.String,
                "junction_aa": pl.String, "junction": pl.String, "v_call": pl.String,
                "d_call": pl.String, "j_call": pl.String, "c_call": pl.String,
                "productive": pl.Boolean, "duplicate_count": pl.Int64,
                "consensus_count": pl.Int64, "sequence_id": pl.String}
_TRUE = ("T", "TRUE", "1", "YES")
_BARCODE = re.compile(r"([ACGTN]{16}-\d+)")


def _flag(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.String).str.to_uppercase().is_in(list(_TRUE))


def _text(col: str) -> pl.Expr:
    c = pl.col(col).cast(pl.String)
    return pl.when(c.is_in(["", "None", "NA", "nan"])).then(None).otherwise(c)


def _shaped(df: pl.DataFrame) -> pl.DataFrame:
    df = df.with_columns(pl.int_range(pl.len()).over("cell_id").alias("chain"))
    return df.select([pl.col(c).cast(t, strict=False) if c in df.columns
                      else pl.lit(None, dtype=t).alias(c) for c, t in CHAIN_SCHEMA.items()])


def read_10x_contig_chains(path: Path, *, cells_only: bool = True,
                           high_confidence_only: bool = True) -> pl.DataFrame:
    """One row per contig of a Cell Ranger contig annotation CSV (see the module docstring)."""
    try:
        frame = pl.read_csv(path, infer_schema_length=0)
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise ValueError(f"{path.name}: could not be read as 10x VDJ contig annotations "
                         f"({exc})") from exc
    missing = [c for c in ("barcode", "chain", "cdr3") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path.name}: not 10x VDJ contig annotations (no column "
                         f"{', '.join(missing)}); expected barcode, chain, cdr3, v_gene, "
                         "j_gene, productive, umis")
    if cells_only and "is_cell" in frame.columns:
        frame = frame.filter(_flag("is_cell"))
    if high_confidence_only and "high_confidence" in frame.columns:
        frame = frame.filter(_flag("high_confidence"))
    get = {c: (_text(c) if c in frame.columns else pl.lit(None, pl.String))
           for c in ("cdr3", "cdr3_nt", "v_gene", "d_gene", "j_gene", "c_gene", "contig_id")}
    df = frame.select(
        pl.col("barcode").alias("cell_id"),
        pl.col("chain").str.to_uppercase().alias("locus"),
        get["cdr3"].alias("junction_aa"), get["cdr3_nt"].alias("junction"),
        get["v_gene"].alias("v_call"), get["d_gene"].alias("d_call"),
        get["j_gene"].alias("j_call"), get["c_gene"].alias("c_call"),
        (_flag("productive") if "productive" in frame.columns else pl.lit(True))
        .alias("productive"),
        (pl.col("umis").cast(pl.Int64, strict=False) if "umis" in frame.columns
         else pl.lit(None, pl.Int64)).alias("duplicate_count"),
        (pl.col("reads").cast(pl.Int64, strict=False) if "reads" in frame.columns
         else pl.lit(None, pl.Int64)).alias("consensus_count"),
        get["contig_id"].alias("sequence_id"))
    return _shaped(df)


def read_airr_cell_chains(path: Path) -> pl.DataFrame:
    """One row per rearrangement of an AIRR TSV that has a `cell_id` column."""
    try:
        frame = pl.read_csv(path, separator="\t", infer_schema_length=0, quote_char=None)
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise ValueError(f"{path.name}: could not be read as an AIRR TSV ({exc})") from exc
    if "cell_id" not in frame.columns:
        raise ValueError(f"{path.name}: an AIRR rearrangement file without a cell_id column "
                         "cannot be joined to cells; load it as the bulk tcr table instead")
    if "junction_aa" not in frame.columns:
        raise ValueError(f"{path.name}: AIRR file without junction_aa")
    df = frame.select(
        pl.col("cell_id"),
        *[(_text(c) if c in frame.columns else pl.lit(None, pl.String)).alias(c)
          for c in ("locus", "junction_aa", "junction", "v_call", "d_call", "j_call",
                    "c_call", "sequence_id")],
        (_flag("productive") if "productive" in frame.columns else pl.lit(True))
        .alias("productive"),
        *[(pl.col(c).cast(pl.Float64, strict=False).round().cast(pl.Int64)
           if c in frame.columns else pl.lit(None, pl.Int64)).alias(c)
          for c in ("duplicate_count", "consensus_count")])
    df = df.with_columns(pl.col("locus").fill_null(pl.col("v_call").str.slice(0, 3))
                         .str.to_uppercase())
    return _shaped(df.filter(pl.col("cell_id").is_not_null()))


def read_receptor_file(path: Path) -> pl.DataFrame:
    """Chains of a 10x contig CSV or an AIRR TSV (told apart by their header)."""
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        header = fh.readline()
    if "\t" in header:
        return read_airr_cell_chains(path)
    if "barcode" in header.split(","):
        return read_10x_contig_chains(path)
    raise ValueError(f"{path.name}: neither 10x VDJ contig annotations (a CSV with a "
                     "barcode column) nor an AIRR TSV with cell_id")


def match_cells(chains: pl.DataFrame, cells: pl.DataFrame, *,
                sample_id: str | None = None) -> pl.DataFrame:
    """`chains` with the cell name of the expression data (`cell_id` replaced): the exact
    name when any matches, else the 10x barcode inside the cell name (within `sample_id` when
    given; `cells` has cell_id and, for that, sample_id). Unmatched chains keep their id."""
    names = cells.get_column("cell_id")
    if chains.height == 0 or chains.get_column("cell_id").is_in(names.implode()).any():
        return chains
    pool = cells
    if sample_id is not None and "sample_id" in cells.columns:
        pool = cells.filter(pl.col("sample_id") == sample_id)
    keyed = pool.with_columns(pl.col("cell_id").str.extract(_BARCODE.pattern, 1)
                              .alias("_bc")).filter(pl.col("_bc").is_not_null())
    unique = keyed.group_by("_bc").agg(pl.col("cell_id").first(), pl.len().alias("_n")) \
        .filter(pl.col("_n") == 1).drop("_n")
    out = chains.with_columns(pl.col("cell_id").str.extract(_BARCODE.pattern, 1)
                              .alias("_bc")).join(unique.rename({"cell_id": "_cell"}),
                                                  on="_bc", how="left", maintain_order="left")
    return out.with_columns(pl.coalesce("_cell", "cell_id").alias("cell_id")).drop("_bc",
                                                                                   "_cell")


def receptor_file_entries(value: Any) -> list[tuple[str, str | None]]:
    """[(file, sample_id or None)] from `[single_cell] receptor_files` (strings or tables)."""
    if value in (None, ""):
        return []
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for it in items:
        if isinstance(it, dict):
            if "file" not in it:
                raise ValueError("[single_cell] receptor_files: each table needs file = "
                                 "\"...\" (and optionally sample_id)")
            out.append((str(it["file"]), str(it["sample_id"]) if it.get("sample_id")
                        else None))
        else:
            out.append((str(it), None))
    return out
