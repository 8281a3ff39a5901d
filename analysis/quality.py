"""What a study holds: table inventory, sample availability, and the derived tables for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from analysis.registry import derived_table
from data_loaders.study import TABLE_NAMES

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["table_inventory", "sample_availability", "TIMEPOINT_ORDER", "ASSAY_PAGES"]

# Conventional timepoint labels in time order; others sort by their median day.
TIMEPOINT_ORDER = ("Screening", "Baseline", "D0", "D7", "D14", "D21", "D28", "M2", "M3", "M6",
                   "M9", "M12", "M18", "M24", "M36")

# Which page shows each assay (for links from the availability matrix). FCS files are gated,
# drawn gate by gate and clustered on the Cytometry page, one sample at a time as the matrix
# lists them; the Immune landscape's flow embedding pools every file's events.
ASSAY_PAGES = {
    "proteomics": "pages/compare.py",
    "rna": "pages/compare.py",
    "mutations": "pages/clones.py",
    "tcr": "pages/clones.py",
    "scrna": "pages/immune_landscape.py",
    "flow_fcs": "pages/cytometry.py",
    "cbc": "pages/blood_counts.py",
    "car_t": "pages/kinetics.py",
    "cytokine": "pages/safety.py",
}


@derived_table("inventory", "What was loaded: rows, patients and days covered per table")
def table_inventory(study: Study) -> pl.DataFrame:
    """One row per table: table, source files, format, rows, patients, first_day, last_day."""
    recs = []
    src = {}
    for s in study.sources:
        src.setdefault(s.table, []).append(s)
    for name in (*TABLE_NAMES, "single_cell"):
        if name == "single_cell":
            rows = sum(s.rows_loaded for s in src.get(name, []))
            n_pat = first = last = None
            if study.has("single_cell"):
                obs = study.obs
                n_pat = int(obs["subject_id"].nunique())
                if "day" in obs.columns:
                    first, last = int(obs["day"].min()), int(obs["day"].max())
        else:
            df = study.table(name)
            rows = df.height
            if name != "rna_counts" and "subject_id" not in df.columns and df.height:
                df = study.with_samples(df)
            n_pat = df.get_column("subject_id").n_unique() if "subject_id" in df.columns \
                and df.height else None
            first = last = None
            if "day" in df.columns and df.height and df.get_column("day").drop_nulls().len():
                first, last = df.get_column("day").min(), df.get_column("day").max()
            if name == "rna_counts" and df.height:
                n_pat = study.samples.filter(pl.col("sample_id").is_in(df.columns[1:])) \
                    .get_column("subject_id").n_unique()
        files = src.get(name, [])
        recs.append({
            "table": name,
            "files": ", ".join(s.file for s in files),
            "format": ", ".join(sorted({s.format for s in files})),
            "rows_read": sum(s.rows_read for s in files),
            "rows": rows,
            "patients": n_pat,
            "first_day": first,
            "last_day": last,
        })
    return pl.DataFrame(recs, schema={"table": pl.String, "files": pl.String,
                                      "format": pl.String, "rows_read": pl.Int64,
                                      "rows": pl.Int64, "patients": pl.Int64,
                                      "first_day": pl.Int64, "last_day": pl.Int64})


@derived_table("availability", "Samples per patient, timepoint and assay")
def sample_availability(study: Study) -> pl.DataFrame:
    """subject_id, timepoint, assay, n_samples, day (median), from samples plus measurement
    panels (cbc, car_t, cytokine) binned to the samples' timepoints when those exist."""
    parts = []
    if study.has("samples"):
        s = study.samples.with_columns(
            pl.coalesce("timepoint", pl.format("D{}", pl.col("day"))).alias("timepoint"),
            pl.coalesce("assay", pl.lit("sample")).alias("assay"))
        parts.append(s.group_by("subject_id", "timepoint", "assay").agg(
            pl.len().alias("n_samples"), pl.col("day").median().cast(pl.Int64).alias("day")))
    out = pl.concat(parts) if parts else pl.DataFrame(
        schema={"subject_id": pl.String, "timepoint": pl.String, "assay": pl.String,
                "n_samples": pl.UInt32, "day": pl.Int64})
    if study.has("measurements") and study.has("samples"):
        tps = out.group_by("timepoint").agg(pl.col("day").median().alias("tp_day"))
        meas = study.measurements.filter(pl.col("panel").is_in(["cbc", "car_t", "cytokine"]))
        # a measurement counts at a timepoint when it lies within 7 days of its median day
        joined = meas.select("subject_id", "day", pl.col("panel").alias("assay")).unique() \
            .join(tps, how="cross").filter((pl.col("day") - pl.col("tp_day")).abs() <= 7)
        if joined.height:
            parts2 = joined.group_by("subject_id", "timepoint", "assay").agg(
                pl.len().alias("n_samples"), pl.col("day").median().cast(pl.Int64).alias("day"))
            out = pl.concat([out, parts2.cast(out.schema)])
    order = {tp: i for i, tp in enumerate(TIMEPOINT_ORDER)}
    return out.with_columns(
        pl.col("timepoint").replace_strict(order, default=None, return_dtype=pl.Int64)
        .alias("_o")).sort("subject_id", "_o", "day", "assay", nulls_last=True).drop("_o")
