"""Cytometry: populations gated from the study's FCS files with its FlowJo workspace or
Gating-ML file, gate plots of a sample, one gate over a patient's timepoints, and FlowSOM
metaclusters with their abundances per sample and response group. The recipes are in
views/cytometry.py; this page reads widgets into their Params."""

from __future__ import annotations

import streamlit as st

from components import jobs_panel, render, session, sidebar
from components.safe import md
from views import cytometry as cy

ctx = session.context(applies="patients and the day window: the samples gated, drawn "
                      "and clustered")
study, cohort = ctx.study, ctx.cohort
st.title("Cytometry")
state = cy.status(study)
if state.n_fcs == 0:
    st.info(cy.NO_FCS)
    st.stop()
(st.caption if state.n_with_gates else st.info)(state.gating_note)
for problem in state.problems:
    st.warning(problem)
if state.n_with_gates and jobs_panel.action(
        cy.regate, study, study=study, key="cy-regate", label="Gating", progress="steps",
        button=f"Gate all {state.n_with_gates} files again",
        button_help="Reads every FCS file again, one file per task on the jobs cluster; "
        "results are cached by file content and gate file") is not None:
    session.reload_study()
    st.rerun()

names = cy.population_names(study, cohort=cohort)
tab_pop, tab_gates, tab_time, tab_som = st.tabs(
    ["Populations", "Gate plots", "One gate over time", "FlowSOM clusters"])

with tab_pop:
    if not names:
        st.info(state.no_populations)
    else:
        refs = cy.reference_choices(names)
        ref = st.selectbox("% of reference population", refs,
                           key=sidebar.linked("cy-ref", options=refs))
        pick = st.selectbox("Population over time", names, index=len(names) - 1,
                            key=sidebar.linked("cy-pop-trend", study_default=True, options=names))
        params = cy.PopulationParams(cy.chosen_population(ref), pick)
        table = cy.populations(study, cohort=cohort, params=params)
        render.show_table(table.data, key="cy-pop-table", name=f"{study.name}_populations")
        render.show(cy.population_trend(study, cohort=cohort, params=params), key="cy-trend",
                    name=f"{study.name}_population_trend")

with tab_gates:
    if not (ids := cy.gated_samples(study, cohort=cohort)):
        st.info("No gated sample to draw.")
    else:
        sample = st.selectbox("Sample", ids, key=sidebar.linked("cy-sample", options=ids))
        cols = st.columns(2)
        for i, gate in enumerate(session.cached_view(cy.gate_names, study,
                                                     params={"sample_id": sample})):
            with cols[i % 2]:
                render.show(session.cached_view(cy.gate_plot, study, cohort=cohort,
                                            params=cy.GatePlotParams(sample, gate)),
                            key=f"cy-gate-{i}", name=f"{sample}_gate_{i}")

with tab_time:
    if not (plottable := cy.timeline_gates(study, cohort=cohort)):
        st.info("No gated populations to compare over time.")
    else:
        c1, c2 = st.columns(2)
        gated = cy.gated_patients(study, cohort=cohort)
        subject = c1.selectbox("Patient", gated, key=sidebar.linked("cy-subject", options=gated))
        tp = cy.GateTimeParams(subject, c2.selectbox(
            "Gate", plottable, key=sidebar.linked("cy-time-gate", options=plottable)))
        render.show(session.cached_view(cy.gate_over_time, study, cohort=cohort, params=tp),
                    key="cy-multiples", name=f"{study.name}_{subject}_gate")

with tab_som:
    c1, c2 = st.columns(2)
    within_choices = cy.within_choices(names)
    within = c1.selectbox("Cluster the events of", within_choices,
                          key=sidebar.linked("cy-som-pop", options=within_choices),
                          help="Only the events in a gated population, e.g. CD3+ T cells")
    within = cy.chosen_population(within)
    per_sample = c2.select_slider("Events per sample", cy.EVENTS_PER_SAMPLE, value=1000,
                                  key=sidebar.linked("cy-som-events",
                                                     options=cy.EVENTS_PER_SAMPLE))
    setup = session.cached_view(cy.flowsom_setup, study,
                                params={"per_sample": per_sample, "population": within})
    for msg in setup.errors:
        st.warning(md(msg))
    markers = st.multiselect("Markers to cluster on (asinh, cofactor 150)",
                             list(setup.markers), default=list(setup.markers),
                             key=sidebar.linked("cy-som-markers", study_default=True, options=list(setup.markers),
                                                shape="many"))
    k = st.slider("Metaclusters", 3, 30, 10,
                  key=sidebar.linked("cy-som-k", kind=int, bounds=(3, 30)))
    if len(markers) < 2:
        st.info("Choose at least two markers.")
        st.stop()
    sp = cy.FlowSomViewParams(tuple(markers), n_metaclusters=k, per_sample=per_sample,
                              population=within)
    if st.toggle("Run FlowSOM", value=True, key=sidebar.linked("cy-som-run", kind=bool),
                 help="A 10 x 10 self-organising map, then consensus metaclustering"):
        for view in (cy.flowsom_medians, cy.flowsom_abundance, cy.flowsom_by_group):
            with st.spinner("FlowSOM ..."):   # the first computes the clustering
                spec = session.cached_view(view, study, cohort=cohort, params=sp)
            render.show(spec, key=spec.key, name=f"{study.name}_{spec.key}")
        render.show_params(sp)
