"""Cell-type composition per sample, per patient and day window, and the CAR-T readouts of the
immune landscape, always counted over all cells (never the drawn subsample).

Comparisons between response groups are patient-level (DESIGN.md section 3): one value per
patient per day window (the mean over that patient's samples in the window); cells are never
replicates. CD7+ T and NK fractions follow the CD7 CAR-T rationale (the CAR targets CD7, so
CD7+ T and NK cells fall after infusion and CD7-negative cells remain); CAR+ cells are
counted as a fraction of all T cells of a sample, next to the same patient's qPCR curve.

Which cells are T or NK cells comes from the one vocabulary (analysis.vocab): an explicit table
of cell-type names, extended by the study's `cell_lineages` rule setting; CD7+ means CD7
expression above the `cd7_threshold` setting. A label the table does not know is "unmapped"
and never counted as T or NK (`lineage_summary` lists them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import polars as pl

from analysis.registry import Option, derived_table
from analysis.rules import DEFAULT_RULES, Rules, rules_for
from analysis.vocab import (
    NON_RESPONDER,
    NOT_EVALUABLE,
    RESPONDER,
    DayWindow,
    lineage_expr,
    lineage_table,
)

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["DayWindow", "DEFAULT_WINDOWS", "COMPOSITION_COLUMNS", "lineage_summary",
           "cell_type_composition", "composition_of", "assign_window", "composition_by_window",
           "cd7_fractions", "cd7_change", "car_fraction_of_t", "study_cd7_fractions",
           "study_car_fraction", "study_lineages", "selection_summary",
           "compositional_test", "TRANSFORMS"]

COMPOSITION_COLUMNS = ("sample_id", "subject_id", "day", "cell_type", "n_cells", "fraction")


# Day 0 samples are drawn before the infusion, so day 0 counts as pre-infusion.
DEFAULT_WINDOWS = (DayWindow(None, 0, "Pre-infusion"), DayWindow(1, 60, "Day 1-60"),
                   DayWindow(61, None, "Day 61+"))


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={"sample_id": pl.String, "subject_id": pl.String,
                                "day": pl.Int64, "cell_type": pl.String, "n_cells": pl.Int64,
                                "fraction": pl.Float64})


def composition_of(cells: pl.DataFrame, *, cell_type: str = "cell_type") -> pl.DataFrame:
    """Per sample and cell type: n_cells and fraction of the sample's cells. Cell types absent
    from a sample appear with 0, so fractions sum to 1 per sample and zeros are real values."""
    if cells.height == 0:
        return _empty()
    base = cells.select("sample_id", "subject_id", "day",
                        pl.col(cell_type).cast(pl.String).fill_null("unannotated")
                        .alias("cell_type"))
    counts = base.group_by("sample_id", "cell_type").agg(pl.len().cast(pl.Int64)
                                                          .alias("n_cells"))
    samples = base.group_by("sample_id").agg(pl.col("subject_id").first(),
                                             pl.col("day").first())
    types = base.select("cell_type").unique()
    grid = samples.join(types, how="cross").join(counts, on=["sample_id", "cell_type"],
                                                 how="left")
    return (grid.with_columns(pl.col("n_cells").fill_null(0))
            .with_columns((pl.col("n_cells") / pl.col("n_cells").sum().over("sample_id"))
                          .alias("fraction"))
            .select(*COMPOSITION_COLUMNS)
            .sort("subject_id", "day", "sample_id", "cell_type"))


@derived_table("composition", "Cell-type counts and fractions per single-cell sample",
               options={"cell_type": Option(str, "cell_type",
                                            "obs column with the cell annotation")})
def cell_type_composition(study: Study, *, cell_type: str = "cell_type") -> pl.DataFrame:
    """sample_id, subject_id, day, cell_type, n_cells, fraction over all cells of the study's
    single-cell file (empty when the study has none)."""
    from analysis.embedding import cell_table, obs_column

    if not study.has("single_cell"):
        return _empty()
    cells = cell_table(study)
    if cell_type != "cell_type":
        cells = cells.with_columns(obs_column(study, column=cell_type).alias("cell_type"))
    return composition_of(cells)


def assign_window(frame: pl.DataFrame, *, windows: Sequence[DayWindow] = DEFAULT_WINDOWS,
                  day: str = "day") -> pl.DataFrame:
    """Add a `window` column (first window containing the day; null when none does)."""
    expr = pl.lit(None, dtype=pl.String)
    for w in reversed(list(windows)):
        expr = pl.when(w.contains(pl.col(day))).then(pl.lit(w.label)).otherwise(expr)
    return frame.with_columns(expr.alias("window"))


def composition_by_window(composition: pl.DataFrame, *, groups: pl.DataFrame,
                          windows: Sequence[DayWindow] = DEFAULT_WINDOWS) -> pl.DataFrame:
    """One row per patient, day window and cell type: the mean fraction over that patient's
    samples in the window (subject_id, response_group, window, cell_type, fraction,
    n_samples). Samples outside every window are left out."""
    if composition.height == 0:
        return pl.DataFrame(schema={"subject_id": pl.String, "response_group": pl.String,
                                    "window": pl.String, "cell_type": pl.String,
                                    "fraction": pl.Float64, "n_samples": pl.Int64})
    order = {w.label: i for i, w in enumerate(windows)}
    out = (assign_window(composition, windows=windows).filter(pl.col("window").is_not_null())
           .group_by("subject_id", "window", "cell_type")
           .agg(pl.col("fraction").mean(), pl.col("sample_id").n_unique().cast(pl.Int64)
                .alias("n_samples"))
           .join(groups.select("subject_id", "response_group"), on="subject_id", how="left")
           .with_columns(pl.col("response_group").fill_null(NOT_EVALUABLE),
                         pl.col("window").replace_strict(order, return_dtype=pl.Int64)
                         .alias("_o")))
    return out.sort("_o", "cell_type", "subject_id").select(
        "subject_id", "response_group", "window", "cell_type", "fraction", "n_samples")


def _lineage(cells: pl.DataFrame, rules: Rules | None) -> pl.Expr:
    rules = rules if rules is not None else DEFAULT_RULES
    table = lineage_table(rules.cell_lineages)
    return lineage_expr(cells.get_column("cell_type").unique().to_list(), table=table)


def lineage_summary(cells: pl.DataFrame, *, rules: Rules | None = None) -> pl.DataFrame:
    """Per cell-type label: lineage (from analysis.vocab and `cell_lineages`) and n_cells;
    labels the table does not know have lineage "unmapped"."""
    if cells.height == 0:
        return pl.DataFrame(schema={"cell_type": pl.String, "lineage": pl.String,
                                    "n_cells": pl.Int64})
    return (cells.group_by("cell_type").agg(pl.len().cast(pl.Int64).alias("n_cells"))
            .with_columns(_lineage(cells, rules)).select("cell_type", "lineage", "n_cells")
            .sort("lineage", "cell_type"))


def cd7_fractions(cells: pl.DataFrame, *, cd7: np.ndarray, threshold: float | None = None,
                  rules: Rules | None = None) -> pl.DataFrame:
    """Per sample: fraction of all cells that are CD7+ T cells and CD7+ NK cells (CD7
    expression above `threshold`, default the rule setting `cd7_threshold`; one value per cell
    aligned with `cells`; lineage from analysis.vocab). Long frame: sample_id, subject_id, day,
    population ("CD7+ T", "CD7+ NK"), n_cells, n_total, fraction."""
    if cells.height != len(cd7):
        raise ValueError(f"cd7 has {len(cd7)} values for {cells.height} cells")
    cut = (rules if rules is not None else DEFAULT_RULES).cd7_threshold \
        if threshold is None else float(threshold)
    df = cells.select("sample_id", "subject_id", "day", "cell_type").with_columns(
        pl.Series("_cd7", np.asarray(cd7) > cut), _lineage(cells, rules))
    is_t = pl.col("lineage") == "T"
    is_nk = pl.col("lineage") == "NK"
    agg = df.group_by("sample_id").agg(
        pl.col("subject_id").first(), pl.col("day").first(),
        pl.len().cast(pl.Int64).alias("n_total"),
        (is_t & pl.col("_cd7")).sum().cast(pl.Int64).alias("CD7+ T"),
        (is_nk & pl.col("_cd7")).sum().cast(pl.Int64).alias("CD7+ NK"))
    return (agg.unpivot(["CD7+ T", "CD7+ NK"], index=["sample_id", "subject_id", "day",
                                                      "n_total"],
                        variable_name="population", value_name="n_cells")
            .with_columns((pl.col("n_cells") / pl.col("n_total")).alias("fraction"))
            .select("sample_id", "subject_id", "day", "population", "n_cells", "n_total",
                    "fraction")
            .sort("subject_id", "day", "population"))


def cd7_change(fractions: pl.DataFrame, *, groups: pl.DataFrame,
               pre: DayWindow = DEFAULT_WINDOWS[0], post: DayWindow = DayWindow(
                   1, None, "Post-infusion")) -> pl.DataFrame:
    """Per patient and population: mean fraction before and after infusion and the change
    (post - pre), with the response group. Patients lacking either window get null change."""
    cols = {"subject_id": pl.String, "response_group": pl.String, "population": pl.String,
            "pre": pl.Float64, "post": pl.Float64, "change": pl.Float64}
    if fractions.height == 0:
        return pl.DataFrame(schema=cols)
    win = fractions.with_columns(
        pl.when(pre.contains(pl.col("day"))).then(pl.lit("pre"))
        .when(post.contains(pl.col("day"))).then(pl.lit("post")).alias("_w"))
    wide = (win.filter(pl.col("_w").is_not_null())
            .group_by("subject_id", "population", "_w").agg(pl.col("fraction").mean())
            .pivot("_w", index=["subject_id", "population"], values="fraction"))
    for c in ("pre", "post"):
        if c not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(c))
    return (wide.join(groups.select("subject_id", "response_group"), on="subject_id",
                      how="left")
            .with_columns(pl.col("response_group").fill_null(NOT_EVALUABLE),
                          (pl.col("post") - pl.col("pre")).alias("change"))
            .select(*cols).sort("population", "subject_id"))


def car_fraction_of_t(cells: pl.DataFrame, *, rules: Rules | None = None) -> pl.DataFrame:
    """Per sample: T cells (lineage T, analysis.vocab), CAR+ T cells and CAR+ as percent of T
    cells (sample_id, subject_id, day, n_t_cells, n_car, car_pct_of_t; null percent when a
    sample has no T cells)."""
    df = cells.with_columns((_lineage(cells, rules) == "T").alias("_t"))
    return (df.group_by("sample_id").agg(
        pl.col("subject_id").first(), pl.col("day").first(),
        pl.col("_t").sum().cast(pl.Int64).alias("n_t_cells"),
        (pl.col("_t") & pl.col("car_positive")).sum().cast(pl.Int64).alias("n_car"))
        .with_columns(pl.when(pl.col("n_t_cells") > 0)
                      .then(100 * pl.col("n_car") / pl.col("n_t_cells"))
                      .alias("car_pct_of_t"))
        .sort("subject_id", "day", "sample_id"))


def study_cd7_fractions(study: Study, *, gene: str = "CD7",
                        rules: Rules | None = None) -> pl.DataFrame:
    """`cd7_fractions` over all cells of the study (empty when the gene is absent), with the
    study's `cd7_threshold` and `cell_lineages`."""
    from analysis.embedding import cell_table, gene_vector, var_names

    if not study.has("single_cell") or gene not in var_names(study):
        return pl.DataFrame(schema={"sample_id": pl.String, "subject_id": pl.String,
                                    "day": pl.Int64, "population": pl.String,
                                    "n_cells": pl.Int64, "n_total": pl.Int64,
                                    "fraction": pl.Float64})
    rules = rules if rules is not None else rules_for(study)
    return cd7_fractions(cell_table(study), cd7=gene_vector(study, gene=gene), rules=rules)


def study_lineages(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """`lineage_summary` over all cells of the study's single-cell file (empty without one)."""
    from analysis.embedding import cell_table

    if not study.has("single_cell"):
        return lineage_summary(pl.DataFrame(schema={"cell_type": pl.String}))
    return lineage_summary(cell_table(study),
                           rules=rules if rules is not None else rules_for(study))


def study_car_fraction(study: Study, *, rules: Rules | None = None) -> pl.DataFrame:
    """`car_fraction_of_t` over all cells of the study (T cells by the study's lineages)."""
    from analysis.embedding import cell_table

    if not study.has("single_cell"):
        return car_fraction_of_t(pl.DataFrame(schema={
            "sample_id": pl.String, "subject_id": pl.String, "day": pl.Int64,
            "cell_type": pl.String, "car_positive": pl.Boolean}))
    return car_fraction_of_t(cell_table(study),
                             rules=rules if rules is not None else rules_for(study))


def selection_summary(cells: pl.DataFrame, *, selected: np.ndarray) -> pl.DataFrame:
    """Where selected cells come from: subject_id, day, cell_type, n_cells and the share of
    the selection, largest first, ties in key order (cell_type only when `cells` has it, e.g. not for flow
    events). `selected` holds row numbers (`cell`) of the full data."""
    keys = [c for c in ("subject_id", "day", "cell_type") if c in cells.columns]
    sel = cells.filter(pl.Series(np.isin(cells.get_column("cell").to_numpy(),
                                         np.asarray(selected, dtype=np.int64))))
    if sel.height == 0:
        return pl.DataFrame(schema={**{k: cells.schema[k] for k in keys},
                                    "n_cells": pl.Int64, "share": pl.Float64})
    return (sel.group_by(*keys).agg(pl.len().cast(pl.Int64).alias("n_cells"))
            .with_columns((pl.col("n_cells") / sel.height).alias("share"))
            .sort(["n_cells", *keys], descending=[True] + [False] * len(keys)))


# ---- compositional comparison, patient as the replicate ------------------------------------------
Transform = Literal["clr", "logit"]
TRANSFORMS: tuple[Transform, ...] = get_args(Transform)


def _transformed(counts: np.ndarray, transform: Transform, pseudocount: float) -> np.ndarray:
    """Cell types x patients: centred log-ratio (Aitchison 1986) of counts + pseudocount, or
    the logit of the proportion (counts + pseudocount over the total + 2 pseudocounts)."""
    x = counts + pseudocount
    if transform == "clr":
        logs = np.log(x)
        return logs - logs.mean(axis=0, keepdims=True)
    tot = counts.sum(axis=0, keepdims=True) + 2 * pseudocount
    prop = x / tot
    return np.log(prop / (1 - prop))


def compositional_test(composition: pl.DataFrame, *, groups: pl.DataFrame,
                       window: DayWindow, window_b: DayWindow | None = None,
                       transform: Transform = "clr", pseudocount: float = 0.5,
                       category: str = "cell_type") -> pl.DataFrame:
    """Cell-type proportions compared at patient level, respecting that they are a
    composition: each patient's cell counts summed over their samples in the window, then
    transformed per patient (centred log-ratio, default, or logit of the proportion; half a
    cell added to every count so zeros are defined), one value per patient and cell type.

    Without `window_b`: responders vs non-responders in `window`, two-sided Mann-Whitney of
    analysis.stats. With `window_b`: the same patients in `window_b` against `window`, the
    paired signed-rank test of analysis.stats on the per-patient differences. BH over the
    cell types. Columns cell_type, n_a, n_b, prop_a, prop_b (median proportions of group or
    window a and b), effect (non-responders minus responders: difference of the median
    transformed values; paired: median per-patient change, window_b minus window), p_value,
    q_value, test, transform, comparison (says which groups or windows)."""
    from analysis.stats import bh, mann_whitney_rows, signed_rank_rows

    schema = {"cell_type": pl.String, "n_a": pl.Int64, "n_b": pl.Int64, "prop_a": pl.Float64,
              "prop_b": pl.Float64, "effect": pl.Float64, "p_value": pl.Float64,
              "q_value": pl.Float64, "test": pl.String, "transform": pl.String,
              "comparison": pl.String}
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}")
    df = composition.rename({category: "_cat"}) if category != "cell_type" else \
        composition.rename({"cell_type": "_cat"})
    types = sorted(df.get_column("_cat").drop_nulls().unique().to_list())

    def per_patient(w: DayWindow) -> tuple[list[str], np.ndarray]:
        sub = df.filter(w.contains(pl.col("day")))
        if sub.height == 0:
            return [], np.zeros((len(types), 0))
        wide = (sub.group_by("subject_id", "_cat").agg(pl.col("n_cells").sum())
                .pivot("subject_id", index="_cat", values="n_cells"))
        wide = pl.DataFrame({"_cat": types}).join(wide, on="_cat", how="left").fill_null(0)
        ids = [c for c in wide.columns if c != "_cat"]
        return ids, wide.select(ids).to_numpy().astype(float)

    ids_a, m_a = per_patient(window)
    if not ids_a or not types:
        return pl.DataFrame(schema=schema)
    t_a, p_a = _transformed(m_a, transform, pseudocount), m_a / m_a.sum(axis=0,
                                                                         keepdims=True)
    if window_b is None:
        g = dict(groups.select("subject_id", "response_group").iter_rows())
        in_a = np.array([g.get(i) == RESPONDER for i in ids_a])
        in_b = np.array([g.get(i) == NON_RESPONDER for i in ids_a])
        _, p, test = mann_whitney_rows(t_a, in_a=in_a, in_b=in_b)
        n_a, n_b = np.full(len(types), in_a.sum()), np.full(len(types), in_b.sum())
        with np.errstate(all="ignore"):
            prop_a = np.median(p_a[:, in_a], axis=1) if in_a.any() else np.full(len(types),
                                                                                 np.nan)
            prop_b = np.median(p_a[:, in_b], axis=1) if in_b.any() else np.full(len(types),
                                                                                 np.nan)
            eff = (np.median(t_a[:, in_b], axis=1) - np.median(t_a[:, in_a], axis=1)) \
                if in_a.any() and in_b.any() else np.full(len(types), np.nan)
        comparison = f"{NON_RESPONDER} vs {RESPONDER}, {window.label}"
    else:
        ids_b, m_b = per_patient(window_b)
        both = [i for i in ids_a if i in ids_b]
        if not both:
            return pl.DataFrame(schema=schema)
        ia = [ids_a.index(i) for i in both]
        ib = [ids_b.index(i) for i in both]
        t_b = _transformed(m_b, transform, pseudocount)
        d = t_b[:, ib] - t_a[:, ia]
        nn, p = signed_rank_rows(d)
        test = np.array(["Wilcoxon signed-rank, exact (paired)"] * len(types), dtype=object)
        n_a = n_b = nn
        prop_a = np.median(p_a[:, ia], axis=1)
        prop_b = np.median((m_b / m_b.sum(axis=0, keepdims=True))[:, ib], axis=1)
        eff = np.median(d, axis=1)
        comparison = f"{window_b.label} vs {window.label}, same patients"
    q = bh(p)
    rows = [{"cell_type": t, "n_a": int(n_a[i]), "n_b": int(n_b[i]),
             "prop_a": _num(prop_a[i]), "prop_b": _num(prop_b[i]), "effect": _num(eff[i]),
             "p_value": _num(p[i]), "q_value": _num(q[i]), "test": str(test[i]) or
             "not tested (a group without patients)", "transform": transform,
             "comparison": comparison} for i, t in enumerate(types)]
    return pl.DataFrame(rows, schema=schema).sort("p_value", nulls_last=True)


def _num(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
