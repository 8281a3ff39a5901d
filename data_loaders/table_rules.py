"""The rules of each canonical table (patients, measurements, events, responses, samples,
proteomics, mutations, tcr): vocabularies folded (response words, event categories, medication
classes, transfusion products, tissues), analytes and units made canonical, plausible ranges;
then the files of one table combined with duplicates dropped or reported; and the bulk RNA
count matrix checked."""

from __future__ import annotations

import polars as pl

from analysis.vocab import fold_tissue_expr
from data_loaders.analytes import canonical_analyte
from data_loaders.raw import RawTable
from data_loaders.schema import (
    EVENT_CATEGORIES,
    MEDICATION_CLASSES,
    RESPONSES,
    TABLES,
    medication_class_expr,
)
from data_loaders.study import empty_table
from data_loaders.typed import Context, Rows, TableCheck, validate_raw
from data_loaders.units import convert_units, known_units_for

__all__ = ["TABLE_CHECKS", "validate_table", "combine_files", "validate_rna"]

_RESPONSE_WORDS = {"COMPLETE RESPONSE": "CR", "PARTIAL RESPONSE": "PR", "NO RESPONSE": "NR",
                   "NON-RESPONSE": "NR", "NONRESPONSE": "NR", "NOT EVALUABLE": "NE"}
# Medication classes as people write them -> MEDICATION_CLASSES.
_MEDICATION_WORDS = {"steroid": "corticosteroid", "steroids": "corticosteroid",
                     "corticosteroids": "corticosteroid", "glucocorticoid": "corticosteroid",
                     "cyclosporine": "ciclosporin", "cyclosporin": "ciclosporin",
                     "csa": "ciclosporin", "tpo": "tpo_ra", "tpo_receptor_agonist": "tpo_ra",
                     "gcsf": "g_csf", "g_csf": "g_csf", "growth_factor": "g_csf",
                     "antiinfective": "anti_infective", "anti_infectives": "anti_infective",
                     "antibiotic": "anti_infective", "antiviral": "anti_infective",
                     "antifungal": "anti_infective", "il6_blocker": "tocilizumab"}
_PRODUCTS = {"RBC": "RBC", "PRBC": "RBC", "RED CELLS": "RBC", "RED BLOOD CELLS": "RBC",
             "PACKED RED CELLS": "RBC", "ERYTHROCYTES": "RBC", "PLT": "PLT",
             "PLATELETS": "PLT", "PLATELET": "PLT"}


def _check_patients(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    rows.flag(df, pl.col("subject_id").is_null(), "subject_id is empty", column="subject_id",
              fix="every patient needs a subject_id")
    dup = pl.col("subject_id").is_duplicated() & pl.col("subject_id").is_not_null()
    rows.flag(df, dup, "duplicate patient: subject_id appears more than once",
              column="subject_id", fix="keep one row per patient")
    if "age" in df.columns:
        rows.flag(df, (pl.col("age") < 0) | (pl.col("age") > 120), "age outside 0-120",
                  column="age", fix="give age in years")
    if "sex" in df.columns:
        df = df.with_columns(pl.col("sex").str.to_uppercase().replace(
            {"MALE": "M", "FEMALE": "F"}))
    return df


def _check_measurements(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    cat = ctx.catalogue
    df = _fold_tissue(df, rows, ctx)
    names = df.get_column("analyte").drop_nulls().unique().to_list()
    mapping = {n: canonical_analyte(n, cat) for n in names}
    unknown = sorted(n for n, c in mapping.items() if c is None)
    for n in unknown[:30]:
        rows.flag(df, pl.col("analyte") == n, f"analyte {n[:60]!r} is not known",
                  column="analyte",
                  fix="use a canonical name (e.g. ANC, PLT, HGB, IL6, CAR_QPCR) or declare it "
                  "in study.toml under [analytes.NAME] with panel and unit")
    if len(unknown) > 30:
        rows.flag(df, pl.col("analyte").is_in(unknown[30:]),
                  f"{len(unknown) - 30} more unknown analytes", column="analyte",
                  fix="declare them in study.toml [analytes]")
    rows.flag(df, pl.col("analyte").is_null(), "analyte is empty", column="analyte",
              fix="name the test in every row")
    df = df.with_columns(pl.col("analyte").replace_strict(
        {k: v for k, v in mapping.items() if v is not None}, default=None,
        return_dtype=pl.String))
    panel_of = {a.name: a.panel for a in cat.values()}
    df = df.with_columns(pl.coalesce(pl.col("panel"),
                                     pl.col("analyte").replace_strict(panel_of, default=None,
                                                                      return_dtype=pl.String))
                         .alias("panel"))
    rows.flag(df, pl.col("value").is_null() & pl.col("analyte").is_not_null()
              & ~pl.col("_row").is_in(list(rows.bad)),
              "value is empty", column="value",
              fix="give the result, or leave the row out if the test was not done",
              severity="warning")
    rows.flag(df, pl.col("value") < 0, "negative value", column="value",
              fix="counts, concentrations and copies cannot be negative; correct the sign")
    conv = convert_units(df.filter(pl.col("analyte").is_not_null()), cat)
    bad_units = conv.filter(~pl.col("unit_known"))
    for (analyte, unit), grp in bad_units.group_by(["analyte", "unit"], maintain_order=True):
        canon = cat[analyte].unit
        ok = ", ".join(known_units_for(analyte, canon)[:6]) or canon
        rows.flag(df, pl.col("_row").is_in(grp.get_column("_row").implode()),
                  f"unit {unit!r} for {analyte} is not known" if unit else
                  f"unit is empty for {analyte}", column="unit",
                  fix=f"use {ok}" + ("" if analyte != "RETIC" or unit != "%" else
                                     " (absolute reticulocytes, not %)"))
    conv = conv.filter(pl.col("unit_known"))
    converted = conv.filter(pl.col("unit") != pl.col("unit_canonical"))
    if converted.height:
        pairs = converted.group_by("analyte", "unit").len().sort("analyte", "unit")
        text = "; ".join(f"{r['analyte']} {r['unit']} -> {cat[r['analyte']].unit} "
                         f"({r['len']} rows)" for r in pairs.head(10).iter_rows(named=True))
        ctx.report.add("note", rows.raw.table, rows.raw.file, f"units converted: {text}")
    # Rows without a known analyte or unit are already flagged as errors and left out.
    return conv.with_columns(
        pl.col("value_canonical").alias("value"),
        pl.col("unit_canonical").alias("unit"),
    ).drop("value_canonical", "unit_canonical", "unit_known")


def _check_events(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    df = df.with_columns(pl.col("category").str.to_lowercase().str.replace_all(r"[\s-]+", "_"))
    df = df.with_columns(pl.col("category").replace(
        {"ae": "adverse_event", "cytokine_release_syndrome": "crs", "car_t_infusion": "infusion",
         "infusion_car_t": "infusion", "g_csf": "growth_factor", "transplant": "hsct",
         "allo_hsct": "hsct"}))
    rows.flag(df, ~pl.col("category").is_in(list(EVENT_CATEGORIES)) |
              pl.col("category").is_null(), "event category is not known", column="category",
              fix=f"use one of {', '.join(EVENT_CATEGORIES)}")
    if "grade" in df.columns:
        rows.flag(df, (pl.col("grade") < 0) | (pl.col("grade") > 5), "grade outside 0-5",
                  column="grade", fix="grades follow ASTCT (CRS/ICANS) or CTCAE v5 (1-5)")
    if "end_day" in df.columns:
        rows.flag(df, pl.col("end_day") < pl.col("day"), "end_day is before day",
                  column="end_day", fix="check start and end of the event")
    if "units" in df.columns:
        rows.flag(df, pl.col("units") < 0, "negative number of units", column="units",
                  fix="give the number of transfused units (0 or more)")
    if "product" in df.columns:
        med = pl.col("category") == "medication"
        df = df.with_columns(pl.when(med).then(pl.col("product"))
                             .otherwise(pl.col("product").str.to_uppercase().replace(_PRODUCTS))
                             .alias("product"))
        rows.flag(df, (pl.col("category") == "transfusion") &
                  ~pl.col("product").is_in(["RBC", "PLT"]).fill_null(False),
                  "transfusion without product RBC or PLT", column="product",
                  fix="give product RBC or PLT so transfusion independence can be judged",
                  severity="warning")
    return _medication_classes(df, rows)


def _medication_classes(df: pl.DataFrame, rows: Rows) -> pl.DataFrame:
    """Medication rows get their drug class in `product` (lower case, one of
    MEDICATION_CLASSES), derived from `term` when `product` is empty."""
    med = pl.col("category") == "medication"
    if not df.filter(med).height:
        return df
    term = pl.col("term") if "term" in df.columns else pl.lit(None, pl.String)
    given = (pl.col("product").str.strip_chars().str.to_lowercase()
             .str.replace_all(r"[\s-]+", "_").replace(_MEDICATION_WORDS)
             if "product" in df.columns else pl.lit(None, pl.String))
    df = df.with_columns(pl.when(med).then(pl.coalesce(given.replace("", None),
                                                       medication_class_expr(term)))
                         .otherwise(pl.col("product") if "product" in df.columns
                                    else pl.lit(None, pl.String)).alias("product"))
    rows.flag(df, med & ~pl.col("product").is_in(list(MEDICATION_CLASSES)),
              "medication class (product) is not known", column="product",
              fix=f"use one of {', '.join(MEDICATION_CLASSES)}, or leave product empty to "
                  "derive the class from the term", severity="warning")
    rows.flag(df, med & term.is_null(), "medication without a term (the drug)",
              column="term", fix="give the drug as recorded, e.g. \"dexamethasone 10 mg\"",
              severity="warning")
    return df


def _check_responses(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    up = pl.col("response").str.to_uppercase().str.strip_chars()
    df = df.with_columns(up.replace(_RESPONSE_WORDS).alias("response"))
    rows.flag(df, ~pl.col("response").is_in(list(RESPONSES)) | pl.col("response").is_null(),
              "response is not CR, PR, NR or NE", column="response",
              fix="record the response category as CR, PR, NR or NE")
    if "criteria" in df.columns:
        df = df.with_columns(pl.col("criteria").str.to_uppercase())
    return df


def _fold_tissue(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    """Tissue folded once for every analysis (analysis.vocab): "Blood", "PB", "serum" and
    "plasma" are blood, "BM" and "bone marrow" marrow. Where folding changed a name the
    recorded one stays in `specimen`, and a note says what was folded."""
    if "tissue" not in df.columns:
        return df
    recorded = pl.col("tissue").str.strip_chars().str.to_lowercase()
    folded = df.with_columns(fold_tissue_expr("tissue"), recorded.alias("_recorded"))
    changed = folded.filter(pl.col("_recorded").is_not_null()
                            & (pl.col("_recorded") != pl.col("tissue")))
    if changed.height == 0:
        return folded.drop("_recorded")
    pairs = changed.group_by("_recorded", "tissue").len().sort("_recorded")
    text = "; ".join(f"{r['_recorded']} -> {r['tissue']} ({r['len']} rows)"
                     for r in pairs.head(10).iter_rows(named=True))
    ctx.report.add("note", rows.raw.table, rows.raw.file,
                   f"tissue names folded: {text}; the recorded name is kept in column specimen",
                   fix="nothing to do (docs/rules.md, Vocabulary)")
    if "specimen" in folded.columns:
        return folded.drop("_recorded")
    return folded.with_columns(
        pl.when(pl.col("_recorded") != pl.col("tissue")).then(pl.col("_recorded"))
        .otherwise(None).alias("specimen")).drop("_recorded")


def _check_samples_table(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    df = _fold_tissue(df, rows, ctx)
    rows.flag(df, pl.col("sample_id").is_null(), "sample_id is empty", column="sample_id",
              fix="every sample needs an id")
    rows.flag(df, pl.col("sample_id").is_duplicated() & pl.col("sample_id").is_not_null(),
              "duplicate sample_id", column="sample_id", fix="sample ids must be unique")
    return df


def _check_proteomics(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    rows.flag(df, pl.col("feature").is_null(), "feature (protein) is empty", column="feature",
              fix="name the protein in every row")
    rows.flag(df, pl.col("value").is_null() & ~pl.col("_row").is_in(list(rows.bad)),
              "value is empty", column="value", fix="give the NPX value or leave the row out")
    return df


def _check_mutations(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    rows.flag(df, (pl.col("vaf") > 1) & (pl.col("vaf") <= 100),
              "VAF above 1 (looks like a percentage)", column="vaf",
              fix="give the variant allele fraction between 0 and 1 (e.g. 0.35 for 35%)")
    rows.flag(df, (pl.col("vaf") < 0) | (pl.col("vaf") > 100), "VAF outside 0-1",
              column="vaf", fix="give the variant allele fraction between 0 and 1")
    rows.flag(df, pl.col("gene").is_null(), "gene is empty", column="gene",
              fix="name the gene in every row")
    if "depth" in df.columns:
        rows.flag(df, pl.col("depth") < 0, "negative read depth", column="depth",
                  fix="give the number of reads covering the variant (0 or more)")
    return df


def _check_tcr(df: pl.DataFrame, rows: Rows, ctx: Context) -> pl.DataFrame:
    rows.flag(df, pl.col("count") <= 0, "clone count must be positive", column="count",
              fix="give the number of cells or reads of the clonotype")
    rows.flag(df, pl.col("junction_aa").is_null(), "junction_aa is empty",
              column="junction_aa", fix="give the CDR3 amino-acid sequence")
    return df


TABLE_CHECKS: dict[str, TableCheck] = {
    "patients": _check_patients,
    "measurements": _check_measurements,
    "events": _check_events,
    "responses": _check_responses,
    "samples": _check_samples_table,
    "proteomics": _check_proteomics,
    "mutations": _check_mutations,
    "tcr": _check_tcr,
}


def validate_table(raw: RawTable, ctx: Context) -> pl.DataFrame | None:
    """`raw` typed and checked by the generic rules and its table's own (None when it cannot be
    read as that table at all)."""
    return validate_raw(raw, TABLES[raw.table], ctx, table_check=TABLE_CHECKS.get(raw.table))


def combine_files(name: str, frames: list[pl.DataFrame], ctx: Context) -> pl.DataFrame:
    """The checked files of one table as one frame: identical rows kept once (a warning),
    conflicting rows with the same key left out (an error)."""
    spec = TABLES[name]
    if not frames:
        return empty_table(name)
    df = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    data_cols = [c for c in df.columns if c not in ("_row", "_file")]
    key = [c for c in spec.key if c in df.columns]
    # identical rows: keep one, say so. Rows that share no key with another row cannot be
    # identical, so a table with a key is only searched where the key repeats (cheap when
    # there are no duplicates, the common case).
    key_dup = df.select(pl.struct(key).is_duplicated()).to_series() if key else None
    if key_dup is not None and not key_dup.any():
        dup = key_dup
    elif key_dup is not None:
        dup = key_dup & df.select(pl.struct(data_cols).is_duplicated()).to_series()
    else:
        dup = df.select(data_cols).is_duplicated()
    if dup.any():
        first = df.with_columns(_dup=dup).filter(pl.col("_dup"))
        unique = df.unique(subset=data_cols, keep="first", maintain_order=True)
        n_extra = df.height - unique.height
        for f, grp in first.group_by("_file", maintain_order=True):
            ctx.report.add("warning", name, f[0], f"{n_extra:,} identical duplicate row(s) "
                           "dropped", fix="remove repeated rows from the file",
                           rows=grp.get_column("_row").to_list())
        df = unique
    # patients and samples are checked within each file; this catches a key in two files
    if key_dup is not None and key_dup.any():
        conflict = df.select(pl.struct(key).is_duplicated()).to_series()
        if conflict.any():
            bad = df.filter(conflict)
            for f, grp in bad.group_by("_file", maintain_order=True):
                ctx.report.add(
                    "error", name, f[0],
                    ("duplicate patient: " if name == "patients" else "")
                    + f"conflicting duplicates: same {', '.join(k for k in key)} with different "
                    "values", fix="keep one value per key (or add a time/tissue column to tell "
                    "them apart)", rows=grp.get_column("_row").to_list())
            df = df.filter(~conflict)
    return df.drop("_row", "_file")


def validate_rna(raw: RawTable, ctx: Context) -> pl.DataFrame:
    """The bulk RNA count matrix (gene + one column of raw counts per sample): unknown samples
    and columns that are not whole non-negative counts left out, repeated genes summed."""
    rep = ctx.report
    df = raw.frame
    if "gene" not in df.columns or df.width < 2:
        rep.add("error", "rna_counts", raw.file, "needs a gene column and at least one sample "
                "column", fix="first column gene symbols, then one column of raw counts per "
                "sample_id")
        return empty_table("rna_counts")
    known = set(ctx.samples.get_column("sample_id").to_list()) if ctx.samples is not None else set()
    sample_cols = [c for c in df.columns if c != "gene"]
    unknown = [c for c in sample_cols if c not in known]
    if unknown:
        rep.add("error", "rna_counts", raw.file,
                f"{len(unknown)} sample column(s) not in the samples table: "
                f"{', '.join(unknown[:8])}" + (" ..." if len(unknown) > 8 else ""),
                column=unknown[0], fix="add these samples to samples (sample_id, subject_id, "
                "day) or rename the columns; they are left out")
    cols = [c for c in sample_cols if c in known]
    index = df.select("gene").with_row_index("_row", offset=raw.row_offset)
    # one pass over the frame's series (a matrix may have one column per sample, 10^4 and
    # more: per-column frame operations or lookups by name would make this quadratic)
    wanted = set(cols)
    good: list[pl.Series] = []
    for col in df.get_columns():
        if col.name not in wanted:
            continue
        num = col.cast(pl.Float64, strict=False)
        bad = (num.is_null() & col.is_not_null()) | (num < 0) | (num != num.round()) | \
            num.is_nan()
        if bad.any():
            rows_bad = index.filter(bad.fill_null(False)).get_column("_row").to_list()
            rep.add("error", "rna_counts", raw.file,
                    "counts must be non-negative whole numbers (raw counts, not normalised)",
                    column=col.name, rows=rows_bad, fix="give raw integer counts; the sample "
                    "column is left out")
            continue
        good.append(num.fill_null(0).cast(pl.Int64))
    out = pl.DataFrame([df.get_column("gene"), *good])
    out = out.filter(pl.col("gene").is_not_null())
    if out.get_column("gene").is_duplicated().any():
        n = out.get_column("gene").is_duplicated().sum()
        rep.add("warning", "rna_counts", raw.file,
                f"{n} rows share a gene symbol with another row; their counts were summed",
                column="gene", fix="collapse duplicated symbols or use unique gene ids")
        out = out.group_by("gene", maintain_order=True).sum()
    return out if out.width > 1 else empty_table("rna_counts")
