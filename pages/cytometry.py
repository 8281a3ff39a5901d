"""Cytometry: populations gated from the study's FCS files with its FlowJo workspace or
Gating-ML file (data_loaders/flow.py), gate plots of a sample, one gate over a patient's
timepoints, and FlowSOM metaclusters with their abundances per sample and response group."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import streamlit as st

from analysis import composition as comp
from analysis import flow as fl
from components import filters, render
from components.figures import cytometry as figs
from components.figures.landscape import composition_bars, composition_by_window_figure
from data_loaders.flow import regate_study, sample_gate_views, study_jobs
from data_loaders.formats.fcs import FLOW_COFACTOR, flow_events, flow_samples


@dataclass(frozen=True)
class GatePlotParams:
    sample_id: str
    population: str
    subject_id: str
    max_points: int = 5000


def _axis(name: str, transform: str) -> str:
    return f"{name} ({transform})" if transform else name


ctx = filters.context()
study = ctx.study
st.title("Cytometry")
rows, jobs = study_jobs(study)
n_fcs = flow_samples(study).height
if n_fcs == 0:
    st.info("This study has no flow cytometry files: rows of the samples table with assay "
            "`flow_fcs` and a `file` column naming .fcs files (see docs/formats.md, Flow "
            "cytometry).")
    st.stop()

# ---- gating status and job ----------------------------------------------------------------
pops = ctx.apply(study.populations)
problems = [f for f in study.report.findings if f.table == "flow" and f.severity != "note"]
gated = study.populations.get_column("sample_id").n_unique() if study.populations.height else 0
if not jobs:
    st.info(f"{n_fcs} FCS file(s) but no gate file: name a FlowJo workspace (.wsp) or a "
            "Gating-ML 2.0 file in study.toml `[flow] gating = \"...\"` or in a `gating` "
            "column of samples.csv. FlowSOM clustering below works without gates.")
else:
    st.caption(f"{gated} of {len(jobs)} gated FCS file(s); gate file(s): "
               f"{', '.join(sorted({j.gates.rsplit('/', 1)[-1] for j in jobs}))}.")
for f in problems:
    st.warning(f"{f.file}: {f.problem}")
if jobs and st.button(f"Gate all {len(jobs)} files again", key="cy-regate",
                      help="Reads every FCS file again (results are cached by file content "
                      "and gate file), in parallel processes"):
    bar = st.progress(0.0, "starting")
    _, rep = regate_study(study, force=True, progress=lambda d, t, label: bar.progress(
        d / max(t, 1), f"{d} of {t} files: {label}"))
    filters.reload_study()
    st.rerun()

tab_pop, tab_gates, tab_time, tab_som = st.tabs(
    ["Populations", "Gate plots", "One gate over time", "FlowSOM clusters"])

# ---- populations ------------------------------------------------------------------------------
with tab_pop:
    if pops.height == 0:
        st.info("No gated populations" + (" for the patients and days in the sidebar filter."
                                          if study.populations.height else "."))
    else:
        names = fl.population_names(pops)
        ref = st.selectbox("% of reference population", ["(as study.toml)", *names],
                           key="cy-ref")
        table = fl.populations_table(study) if ref == "(as study.toml)" else \
            fl.populations_table(study, reference=ref)
        render.show_table(ctx.apply(table), key="cy-pop-table", name=f"{study.name}_populations")
        pick = st.selectbox("Population over time", names, key="cy-pop-trend",
                            index=len(names) - 1)
        trend = fl.gate_over_time(pops, population=pick)
        render.show_figure(figs.population_lines(trend, colors=ctx.colors,
                                                 title=f"{pick}: % of parent"),
                           key="cy-trend", name=f"{study.name}_population_trend", data=trend)

# ---- gate plots of one sample ---------------------------------------------------------------
with tab_gates:
    ids = [s for s in rows.get_column("sample_id").to_list()
           if s in set(pops.get_column("sample_id").to_list())] if rows.height else []
    if not ids:
        st.info("No gated sample to draw.")
    else:
        sample_id = st.selectbox("Sample", ids, key="cy-sample")
        views = filters.compute(sample_gate_views, study, sample_id=sample_id,
                                max_points=5000)
        cols = st.columns(2)
        for i, view in enumerate(views):
            with cols[i % 2]:
                if view.gate_type == "boolean":
                    st.metric(view.population, f"{view.count:,} events",
                              f"{100 * view.count / max(view.parent_count, 1):.2f}% of parent",
                              delta_color="off")
                    continue
                fig = figs.gate_plot(fl.gate_points(view), y="y" if view.y else None,
                                     shape=view.shape, count=view.count,
                                     parent_count=view.parent_count, title=view.population,
                                     labels={"x": _axis(view.x_label, view.x_transform),
                                             "y": _axis(view.y_label, view.y_transform)})
                render.show_figure(fig, key=f"cy-gate-{i}", name=f"{sample_id}_gate_{i}",
                                   data=fl.gate_points(view))

# ---- one gate over a patient's timepoints ---------------------------------------------------
with tab_time:
    if pops.height == 0:
        st.info("No gated populations to compare over time.")
    else:
        c1, c2 = st.columns(2)
        subject = c1.selectbox("Patient", pops.get_column("subject_id").unique().sort()
                               .to_list(), key="cy-subject")
        plottable = fl.population_names(pops.filter(pl.col("gate_type") != "boolean"))
        population = c2.selectbox("Gate", plottable, key="cy-time-gate")
        mine = pops.filter(pl.col("subject_id") == subject).sort("day")
        by_panel = {}
        for r in mine.unique("sample_id", maintain_order=True).iter_rows(named=True):
            label = f"{r['timepoint'] or ''} (day {r['day']})".strip()
            by_panel[label] = filters.compute(sample_gate_views, study,
                                              sample_id=r["sample_id"],
                                              populations=(population,), max_points=3000)[0]
        points, shapes, stats = fl.gate_panels(by_panel)
        v0 = next(iter(by_panel.values()))
        fig = figs.gate_small_multiples(
            points, y="y" if v0.y else None, facet_col="panel", shapes=shapes, stats=stats,
            labels={"x": _axis(v0.x_label, v0.x_transform),
                    "y": _axis(v0.y_label, v0.y_transform)},
            title=f"{subject}: {population}")
        render.show_figure(fig, key="cy-multiples", name=f"{study.name}_{subject}_gate",
                           data=points)
        render.show_params(GatePlotParams(", ".join(mine.get_column("sample_id").unique()
                                                    .to_list()), population, subject, 3000))

# ---- FlowSOM ------------------------------------------------------------------------------------
with tab_som:
    per_file = st.select_slider("Events per sample", [500, 1000, 2000, 5000], value=1000,
                                key="cy-som-events")
    events = filters.compute(flow_events, study, per_file=per_file, cofactor=FLOW_COFACTOR)
    for msg in events.errors:
        st.warning(msg)
    markers = st.multiselect("Markers to cluster on (asinh, cofactor 150)",
                             list(events.markers), default=list(events.markers),
                             key="cy-som-markers")
    k = st.slider("Metaclusters", 3, 30, 10, key="cy-som-k")
    if len(markers) < 2:
        st.info("Choose at least two markers.")
        st.stop()
    params = fl.FlowSomParams(tuple(markers), n_metaclusters=k, per_sample=per_file)
    if not st.toggle("Run FlowSOM", value=True, key="cy-som-run",
                     help="A 10 x 10 self-organising map, then consensus metaclustering; "
                     "about 10 s for 20,000 events"):
        st.stop()
    with st.spinner("FlowSOM ..."):
        som = filters.cached(fl.flowsom_clusters, ctx.apply(events.frame), params=params)
    render.show_figure(figs.cluster_heatmap(som.medians, markers=markers,
                                            title="Metacluster medians"),
                       key="cy-som-heat", name=f"{study.name}_flowsom_medians",
                       data=som.medians)
    abundance = fl.metacluster_composition(som)
    render.show_figure(composition_bars(abundance, title="Metacluster abundance per sample"),
                       key="cy-som-bars", name=f"{study.name}_flowsom_abundance",
                       data=abundance)
    by_win = comp.composition_by_window(abundance, groups=ctx.groups)
    render.show_figure(composition_by_window_figure(
        by_win, window_order=[w.label for w in comp.DEFAULT_WINDOWS],
        title="Metacluster abundance by response group (one point per patient)"),
        key="cy-som-groups", name=f"{study.name}_flowsom_by_group", data=by_win)
    render.show_params(params)
