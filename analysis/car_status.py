"""CAR status of each cell from the CAR transcript (or an ADT / flow CAR channel), with a cut
taken from the data's own distribution.

The CAR feature is the first single-cell feature whose name matches a pattern of the
`car_feature` rule setting ("CAR", "*-CAR", "*scFv*" ...); without one, a matching feature of
another modality of a MuData file (a CITE-seq "prot"/"adt" modality: the ADT CAR channel), else
the first numeric obs column matching (a flow or ADT CAR channel copied into obs). Its raw
counts per cell are the `car_counts`.

The cut (rule `car_threshold_method`):
- "mixture" (default): a two-component Gaussian mixture (scikit-learn `GaussianMixture`, seed
  0, at most 200,000 cells drawn from a fixed seed) on log1p(car_counts); the cut is where a
  cell's posterior of belonging to the upper component reaches 0.5, between the two means (the
  way CITE-seq antibody and hashtag counts are split into negative and positive; Stoeckius et
  al., Genome Biol 2018). A cell is CAR+ when log1p(counts) is at or above the cut, i.e.
  counts > expm1(cut) (shown as the threshold on the counts scale).
  Fallback, stated wherever the cut is shown: when the mixture is degenerate (fewer than 20
  cells with any CAR count, fewer than 3 distinct values, the two means closer than 0.5 on the
  log1p scale, or a component holding under 0.1 % of the cells), any CAR count makes a cell
  CAR+ (threshold 0).
- "fixed": counts above `car_threshold` (what the page saves after the cut was adjusted).

Comparisons built on it are patient-level (DESIGN.md section 3): CAR+ vs CAR- T cells within a
day window as one mean per patient and group, tested with the paired signed-rank test of
analysis/stats.py; CD7+ vs CD7- endogenous (CAR-) T and NK cells as their own groups
(`cd7_groups`, CD7+ = expression above the `cd7_threshold` setting).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from analysis.registry import derived_table
from analysis.rules import DEFAULT_RULES, Rules, rules_for
from analysis.stats import bh, signed_rank_rows
from analysis.vocab import DayWindow, lineage_expr, lineage_table

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CarCut", "find_car_feature", "mixture_cut", "car_cut", "call_car",
           "car_status_table", "car_histogram", "car_cells", "car_values",
           "study_car_cut", "car_marker_comparison",
           "car_phenotype", "cd7_groups", "CD7_GROUPS", "MARKER_GENES"]

MIN_POSITIVE = 20          # fewer cells with a CAR count: the mixture is not fitted
MIN_SEPARATION = 0.5       # log1p units between the two component means
MIN_WEIGHT = 0.001
MAX_FIT_CELLS = 200_000
CD7_GROUPS = ("CAR+ T", "CD7+ T", "CD7- T", "CD7+ NK", "CD7- NK")
MARKER_GENES = ("CD4", "CD8A", "CD8B", "GZMB", "GZMK", "PRF1", "NKG7", "IFNG", "MKI67",
                "TOP2A", "PDCD1", "HAVCR2", "LAG3", "TOX", "TCF7", "IL7R", "SELL", "CCR7",
                "FOXP3", "CD7")


@dataclass(frozen=True)
class CarCut:
    """Where cells are cut: CAR+ when car_counts > `threshold`. `method` is "mixture",
    "fallback" or "fixed"; `log_cut` the cut on the log1p scale; `note` says why."""

    feature: str | None
    source: str                   # "counts", "obs" or "none"
    threshold: float
    method: str
    log_cut: float
    note: str
    means: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()

    def describe(self) -> str:
        if self.feature is None:
            return self.note
        how = {"mixture": "two-component Gaussian mixture on log1p(counts)",
               "fallback": "any CAR count (the mixture was degenerate)",
               "fixed": "fixed threshold (rule car_threshold)"}[self.method]
        return (f"CAR feature {self.feature!r} ({self.source}); CAR+ = counts > "
                f"{self.threshold:.3g}, {how}. {self.note}").strip()


def find_car_feature(names: list[str], *, pattern: str | tuple[str, ...]) -> str | None:
    """The first name matching one of the patterns (case-blind shell patterns, * = anything;
    every name is tried against the first pattern, then the second ...)."""
    pats = (pattern,) if isinstance(pattern, str) else tuple(pattern)
    for pat in pats:
        rx = re.compile(fnmatch.translate(pat.lower()))
        hit = next((n for n in names if rx.fullmatch(str(n).lower())), None)
        if hit is not None:
            return hit
    return None


def mixture_cut(counts: np.ndarray, *, seed: int = 0) -> tuple[float, str, str, tuple, tuple]:
    """(log1p cut, method, note, means, weights) of a two-component Gaussian mixture on
    log1p(counts); the fallback (cut 0 = any count) when degenerate (module docstring)."""
    from sklearn.mixture import GaussianMixture

    x = np.log1p(np.clip(np.asarray(counts, dtype=float), 0, None))
    x = x[np.isfinite(x)]
    n_pos = int((x > 0).sum())
    fallback = 0.0
    if n_pos < MIN_POSITIVE or len(np.unique(x)) < 3:
        return fallback, "fallback", (f"only {n_pos} cells carry a CAR count (fewer than "
                                      f"{MIN_POSITIVE}): no mixture fitted"), (), ()
    if len(x) > MAX_FIT_CELLS:
        x = np.random.default_rng(seed).choice(x, MAX_FIT_CELLS, replace=False)
    gm = GaussianMixture(n_components=2, random_state=seed, reg_covar=1e-4).fit(x[:, None])
    means = gm.means_.ravel()
    order = np.argsort(means)
    lo, hi = means[order]
    weights = gm.weights_.ravel()[order]
    got = (tuple(float(m) for m in (lo, hi)), tuple(float(w) for w in weights))
    if hi - lo < MIN_SEPARATION or weights.min() < MIN_WEIGHT:
        return fallback, "fallback", (f"the mixture is degenerate (means {lo:.2f} and "
                                      f"{hi:.2f} on log1p, weights {weights[0]:.3f} / "
                                      f"{weights[1]:.3f})"), *got
    grid = np.linspace(lo, hi, 2001)
    upper = gm.predict_proba(grid[:, None])[:, order[1]]
    above = np.flatnonzero(upper >= 0.5)
    if above.size == 0:
        return fallback, "fallback", "the mixture components do not cross", *got
    cut = float(grid[above[0]])
    return cut, "mixture", (f"components at log1p {lo:.2f} and {hi:.2f} (weights "
                            f"{weights[0]:.2f} / {weights[1]:.2f})"), *got


def car_cut(values: np.ndarray | None, *, feature: str | None, source: str,
            rules: Rules | None = None) -> CarCut:
    """The cut of `values` (CAR counts per cell) by the study's rule settings."""
    rules = rules if rules is not None else DEFAULT_RULES
    if values is None or feature is None:
        return CarCut(None, "none", 0.0, "fallback", 0.0,
                      "no single-cell feature or obs column matches car_feature ("
                      + ", ".join(rules.car_feature) + "); name the CAR transcript in "
                      "study.toml [rules] car_feature")
    if rules.car_threshold_method == "fixed":
        t = float(rules.car_threshold)
        return CarCut(feature, source, t, "fixed", float(np.log1p(max(t, 0.0))),
                      "set in study.toml [rules] car_threshold")
    cut, method, note, means, weights = mixture_cut(values)
    return CarCut(feature, source, float(np.expm1(cut)) if cut > 0 else 0.0, method, cut,
                  note, means, weights)


def call_car(values: np.ndarray, cut: CarCut) -> np.ndarray:
    """Boolean CAR+ per cell: counts above the cut's threshold (for the mixture: log1p at or
    above the cut)."""
    v = np.asarray(values, dtype=float)
    if cut.method == "mixture":
        return np.log1p(np.clip(v, 0, None)) >= cut.log_cut - 1e-12
    return v > cut.threshold


# ---- the study ---------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _car_values(study: Study, pattern: tuple[str, ...]) -> tuple[np.ndarray | None, str | None, str]:
    store = study.single_cell
    if store is None:
        return None, None, "none"
    if store.resolved.counts is not None:
        feature = find_car_feature(list(store.counts_gene_names), pattern=pattern)
        if feature is not None:
            return store.counts_column(feature), feature, "counts"
    for mod in store.other_modalities:          # a CITE-seq / ADT modality of a MuData file
        feature = find_car_feature(store.modality_features(mod), pattern=pattern)
        if feature is not None:
            return store.modality_column(mod, feature), f"{mod}:{feature}", "modality"
    named = [c for c in store.obs_columns if find_car_feature([c], pattern=pattern)]
    col = next((c for c in named if store.obs_column(c).dtype.is_numeric()), None)
    if col is not None:
        return store.obs_column(col).cast(pl.Float64).fill_null(0).to_numpy(), col, "obs"
    if store.resolved.counts is None and store.resolved.lognorm is not None:
        feature = find_car_feature(list(store.gene_names), pattern=pattern)
        if feature is not None:   # no counts matrix: the log-normalised values, back-transformed
            from analysis.embedding import gene_vector

            return np.expm1(gene_vector(study, gene=feature)), feature, "lognorm"
    return None, None, "none"


def car_values(study: Study, *, rules: Rules | None = None
               ) -> tuple[np.ndarray | None, str | None, str]:
    """(CAR counts per cell or None, feature name, source "counts", "modality" (another MuData
    modality, feature named "<modality>:<feature>"), "obs", "lognorm" or "none")."""
    rules = rules if rules is not None else rules_for(study)
    return _car_values(study, rules.car_feature)


def study_car_cut(study: Study, *, rules: Rules | None = None) -> CarCut:
    rules = rules if rules is not None else rules_for(study)
    values, feature, source = car_values(study, rules=rules)
    return car_cut(values, feature=feature, source=source, rules=rules)


def car_cells(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """The cell table (analysis.embedding.cell_table) with car_counts and car_positive called
    by the cut (the file's own car_positive column is replaced; kept as car_positive_file)."""
    from analysis.embedding import cell_table

    rules = rules if rules is not None else rules_for(study)
    cells = cell_table(study)
    values, feature, source = car_values(study, rules=rules)
    if values is None:
        return cells.with_columns(pl.lit(None, dtype=pl.Float64).alias("car_counts"))
    cut = car_cut(values, feature=feature, source=source, rules=rules)
    return cells.rename({"car_positive": "car_positive_file"}).with_columns(
        pl.Series("car_counts", values), pl.Series("car_positive", call_car(values, cut)))


@derived_table("car_status", "CAR status per cell: CAR transcript counts and the call against "
               "a cut from the data (two-component mixture) or the study's fixed threshold")
def car_status_table(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """cell_id, sample_id, subject_id, day, cell_type, car_counts, car_positive, threshold,
    method, feature (one row per cell; empty without a single-cell file or a CAR feature)."""
    schema = {"cell_id": pl.String, "sample_id": pl.String, "subject_id": pl.String,
              "day": pl.Int64, "cell_type": pl.String, "car_counts": pl.Float64,
              "car_positive": pl.Boolean, "threshold": pl.Float64, "method": pl.String,
              "feature": pl.String}
    if getattr(study, "single_cell", None) is None:
        return pl.DataFrame(schema=schema)
    rules = rules if rules is not None else rules_for(study)
    cut = study_car_cut(study, rules=rules)
    if cut.feature is None:
        return pl.DataFrame(schema=schema)
    cells = car_cells(study, rules=rules).with_columns(
        pl.Series("cell_id", list(study.single_cell.cell_names)),
        pl.lit(cut.threshold).alias("threshold"), pl.lit(cut.method).alias("method"),
        pl.lit(cut.feature).alias("feature"))
    return cells.select(list(schema)).cast(schema)


def car_histogram(values: np.ndarray, *, bins: int = 60) -> pl.DataFrame:
    """Binned log1p(CAR counts): lo, hi, n_cells (the histogram drawn with the cut; binned
    here so a million cells cost one small frame)."""
    x = np.log1p(np.clip(np.asarray(values, dtype=float), 0, None))
    top = float(x.max()) if x.size else 1.0
    edges = np.linspace(0, max(top, 1e-6) * 1.0001, bins + 1)
    n, _ = np.histogram(x, bins=edges)
    return pl.DataFrame({"lo": edges[:-1], "hi": edges[1:], "n_cells": n.astype(np.int64)})


# ---- CAR+ vs CAR- and CD7 groups ---------------------------------------------------------------
def _lineages(cells: pl.DataFrame, rules: Rules | None) -> pl.Expr:
    table = lineage_table((rules or DEFAULT_RULES).cell_lineages)
    return lineage_expr(cells.get_column("cell_type").unique().to_list(), table=table)


def cd7_groups(cells: pl.DataFrame, *, cd7: np.ndarray, rules: Rules | None = None
               ) -> pl.DataFrame:
    """`cells` with `cd7_group`: "CAR+ T" (T lineage, CAR+), "CD7+ T" / "CD7- T" (endogenous:
    T lineage, CAR-), "CD7+ NK" / "CD7- NK", null for other cells. CD7+ = expression above
    the `cd7_threshold` setting (analysis/rules.py)."""
    if cells.height != len(cd7):
        raise ValueError(f"cd7 has {len(cd7)} values for {cells.height} cells")
    rules = rules if rules is not None else DEFAULT_RULES
    pos = pl.col("_cd7") > rules.cd7_threshold
    df = cells.with_columns(pl.Series("_cd7", np.asarray(cd7, dtype=float)),
                            _lineages(cells, rules).alias("_lin"))
    group = (pl.when((pl.col("_lin") == "T") & pl.col("car_positive")).then(pl.lit("CAR+ T"))
             .when((pl.col("_lin") == "T") & pos).then(pl.lit("CD7+ T"))
             .when(pl.col("_lin") == "T").then(pl.lit("CD7- T"))
             .when((pl.col("_lin") == "NK") & pos).then(pl.lit("CD7+ NK"))
             .when(pl.col("_lin") == "NK").then(pl.lit("CD7- NK")))
    return df.with_columns(group.alias("cd7_group")).drop("_cd7", "_lin")


def car_phenotype(cells: pl.DataFrame, *, days: DayWindow,
                  rules: Rules | None = None) -> pl.DataFrame:
    """Cell-type composition of CAR+ and of CAR- T cells per patient within the window `days`:
    subject_id, car ("CAR+" / "CAR-"), cell_type, n_cells, fraction (of that patient's CAR+ or
    CAR- T cells in the window)."""
    df = cells.filter(_in_window(days)).with_columns(_lineages(cells, rules).alias("_lin"))
    df = df.filter(pl.col("_lin") == "T").with_columns(
        pl.when(pl.col("car_positive")).then(pl.lit("CAR+")).otherwise(pl.lit("CAR-"))
        .alias("car"))
    if df.height == 0:
        return pl.DataFrame(schema={"subject_id": pl.String, "car": pl.String,
                                    "cell_type": pl.String, "n_cells": pl.Int64,
                                    "fraction": pl.Float64})
    out = df.group_by("subject_id", "car", "cell_type").agg(pl.len().cast(pl.Int64)
                                                            .alias("n_cells"))
    return out.with_columns((pl.col("n_cells") / pl.col("n_cells").sum().over(
        "subject_id", "car")).alias("fraction")).sort("subject_id", "car", "cell_type")


def _in_window(days: DayWindow) -> pl.Expr:
    """Cells with a day inside the window (a cell without a day is in no window)."""
    return pl.col("day").is_not_null() & days.contains("day")


def car_marker_comparison(cells: pl.DataFrame, *, expression: dict[str, np.ndarray],
                          days: DayWindow, group: str = "car_positive",
                          rules: Rules | None = None) -> pl.DataFrame:
    """CAR+ vs CAR- T cells within the window `days`, patient as the replicate: per gene, each
    patient's mean log-normalised expression in CAR+ and in CAR- T cells, the median over
    patients, the median paired difference and a two-sided signed-rank p (analysis.stats;
    patients with both groups), BH q over the genes shown. `expression` maps gene -> values
    per cell (aligned with `cells`). Columns gene, n_patients, mean_car_pos, mean_car_neg,
    difference, p_value, q_value, test."""
    schema = {"gene": pl.String, "n_patients": pl.Int64, "mean_car_pos": pl.Float64,
              "mean_car_neg": pl.Float64, "difference": pl.Float64, "p_value": pl.Float64,
              "q_value": pl.Float64, "test": pl.String}
    keep = (cells.with_columns(_lineages(cells, rules).alias("_lin"))
            .select((_in_window(days) & (pl.col("_lin") == "T")).alias("k"))
            .get_column("k").to_numpy())
    if not keep.any() or not expression:
        return pl.DataFrame(schema=schema)
    base = cells.select("subject_id", pl.col(group).alias("_g")).filter(pl.Series(keep))
    frame = base.with_columns(**{f"g_{i}": pl.Series(np.asarray(v)[keep])
                                 for i, v in enumerate(expression.values())})
    means = frame.group_by("subject_id", "_g").agg(pl.col(r"^g_\d+$").mean())
    pos = means.filter(pl.col("_g")).drop("_g")
    neg = means.filter(~pl.col("_g")).drop("_g")
    both = pos.join(neg, on="subject_id", suffix="_neg", how="inner").sort("subject_id")
    rows = []
    genes = list(expression)
    if both.height == 0:
        return pl.DataFrame(schema=schema)
    diffs = np.vstack([both.get_column(f"g_{i}").to_numpy() - both.get_column(f"g_{i}_neg")
                       .to_numpy() for i in range(len(genes))])
    n, p = signed_rank_rows(diffs)
    q = bh(p)
    for i, g in enumerate(genes):
        rows.append({"gene": g, "n_patients": int(n[i]),
                     "mean_car_pos": float(np.median(both.get_column(f"g_{i}").to_numpy())),
                     "mean_car_neg": float(np.median(both.get_column(f"g_{i}_neg")
                                                     .to_numpy())),
                     "difference": float(np.median(diffs[i])),
                     "p_value": None if np.isnan(p[i]) else float(p[i]),
                     "q_value": None if np.isnan(q[i]) else float(q[i]),
                     "test": "Wilcoxon signed-rank, exact (patients paired)"})
    return pl.DataFrame(rows, schema=schema).sort("p_value", nulls_last=True)
