"""Feature layers of a study as long per-sample values (subject_id, sample_id, day, timepoint,
feature, value): measurements, cell-type composition, proteomics NPX, bulk RNA log-CPM, somatic
mutations (VAF and presence), TCR repertoire metrics; which layers a study has, and how a
feature's values are labelled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

import polars as pl

from analysis.vocab import is_blood

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["LAYERS", "LAYER_LABELS", "LOG2_LAYERS", "LONG_SCHEMA", "PRESENT", "available_layers",
           "value_label", "layer_values"]

Layer = Literal["measurements", "composition", "proteomics", "rna", "mutations", "tcr"]
LAYERS: tuple[Layer, ...] = get_args(Layer)
LAYER_LABELS = {"measurements": "Measurements (counts, chemistry, cytokines, CAR-T, flow)",
                "composition": "Cell-type composition (single cell)",
                "proteomics": "Proteomics (NPX)", "rna": "Bulk RNA (log-CPM / DESeq2)",
                "mutations": "Somatic mutations (VAF, presence)",
                "tcr": "TCR repertoire metrics"}
# layers whose values are already on a log2 scale: log2 fold change = difference of means
LOG2_LAYERS = ("proteomics", "rna")
PRESENT = " (present)"
_VAF = " (VAF)"
LONG_SCHEMA = {"subject_id": pl.String, "sample_id": pl.String, "day": pl.Int64,
               "timepoint": pl.String, "feature": pl.String, "value": pl.Float64}


def _empty_long() -> pl.DataFrame:
    return pl.DataFrame(schema=LONG_SCHEMA)


def _composition_fn() -> Any:
    try:
        from analysis.composition import cell_type_composition
    except ImportError:
        return None
    return cell_type_composition


def available_layers(study: Study) -> dict[str, str]:
    """layer -> "" when the study has data for it, else a sentence saying what is missing."""
    out = {
        "measurements": "" if study.has("measurements") else
        "no measurements table (measurements.csv)",
        "composition": "" if study.has("single_cell") else
        "no single-cell file (single_cell.h5ad with obs cell_type)",
        "proteomics": "" if study.has("proteomics") else "no proteomics table (proteomics.csv)",
        "rna": "" if study.has("rna_counts") else "no bulk RNA counts (rna_counts.csv)",
        "mutations": "" if study.has("mutations") else "no mutations table (mutations.csv)",
        "tcr": "" if study.has("tcr") else "no TCR table (tcr.csv or AIRR)",
    }
    if not out["composition"] and _composition_fn() is None:
        out["composition"] = "the cell-type composition analysis is not installed"
    if not study.has("samples"):
        for layer in ("proteomics", "rna", "mutations", "tcr"):
            if not out[layer]:
                out[layer] = "no samples table (samples.csv) to place samples in time"
    return out


def value_label(study: Study, *, layer: Layer, feature: str) -> str:
    """What a feature's values are, for an axis title: "IFNG (NPX)", "ANC: Absolute neutrophil
    count (10^9/L)", "STAT1 (log2 CPM + 1)"."""
    if layer == "measurements":
        analyte = feature.split(" (")[0]
        label = study.analyte_label(analyte)
        return feature if label == analyte else f"{feature}: {label}"
    unit = {"proteomics": "NPX", "rna": "log2 CPM + 1", "composition": "fraction of cells",
            "tcr": "per sample"}.get(layer)
    if layer == "mutations":
        unit = "1 = detected" if feature.endswith(PRESENT) else "largest VAF"
        feature = feature.rsplit(" (", 1)[0]
    return f"{feature} ({unit})" if unit else feature


def _log_cpm(counts: pl.DataFrame) -> pl.DataFrame:
    """log2(CPM + 1) of a wide count matrix (gene + one column per sample)."""
    sample_cols = [c for c in counts.columns if c != "gene"]
    lib = counts.select(pl.col(sample_cols).sum()).row(0)
    return counts.select(
        "gene", *[(pl.col(c).cast(pl.Float64) / max(float(n), 1.0) * 1e6 + 1).log(2).alias(c)
                  for c, n in zip(sample_cols, lib, strict=True)])


def _sample_long(study: Study, frame: pl.DataFrame) -> pl.DataFrame:
    """sample_id, feature, value -> + subject_id, day, timepoint (samples table)."""
    joined = study.with_samples(frame, columns=("subject_id", "day", "timepoint"))
    for col, dtype in LONG_SCHEMA.items():
        if col not in joined.columns:
            joined = joined.with_columns(pl.lit(None, dtype).alias(col))
    return joined.filter(pl.col("subject_id").is_not_null() & pl.col("day").is_not_null()) \
        .select(list(LONG_SCHEMA)).cast(LONG_SCHEMA)


def layer_values(study: Study, *, layer: Layer, panel: str | None = None,
                 features: Sequence[str] | None = None, drop_qc_warnings: bool = True,
                 sample_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """Every value of a layer at every sample: subject_id, sample_id, day, timepoint, feature,
    value (long). `panel` restricts measurements (cbc, cytokine, ...) or proteomics panels.

    measurements: one value per analyte and day (mean of same-day repeats); an analyte measured
    in marrow is its own feature "ANALYTE (marrow)". composition: cell-type fractions.
    proteomics: NPX (samples with a QC warning left out when `drop_qc_warnings`). rna:
    log2(CPM + 1). mutations: "GENE (VAF)" (largest VAF, 0 when sequenced and not found) and
    "GENE (present)" (1/0). tcr: richness, shannon, clonality, simpson, top10_share.
    `sample_ids` keeps only these samples (read before the RNA matrix is expanded).
    """
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; use one of {', '.join(LAYERS)}")
    if layer == "measurements":
        out = _measurement_values(study, panel)
    elif layer == "composition":
        out = _composition_values(study)
    elif layer == "proteomics":
        df = study.proteomics
        if panel is not None and "panel" in df.columns:
            df = df.filter(pl.col("panel") == panel)
        if drop_qc_warnings and "qc_warning" in df.columns:
            df = df.filter(~pl.col("qc_warning").fill_null("").str.to_uppercase()
                           .is_in(["WARN", "WARNING", "FAIL"]))
        df = df.group_by("sample_id", "feature").agg(pl.col("value").mean())
        out = _sample_long(study, df)
    elif layer == "rna":
        counts = study.rna_counts
        if sample_ids is not None:
            keep = set(sample_ids)
            counts = counts.select("gene", *[c for c in counts.columns if c in keep])
        if counts.width <= 1:
            return _empty_long()
        logcpm = _log_cpm(counts)
        if features is not None:
            logcpm = logcpm.filter(pl.col("gene").is_in(list(features)))
        long = logcpm.unpivot(index="gene", variable_name="sample_id", value_name="value") \
            .rename({"gene": "feature"})
        out = _sample_long(study, long)
    elif layer == "mutations":
        out = _mutation_values(study)
    else:
        from analysis.repertoire import METRICS, repertoire_metrics

        metrics = repertoire_metrics(study.tcr)
        long = metrics.unpivot(index="sample_id", on=list(METRICS), variable_name="feature",
                               value_name="value")
        out = _sample_long(study, long)
    if features is not None:
        out = out.filter(pl.col("feature").is_in(list(features)))
    if sample_ids is not None and layer != "rna":
        out = out.filter(pl.col("sample_id").is_in(list(sample_ids)))
    return out.filter(pl.col("value").is_not_null() & pl.col("value").is_not_nan())


def _measurement_values(study: Study, panel: str | None) -> pl.DataFrame:
    df = study.measurements
    if panel is not None:
        df = df.filter(pl.col("panel") == panel)
    if df.height == 0:
        return _empty_long()
    # tissues are folded once by the loader (analysis.vocab): blood is "ANC", marrow "ANC (marrow)"
    feature = pl.when(is_blood()).then(pl.col("analyte")) \
        .otherwise(pl.col("analyte") + " (" + pl.col("tissue") + ")")
    return (df.with_columns(feature.alias("feature"))
            .group_by("subject_id", "day", "feature")
            .agg(pl.col("value").mean(), pl.col("sample_id").drop_nulls().first())
            .with_columns(pl.lit(None, pl.String).alias("timepoint"))
            .select(list(LONG_SCHEMA)).cast(LONG_SCHEMA))


def _composition_values(study: Study) -> pl.DataFrame:
    fn = _composition_fn()
    if fn is None or not study.has("single_cell"):
        return _empty_long()
    comp = fn(study)
    if comp.height == 0:
        return _empty_long()
    out = comp.select("subject_id", "sample_id", "day", pl.col("cell_type").alias("feature"),
                      pl.col("fraction").alias("value"))
    if "timepoint" in comp.columns:
        out = out.with_columns(comp.get_column("timepoint"))
    elif study.has("samples"):
        out = out.join(study.samples.select("sample_id", "timepoint"), on="sample_id",
                       how="left")
    else:
        out = out.with_columns(pl.lit(None, pl.String).alias("timepoint"))
    return out.select(list(LONG_SCHEMA)).cast(LONG_SCHEMA)


def _mutation_values(study: Study) -> pl.DataFrame:
    from analysis.clones import vaf_tracks

    tracks = vaf_tracks(study)
    if tracks.height == 0:
        return _empty_long()
    # every gene mutated anywhere is a feature for every sequenced sample (0 = not found)
    from analysis.clones import sequenced_samples

    seq = sequenced_samples(study)
    genes = tracks.select("gene").unique()
    grid = seq.join(genes, how="cross").join(
        tracks.select("sample_id", "gene", "vaf"), on=["sample_id", "gene"], how="left") \
        .with_columns(pl.col("vaf").fill_null(0.0))
    vaf = grid.select("subject_id", "sample_id", "day", "timepoint",
                      (pl.col("gene") + _VAF).alias("feature"), pl.col("vaf").alias("value"))
    present = grid.select("subject_id", "sample_id", "day", "timepoint",
                          (pl.col("gene") + PRESENT).alias("feature"),
                          (pl.col("vaf") > 0).cast(pl.Float64).alias("value"))
    return pl.concat([vaf, present]).select(list(LONG_SCHEMA)).cast(LONG_SCHEMA)
