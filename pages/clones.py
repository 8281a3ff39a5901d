"""Clones & repertoire: somatic clones (VAF over time, oncoprint) and the T-cell repertoire
(diversity over time, depth-matched diversity, baseline top clones, overlap between timepoints),
receptors joined to cells and clones across time (recipes of the last three: views/clones)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import streamlit as st

from analysis.clones import gene_recurrence, oncoprint_grid, vaf_tracks
from analysis.repertoire import (
    METRIC_LABELS,
    METRICS,
    morisita_overlap,
    repertoire_table,
    top_clone_tracking,
)
from components import filters, render
from components.figures.clones import (
    clone_area,
    oncoprint,
    overlap_heatmap,
    repertoire_lines,
    vaf_lines,
)
from views import clones as vc


@dataclass(frozen=True)
class ClonesParams:
    genes: tuple[str, ...]
    vaf_scale: str
    metric: str
    patient: str | None
    top_clones: int
    cohort: str




ctx = filters.context()
study = ctx.study
st.title("Clones & repertoire")
name = study.name
group_of = ctx.groups.select("subject_id", pl.col("response_group").alias("group"))

st.subheader("Somatic clones")
if not study.has("mutations"):
    st.info("No somatic mutation data: add mutations.csv (sample_id, gene, vaf; optional "
            "variant, depth, classification) or a MAF file, with samples.csv placing each "
            "sample in time.")
    log_vaf, genes = False, []
else:
    tracks = ctx.apply(filters.compute(vaf_tracks, study))
    ranked = gene_recurrence(tracks).get_column("gene").to_list()
    # a panel study has a handful of genes, an exome hundreds: start with the most recurrent
    genes = st.multiselect("Genes (most recurrent first)", ranked, default=ranked[:9],
                           max_selections=24, key="cln-genes")
    log_vaf = st.toggle("Log VAF axis", key="cln-log")
    tracks = tracks.filter(pl.col("gene").is_in(genes))
    if tracks.height:
        render.show_figure(filters.cached(vaf_lines, tracks, colors=ctx.colors, log_y=log_vaf),
                           key="cln-vaf", name=f"{name}_vaf_over_time", data=tracks)
    else:
        st.info("No gene chosen, no sequenced sample of the selected patients falls in the day "
                "window, or samples.csv does not list the mutation samples.")
    grid = filters.compute(oncoprint_grid, study).filter(
        pl.col("subject_id").is_in(list(ctx.subjects)) & pl.col("gene").is_in(ranked[:40]))
    if grid.height:
        render.show_figure(filters.cached(oncoprint, grid, subjects=list(ctx.subjects)),
                           key="cln-oncoprint",
                           name=f"{name}_oncoprint", data=grid)

st.subheader("T-cell repertoire")
metric, patient, top = "clonality", None, 10
if not study.has("tcr"):
    st.info("No TCR repertoire data: add tcr.csv (sample_id, junction_aa, count), an AIRR "
            "rearrangement TSV or 10x VDJ contigs, with samples.csv placing each sample in time.")
else:
    rep = ctx.apply(filters.compute(repertoire_table, study)).join(group_of, on="subject_id",
                                                                   how="left")
    if rep.height == 0:
        st.info("No TCR sample of the selected patients falls in the day window, or "
                "samples.csv does not list the TCR samples.")
    else:
        metric = st.selectbox("Metric", METRICS, index=METRICS.index("clonality"),
                              format_func=METRIC_LABELS.get, key="cln-metric")
        matched = st.toggle("Depth-matched (rarefied to a common depth)", value=True,
                            key="cln-rarefy", disabled=metric not in vc.RAREFIED_METRICS,
                            help="Richness, Shannon and clonality grow with the number of "
                            "receptors sequenced; rarefaction makes samples comparable")
        if matched and metric in vc.RAREFIED_METRICS:
            render.show(filters.compute(vc.rarefied, study, cohort=ctx.cohort,
                                  params=vc.ClonesParams(metric=metric)), key="cln-rarefied")
        else:
            render.show_figure(filters.cached(repertoire_lines, rep, metric=metric,
                                              y_title=METRIC_LABELS[metric],
                                              title=f"{METRIC_LABELS[metric]} over time"),
                               key="cln-metric-fig", name=f"{name}_tcr_{metric}", data=rep)
            st.caption("Raw metric of all receptors of each sample (not depth-matched).")
        render.show_table(rep, key="cln-metric-table", name=f"{name}_tcr_metrics")
        patients = rep.get_column("subject_id").unique().sort().to_list()
        c1, c2 = st.columns([2, 1])
        patient = c1.selectbox("Patient", patients, key="cln-patient")
        top = c2.slider("Baseline top clones", 3, 20, 10, key="cln-top")
        tracked = filters.compute(top_clone_tracking, study, top=top, subjects=(patient,))
        overlap = filters.compute(morisita_overlap, study, subjects=(patient,))
        left, right = st.columns(2)
        with left:
            render.show_figure(clone_area(tracked, title=f"{patient}: baseline top {top} "
                                                         "clonotypes over time"),
                               key="cln-area", name=f"{name}_{patient}_top_clones",
                               data=tracked)
        with right:
            render.show_figure(overlap_heatmap(overlap, title=f"{patient}: repertoire overlap "
                                                              "(Morisita-Horn)"),
                               key="cln-overlap", name=f"{name}_{patient}_overlap",
                               data=overlap)



# ---- depth-matched metrics, clones across time, receptors per cell (views/clones.py) -----------
cells_ir = filters.compute(vc.has_cell_receptors, study)
if study.has("tcr") or cells_ir:
    st.subheader("Clones across time")
    sources = (["cells_cd8", "cells"] if cells_ir else []) + (["tcr"] if study.has("tcr")
                                                               else [])
    c1, c2, c3, c4 = st.columns(4)
    source = c1.selectbox("Clones from", sources, format_func=vc.SOURCES.get, key="cln-source")
    ref = c2.selectbox("Reference", ["auto", "baseline"], key="cln-reference",
                       format_func={"auto": "infusion product when sequenced, else baseline",
                                    "baseline": "baseline"}.get)
    who = c3.selectbox("Patient", list(ctx.subjects), key="cln-track-patient")
    later = filters.compute(vc.later_timepoints, study, source=source)
    when = c4.selectbox("Compare the reference with", later, key="cln-track-tp",
                        index=later.index("D28") if "D28" in later else 0)
    cp = vc.ClonesParams(patient=who, source=source, timepoint=when, metric=metric,
                         reference=ref)
    alluvial, volcano, changes = filters.compute(vc.tracking, study, cohort=ctx.cohort,
                                                 params=cp)
    render.show(alluvial, key="cln-alluvial")
    if volcano is not None:
        render.show(volcano, key="cln-volcano")
        render.show(changes, key="cln-changes")
    for k, spec in enumerate(filters.compute(vc.fate, study, cohort=ctx.cohort, params=cp)):
        render.show(spec, key=f"cln-fate-{k}")
if cells_ir:
    st.subheader("Receptors per cell")
    for k, spec in enumerate(filters.compute(vc.receptor_views, study, cohort=ctx.cohort,
                                             params=vc.ClonesParams())):
        if spec is not None:
            render.show(spec, key=f"cln-cells-{k}")

render.show_params(ClonesParams(tuple(genes), "log" if log_vaf else "linear", metric, patient, top,
                                ctx.cohort.describe()))
