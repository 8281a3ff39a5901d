"""Cytometry: populations gated from the study's FCS files with its FlowJo workspace or
Gating-ML file, gate plots of a sample, one gate over a patient's timepoints, and FlowSOM
metaclusters with their abundances per sample and response group (recipes: views/cytometry)."""

from __future__ import annotations

import streamlit as st

from components import filters, render
from components.safe import md
from views import cytometry as cy

ctx = filters.context()
study = ctx.study
st.title("Cytometry")
state = cy.status(study)
if state.n_fcs == 0:
    st.info("This study has no flow cytometry files: rows of the samples table with assay "
            "`flow_fcs` and a `file` column naming .fcs files (see docs/formats.md, Flow "
            "cytometry).")
    st.stop()
if not state.n_with_gates:
    st.info(f"{state.n_fcs} FCS file(s) but no gate file: name a FlowJo workspace (.wsp) or a "
            "Gating-ML 2.0 file in study.toml `[flow] gating = \"...\"` or in a `gating` "
            "column of samples.csv. FlowSOM clustering works without gates.")
else:
    st.caption(f"{state.n_gated_files} of {state.n_with_gates} FCS file(s) gated with "
               f"{', '.join(state.gate_files)}.")
for problem in state.problems:
    st.warning(problem)
if state.n_with_gates and st.button(
        f"Gate all {state.n_with_gates} files again", key="cy-regate",
        help="Reads every FCS file again, in parallel processes; results are cached by file "
        "content and gate file"):
    bar = st.progress(0.0, "starting")
    cy.regate(study, progress=lambda d, t, label: bar.progress(d / max(t, 1),
                                                                f"{d} of {t}: {label}"))
    filters.reload_study()
    st.rerun()

pops = ctx.apply(study.populations)
names = pops.get_column("population").unique(maintain_order=True).to_list() if pops.height \
    else []
tab_pop, tab_gates, tab_time, tab_som = st.tabs(
    ["Populations", "Gate plots", "One gate over time", "FlowSOM clusters"])

with tab_pop:
    if not names:
        st.info("No gated populations" + (" for the patients and days in the sidebar filter."
                                          if study.populations.height else "."))
    else:
        ref = st.selectbox("% of reference population", ["(as study.toml)", *names],
                           key="cy-ref")
        pick = st.selectbox("Population over time", names, index=len(names) - 1,
                            key="cy-pop-trend")
        params = cy.PopulationParams("" if ref == "(as study.toml)" else ref, pick)
        table = cy.populations(study, cohort=ctx.cohort, params=params, groups=ctx.groups)
        render.show_table(table.data, key="cy-pop-table", name=f"{study.name}_populations")
        render.show(cy.population_trend(study, cohort=ctx.cohort, params=params, groups=ctx.groups,
                                  colors=ctx.colors), key="cy-trend",
              name=f"{study.name}_population_trend")

with tab_gates:
    ids = [s for s in state.sample_ids if s in set(pops.get_column("sample_id").to_list())] \
        if pops.height else []
    if not ids:
        st.info("No gated sample to draw.")
    else:
        gp = cy.GatePlotParams(st.selectbox("Sample", ids, key="cy-sample"))
        specs = filters.cached(cy.gate_plots, study, cohort=ctx.cohort, params=gp)
        cols = st.columns(2)
        for i, spec in enumerate(specs):
            with cols[i % 2]:
                render.show(spec, key=f"cy-gate-{i}", name=f"{gp.sample_id}_gate_{i}")

with tab_time:
    plottable = pops.filter(pops.get_column("gate_type") != "boolean").get_column(
        "population").unique(maintain_order=True).to_list() if pops.height else []
    if not plottable:
        st.info("No gated populations to compare over time.")
    else:
        c1, c2 = st.columns(2)
        subject = c1.selectbox("Patient", sorted(set(pops.get_column("subject_id").to_list())),
                               key="cy-subject")
        tp = cy.GateTimeParams(subject, c2.selectbox("Gate", plottable, key="cy-time-gate"))
        render.show(filters.cached(cy.gate_over_time, study, cohort=ctx.cohort, params=tp),
              key="cy-multiples", name=f"{study.name}_{subject}_gate")

with tab_som:
    c1, c2 = st.columns(2)
    within = c1.selectbox("Cluster the events of", ["all events", *names], key="cy-som-pop",
                          help="Only the events in a gated population, e.g. CD3+ T cells")
    within = "" if within == "all events" else within
    per_sample = c2.select_slider("Events per sample", [500, 1000, 2000, 5000], value=1000,
                                  key="cy-som-events")
    events = filters.compute(cy.flowsom_events, study, per_sample=per_sample,
                             population=within)
    for msg in events.errors:
        st.warning(md(msg))
    markers = st.multiselect("Markers to cluster on (asinh, cofactor 150)",
                             list(events.markers), default=list(events.markers),
                             key="cy-som-markers")
    k = st.slider("Metaclusters", 3, 30, 10, key="cy-som-k")
    if len(markers) < 2:
        st.info("Choose at least two markers.")
        st.stop()
    sp = cy.FlowSomViewParams(tuple(markers), n_metaclusters=k, per_sample=per_sample,
                              population=within)
    if st.toggle("Run FlowSOM", value=True, key="cy-som-run",
                 help="A 10 x 10 self-organising map, then consensus metaclustering"):
        with st.spinner("FlowSOM ..."):
            specs = filters.cached(cy.flowsom, study, cohort=ctx.cohort, params=sp,
                                   groups=ctx.groups, events=events)
        for spec in specs:
            render.show(spec, key=spec.key, name=f"{study.name}_{spec.key}")
        render.show_params(sp)
