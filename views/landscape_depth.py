"""Recipes of the Immune landscape's single-cell depth: signature scores per patient, violin and
dot plots of genes or scores, and two selections compared with each other. The patient-level
pseudobulk test (DESeq2) is in views/landscape_pseudobulk.py (its names are importable from
here too).

Each takes the Study, the cohort and a frozen Params and returns one FigureSpec or TableSpec;
pages/immune_landscape.py, the deck and `cli.py` call the same recipes. Computations are in
analysis.signatures and analysis.markers; figures in components.figures.landscape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from analysis import embedding as emb
from analysis import pseudobulk as pb
from analysis import signatures as sig
from analysis.cohort import Cohort, apply_cohort, response_groups
from analysis.composition import DEFAULT_WINDOWS, assign_window
from analysis.markers import rank_markers
from analysis.rules import rules_for
from components.figures import landscape as figs
from components.theme import GROUP_COLORS
from data_loaders.gene_sets import GeneSet, shipped_gene_sets
from views.landscape import PRESET_GENES, gene_choices
from views.landscape_pseudobulk import (  # the pseudobulk recipes' old home
    CAR_STATUSES,
    DEFAULT_WINDOW,
    DESIGNS,
    PSEUDOBULK_NOTE,
    PSEUDOBULK_RULES,
    WINDOW_NAMES,
    CellSelection,
    cell_selection,
    cell_types,
    cohort_params,
    pseudobulk_cached,
    pseudobulk_cells,
    pseudobulk_result_table,
    pseudobulk_volcano,
    run_pseudobulk,
)
from views.shared import shared
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["DistributionParams", "SPLITS", "pseudobulk_volcano", "pseudobulk_result_table",
           "violins", "dot_plot", "signature_scores", "signature_table", "SignatureParams",
           "two_selections", "SelectionPair", "feature_values", "EXPLORATORY_NOTE",
           "WINDOW_NAMES", "cohort_params", "run_pseudobulk", "pseudobulk_cached",
           "pseudobulk_cells", "cell_types", "SIGNATURE_METHODS", "PSEUDOBULK_RULES",
           "CellSelection", "SCORE_UNITS", "DISTRIBUTION_KINDS", "PSEUDOBULK_NOTE",
           "feature_choices", "distribution_params", "CAR_STATUSES", "cell_selection",
           "DESIGNS", "DEFAULT_WINDOW", "signature_method", "other_names", "selection_pair"]

Split = Literal["response_group", "timepoint", "window"]
SPLITS: dict[str, str] = {"Response group": "response_group", "Timepoint": "timepoint",
                          "Day window": "window"}
SCORE_UNITS = sig.SCORE_UNITS
EXPLORATORY_NOTE = ("Exploratory: a cell-level test treats cells as independent, so p-values "
                    "are far smaller than the patients justify.")


# ---- genes or scores per cell ----------------------------------------------------------------
@dataclass(frozen=True)
class DistributionParams:
    """Violin and dot plots of `features` (genes, or names of `gene_sets` when `kind` is
    "signature") by cell type, split by `split` (response group, timepoint or day window)."""

    features: tuple[str, ...]
    kind: Literal["gene", "signature"] = "gene"
    split: Split = "response_group"
    method: sig.Method = sig.DEFAULT_METHOD
    gene_sets: tuple[GeneSet, ...] = ()
    cell_types: tuple[str, ...] = ()
    max_cells_per_violin: int = 2_000
    seed: int = 0


DistributionKind = Literal["Genes", "Signatures"]
DISTRIBUTION_KINDS: tuple[DistributionKind, ...] = ("Genes", "Signatures")


def feature_choices(study: Study, *, kind: DistributionKind = "Genes"
                    ) -> tuple[list[str], list[str]]:
    """(what can be drawn, what is drawn first) for the violins and dot plot: the genes with
    the first three preset markers present, or the shipped signatures with the first two."""
    if kind == "Signatures":
        names = [g.name for g in shipped_gene_sets()]
        return names, names[:2]
    names = gene_choices(study)
    return names, [g for g in PRESET_GENES if g in names][:3]


def distribution_params(features: Sequence[str], *, kind: DistributionKind = "Genes",
                        split: str = "Response group") -> DistributionParams:
    """DistributionParams from the page's choices: `split` is a label of SPLITS; signatures
    are the shipped gene sets."""
    return DistributionParams(tuple(features), "gene" if kind == "Genes" else "signature",
                              SPLITS[split],  # type: ignore[arg-type]
                              gene_sets=shipped_gene_sets())


def feature_values(study: Study, *, params: DistributionParams,
                   cohort: Cohort | None = None) -> pl.DataFrame:
    """Long per-cell frame: cell, subject_id, day, cell_type, response_group, timepoint,
    window, feature, value (every cell of the cohort)."""
    cells = emb.cell_table(study)
    groups = response_groups(study)
    cells = cells.join(groups.select("subject_id", "response_group"), on="subject_id",
                       how="left")
    if cohort is not None and cohort != Cohort():
        cells = apply_cohort(cells, cohort, groups=groups)
    if params.cell_types and "cell_type" in cells.columns:
        cells = cells.filter(pl.col("cell_type").is_in(list(params.cell_types)))
    cells = assign_window(cells, windows=DEFAULT_WINDOWS)
    if "timepoint" not in cells.columns:
        cells = cells.with_columns(pl.format("D{}", "day").alias("timepoint"))
    rows = cells.get_column("cell").to_numpy()
    parts = []
    if params.kind == "signature":
        chosen = [g for g in params.gene_sets if g.name in params.features]
        scores = sig.cell_scores(study, gene_sets=chosen, method=params.method)
        for g in chosen:
            parts.append(cells.with_columns(pl.lit(g.name).alias("feature"), pl.Series(
                "value", scores.cells.get_column(g.name).to_numpy()[rows])))
    else:
        for gene in params.features:
            parts.append(cells.with_columns(pl.lit(gene).alias("feature"), pl.Series(
                "value", emb.gene_vector(study, gene=gene)[rows])))
    if not parts:
        return cells.with_columns(pl.lit(None, pl.String).alias("feature"),
                                  pl.lit(None, pl.Float32).alias("value")).head(0)
    return pl.concat(parts)


def _order(values: pl.Series) -> list[str]:
    return sorted(values.cast(pl.String).drop_nulls().unique().to_list())


@shared
def _distribution(study: Study, cohort: Cohort | None, params: DistributionParams
                  ) -> tuple[FigureSpec, FigureSpec]:
    long = feature_values(study, params=params, cohort=cohort)
    unit = sig.SCORE_UNITS[params.method] if params.kind == "signature" else \
        sig.expression_units(study)
    split = params.split
    order = {"window": [w.label for w in DEFAULT_WINDOWS],
             "response_group": [g for g in GROUP_COLORS if g in set(
                 long.get_column("response_group").drop_nulls().to_list())]}
    orders = {"feature": list(params.features), "cell_type": _order(long.get_column(
        "cell_type")) if "cell_type" in long.columns else [],
        split: order.get(split) or _order(long.get_column(split))}
    if split == "timepoint":
        tp = long.group_by("timepoint").agg(pl.col("day").median()).sort("day")
        orders[split] = tp.get_column("timepoint").cast(pl.String).to_list()
    shown = (long.with_columns(pl.int_range(pl.len()).shuffle(seed=params.seed)
                               .over("feature", "cell_type", split).alias("_r"))
             .filter(pl.col("_r") < params.max_cells_per_violin).drop("_r"))
    colors = GROUP_COLORS if split == "response_group" else None
    violin = figs.violin_figure(shown, x="cell_type", y="value", color=split,
                                facet_col="feature", colors=colors, category_orders=orders,
                                labels={"value": unit, split: split.replace("_", " ")},
                                title=f"{', '.join(params.features)} by cell type and "
                                f"{split.replace('_', ' ')}")
    summ = sig.expression_summary(long.with_columns(
        pl.concat_str([pl.col("cell_type"), pl.col(split).cast(pl.String)], separator=" | ")
        .alias("group")), by=("feature", "group"))
    dots = figs.dot_plot(summ, x="feature", y="group", category_orders={
        "feature": list(params.features),
        "group": [f"{c} | {s}" for c in orders["cell_type"] for s in orders[split]]},
        colorbar_title=f"mean<br>{unit}",
        title="Mean and fraction of cells above zero, by cell type and "
              f"{split.replace('_', ' ')}")
    n = long.get_column("cell").n_unique()
    note = (f"{n:,} cells; violins draw at most {params.max_cells_per_violin:,} per violin "
            "(seeded); cells, not patients, so these plots describe and do not test.")
    return (FigureSpec("violins", "Violin plot", violin, shown, params, note),
            FigureSpec("dot_plot", "Dot plot", dots, summ, params, note))


@recipe
def violins(study: Study, *, cohort: Cohort | None = None, params: DistributionParams,
            focus: Focus | None = None) -> FigureSpec:
    """Violins of the features by cell type x split; a seeded subsample of at most
    max_cells_per_violin cells per violin is drawn (the data are those cells)."""
    return _distribution(study, cohort, params)[0]


@recipe
def dot_plot(study: Study, *, cohort: Cohort | None = None, params: DistributionParams,
             focus: Focus | None = None) -> FigureSpec:
    """Dot plot of the features by cell type x split: mean and fraction above zero over every
    cell of the cohort."""
    return _distribution(study, cohort, params)[1]


# ---- signatures at patient level -------------------------------------------------------------
SignatureMethod = Literal["mean_z", "aucell", "pseudobulk"]
SIGNATURE_METHODS: tuple[SignatureMethod, ...] = ("mean_z", "aucell", "pseudobulk")


def signature_method(study: Study) -> SignatureMethod:
    """The study's score method (rule signature_method), the page's first choice."""
    return rules_for(study).signature_method  # type: ignore[return-value]


@dataclass(frozen=True)
class SignatureParams:
    """Signature scores per patient: `gene_sets` scored with `method` over the cells of
    `selection`, responders vs non-responders tested in `window`."""

    gene_sets: tuple[GeneSet, ...]
    method: SignatureMethod = "mean_z"
    window: str = "D28"
    selection: pb.CellSelection = pb.CellSelection()


@shared
def _signatures(study: Study, params: SignatureParams) -> tuple[FigureSpec, TableSpec]:
    """One score per patient (mean over the selected cells of the sample closest to the window
    centre, or the pseudobulk score), responders vs non-responders: boxes of patients and the
    test table (Mann-Whitney, Hedges' g, BH-FDR over the sets). Every patient of the study is
    scored and tested (the response groups are the comparison; the cohort does not narrow
    them). Raises ValueError when no set can be scored."""
    method, window, selection = params.method, params.window, params.selection
    gene_sets = list(params.gene_sets)
    if method == "pseudobulk":
        scores = sig.study_pseudobulk_scores(study, gene_sets=gene_sets, selection=selection)
    else:
        scores = sig.sample_scores(study, gene_sets=gene_sets, method=method,
                                   selection=selection)
    groups = response_groups(study)
    table = sig.compare_signatures(scores, groups=groups, window=window)
    data = assign_window(scores, windows=DEFAULT_WINDOWS).join(
        groups.select("subject_id", "response_group"), on="subject_id", how="left").drop_nulls(
        "window")
    fig = figs.composition_by_window_figure(
        data.rename({"score": "fraction"}), facet="signature",
        window_order=[w.label for w in DEFAULT_WINDOWS],
        title=f"Signature scores per patient ({sig.SCORE_UNITS[method]})")
    fig.update_yaxes(tickformat=None)
    return (FigureSpec("signature_scores", "Signature scores per patient", fig, data, params,
                       "One point per patient and day window (mean of the patient's samples "
                       "in the window)."),
            TableSpec("signature_comparison", "Signatures, responders vs non-responders",
                      table, params,
                      f"{window}: one sample per patient (closest to the window centre); "
                      "Mann-Whitney exact or permutation p; BH-FDR over the signatures."))


@recipe
def signature_scores(study: Study, *, cohort: Cohort | None = None, params: SignatureParams,
                     focus: Focus | None = None) -> FigureSpec:
    """Signature scores per patient and day window, by response group (see `_signatures`)."""
    return _signatures(study, params)[0]


@recipe
def signature_table(study: Study, *, cohort: Cohort | None = None, params: SignatureParams,
                    focus: Focus | None = None) -> TableSpec:
    """Signatures, responders vs non-responders in the window: Mann-Whitney, Hedges' g,
    BH-FDR over the sets (see `_signatures`)."""
    return _signatures(study, params)[1]


# ---- two selections ----------------------------------------------------------------------------
@dataclass(frozen=True)
class SelectionPair:
    """Two cell selections (row numbers) compared, their names and how many genes to list."""

    a: tuple[int, ...]
    b: tuple[int, ...]
    names: tuple[str, str] = ("A", "B")
    top: int = 25


def other_names(names: Sequence[str], a: str) -> list[str]:
    """The selections B can be, once A is chosen."""
    return [n for n in names if n != a]


def selection_pair(sets: Mapping[str, Sequence[int]], a: str, b: str) -> SelectionPair:
    """SelectionPair of the named selections `a` and `b` of `sets`."""
    return SelectionPair(tuple(int(c) for c in sets[a]), tuple(int(c) for c in sets[b]), (a, b))


@recipe
def two_selections(study: Study, *, cohort: Cohort | None = None, params: SelectionPair,
                   focus: Focus | None = None) -> TableSpec:
    """Marker genes of selection a against selection b (cells in both are left out):
    Wilcoxon rank-sum on the cells of the two selections only, BH-FDR; exploratory. The
    selections are cells already chosen on screen, so the cohort does not narrow them."""
    names, top = params.names, params.top
    a = np.unique(np.asarray(params.a, dtype=np.int64))
    b = np.unique(np.asarray(params.b, dtype=np.int64))
    both = np.intersect1d(a, b)
    a, b = np.setdiff1d(a, both), np.setdiff1d(b, both)
    if a.size == 0 or b.size == 0:
        raise ValueError("both selections need cells that are not in the other")
    rows = np.concatenate([a, b])
    matrix = emb.expression_rows(study, rows=rows)
    cells = emb.cell_table(study)
    who = cells.get_column("subject_id").to_numpy()[rows] if "subject_id" in cells.columns \
        else None
    mask = np.zeros(rows.size, dtype=bool)
    mask[:a.size] = True
    out = rank_markers(matrix, selected=mask, genes=emb.var_names(study), top=top,
                       patients=who).rename({"mean_rest": f"mean_{names[1]}",
                                             "pct_rest": f"pct_{names[1]}",
                                             "mean_selected": f"mean_{names[0]}",
                                             "pct_selected": f"pct_{names[0]}"})
    return TableSpec("two_selections", f"{names[0]} vs {names[1]}", out,
                     {"a": int(a.size), "b": int(b.size), "left_out_in_both": int(both.size),
                      "names": list(names), "top": top},
                     f"Top {top} genes higher in {names[0]} ({a.size:,} cells) than in "
                     f"{names[1]} ({b.size:,} cells); {both.size:,} cells in both left out. "
                     + EXPLORATORY_NOTE)
