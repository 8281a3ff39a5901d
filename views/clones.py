"""Recipes of the single-cell depth views (no streamlit): CAR+ cells (the cut, CAR+ fraction
next to qPCR, CAR+ vs CAR- phenotype, CD7 groups of endogenous T and NK cells), composition
with uncertainty, receptors joined to cells, clones across time and depth-matched repertoire
metrics. pages/clones.py and the CAR block of pages/immune_landscape.py call them; each takes
the Study, the cohort and a frozen Params and returns FigureSpec / TableSpec records.

The analyses are those of analysis.car_status, analysis.clonotypes, analysis.clone_tracking,
analysis.repertoire (rarefaction) and analysis.composition (compositional test); every
comparison is patient-level. The shared focus (`focus`) is accepted for the common call
shape; these views draw every patient of the cohort.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from analysis import car_status as cs
from analysis import clone_tracking as ctr
from analysis import clonotypes as ct
from analysis import composition as comp
from analysis.cohort import Cohort, apply_cohort, response_groups
from analysis.repertoire import METRIC_LABELS, rarefied_table
from analysis.rules import rules_for
from components.figures import clones as figs
from components.figures.landscape import car_vs_qpcr_figure
from views.spec import FigureSpec, TableSpec

if TYPE_CHECKING:
    from data_loaders import Study

__all__ = ["CarParams", "WINDOWS", "car_cut", "car_fraction", "car_phenotype", "cd7_view",
           "CompositionParams", "composition_test", "save_car_threshold",
           "has_cell_receptors",
           "ClonesParams", "RAREFIED_METRICS", "rarefied", "later_timepoints", "tracking", "fate", "receptor_views", "SOURCES"]

WINDOWS = {w.label: w for w in (*comp.DEFAULT_WINDOWS, comp.DayWindow("Post-infusion", 1))}
RAREFIED_METRICS = ("richness", "shannon", "clonality", "simpson")
SOURCES = {"auto": "single cells with receptors when present, else bulk TCR",
           "tcr": "bulk TCR repertoire (tcr table)", "cells": "single cells with receptors",
           "cells_cd8": "single CD8 cells with receptors (CD8A or CD8B detected)"}


def _groups(study: Study, groups: pl.DataFrame | None) -> pl.DataFrame:
    return groups if groups is not None else response_groups(study)


# ---- CAR+ cells ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CarParams:
    threshold: float | None = None      # None: the study's rule (mixture or its fixed value)
    window: str = "Day 1-60"
    genes: tuple[str, ...] = cs.MARKER_GENES


def _rules(study: Study, params: CarParams):  # noqa: ANN202 - Rules
    rules = rules_for(study)
    if params.threshold is None:
        return rules
    return rules.with_(car_threshold_method="fixed", car_threshold=float(params.threshold))


def car_cut(study: Study, *, params: CarParams) -> tuple[cs.CarCut, FigureSpec | None]:
    """The cut and the histogram of log1p(CAR counts) with it (None without a CAR feature)."""
    rules = _rules(study, params)
    values, feature, source = cs.car_values(study, rules=rules)
    cut = cs.car_cut(values, feature=feature, source=source, rules=rules)
    if values is None:
        return cut, None
    hist = cs.car_histogram(values)
    n_pos = int(cs.call_car(values, cut).sum())
    fig = figs.car_histogram(hist, cut=cut.log_cut if cut.threshold > 0 or
                             cut.method == "mixture" else 0.0,
                             cut_label=f"CAR+ above {cut.threshold:.3g} counts",
                             title=f"{feature}: counts per cell ({n_pos:,} of {len(values):,} "
                                   "cells CAR+)")
    return cut, FigureSpec("car-cut", "CAR transcript counts and the CAR+ cut", fig, data=hist,
                           params=params, caption=cut.describe())


def _cells(study: Study, params: CarParams) -> pl.DataFrame:
    return cs.car_cells(study, rules=_rules(study, params))


def car_fraction(study: Study, *, cohort: Cohort, params: CarParams,
                 focus: Any = None, groups: pl.DataFrame | None = None) -> FigureSpec:
    """CAR+ cells as % of T cells per sample (the cut of `params`), next to CAR qPCR."""
    g = _groups(study, groups)
    car = apply_cohort(comp.car_fraction_of_t(_cells(study, params), rules=rules_for(study)),
                       cohort, groups=g)
    qpcr = apply_cohort(study.series(analytes=["CAR_QPCR"]), cohort, groups=g)
    fig = car_vs_qpcr_figure(car, qpcr, title="CAR+ T cells (single-cell call) and CAR qPCR")
    return FigureSpec("car-vs-qpcr", "CAR+ fraction per sample next to qPCR", fig, data=car,
                      params=params, caption="CAR+ = the cut above; T cells by their "
                      "cell-type names (docs/rules.md, Vocabulary).")


def car_phenotype(study: Study, *, cohort: Cohort, params: CarParams,
                  focus: Any = None, groups: pl.DataFrame | None = None
                  ) -> tuple[FigureSpec, TableSpec]:
    """Cell types of CAR+ and CAR- T cells per patient in the window, and the patient-level
    marker comparison (paired signed-rank, BH)."""
    from analysis.embedding import gene_vector, var_names

    g = _groups(study, groups)
    w = WINDOWS[params.window]
    cells = _cells(study, params)
    keep = apply_cohort(cells, cohort, groups=g).get_column("cell").to_numpy()
    cells = cells.filter(pl.col("cell").is_in(keep))
    rules = rules_for(study)
    shares = cs.car_phenotype(cells, lo=w.lo, hi=w.hi, rules=rules)
    fig = figs.stacked_share(shares, x="subject_id", facet_col="car",
                             title=f"Cell types of CAR+ and CAR- T cells, {w.label}",
                             y_title="share of the patient's T cells")
    names = set(var_names(study))
    genes = [x for x in params.genes if x in names]
    expr = {x: gene_vector(study, gene=x)[keep] for x in genes}
    markers = cs.car_marker_comparison(cells, expression=expr, lo=w.lo, hi=w.hi, rules=rules)
    return (FigureSpec("car-phenotype", "CAR+ vs CAR- T cells: cell types", fig, data=shares,
                       params=params, caption=f"{w.label}; fraction of each patient's CAR+ "
                       "(or CAR-) T cells."),
            TableSpec("car-markers", "CAR+ vs CAR- T cells: markers, patient as the replicate",
                      markers, params=params,
                      caption="Per patient the mean log-normalised expression in CAR+ and "
                      "in CAR- T cells; median over patients; two-sided Wilcoxon signed-rank "
                      "(exact) of the paired differences; BH over the genes listed."))


def cd7_view(study: Study, *, cohort: Cohort, params: CarParams,
             focus: Any = None, groups: pl.DataFrame | None = None
             ) -> tuple[FigureSpec, TableSpec]:
    """CAR+ T, CD7+/CD7- endogenous T and NK cells as shares of T and NK cells per sample,
    and their change from pre-infusion to the window (compositional test, same patients)."""
    from analysis.embedding import gene_vector, var_names

    g = _groups(study, groups)
    rules = rules_for(study)
    cells = _cells(study, params)
    cd7 = gene_vector(study, gene="CD7") if "CD7" in var_names(study) else \
        np.zeros(cells.height)
    grouped = apply_cohort(cs.cd7_groups(cells, cd7=cd7, rules=rules), cohort, groups=g) \
        .filter(pl.col("cd7_group").is_not_null())
    per = comp.composition_of(grouped, cell_type="cd7_group")
    lines = per.with_columns(pl.col("cell_type").alias("group"),
                             pl.format("{} · {}", "subject_id", "cell_type").alias("subject_id"))
    fig = figs.repertoire_lines(
        lines, metric="fraction", group="group", colors=dict(zip(cs.CD7_GROUPS, [
            "#D55E00", "#0072B2", "#56B4E9", "#009E73", "#E69F00"], strict=True)),
        y_title="share of T and NK cells",
        title="CAR+ T and endogenous CD7+ / CD7- T and NK cells per sample")
    test = comp.compositional_test(per, groups=g, window=WINDOWS["Pre-infusion"],
                                   window_b=WINDOWS[params.window])
    cap = (f"CD7+ = CD7 expression above {rules.cd7_threshold:g} (rule cd7_threshold); "
           "endogenous = not CAR+.")
    return (FigureSpec("cd7-groups", "CD7+ vs CD7- endogenous T and NK cells", fig, data=per,
                       params=params, caption=cap),
            TableSpec("cd7-test", f"CD7 groups: {params.window} vs pre-infusion", test,
                      params=params, caption=cap + " " + _COMPOSITION_METHOD))


_COMPOSITION_METHOD = (
    "Method: each patient's cells summed over their samples in the window, half a cell added "
    "to every count, centred log-ratio per patient (Aitchison); one value per patient; "
    "responders vs non-responders by the two-sided Mann-Whitney test, or the same patients in "
    "two windows by the exact Wilcoxon signed-rank test (analysis/stats.py); BH over the "
    "categories.")


# ---- composition with uncertainty ---------------------------------------------------------------
@dataclass(frozen=True)
class CompositionParams:
    window: str = "Day 1-60"
    window_b: str | None = None        # None: responders vs non-responders in `window`
    transform: str = "clr"


def composition_test(study: Study, *, cohort: Cohort, params: CompositionParams,
                     focus: Any = None, groups: pl.DataFrame | None = None
                  ) -> tuple[FigureSpec, TableSpec]:
    from analysis.embedding import cell_table

    g = _groups(study, groups)
    per = comp.composition_of(apply_cohort(cell_table(study), cohort, groups=g))
    res = comp.compositional_test(per, groups=g, window=WINDOWS[params.window],
                                  window_b=WINDOWS[params.window_b] if params.window_b
                                  else None, transform=params.transform)
    what = res.get_column("comparison")[0] if res.height else params.window
    label = "centred log-ratio" if params.transform == "clr" else "logit of the proportion"
    fig = figs.effect_dots(res, x_title=f"difference in {label}",
                           title=f"Cell-type composition: {what}")
    method = _COMPOSITION_METHOD if params.transform == "clr" else \
        _COMPOSITION_METHOD.replace("centred log-ratio per patient (Aitchison)",
                                    "logit of each proportion per patient")
    return (FigureSpec("composition-test", "Composition with uncertainty", fig, data=res,
                       params=params, caption=method),
            TableSpec("composition-test-table", f"Composition: {what}", res, params=params,
                      caption=method))


def save_car_threshold(study: Study, threshold: float) -> Path:
    """Write the adjusted cut into study.toml [rules] (car_threshold_method = "fixed")."""
    from data_loaders.rules_file import save_rule_settings

    return save_rule_settings(study.path, {"car_threshold_method": "fixed",
                                           "car_threshold": float(threshold)})


# ---- receptors and clones -----------------------------------------------------------------------
def has_cell_receptors(study: Study) -> bool:
    return getattr(study, "single_cell", None) is not None and \
        study.single_cell.receptors.filter(pl.col("cell").is_not_null()).height > 0


@dataclass(frozen=True)
class ClonesParams:
    patient: str | None = None
    source: str = "auto"
    timepoint: str | None = None       # the later sample compared with the reference
    metric: str = "clonality"
    value: str = "share_ratio"
    reference: str = "auto"            # "baseline": never the infusion product


def rarefied(study: Study, *, cohort: Cohort, params: ClonesParams,
             focus: Any = None, groups: pl.DataFrame | None = None) -> FigureSpec:
    """A repertoire metric at a common depth (rarefaction) per patient over time."""
    g = _groups(study, groups)
    rules = rules_for(study)
    rar = apply_cohort(rarefied_table(study, rules=rules), cohort, groups=g).join(
        g.select("subject_id", pl.col("response_group").alias("group")), on="subject_id",
        how="left")
    sub = rar.filter((pl.col("metric") == params.metric) & pl.col("rarefied"))
    depth = int(rar.get_column("depth")[0]) if rar.height else 0
    left_out = rar.filter(~pl.col("rarefied")).get_column("sample_id").unique().to_list()
    fig = figs.rarefied_lines(sub, y_title=METRIC_LABELS.get(params.metric, params.metric),
                              title=f"{METRIC_LABELS.get(params.metric)} at {depth:,} "
                                    "receptors per sample")
    return FigureSpec("rarefied", "Depth-matched repertoire metric", fig, data=rar,
                      params=params,
                      caption=f"Rarefaction: {rules.rarefaction_repeats} seeded subsamplings "
                      f"of {depth:,} receptors without replacement per sample; mean and "
                      "2.5-97.5 % interval" + (f"; left out (fewer receptors): "
                                               f"{', '.join(left_out)}" if left_out else "")
                      + ".")


def later_timepoints(study: Study, *, source: str = "auto") -> list[str]:
    """Timepoint labels of the samples with clone counts after day 0, in day order (what the
    reference can be compared with)."""
    counts, samples, _ = _counts(study, source)
    have = samples.filter(pl.col("sample_id").is_in(counts.get_column("sample_id").unique()
                                                   .implode()) & (pl.col("day") > 0))
    if "timepoint" not in have.columns:
        have = have.with_columns(pl.format("D{}", "day").alias("timepoint"))
    return (have.with_columns(pl.col("timepoint").fill_null(pl.format("D{}", "day")))
            .group_by("timepoint").agg(pl.col("day").min()).sort("day")
            .get_column("timepoint").to_list())


def _counts(study: Study, source: str) -> tuple[pl.DataFrame, pl.DataFrame, str]:
    return ctr.clone_counts(study, source=source)  # type: ignore[arg-type]


def tracking(study: Study, *, cohort: Cohort, params: ClonesParams,
             focus: Any = None, groups: pl.DataFrame | None = None
             ) -> tuple[FigureSpec, FigureSpec | None, TableSpec]:
    """One patient: alluvial of the dominant clones, the per-clone change between the
    reference and `params.timepoint` (volcano) and the table of those clones."""
    rules = rules_for(study)
    counts, samples, used = _counts(study, params.source)
    traj = ctr.dominant_trajectories(counts, samples, rules=rules, subjects=(params.patient,),
                                     reference=params.reference)  # type: ignore[arg-type]
    states = ctr.clone_states(traj)
    ref = traj.filter(pl.col("class") == "reference")
    what = ref.get_column("sample_id")[0] if ref.height else "no reference sample"
    alluvial = FigureSpec(
        "clone-alluvial", "Dominant clones over time",
        figs.clone_alluvial(states, title=f"{params.patient}: top {rules.clone_top} clones of "
                                          f"{what}"), data=traj, params=params,
        caption=f"Source: {SOURCES[used]}. Band width = the clone's share at the reference; "
                "later columns: class against the reference (Fisher exact, BH q < "
                f"{rules.clone_fdr:g}).")
    changes = ctr.clone_changes(counts, samples.filter(
        pl.col("subject_id") == params.patient), rules=rules,
        reference=params.reference)  # type: ignore[arg-type]
    tps = changes.get_column("timepoint_b").unique(maintain_order=True).to_list()
    tp = params.timepoint if params.timepoint in tps else (tps[0] if tps else None)
    one = changes.filter(pl.col("timepoint_b") == tp) if tp else changes
    volcano = FigureSpec(
        "clone-volcano", "Per-clone change", figs.clone_volcano(
            one, fdr=rules.clone_fdr, title=f"{params.patient}: every clone, reference vs "
                                            f"{tp}"), data=one, params=params,
        caption="Two-sided Fisher exact test of each clone's count against the rest of the "
                "repertoire between the two samples; BH over the clones of this patient and "
                "pair.") if tp else None
    top = one.sort("count_a", descending=True).head(50)
    return alluvial, volcano, TableSpec("clone-changes", f"Largest reference clones vs {tp}",
                                        top, params=params)


def fate(study: Study, *, cohort: Cohort, params: ClonesParams,
         focus: Any = None, groups: pl.DataFrame | None = None
         ) -> tuple[FigureSpec, TableSpec]:
    """Fate of each patient's dominant reference clones over time by response group, and
    responders vs non-responders per timepoint (Mann-Whitney, one value per patient)."""
    g = _groups(study, groups)
    rules = rules_for(study)
    counts, samples, used = _counts(study, params.source)
    traj = apply_cohort(ctr.dominant_trajectories(
        counts, samples, rules=rules, reference=params.reference),  # type: ignore[arg-type]
        cohort, groups=g)
    per = ctr.dominant_fate(traj, groups=g)
    labels = {"share_ratio": "share of the reference top clones, relative to the reference",
              "fraction_contracted_or_lost": "fraction of the top clones contracted or lost"}
    fig = figs.repertoire_lines(per.rename({"response_group": "group"}), metric=params.value,
                                y_title=labels.get(params.value, params.value),
                                title=f"Fate of the top {rules.clone_top} pre-infusion clones")
    cmp = ctr.fate_comparison(per, value=params.value)
    cd8 = "" if used == "cells_cd8" else (
        " Bulk TRB repertoire: all T cells, not sorted by CD8." if used == "tcr" else
        " All T cells with receptors (choose the CD8 source for CD8 cells only).")
    return (FigureSpec("clone-fate", "Dominant pre-infusion clones over time", fig, data=per,
                       params=params, caption=f"Source: {SOURCES[used]}.{cd8}"),
            TableSpec("clone-fate-test", "Responders vs non-responders, per timepoint", cmp,
                      params=params, caption="One value per patient; two-sided Mann-Whitney "
                      "(exact for small groups; analysis/stats.py); not corrected across "
                      "timepoints."))


def receptor_views(study: Study, *, cohort: Cohort, params: ClonesParams,
                   focus: Any = None, groups: pl.DataFrame | None = None
                   ) -> tuple[TableSpec, FigureSpec | None, TableSpec]:
    """Clonotypes per cell (table), clone size on the embedding (None without one) and the
    clone-by-phenotype table."""
    from analysis.embedding import available_bases, load_embedding

    g = _groups(study, groups)
    clones = apply_cohort(ct.study_cell_clonotypes(study), cohort, groups=g)
    table = clones.filter(pl.col("clonotype").is_not_null()).select(
        "cell_id", "sample_id", "subject_id", "day", "cell_type", "clonotype", "clone_size",
        "clone_size_patient", "chain_pairing", "cdr3_vj", "cdr3_vdj")
    pairing = clones.group_by("chain_pairing").len().sort("len", descending=True)
    caption = ("Clonotype = identical CDR3 amino acids of the primary TRA and TRB chains "
               "(most UMIs) within a patient; orphan chains are their own clones; multichain "
               "cells have none. Chain pairing: " + ", ".join(
                   f"{a} {b}" for a, b in pairing.iter_rows()) + ".")
    emb_spec = None
    bases = [b for b in available_bases(study)]
    if bases:
        coords = load_embedding(study, basis=bases[0]).coords
        pts = pl.DataFrame({"cell": np.arange(coords.shape[0]), "x": coords[:, 0],
                            "y": coords[:, 1]}).join(
            clones.select("cell", "clonotype", "clone_size"), on="cell", how="left")
        pts = pts.with_columns(ct.expansion_label(pl.col("clone_size")).alias("expansion"))
        emb_spec = FigureSpec("clone-embedding", "Clonal expansion on the embedding",
                              figs.expansion_embedding(pts, title=f"Clone size in the sample "
                                                                  f"({bases[0]})"),
                              data=pts, params=params, caption=caption)
    return (TableSpec("clonotypes", "Clonotypes per cell", table, params=params,
                      caption=caption),
            emb_spec,
            TableSpec("clone-phenotype", "Clones by phenotype (clones of 2 or more cells)",
                      ct.clone_phenotype(clones), params=params))
