"""Clones & repertoire: somatic clones (VAF over time, oncoprint) and the T-cell repertoire
(diversity over time, depth-matched diversity, baseline top clones, overlap between timepoints),
receptors joined to cells and clones across time. The recipes are in views/clones.py; this
page reads widgets into their Params."""

from __future__ import annotations

from dataclasses import asdict, replace

import streamlit as st

from components import render, session, sidebar
from views import clones as vc

ctx = session.context(applies="patients, and the day window to the samples drawn (VAF, "
                      "repertoire, clone fates and cells); clones across time compare one "
                      "patient's reference with a later timepoint")
study, cohort, name = ctx.study, ctx.cohort, ctx.study.name
st.title("Clones & repertoire")

st.subheader("Somatic clones")
somatic = vc.SomaticParams()
if not study.has("mutations"):
    st.info(vc.NO_MUTATIONS)
else:
    ranked = session.cached_view(vc.somatic_genes, study, cohort=cohort)
    genes = st.multiselect("Genes (most recurrent first)", ranked, default=ranked[:9],
                           max_selections=24,
                           key=sidebar.linked("cln-genes", study_default=True, options=ranked, shape="many"))
    somatic = vc.SomaticParams(tuple(genes), st.toggle("Log VAF axis",
                                                          key=sidebar.linked("cln-log", kind=bool)))
    try:
        render.show(session.cached_view(vc.vaf, study, cohort=cohort, params=somatic),
                    key="cln-vaf", name=f"{name}_vaf_over_time", opens_patient=True)
    except ValueError as exc:
        st.info(str(exc))
    if grid := session.cached_view(vc.oncoprint, study, cohort=cohort, params=somatic):
        render.show(grid, key="cln-oncoprint", name=f"{name}_oncoprint", opens_patient=True)

st.subheader("T-cell repertoire")
repertoire = vc.RepertoireParams()
if not study.has("tcr"):
    st.info(vc.NO_TCR)
elif not (patients := session.cached_view(vc.repertoire_patients, study, cohort=cohort)):
    st.info("No TCR sample of the selected patients falls in the day window, or "
            "samples.csv does not list the TCR samples.")
else:
    metric = st.selectbox("Metric", vc.METRICS, index=vc.METRICS.index("clonality"),
                          format_func=vc.METRIC_LABELS.get,
                          key=sidebar.linked("cln-metric", options=vc.METRICS))
    matched = st.toggle("Depth-matched (rarefied to a common depth)", value=True,
                        key=sidebar.linked("cln-rarefy", kind=bool),
                        disabled=metric not in vc.RAREFIED_METRICS,
                        help="Richness, Shannon and clonality grow with the number of "
                        "receptors sequenced; rarefaction makes samples comparable")
    repertoire = vc.RepertoireParams(metric, matched)
    spec = session.cached_view(vc.repertoire_metric, study, cohort=cohort, params=repertoire)
    render.show(spec, key="cln-rarefied" if spec.key == "rarefied" else "cln-metric-fig",
                name=f"{name}_{spec.key}")
    render.show(session.cached_view(vc.repertoire_metrics, study, cohort=cohort),
                key="cln-metric-table", name=f"{name}_tcr_metrics")
    c1, c2 = st.columns([2, 1])
    repertoire = replace(
        repertoire,
        patient=c1.selectbox("Patient", patients,
                             key=sidebar.linked("cln-patient", options=patients)),
        top=c2.slider("Baseline top clones", 3, 20, 10,
                      key=sidebar.linked("cln-top", kind=int, bounds=(3, 20))))
    left, right = st.columns(2)
    with left:
        render.show(session.cached_view(vc.top_clones, study, cohort=cohort, params=repertoire),
                    key="cln-area", name=f"{name}_{repertoire.patient}_top_clones")
    with right:
        render.show(session.cached_view(vc.overlap, study, cohort=cohort, params=repertoire),
                    key="cln-overlap", name=f"{name}_{repertoire.patient}_overlap")

clones = vc.ClonesParams()
if sources := session.cached_view(vc.clone_sources, study):
    st.subheader("Clones across time")
    c1, c2, c3, c4 = st.columns(4)
    source = c1.selectbox("Clones from", sources, format_func=vc.SOURCES.get,
                          key=sidebar.linked("cln-source", options=sources))
    ref = c2.selectbox("Reference", vc.REFERENCES,
                       key=sidebar.linked("cln-reference", options=vc.REFERENCES),
                       format_func=vc.REFERENCE_LABELS.get)
    who = c3.selectbox("Patient", list(ctx.subjects),
                       key=sidebar.linked("cln-track-patient", options=ctx.subjects))
    later = session.cached_view(vc.later_timepoints, study, params={"source": source})
    when = c4.selectbox("Compare the reference with", later,
                        key=sidebar.linked("cln-track-tp", study_default=True, options=later),
                        index=vc.first_compared(later))
    clones = vc.ClonesParams(patient=who, source=source, timepoint=when,
                             metric=repertoire.metric, reference=ref)
    render.show(session.cached_view(vc.clone_alluvial, study, params=clones), key="cln-alluvial")
    if volcano := session.cached_view(vc.clone_volcano, study, params=clones):
        render.show(volcano, key="cln-volcano")
        render.show(session.cached_view(vc.clone_changes, study, params=clones), key="cln-changes")
    for k, view in enumerate((vc.fate_figure, vc.fate_table)):
        render.show(session.cached_view(view, study, cohort=cohort, params=clones),
                    key=f"cln-fate-{k}")
if session.cached_view(vc.has_cell_receptors, study):
    st.subheader("Receptors per cell")
    for k, view in enumerate((vc.clonotypes_table, vc.clone_embedding, vc.clone_phenotype)):
        if spec := session.cached_view(view, study, cohort=cohort, params=vc.ClonesParams()):
            render.show(spec, key=f"cln-cells-{k}")

render.show_params({"somatic": asdict(somatic), "repertoire": asdict(repertoire),
                    "clones": asdict(clones), "cohort": cohort.describe()})
