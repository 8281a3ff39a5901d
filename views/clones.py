"""Recipes of the Clones & repertoire page (no streamlit): somatic clones (VAF over time, the
oncoprint), the T-cell repertoire (a diversity metric over time, raw or depth-matched, the
metrics table, one patient's baseline top clones and the overlap between their samples), clones
across time (alluvial of the dominant clones, per-clone change, fate by response group) and
receptors joined to cells. Each takes the Study, the cohort and a frozen Params and returns one
FigureSpec or TableSpec (None when the study lacks what it draws); records of one computation
share it (views.shared). The option lists the page offers (genes by recurrence, patients with
a repertoire, later timepoints, clone sources) are here too.

The analyses are those of analysis.clones, analysis.repertoire (rarefaction, overlap),
analysis.clone_tracking and analysis.clonotypes; every comparison is patient-level. The shared
focus (`focus`) is accepted for the common call shape; these views draw every patient of the
cohort. The CAR+ block of the Immune landscape is in views/car_cells.py.

One job, over 400 lines: the records of the Clones & repertoire page and the option lists their
Params come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import polars as pl

from analysis import clone_tracking as ctr
from analysis import clonotypes as ct
from analysis.clones import gene_recurrence, oncoprint_grid, vaf_tracks
from analysis.cohort import Cohort, apply_cohort, cohort_subjects, response_groups
from analysis.repertoire import (
    METRIC_LABELS,
    METRICS,
    morisita_overlap,
    rarefied_table,
    repertoire_table,
    top_clone_tracking,
)
from analysis.rules import rules_for
from analysis.vocab import LANDMARKS
from components.figures import clones as figs
from views import common
from views.shared import shared
from views.spec import FigureSpec, TableSpec, recipe

if TYPE_CHECKING:
    from analysis.cohort import Focus
    from data_loaders import Study

__all__ = ["SomaticParams", "RepertoireParams", "ClonesParams", "METRICS", "METRIC_LABELS",
           "RAREFIED_METRICS", "FateValue", "FATE_VALUES", "REFERENCES", "SOURCES", "NO_MUTATIONS", "NO_TCR", "somatic_genes", "vaf",
           "oncoprint", "repertoire_patients", "repertoire_metrics", "repertoire_metric",
           "rarefied", "top_clones", "overlap", "has_cell_receptors", "clone_sources",
           "later_timepoints", "REFERENCE_LABELS", "first_compared", "clone_alluvial", "clone_volcano", "clone_changes",
           "fate_figure", "fate_table", "clonotypes_table", "clone_embedding",
           "clone_phenotype"]

Metric = Literal["richness", "shannon", "clonality", "simpson", "top10_share"]
RAREFIED_METRICS = ("richness", "shannon", "clonality", "simpson")
# what the fate of each patient's top clones is drawn as
FateValue = Literal["share_ratio", "fraction_contracted_or_lost"]
FATE_VALUES: tuple[FateValue, ...] = get_args(FateValue)
REFERENCES: tuple[ctr.Reference, ...] = get_args(ctr.Reference)
SOURCES = {"auto": "single cells with receptors when present, else bulk TCR",
           "tcr": "bulk TCR repertoire (tcr table)", "cells": "single cells with receptors",
           "cells_cd8": "single CD8 cells with receptors (CD8A or CD8B detected)"}
NO_MUTATIONS = ("No somatic mutation data: add mutations.csv (sample_id, gene, vaf; optional "
                "variant, depth, classification) or a MAF file, with samples.csv placing each "
                "sample in time.")
NO_TCR = ("No TCR repertoire data: add tcr.csv (sample_id, junction_aa, count), an AIRR "
          "rearrangement TSV or 10x VDJ contigs, with samples.csv placing each sample in time.")


def _cohort(cohort: Cohort | None) -> Cohort:
    return cohort if cohort is not None else Cohort()


def _group_of(study: Study) -> pl.DataFrame:
    return response_groups(study).select("subject_id", pl.col("response_group").alias("group"))


# ---- somatic clones -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SomaticParams:
    """Genes drawn (None: the 9 most recurrent in the cohort) and the VAF axis."""

    genes: tuple[str, ...] | None = None
    log_vaf: bool = False


def _tracks(study: Study, cohort: Cohort | None) -> pl.DataFrame:
    return apply_cohort(vaf_tracks(study), _cohort(cohort), groups=response_groups(study))


def somatic_genes(study: Study, *, cohort: Cohort | None = None) -> list[str]:
    """Genes mutated in the cohort's patients, most recurrent first (a panel study has a
    handful, an exome hundreds)."""
    return gene_recurrence(_tracks(study, cohort)).get_column("gene").to_list()


@recipe
def vaf(study: Study, *, cohort: Cohort | None = None, params: SomaticParams = SomaticParams(),
        focus: Focus | None = None) -> FigureSpec:
    """VAF over time, one panel per gene, one line per patient. Raises ValueError when no
    chosen gene has a sequenced sample in the cohort (the message says what to check)."""
    genes = params.genes if params.genes is not None else \
        tuple(somatic_genes(study, cohort=cohort)[:9])
    tracks = _tracks(study, cohort).filter(pl.col("gene").is_in(list(genes)))
    if tracks.height == 0:
        raise ValueError("No gene chosen, no sequenced sample of the selected patients falls "
                         "in the day window, or samples.csv does not list the mutation "
                         "samples.")
    fig = figs.vaf_lines(tracks, colors=common.colors(study, cohort), log_y=params.log_vaf,
                         category_orders={"subject_id": study.subject_ids})
    return FigureSpec("vaf_over_time", "Somatic VAF over time", fig, tracks, params)


@recipe
def oncoprint(study: Study, *, cohort: Cohort | None = None,
              params: SomaticParams = SomaticParams(),
              focus: Focus | None = None) -> FigureSpec | None:
    """Patients x the 40 most recurrent genes at baseline and last follow-up (None when the
    cohort's patients have no sequenced sample)."""
    subjects = cohort_subjects(response_groups(study), _cohort(cohort))
    ranked = somatic_genes(study, cohort=cohort)[:40]
    grid = oncoprint_grid(study).filter(pl.col("subject_id").is_in(subjects)
                                        & pl.col("gene").is_in(ranked))
    if grid.height == 0:
        return None
    return FigureSpec("oncoprint", "Oncoprint", figs.oncoprint(grid, subjects=subjects), grid,
                      params)


# ---- the T-cell repertoire ----------------------------------------------------------------------
@dataclass(frozen=True)
class RepertoireParams:
    """A repertoire metric over time (depth-matched by rarefaction when `depth_matched` and the
    metric depends on depth), and one patient's `top` baseline clones (None: the first
    patient with a repertoire)."""

    metric: Metric = "clonality"
    depth_matched: bool = True
    patient: str | None = None
    top: int = 10


def _repertoire(study: Study, cohort: Cohort | None) -> pl.DataFrame:
    return apply_cohort(repertoire_table(study), _cohort(cohort),
                        groups=response_groups(study)).join(_group_of(study), on="subject_id",
                                                            how="left")


def repertoire_patients(study: Study, *, cohort: Cohort | None = None) -> list[str]:
    """Patients of the cohort with a TCR sample in the day window."""
    return _repertoire(study, cohort).get_column("subject_id").unique().sort().to_list()


@recipe
def repertoire_metrics(study: Study, *, cohort: Cohort | None = None,
                       params: RepertoireParams = RepertoireParams(), focus: Focus | None = None
                       ) -> TableSpec:
    """Every repertoire metric of every TCR sample of the cohort (raw, all receptors)."""
    return TableSpec("tcr_metrics", "Repertoire metrics per sample", _repertoire(study, cohort),
                     params)


@recipe
def repertoire_metric(study: Study, *, cohort: Cohort | None = None,
                      params: RepertoireParams = RepertoireParams(), focus: Focus | None = None
                      ) -> FigureSpec:
    """The metric per patient over time: at a common depth (rarefied) when asked and the
    metric depends on depth, else the raw metric of all receptors of each sample."""
    if params.depth_matched and params.metric in RAREFIED_METRICS:
        return rarefied(study, cohort=cohort, params=params)
    rep = _repertoire(study, cohort)
    label = METRIC_LABELS[params.metric]
    fig = figs.repertoire_lines(rep, metric=params.metric, y_title=label,
                                title=f"{label} over time")
    return FigureSpec(f"tcr_{params.metric}", f"{label} over time", fig, rep, params,
                      "Raw metric of all receptors of each sample (not depth-matched).")


@recipe
def rarefied(study: Study, *, cohort: Cohort | None = None,
             params: RepertoireParams = RepertoireParams(),
             focus: Focus | None = None) -> FigureSpec:
    """A repertoire metric at a common depth (rarefaction) per patient over time."""
    g = response_groups(study)
    rules = rules_for(study)
    rar = apply_cohort(rarefied_table(study, rules=rules), _cohort(cohort), groups=g).join(
        _group_of(study), on="subject_id", how="left")
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


def _patient(study: Study, cohort: Cohort | None, params: RepertoireParams) -> str:
    if params.patient is not None:
        return params.patient
    patients = repertoire_patients(study, cohort=cohort)
    if not patients:
        raise ValueError("no patient of the cohort has a TCR sample in the day window")
    return patients[0]


@recipe
def top_clones(study: Study, *, cohort: Cohort | None = None,
               params: RepertoireParams = RepertoireParams(),
               focus: Focus | None = None) -> FigureSpec:
    """One patient's `top` baseline clonotypes over time (stacked area, the rest in grey)."""
    patient = _patient(study, cohort, params)
    tracked = top_clone_tracking(study, top=params.top, subjects=(patient,))
    fig = figs.clone_area(tracked, title=f"{patient}: baseline top {params.top} clonotypes "
                                         "over time")
    return FigureSpec(f"{patient}_top_clones", "Baseline top clones over time", fig, tracked,
                      params)


@recipe
def overlap(study: Study, *, cohort: Cohort | None = None,
            params: RepertoireParams = RepertoireParams(),
            focus: Focus | None = None) -> FigureSpec:
    """Morisita-Horn overlap between one patient's samples."""
    patient = _patient(study, cohort, params)
    data = morisita_overlap(study, subjects=(patient,))
    fig = figs.overlap_heatmap(data, title=f"{patient}: repertoire overlap (Morisita-Horn)")
    return FigureSpec(f"{patient}_overlap", "Repertoire overlap", fig, data, params)


# ---- receptors and clones -----------------------------------------------------------------------
def has_cell_receptors(study: Study) -> bool:
    """Whether the single-cell file's cells carry receptors (clonotypes per cell)."""
    return getattr(study, "single_cell", None) is not None and \
        study.single_cell.receptors.filter(pl.col("cell").is_not_null()).height > 0


def clone_sources(study: Study) -> list[str]:
    """Where clones can be followed from: single (CD8) cells with receptors, the bulk TCR
    table."""
    cells = ["cells_cd8", "cells"] if has_cell_receptors(study) else []
    return cells + (["tcr"] if study.has("tcr") else [])


@dataclass(frozen=True)
class ClonesParams:
    """Clones across time: one patient's dominant clones from `source`, the reference
    ("auto": the infusion product when sequenced, else baseline) compared with `timepoint`;
    the fate of every patient's top clones as `value`."""

    patient: str | None = None
    source: ctr.Source = "auto"
    timepoint: str | None = None       # the later sample compared with the reference
    metric: Metric = "clonality"
    value: FateValue = "share_ratio"
    reference: ctr.Reference = "auto"  # "baseline": never the infusion product


REFERENCE_LABELS = {"auto": "infusion product when sequenced, else baseline",
                    "baseline": "baseline"}


def first_compared(later: Sequence[str]) -> int:
    """Which later timepoint the reference is compared with first: D28 (the first response
    landmark) when sampled, else the earliest."""
    first = next(iter(LANDMARKS))
    return list(later).index(first) if first in later else 0


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


@shared
def _tracking(study: Study, params: ClonesParams
              ) -> tuple[FigureSpec, FigureSpec | None, TableSpec]:
    """One patient: alluvial of the dominant clones, the per-clone change between the
    reference and `params.timepoint` (volcano) and the table of those clones."""
    rules = rules_for(study)
    counts, samples, used = _counts(study, params.source)
    traj = ctr.dominant_trajectories(counts, samples, rules=rules, subjects=(params.patient,),
                                     reference=params.reference)
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
        reference=params.reference)
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


@shared
def _fate(study: Study, cohort: Cohort, params: ClonesParams) -> tuple[FigureSpec, TableSpec]:
    """Fate of each patient's dominant reference clones over time by response group, and
    responders vs non-responders per timepoint (Mann-Whitney, one value per patient)."""
    g = response_groups(study)
    rules = rules_for(study)
    counts, samples, used = _counts(study, params.source)
    traj = apply_cohort(ctr.dominant_trajectories(
        counts, samples, rules=rules, reference=params.reference),
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


@shared
def _receptors(study: Study, cohort: Cohort, params: ClonesParams
               ) -> tuple[TableSpec, FigureSpec | None, TableSpec]:
    """Clonotypes per cell (table), clone size on the embedding (None without one) and the
    clone-by-phenotype table."""
    from analysis.embedding import available_bases, load_embedding

    g = response_groups(study)
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


@recipe
def clone_alluvial(study: Study, *, cohort: Cohort | None = None,
                   params: ClonesParams = ClonesParams(), focus: Focus | None = None) -> FigureSpec:
    """One patient's dominant reference clones over time (alluvial, class against the
    reference)."""
    return _tracking(study, params)[0]


@recipe
def clone_volcano(study: Study, *, cohort: Cohort | None = None,
                  params: ClonesParams = ClonesParams(), focus: Focus | None = None
                  ) -> FigureSpec | None:
    """Every clone of the patient, reference vs `params.timepoint` (Fisher exact, BH); None
    when the patient has no later sample."""
    return _tracking(study, params)[1]


@recipe
def clone_changes(study: Study, *, cohort: Cohort | None = None,
                  params: ClonesParams = ClonesParams(), focus: Focus | None = None) -> TableSpec:
    """The 50 largest reference clones and their change at `params.timepoint`."""
    return _tracking(study, params)[2]


@recipe
def fate_figure(study: Study, *, cohort: Cohort | None = None,
                params: ClonesParams = ClonesParams(), focus: Focus | None = None) -> FigureSpec:
    """The fate of each patient's top pre-infusion clones over time, by response group."""
    return _fate(study, _cohort(cohort), params)[0]


@recipe
def fate_table(study: Study, *, cohort: Cohort | None = None,
               params: ClonesParams = ClonesParams(), focus: Focus | None = None) -> TableSpec:
    """Responders vs non-responders per timepoint (one value per patient, Mann-Whitney)."""
    return _fate(study, _cohort(cohort), params)[1]


@recipe
def clonotypes_table(study: Study, *, cohort: Cohort | None = None,
                     params: ClonesParams = ClonesParams(),
                     focus: Focus | None = None) -> TableSpec:
    """Clonotypes per cell of the cohort (cells with a clonotype)."""
    return _receptors(study, _cohort(cohort), params)[0]


@recipe
def clone_embedding(study: Study, *, cohort: Cohort | None = None,
                    params: ClonesParams = ClonesParams(), focus: Focus | None = None
                    ) -> FigureSpec | None:
    """Clone size on the first embedding (None when the file holds none)."""
    return _receptors(study, _cohort(cohort), params)[1]


@recipe
def clone_phenotype(study: Study, *, cohort: Cohort | None = None,
                    params: ClonesParams = ClonesParams(), focus: Focus | None = None) -> TableSpec:
    """Clones of two or more cells by phenotype."""
    return _receptors(study, _cohort(cohort), params)[2]
