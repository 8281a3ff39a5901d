"""Two patient groups compared within a day window, for every feature layer of a study.

Patient-level always (DESIGN.md section 3): each patient gives one value per feature and window,
from the sample closest to the window centre (baseline: the sample on or before day 0 closest to
day 0); cells or repeated samples are never pseudo-replicates. Optionally the value is the change
from the patient's baseline value.

Statistics made for tiny cohorts, all from analysis.stats (one implementation shared with the
Kinetics page, so the same patients give the same p everywhere):
- two-sided Mann-Whitney U (Mann & Whitney 1947). With `exact_max_n` (default 20) patients or
  fewer the p-value is exact: scipy's exact null distribution when there are no ties, else the
  exact permutation distribution of the rank sum over every split of the patients (Monte Carlo
  with 9,999 permutations from a fixed seed when there are more than 20,000 splits). Above:
  the normal approximation with tie and continuity correction, vectorised over features;
- presence/absence features (mutations): Fisher's exact test, effect = difference in proportions;
- effect sizes: Hedges' g (bias-corrected standardised mean difference; Hedges & Olkin 1985) and
  Cliff's delta (Cliff 1993), positive = higher in group A; log2 fold change of group means when
  every value is positive (difference of means on log2 layers such as NPX or log-CPM);
- Benjamini-Hochberg FDR over a stated family (column `fdr_family`): the features tested in the
  window, without the analytes that define the response groups (`group_defining_analytes`,
  marked "defines the groups": testing responders on the counts that made them responders is
  circular), or every window at once with the rule setting `fdr_across_windows`;
- fewer than `min_n` patients in a group (default 2; 3 for the strict rule): no test (p null,
  `reason` says why), values still returned; when even a perfect separation cannot reach
  p < 0.05 (e.g. 3 vs 2 patients: smallest exact p = 0.2) the `note` column says so.

Bulk RNA-seq can instead use pydeseq2 (Love et al., Genome Biol 2014; Muzellec et al.,
Bioinformatics 2023): Wald test on raw counts with design ~group, or, with change from baseline,
patients nested in groups with a group-specific time effect (DESeq2 vignette, "group-specific
condition effects, individuals nested within groups"), contrasting the change between groups.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from analysis import stats as st
from analysis.cohort import NON_RESPONDER, NOT_EVALUABLE, RESPONDER, response_groups
from analysis.registry import Option, derived_table
from analysis.rules import Rules, rules_for
from analysis.vocab import is_blood

__all__ = ["LAYERS", "LAYER_LABELS", "WINDOWS", "Window", "parse_window", "available_layers",
           "layer_values", "window_values", "assign_groups", "patient_values", "compare",
           "compare_windows", "defining_features", "DEFINES_GROUPS", "compare_matrix", "feature_course", "feature_windows", "comparison_table",
           "grouping_columns", "group_values", "value_label", "RESULT_COLUMNS", "MIN_N", "EXACT_MAX_N"]

LAYERS = ("measurements", "composition", "proteomics", "rna", "mutations", "tcr")
LAYER_LABELS = {"measurements": "Measurements (counts, chemistry, cytokines, CAR-T, flow)",
                "composition": "Cell-type composition (single cell)",
                "proteomics": "Proteomics (NPX)", "rna": "Bulk RNA (log-CPM / DESeq2)",
                "mutations": "Somatic mutations (VAF, presence)",
                "tcr": "TCR repertoire metrics"}
# layers whose values are already on a log2 scale: log2 fold change = difference of means
_LOG2_LAYERS = ("proteomics", "rna")
RESULT_COLUMNS = ("feature", "n_group_a", "n_group_b", "effect", "effect_measure", "p_value",
                  "q_value")
MIN_N = 2             # default: fewer patients than this in a group, no test
EXACT_MAX_N = st.EXACT_MAX_N   # up to this many patients: exact / permutation p-values
_VALUES_MAX_PATIENTS = 40   # values_a / values_b text only up to this many patients
DEFINES_GROUPS = "defines the groups"
_PRESENT = " (present)"
_VAF = " (VAF)"


# ---- windows ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """A day window: samples with lo <= day <= hi (None = open); the one closest to `centre`
    represents the patient."""

    name: str
    centre: float
    lo: int | None
    hi: int | None

    def describe(self) -> str:
        lo = "" if self.lo is None else str(self.lo)
        hi = "" if self.hi is None else str(self.hi)
        if self.lo is None:
            span = f"day <= {hi}"
        elif self.hi is None:
            span = f"day >= {lo}"
        else:
            span = f"days {lo} to {hi}"
        return f"{self.name}: {span}, the sample closest to day {self.centre:g} per patient"


WINDOWS: dict[str, Window] = {
    "baseline": Window("baseline", 0, None, 0),
    "D14": Window("D14", 14, 11, 17),
    "D28": Window("D28", 28, 21, 35),
    "M3": Window("M3", 90, 76, 104),
    "M6": Window("M6", 180, 150, 210),
    "M12": Window("M12", 365, 305, 425),
}


def parse_window(window: str | Window) -> Window:
    """A named window (baseline, D14, D28, M3, M6, M12; case-insensitive) or "start:end" days."""
    if isinstance(window, Window):
        return window
    text = str(window).strip()
    for name, w in WINDOWS.items():
        if text.lower() == name.lower():
            return w
    if ":" in text:
        lo_s, hi_s = text.split(":", 1)
        try:
            lo, hi = int(lo_s), int(hi_s)
        except ValueError:
            lo = hi = None
        if lo is not None and hi is not None and lo <= hi:
            return Window(f"days {lo}:{hi}", (lo + hi) / 2, lo, hi)
    raise ValueError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)} or "
                     "'start:end' in days (e.g. 21:35)")


# ---- layers -> long values -------------------------------------------------------------------
_LONG = {"subject_id": pl.String, "sample_id": pl.String, "day": pl.Int64,
         "timepoint": pl.String, "feature": pl.String, "value": pl.Float64}


def _empty_long() -> pl.DataFrame:
    return pl.DataFrame(schema=_LONG)


def _composition_fn() -> Any:
    try:
        from analysis.composition import cell_type_composition
    except ImportError:
        return None
    return cell_type_composition


def available_layers(study) -> dict[str, str]:  # noqa: ANN001 - Study
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


def value_label(study, *, layer: str, feature: str) -> str:  # noqa: ANN001 - Study
    """What a feature's values are, for an axis title: "IFNG (NPX)", "ANC: Absolute neutrophil
    count (10^9/L)", "STAT1 (log2 CPM + 1)"."""
    if layer == "measurements":
        analyte = feature.split(" (")[0]
        label = study.analyte_label(analyte)
        return feature if label == analyte else f"{feature}: {label}"
    unit = {"proteomics": "NPX", "rna": "log2 CPM + 1", "composition": "fraction of cells",
            "tcr": "per sample"}.get(layer)
    if layer == "mutations":
        unit = "1 = detected" if feature.endswith(_PRESENT) else "largest VAF"
        feature = feature.rsplit(" (", 1)[0]
    return f"{feature} ({unit})" if unit else feature


def _log_cpm(counts: pl.DataFrame) -> pl.DataFrame:
    """log2(CPM + 1) of a wide count matrix (gene + one column per sample)."""
    sample_cols = [c for c in counts.columns if c != "gene"]
    lib = counts.select(pl.col(sample_cols).sum()).row(0)
    return counts.select(
        "gene", *[(pl.col(c).cast(pl.Float64) / max(float(n), 1.0) * 1e6 + 1).log(2).alias(c)
                  for c, n in zip(sample_cols, lib, strict=True)])


def _sample_long(study, frame: pl.DataFrame) -> pl.DataFrame:  # noqa: ANN001
    """sample_id, feature, value -> + subject_id, day, timepoint (samples table)."""
    joined = study.with_samples(frame, columns=("subject_id", "day", "timepoint"))
    for col, dtype in _LONG.items():
        if col not in joined.columns:
            joined = joined.with_columns(pl.lit(None, dtype).alias(col))
    return joined.filter(pl.col("subject_id").is_not_null() & pl.col("day").is_not_null()) \
        .select(list(_LONG)).cast(_LONG)


def layer_values(study, *, layer: str, panel: str | None = None,  # noqa: ANN001 - Study
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


def _measurement_values(study, panel: str | None) -> pl.DataFrame:  # noqa: ANN001
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
            .select(list(_LONG)).cast(_LONG))


def _composition_values(study) -> pl.DataFrame:  # noqa: ANN001
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
    return out.select(list(_LONG)).cast(_LONG)


def _mutation_values(study) -> pl.DataFrame:  # noqa: ANN001
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
                          (pl.col("gene") + _PRESENT).alias("feature"),
                          (pl.col("vaf") > 0).cast(pl.Float64).alias("value"))
    return pl.concat([vaf, present]).select(list(_LONG)).cast(_LONG)


def window_values(values: pl.DataFrame, *, window: str | Window) -> pl.DataFrame:
    """One row per patient and feature: the sample in the window closest to its centre (ties:
    the earlier). Same columns as `values`."""
    w = parse_window(window)
    df = values
    if w.lo is not None:
        df = df.filter(pl.col("day") >= w.lo)
    if w.hi is not None:
        df = df.filter(pl.col("day") <= w.hi)
    return (df.with_columns((pl.col("day") - w.centre).abs().alias("_dist"))
            .sort("subject_id", "feature", "_dist", "day")
            .group_by("subject_id", "feature", maintain_order=True).first()
            .drop("_dist"))


# ---- groups ----------------------------------------------------------------------------------
def assign_groups(study, *, groups: Any = None,  # noqa: ANN001 - Study
                  group_column: str = "response_group", group_a: str | None = None,
                  group_b: str | None = None, subjects: Sequence[str] | None = None
                  ) -> tuple[pl.DataFrame, str, str]:
    """(frame subject_id, group; label A; label B). Only patients of the two groups are kept.

    `groups`: None (the study's response groups, or `group_column` of the patients table),
    a frame with subject_id and `group_column`, or a user-made split: two lists of subject_ids.
    A numeric column with more than two values is split at its median. "Not evaluable" and
    missing values never form a group. `subjects` restricts to these patients (the cohort).
    """
    if isinstance(groups, (tuple, list)) and len(groups) == 2 and not isinstance(groups[0], str):
        a_ids, b_ids = [str(s) for s in groups[0]], [str(s) for s in groups[1]]
        overlap = set(a_ids) & set(b_ids)
        if overlap:
            raise ValueError(f"patients in both groups: {', '.join(sorted(overlap))}")
        la, lb = group_a or "Group A", group_b or "Group B"
        frame = pl.DataFrame({"subject_id": a_ids + b_ids,
                              "group": [la] * len(a_ids) + [lb] * len(b_ids)},
                             schema={"subject_id": pl.String, "group": pl.String})
    else:
        if isinstance(groups, pl.DataFrame):
            source = groups
        elif groups is None:
            source = response_groups(study)
            extra = [c for c in study.patients.columns if c not in source.columns]
            source = source.join(study.patients.select("subject_id", *extra), on="subject_id",
                                 how="left")
        else:
            raise ValueError("groups must be None, a frame with subject_id and the group "
                             "column, or two lists of subject_ids")
        if group_column not in source.columns:
            cols = ", ".join(c for c in source.columns if c != "subject_id")
            raise ValueError(f"no column {group_column!r} to group patients by; "
                             f"available: {cols}")
        frame, la, lb = _two_groups(source.select("subject_id", group_column), group_column,
                                    group_a, group_b)
    if subjects is not None:
        frame = frame.filter(pl.col("subject_id").is_in(list(subjects)))
    return frame, la, lb


def _two_groups(df: pl.DataFrame, col: str, group_a: str | None, group_b: str | None
                ) -> tuple[pl.DataFrame, str, str]:
    s = df.get_column(col)
    if s.dtype.is_numeric() and s.drop_nulls().n_unique() > 2:
        med = float(s.drop_nulls().median())
        la, lb = f"{col} > {med:g}", f"{col} <= {med:g}"
        frame = df.filter(pl.col(col).is_not_null()).select(
            "subject_id", pl.when(pl.col(col) > med).then(pl.lit(la)).otherwise(pl.lit(lb))
            .alias("group"))
        return frame, la, lb
    df = df.with_columns(pl.col(col).cast(pl.String)).filter(
        pl.col(col).is_not_null() & (pl.col(col) != NOT_EVALUABLE))
    values = df.get_column(col).unique().sort().to_list()
    if col == "response_group" and group_a is None and group_b is None:
        group_a, group_b = RESPONDER, NON_RESPONDER
    if group_a is None or group_b is None:
        rest = [v for v in values if v not in (group_a, group_b)]
        if len(values) > 2 and (group_a is None and group_b is None):
            raise ValueError(f"column {col!r} has {len(values)} values ({', '.join(values)}); "
                             "choose the two groups to compare")
        group_a = group_a or (rest.pop(0) if rest else "")
        group_b = group_b or (rest.pop(0) if rest else "")
    frame = df.filter(pl.col(col).is_in([group_a, group_b])).select(
        "subject_id", pl.col(col).alias("group"))
    return frame, group_a, group_b


def grouping_columns(study) -> list[str]:  # noqa: ANN001 - Study
    """Columns of the patients table (and best_response) that can split patients in two:
    categories with 2 to 8 values, or numbers (split at the median)."""
    source = response_groups(study).select("subject_id", "best_response").join(
        study.patients, on="subject_id", how="left")
    out = []
    for col in source.columns:
        if col in ("subject_id", "infusion_date") or col.endswith("_day"):
            continue
        s = source.get_column(col).drop_nulls()
        if s.dtype.is_numeric() and s.n_unique() >= 2:
            out.append(col)
        elif s.dtype == pl.String and 2 <= s.n_unique() <= 8:
            out.append(col)
    return out


def group_values(study, *, column: str) -> list[str]:  # noqa: ANN001 - Study
    """The distinct values of a categorical grouping column ([] for a numeric column, which
    is split at its median, and for an unknown column)."""
    source = response_groups(study).join(study.patients.drop("response_override"),
                                         on="subject_id", how="left")
    if column not in source.columns or source.get_column(column).dtype.is_numeric():
        return []
    values = source.get_column(column).drop_nulls().unique().sort().to_list()
    return [v for v in values if v != NOT_EVALUABLE]


# ---- per-patient values ----------------------------------------------------------------------
def _change(values: pl.DataFrame, picked: pl.DataFrame) -> pl.DataFrame:
    base = window_values(values, window=WINDOWS["baseline"]).select(
        "subject_id", "feature", pl.col("value").alias("baseline_value"),
        pl.col("day").alias("baseline_day"))
    return (picked.join(base, on=["subject_id", "feature"], how="inner")
            .with_columns((pl.col("value") - pl.col("baseline_value")).alias("value")))


def patient_values(study, *, layer: str, window: str | Window,  # noqa: ANN001 - Study
                   groups: Any = None, group_column: str = "response_group",
                   group_a: str | None = None, group_b: str | None = None,
                   change_from_baseline: bool = False, panel: str | None = None,
                   features: Sequence[str] | None = None,
                   subjects: Sequence[str] | None = None) -> pl.DataFrame:
    """The values a comparison uses: subject_id, group, feature, value, day, sample_id,
    timepoint (+ baseline_value, baseline_day with change from baseline)."""
    w = parse_window(window)
    assigned, _, _ = assign_groups(study, groups=groups, group_column=group_column,
                                   group_a=group_a, group_b=group_b, subjects=subjects)
    return _picked(study, layer=layer, window=w, assigned=assigned,
                   change_from_baseline=change_from_baseline, panel=panel,
                   features=features).sort("feature", "group", "subject_id")


def _picked(study, *, layer: str, window: Window, assigned: pl.DataFrame,  # noqa: ANN001
            change_from_baseline: bool, panel: str | None,
            features: Sequence[str] | None) -> pl.DataFrame:
    if change_from_baseline and window.name == "baseline":
        raise ValueError("change from baseline needs a window after baseline (e.g. D28)")
    if layer == "rna":
        # every gene is counted in every sample: choose the samples first, then expand
        post_f, base_f = _rna_choice(study, assigned, window,
                                     change_from_baseline=change_from_baseline)
        post = post_f.get_column("sample_id").to_list()
        base = base_f.get_column("sample_id").to_list()
        values = layer_values(study, layer=layer, features=features,
                              sample_ids=post + base).join(assigned, on="subject_id")
        picked = values.filter(pl.col("sample_id").is_in(post))
        if not change_from_baseline:
            return picked
        base_vals = values.filter(pl.col("sample_id").is_in(base)).select(
            "subject_id", "feature", pl.col("value").alias("baseline_value"),
            pl.col("day").alias("baseline_day"))
        return (picked.join(base_vals, on=["subject_id", "feature"], how="inner")
                .with_columns((pl.col("value") - pl.col("baseline_value")).alias("value")))
    values = layer_values(study, layer=layer, panel=panel, features=features)
    values = values.join(assigned, on="subject_id", how="inner")
    picked = window_values(values, window=window)
    if change_from_baseline:
        picked = _change(values, picked)
    return picked


def _rna_choice(study, assigned: pl.DataFrame, w: Window, *,  # noqa: ANN001
                change_from_baseline: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The RNA sample of each patient in the window and (when needed) at baseline:
    frames of subject_id, sample_id, day."""
    cols = [c for c in study.rna_counts.columns if c != "gene"]
    meta = (study.samples.filter(pl.col("sample_id").is_in(cols))
            .select("sample_id", "subject_id", "day")
            .join(assigned.select("subject_id"), on="subject_id", how="inner")
            .with_columns(pl.lit("_").alias("feature")))
    post = window_values(meta, window=w).select("subject_id", "sample_id", "day")
    base = window_values(meta, window=WINDOWS["baseline"]).select(
        "subject_id", "sample_id", "day") if change_from_baseline else post.clear()
    return post, base


def _rna_matrix(study, assigned: pl.DataFrame, w: Window, *,  # noqa: ANN001
                change_from_baseline: bool, features: Sequence[str] | None
                ) -> tuple[list[str], list[str], np.ndarray, pl.DataFrame]:
    """(genes, subjects, log-CPM matrix genes x subjects, chosen samples): straight from the
    count matrix, without a long frame (the fast path for large cohorts)."""
    post, base = _rna_choice(study, assigned, w, change_from_baseline=change_from_baseline)
    if change_from_baseline:
        post = post.join(base.select("subject_id", pl.col("sample_id").alias("base_id")),
                         on="subject_id", how="inner")
    post = post.sort("subject_id")
    counts = study.rna_counts
    if features is not None:
        counts = counts.filter(pl.col("gene").is_in(list(features)))
    lib = study.rna_counts.select(pl.exclude("gene").sum()).row(0, named=True)

    def log_cpm(ids: list[str]) -> np.ndarray:
        m = counts.select(ids).to_numpy().astype(float) if ids else \
            np.zeros((counts.height, 0))
        size = np.array([max(float(lib[i]), 1.0) for i in ids])
        return np.log2(m / size * 1e6 + 1)

    x = log_cpm(post.get_column("sample_id").to_list())
    if change_from_baseline:
        x = x - log_cpm(post.get_column("base_id").to_list())
    return (counts.get_column("gene").to_list(), post.get_column("subject_id").to_list(), x,
            post)


# ---- statistics (analysis.stats) -------------------------------------------------------------
def compare_matrix(x: np.ndarray, *, in_a: np.ndarray, in_b: np.ndarray,
                   binary: np.ndarray | None = None, min_n: int = MIN_N,
                   seed: int = 0, exact_max_n: int = EXACT_MAX_N) -> dict[str, np.ndarray]:
    """Tests per row of `x` (features x patients, NaN = missing) between the patients flagged
    `in_a` and `in_b` (analysis.stats: Mann-Whitney, Fisher for presence rows, effect sizes).
    Returns arrays n_a, n_b, mean_a, mean_b, median_a, median_b, hedges_g, cliffs_delta,
    prop_diff, p_value, test, reason (one entry per feature)."""
    x = np.asarray(x, dtype=float)
    f = x.shape[0]
    in_a, in_b = np.asarray(in_a, bool), np.asarray(in_b, bool)
    binary = np.zeros(f, bool) if binary is None else np.asarray(binary, bool)
    eff = st.effect_sizes(x, in_a=in_a, in_b=in_b)
    na, nb = eff["n_a"], eff["n_b"]
    reason = np.full(f, "", dtype=object)
    too_few = (na < min_n) | (nb < min_n)
    reason[too_few] = f"fewer than {min_n} patients in a group: no test"
    _, p, test = st.mann_whitney_rows(x, in_a=in_a, in_b=in_b, rows=~binary & ~too_few,
                                      exact_max_n=exact_max_n, seed=seed)
    fisher = binary & ~too_few
    if fisher.any():
        p = np.where(fisher, st.fisher_rows(x, in_a=in_a, in_b=in_b, rows=fisher), p)
        test[fisher] = "Fisher exact"
    with np.errstate(all="ignore"):
        prop = np.where(binary, eff["mean_a"] - eff["mean_b"], np.nan)
    return {**eff, "prop_diff": prop, "p_value": p, "test": test, "reason": reason}


def _fmt_values(df: pl.DataFrame) -> pl.DataFrame:
    """feature, group -> "SAA-001 1.23 (d28); ..." (the values behind each row)."""
    return (df.sort("subject_id")
            .with_columns((pl.col("subject_id") + " " + pl.col("value").round_sig_figs(4)
                           .cast(pl.String) + " (d" + pl.col("day").cast(pl.String) + ")")
                          .alias("_v"))
            .group_by("feature", "group").agg(pl.col("_v").str.join("; ")))


_RESULT_SCHEMA = {
    "feature": pl.String, "n_group_a": pl.Int64, "n_group_b": pl.Int64, "effect": pl.Float64,
    "effect_measure": pl.String, "p_value": pl.Float64, "q_value": pl.Float64,
    "group_a": pl.String, "group_b": pl.String, "mean_a": pl.Float64, "mean_b": pl.Float64,
    "median_a": pl.Float64, "median_b": pl.Float64, "log2fc": pl.Float64,
    "hedges_g": pl.Float64, "cliffs_delta": pl.Float64, "test": pl.String, "reason": pl.String,
    "note": pl.String, "layer": pl.String, "window": pl.String, "window_rule": pl.String,
    "days": pl.String, "change_from_baseline": pl.Boolean, "values_a": pl.String,
    "values_b": pl.String, "defines_groups": pl.Boolean, "fdr_family": pl.String,
}


def defining_features(study, *, layer: str, group_column: str = "response_group",  # noqa: ANN001
                      groups: Any = None, rules: Rules | None = None) -> frozenset[str]:
    """The features of `layer` that define the groups being compared: with the response groups
    (response_group or best_response, from the study's responses), the blood analytes of the
    response and severity rules (`group_defining_analytes`, default ANC, PLT, HGB, RETIC).
    Other groupings (a patients column, a custom split) are not made from counts: none."""
    rules = rules if rules is not None else rules_for(study)
    if layer != "measurements" or group_column not in ("response_group", "best_response"):
        return frozenset()
    if groups is not None and not isinstance(groups, pl.DataFrame):
        return frozenset()      # a custom split of patients
    return frozenset(str(a) for a in rules.group_defining_analytes)


def compare(study, *, layer: str, window: str | Window,  # noqa: ANN001 - Study
            groups: Any = None, group_column: str = "response_group",
            group_a: str | None = None, group_b: str | None = None,
            change_from_baseline: bool = False, panel: str | None = None,
            features: Sequence[str] | None = None, subjects: Sequence[str] | None = None,
            effect_measure: str = "hedges_g", method: str = "rank",
            min_n: int = MIN_N, min_count: int = 10, rules: Rules | None = None
            ) -> pl.DataFrame:
    """Group A vs group B for every feature of `layer` in `window`, sorted by p.

    Columns: feature, n_group_a, n_group_b, effect, effect_measure, p_value, q_value, then
    group_a, group_b, mean_a, mean_b, median_a, median_b, log2fc, hedges_g, cliffs_delta, test,
    reason (why no test), note, layer, window, window_rule, days (range of the days used),
    change_from_baseline, values_a, values_b (every patient's value and day; up to 40
    patients), defines_groups, fdr_family (which hypotheses the q-value is corrected over).

    Features that define the groups (`defining_features`) are tested and shown, marked
    "defines the groups", and left out of the FDR family (q null) unless the rule setting
    `defining_in_fdr` is on. With `fdr_across_windows`, q is Benjamini-Hochberg across every
    named window (baseline, D14, D28, M3, M6, M12, and this one) at once (`compare_windows`).
    DESeq2 results keep DESeq2's own adjusted p within the window.

    `effect_measure`: "hedges_g" or "cliffs_delta" (presence features always use the difference
    in proportions). `method`: "rank" (Mann-Whitney, every layer) or "deseq2" (rna only: raw
    counts, genes with at least `min_count` reads in as many samples as the smaller group).
    """
    rules = rules if rules is not None else rules_for(study)
    kw = {"layer": layer, "groups": groups, "group_column": group_column, "group_a": group_a,
          "group_b": group_b, "change_from_baseline": change_from_baseline, "panel": panel,
          "features": features, "subjects": subjects, "effect_measure": effect_measure,
          "method": method, "min_n": min_n, "min_count": min_count, "rules": rules}
    w = parse_window(window)
    if rules.fdr_across_windows and method == "rank":
        names = [n for n in WINDOWS if not (change_from_baseline and n == "baseline")]
        wins: list[str | Window] = [*names] if w.name in WINDOWS else [*names, w]
        both = compare_windows(study, windows=wins, **{k: v for k, v in kw.items()})
        return _sorted(both.filter(pl.col("window") == w.name))
    return _compare_window(study, window=w, **kw)


def compare_windows(study, *, windows: Sequence[str | Window] = tuple(WINDOWS),  # noqa: ANN001
                    rules: Rules | None = None, **kwargs: Any) -> pl.DataFrame:
    """`compare` in each window, one frame (column `window` tells them apart). With the rule
    setting `fdr_across_windows` the q-values are Benjamini-Hochberg over every test of every
    window (group-defining features still out of the family unless `defining_in_fdr`); else
    each window is its own family."""
    rules = rules if rules is not None else rules_for(study)
    frames = []
    for name in windows:
        w = parse_window(name)
        if kwargs.get("change_from_baseline") and w.name == "baseline":
            continue
        frames.append(_compare_window(study, window=w, rules=rules, **kwargs))
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame(schema=_RESULT_SCHEMA)
    out = pl.concat(frames)
    if not rules.fdr_across_windows or kwargs.get("method", "rank") != "rank":
        return out
    family = out.get_column("p_value").is_not_null() & \
        (~out.get_column("defines_groups") | rules.defining_in_fdr)
    q = st.bh(out.get_column("p_value").fill_null(np.nan).to_numpy(),
              family=family.to_numpy())
    n_fam = int(family.sum())
    names = ", ".join(f.get_column("window")[0] for f in frames)
    label = f"BH across {len(frames)} windows ({names}): {n_fam} tests"
    return out.with_columns(
        q_value=pl.Series([None if not np.isfinite(v) else float(v) for v in q],
                          dtype=pl.Float64),
        fdr_family=pl.when(pl.Series(family)).then(pl.lit(label))
        .otherwise(pl.col("fdr_family")))


def _compare_window(study, *, layer: str, window: Window,  # noqa: ANN001 - Study
                    groups: Any, group_column: str, group_a: str | None, group_b: str | None,
                    change_from_baseline: bool, panel: str | None,
                    features: Sequence[str] | None, subjects: Sequence[str] | None,
                    effect_measure: str, method: str, min_n: int, min_count: int,
                    rules: Rules) -> pl.DataFrame:
    if effect_measure not in ("hedges_g", "cliffs_delta"):
        raise ValueError("effect_measure must be 'hedges_g' or 'cliffs_delta'")
    w = window
    assigned, la, lb = assign_groups(study, groups=groups, group_column=group_column,
                                     group_a=group_a, group_b=group_b, subjects=subjects)
    if method == "deseq2":
        if layer != "rna":
            raise ValueError("method 'deseq2' is for the rna layer only")
        res = _deseq2(study, w, assigned, la, lb, change_from_baseline=change_from_baseline,
                      features=features, min_count=min_count, min_n=max(min_n, 2))
        return res.with_columns(
            defines_groups=pl.lit(False),
            fdr_family=pl.when(pl.col("q_value").is_not_null())
            .then(pl.lit(f"DESeq2 adjusted p within {w.name}")).otherwise(None))
    if method != "rank":
        raise ValueError("method must be 'rank' or 'deseq2'")
    group_of = dict(assigned.iter_rows())
    if layer == "rna":
        feats, subj, x, chosen = _rna_matrix(study, assigned, w, features=features,
                                             change_from_baseline=change_from_baseline)
        if not subj or not feats:
            return pl.DataFrame(schema=_RESULT_SCHEMA)
        days_used = chosen.get_column("day").to_numpy()
        lo, hi = int(days_used.min()), int(days_used.max())
        days = pl.DataFrame({"feature": feats, "days": f"day {lo}" if lo == hi else
                             f"days {lo} to {hi}"})
        picked = pl.DataFrame({
            "feature": np.repeat(feats, len(subj)), "subject_id": np.tile(subj, len(feats)),
            "group": np.tile([group_of[s] for s in subj], len(feats)),
            "value": x.ravel(), "day": np.tile(days_used, len(feats))}) \
            if len(subj) <= _VALUES_MAX_PATIENTS else None
    else:
        picked = _picked(study, layer=layer, window=w, assigned=assigned, panel=panel,
                         change_from_baseline=change_from_baseline, features=features)
        if picked.height == 0:
            return pl.DataFrame(schema=_RESULT_SCHEMA)
        feats, subj, x = _matrix(picked)
        days = (picked.group_by("feature").agg(pl.col("day").min().alias("lo"),
                                               pl.col("day").max().alias("hi"))
                .select("feature", pl.when(pl.col("lo") == pl.col("hi"))
                        .then(pl.format("day {}", pl.col("lo")))
                        .otherwise(pl.format("days {} to {}", pl.col("lo"), pl.col("hi")))
                        .alias("days")))
    in_a = np.array([group_of.get(s) == la for s in subj])
    in_b = np.array([group_of.get(s) == lb for s in subj])
    binary = np.array([f.endswith(_PRESENT) for f in feats]) & (not change_from_baseline)
    res = compare_matrix(x, in_a=in_a, in_b=in_b, binary=binary, min_n=min_n,
                         exact_max_n=rules.exact_max_n)
    defining = defining_features(study, layer=layer, group_column=group_column, groups=groups,
                                 rules=rules)
    defines = np.array([f in defining for f in feats], dtype=bool)
    family = np.isfinite(res["p_value"]) & (~defines | rules.defining_in_fdr)
    q = st.bh(res["p_value"], family=family)
    fam_label = f"BH within {w.name}: {int(family.sum())} tests"
    with np.errstate(all="ignore"):
        if change_from_baseline:
            l2 = np.full(len(feats), np.nan)
        elif layer in _LOG2_LAYERS:
            l2 = res["mean_a"] - res["mean_b"]
        else:
            pos = np.nanmin(np.where(np.isfinite(x), x, np.inf), axis=1) > 0
            l2 = np.where(pos, np.log2(res["mean_a"] / res["mean_b"]), np.nan)
    effect = np.where(binary, res["prop_diff"], res[effect_measure])
    if effect_measure == "hedges_g":
        # an undefined g is said, not left as a blank a reader takes for "no effect"
        note = np.where(binary, "", res["hedges_g_note"])
        res["reason"] = np.array([r if r and (not n or "fewer than" in n)
                                  else f"{r}; {n}" if r else n
                                  for r, n in zip(res["reason"], note, strict=True)],
                                 dtype=object)
    measure = np.where(binary, "difference in proportion",
                       "Hedges' g" if effect_measure == "hedges_g" else "Cliff's delta")
    # the values behind each row, as text, where a person can read them (small cohorts)
    vals = _fmt_values(picked) if picked is not None and len(subj) <= _VALUES_MAX_PATIENTS \
        else pl.DataFrame(schema={"feature": pl.String, "group": pl.String, "_v": pl.String})
    rule = w.describe() + ("; change from the baseline value" if change_from_baseline else "")

    def nan_to_none(a: np.ndarray) -> list:
        return [None if not np.isfinite(v) else float(v) for v in a]

    out = pl.DataFrame({
        "feature": feats, "n_group_a": res["n_a"].astype(np.int64),
        "n_group_b": res["n_b"].astype(np.int64), "effect": nan_to_none(effect),
        "effect_measure": measure.tolist(), "p_value": nan_to_none(res["p_value"]),
        "q_value": nan_to_none(q), "group_a": la, "group_b": lb,
        "mean_a": nan_to_none(res["mean_a"]), "mean_b": nan_to_none(res["mean_b"]),
        "median_a": nan_to_none(res["median_a"]), "median_b": nan_to_none(res["median_b"]),
        "log2fc": nan_to_none(l2), "hedges_g": nan_to_none(res["hedges_g"]),
        "cliffs_delta": nan_to_none(res["cliffs_delta"]),
        "test": [t or None for t in res["test"]], "reason": [r or None for r in res["reason"]],
        "note": _notes(_power_note(res["n_a"], res["n_b"], min_n), binary, defines,
                       in_fdr=rules.defining_in_fdr),
        "layer": layer, "window": w.name, "window_rule": rule,
        "change_from_baseline": change_from_baseline, "defines_groups": defines.tolist(),
        "fdr_family": [fam_label if f else None for f in family],
    }, strict=False)
    out = (out.join(days, on="feature", how="left")
           .join(vals.filter(pl.col("group") == la).select("feature", pl.col("_v")
                                                           .alias("values_a")),
                 on="feature", how="left")
           .join(vals.filter(pl.col("group") == lb).select("feature", pl.col("_v")
                                                           .alias("values_b")),
                 on="feature", how="left"))
    return _sorted(out.select(list(_RESULT_SCHEMA)).cast(_RESULT_SCHEMA))


def _matrix(picked: pl.DataFrame) -> tuple[list[str], list[str], np.ndarray]:
    """(features, subjects, features x subjects matrix with NaN where a value is missing)."""
    feats = picked.get_column("feature").unique().sort().to_list()
    subj = picked.get_column("subject_id").unique().sort().to_list()
    codes = picked.select(pl.col("feature").cast(pl.Enum(feats)).to_physical().alias("f"),
                          pl.col("subject_id").cast(pl.Enum(subj)).to_physical().alias("s"),
                          pl.col("value"))
    x = np.full((len(feats), len(subj)), np.nan)
    x[codes.get_column("f").to_numpy(), codes.get_column("s").to_numpy()] = \
        codes.get_column("value").to_numpy()
    return feats, subj, x


def _power_note(na: np.ndarray, nb: np.ndarray, min_n: int) -> list[str | None]:
    """A note where even perfectly separated groups could not reach p < 0.05."""
    out: list[str | None] = []
    for a, b in zip(na, nb, strict=True):
        smallest = st.smallest_p(int(a), int(b)) if a >= min_n and b >= min_n else 0.0
        out.append(f"n = {a} vs {b}: the smallest possible two-sided p is {smallest:.2g}"
                   if smallest > 0.05 else None)
    return out


def _notes(power: list[str | None], binary: np.ndarray, defines: np.ndarray, *,
           in_fdr: bool) -> list[str | None]:
    out = []
    for n, b, d in zip(power, binary, defines, strict=True):
        parts = []
        if d:
            parts.append(DEFINES_GROUPS + ("" if in_fdr else ": not in the FDR family"))
        if n and not b:
            parts.append(n)
        out.append("; ".join(parts) or None)
    return out


def _sorted(out: pl.DataFrame) -> pl.DataFrame:
    return (out.with_columns(pl.col("effect").abs().alias("_abs"))
            .sort(["p_value", "_abs", "feature"], descending=[False, True, False],
                  nulls_last=True).drop("_abs"))


# ---- pydeseq2 --------------------------------------------------------------------------------
def _deseq2(study, w: Window, assigned: pl.DataFrame, la: str, lb: str, *,  # noqa: ANN001
            change_from_baseline: bool, features: Sequence[str] | None,
            min_count: int, min_n: int) -> pl.DataFrame:
    import pandas as pd
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    counts = study.rna_counts
    sample_cols = [c for c in counts.columns if c != "gene"]
    meta = study.samples.filter(pl.col("sample_id").is_in(sample_cols)) \
        .select("sample_id", "subject_id", "day").join(assigned, on="subject_id", how="inner")
    long = meta.with_columns(pl.lit("rna").alias("feature"), pl.lit(0.0).alias("value"))
    post = window_values(long, window=w)
    if change_from_baseline:
        if w.name == "baseline":
            raise ValueError("change from baseline needs a window after baseline (e.g. D28)")
        base = window_values(long, window=WINDOWS["baseline"]).select(
            "subject_id", pl.col("sample_id").alias("base_id"))
        post = post.join(base, on="subject_id", how="inner")
    post = post.sort("group", "subject_id", descending=[False, False])
    n_a = post.filter(pl.col("group") == la).height
    n_b = post.filter(pl.col("group") == lb).height
    rule = w.describe() + ("; change from baseline, patients paired" if change_from_baseline
                           else "")
    base_cols = {"n_group_a": n_a, "n_group_b": n_b, "group_a": la, "group_b": lb,
                 "layer": "rna", "window": w.name, "window_rule": rule,
                 "change_from_baseline": change_from_baseline}
    genes = counts.get_column("gene").to_list()
    if features is not None:
        keep = set(features)
        genes = [g for g in genes if g in keep]
    if n_a < min_n or n_b < min_n:
        reason = f"fewer than {min_n} patients in a group (n = {n_a} vs {n_b}): no test"
        frame = pl.DataFrame({"feature": genes}).with_columns(
            **{k: pl.lit(v) for k, v in base_cols.items()}, reason=pl.lit(reason),
            effect_measure=pl.lit("log2 fold change (DESeq2)"))
        return _sorted(_fill(frame))
    subj = post.get_column("subject_id").to_list()
    grp = ["A" if g == la else "B" for g in post.get_column("group").to_list()]
    ids = post.get_column("sample_id").to_list()
    if change_from_baseline:
        ids = ids + post.get_column("base_id").to_list()
    mat = counts.filter(pl.col("gene").is_in(genes)).select("gene", *ids)
    x = mat.select(ids).to_numpy().T.astype(np.int64)
    keep = (x >= min_count).sum(axis=0) >= min(n_a, n_b)
    gene_names = np.array(mat.get_column("gene").to_list())[keep]
    cdf = pd.DataFrame(x[:, keep], index=[f"s{i}" for i in range(len(ids))],
                       columns=gene_names)
    if change_from_baseline:
        design, contrast, metadata = _paired_design(subj, grp, cdf.index)
    else:
        metadata = pd.DataFrame({"group": grp}, index=cdf.index)
        design, contrast = "~group", ["group", "A", "B"]
    inference = DefaultInference(n_cpus=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dds = DeseqDataSet(counts=cdf, metadata=metadata, design=design, quiet=True,
                           inference=inference)
        dds.deseq2()
        ds = DeseqStats(dds, contrast=contrast, quiet=True, inference=inference)
        ds.summary()
    res = ds.results_df
    normed = np.asarray(dds.layers["normed_counts"])
    a_rows = [i for i, g in enumerate(grp) if g == "A"]
    b_rows = [i for i, g in enumerate(grp) if g == "B"]
    resid_df = len(ids) - (n_a + n_b + 2 if change_from_baseline else 2)
    note = (f"underpowered: n = {n_a} vs {n_b}, {resid_df} residual degrees of freedom; "
            "dispersions lean on the trend across genes, treat p-values as exploratory") \
        if min(n_a, n_b) < 4 or resid_df < 6 else None
    frame = pl.DataFrame({
        "feature": list(res.index), "effect": res["log2FoldChange"].to_numpy(float),
        "p_value": res["pvalue"].to_numpy(float), "q_value": res["padj"].to_numpy(float),
        "mean_a": normed[a_rows].mean(axis=0), "mean_b": normed[b_rows].mean(axis=0),
        "median_a": np.median(normed[a_rows], axis=0),
        "median_b": np.median(normed[b_rows], axis=0),
        "log2fc": res["log2FoldChange"].to_numpy(float),
    }).fill_nan(None).with_columns(
        **{k: pl.lit(v) for k, v in base_cols.items()},
        effect_measure=pl.lit("log2 fold change (DESeq2)" + (" of the change from baseline"
                                                             if change_from_baseline else "")),
        test=pl.lit("DESeq2 Wald"), note=pl.lit(note),
        days=pl.lit(f"days {post['day'].min()} to {post['day'].max()}"))
    dropped = [g for g in genes if g not in set(gene_names)]
    if dropped:
        low = pl.DataFrame({"feature": dropped}).with_columns(
            **{k: pl.lit(v) for k, v in base_cols.items()},
            reason=pl.lit(f"fewer than {min(n_a, n_b)} samples with >= {min_count} reads"),
            effect_measure=pl.lit("log2 fold change (DESeq2)"))
        frame = pl.concat([_fill(frame), _fill(low)], how="vertical_relaxed")
    return _sorted(_fill(frame))


def _paired_design(subjects: list[str], grp: list[str], index: Any) -> tuple[Any, Any, Any]:
    """Design matrix: intercept, group B, one column per patient (nested in group, first of
    each group dropped), post-baseline time within A and within B. Contrast: change in A minus
    change in B."""
    import pandas as pd

    n = len(subjects)
    time = [1.0] * n + [0.0] * n
    subj2, grp2 = subjects + subjects, grp + grp
    cols: dict[str, list[float]] = {"Intercept": [1.0] * (2 * n),
                                    "groupB": [1.0 if g == "B" else 0.0 for g in grp2]}
    for g in ("A", "B"):
        members = [s for s, gg in zip(subjects, grp, strict=True) if gg == g]
        for s in members[1:]:
            cols[f"patient_{s}"] = [1.0 if x == s else 0.0 for x in subj2]
    cols["timeA"] = [t if g == "A" else 0.0 for t, g in zip(time, grp2, strict=True)]
    cols["timeB"] = [t if g == "B" else 0.0 for t, g in zip(time, grp2, strict=True)]
    design = pd.DataFrame(cols, index=index)
    contrast = np.array([1.0 if c == "timeA" else -1.0 if c == "timeB" else 0.0
                         for c in design.columns])
    metadata = pd.DataFrame({"group": grp2, "subject": subj2,
                             "time": ["post" if t else "baseline" for t in time]}, index=index)
    return design, contrast, metadata


def _fill(frame: pl.DataFrame) -> pl.DataFrame:
    missing = [pl.lit(None, t).alias(c) for c, t in _RESULT_SCHEMA.items()
               if c not in frame.columns]
    return frame.with_columns(missing).select(list(_RESULT_SCHEMA)).cast(_RESULT_SCHEMA)


# ---- drill-down ------------------------------------------------------------------------------
def feature_course(study, *, layer: str, feature: str,  # noqa: ANN001 - Study
                   groups: Any = None, group_column: str = "response_group",
                   group_a: str | None = None, group_b: str | None = None,
                   panel: str | None = None, subjects: Sequence[str] | None = None
                   ) -> pl.DataFrame:
    """One feature at every sample of every patient of the two groups: subject_id, group, day,
    timepoint, sample_id, value (for a trajectory plot)."""
    assigned, _, _ = assign_groups(study, groups=groups, group_column=group_column,
                                   group_a=group_a, group_b=group_b, subjects=subjects)
    values = layer_values(study, layer=layer, panel=panel, features=[feature])
    return (values.join(assigned, on="subject_id", how="inner")
            .select("subject_id", "group", "day", "timepoint", "sample_id", "feature", "value")
            .sort("subject_id", "day"))


def feature_windows(study, *, layer: str, feature: str,  # noqa: ANN001 - Study
                    windows: Sequence[str] = tuple(WINDOWS), groups: Any = None,
                    group_column: str = "response_group", group_a: str | None = None,
                    group_b: str | None = None, change_from_baseline: bool = False,
                    panel: str | None = None, effect_measure: str = "hedges_g",
                    min_n: int = MIN_N, subjects: Sequence[str] | None = None,
                    rules: Rules | None = None) -> pl.DataFrame:
    """The test of one feature in each window: window, centre, lo, hi + the compare columns.
    One feature per window: q equals p, unless the rule setting `fdr_across_windows` makes the
    windows one family (then q is BH over this feature's windows)."""
    rules = rules if rules is not None else rules_for(study)
    schema = {**_RESULT_SCHEMA, "centre": pl.Float64, "lo": pl.Int64, "hi": pl.Int64}
    wins = [parse_window(n) for n in windows]
    res = compare_windows(study, windows=wins, rules=rules, layer=layer, groups=groups,
                          group_column=group_column, group_a=group_a, group_b=group_b,
                          change_from_baseline=change_from_baseline, panel=panel,
                          features=[feature], effect_measure=effect_measure, method="rank",
                          min_n=min_n, min_count=10, subjects=subjects)
    if res.height == 0:
        return pl.DataFrame(schema=schema)
    meta = pl.DataFrame({"window": [w.name for w in wins],
                         "centre": [float(w.centre) for w in wins],
                         "lo": [w.lo for w in wins], "hi": [w.hi for w in wins]},
                        schema={"window": pl.String, "centre": pl.Float64, "lo": pl.Int64,
                                "hi": pl.Int64})
    order = {w.name: i for i, w in enumerate(wins)}
    return (res.filter(pl.col("feature") == feature).join(meta, on="window", how="left")
            .sort(pl.col("window").replace_strict(order, default=len(order)))
            .select(list(schema)).cast(schema))


@derived_table("comparison", "Responders vs non-responders: one test per feature of a layer "
               "in a day window (n, effect, exact/permutation p, BH-FDR)",
               options={"layer": Option(str, "proteomics", "feature layer", LAYERS),
                        "window": Option(str, "D28", "baseline, D14, D28, M3, M6, M12 or "
                                                     "start:end (days)"),
                        "change_from_baseline": Option(bool, False,
                                                       "compare the change from baseline")})
def comparison_table(study, *, layer: str = "proteomics", window: str = "D28",  # noqa: ANN001
                     change_from_baseline: bool = False, rules: Rules | None = None
                     ) -> pl.DataFrame:
    """`compare` with the default groups (responders vs non-responders); the FDR family
    follows the rule settings defining_in_fdr and fdr_across_windows."""
    return compare(study, layer=layer, window=window, change_from_baseline=change_from_baseline,
                   rules=rules)
