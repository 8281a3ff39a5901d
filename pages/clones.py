"""Clones & repertoire: somatic clones (VAF over time, oncoprint) and the T-cell repertoire
(diversity over time, depth-matched diversity, baseline top clones, overlap between timepoints),
receptors joined to cells and clones across time. The recipes are in views/clones.py; this
page reads widgets into their Params."""

from __future__ import annotations

from dataclasses import asdict, replace

import streamlit as st

from components import filters, render
from views import clones as vc

ctx = filters.context()
study, cohort, name = ctx.study, ctx.cohort, ctx.study.name
st.title("Clones & repertoire")

st.subheader("Somatic clones")
somatic = vc.SomaticParams()
if not study.has("mutations"):
    st.info(vc.NO_MUTATIONS)
else:
    ranked = filters.compute(vc.somatic_genes, study, cohort=cohort)
    genes = st.multiselect("Genes (most recurrent first)", ranked, default=ranked[:9],
                           max_selections=24, key="cln-genes")
    somatic = vc.SomaticParams(tuple(genes), st.toggle("Log VAF axis", key="cln-log"))
    try:
        render.show(filters.compute(vc.vaf, study, cohort=cohort, params=somatic),
                    key="cln-vaf", name=f"{name}_vaf_over_time")
    except ValueError as exc:
        st.info(str(exc))
    if grid := filters.compute(vc.oncoprint, study, cohort=cohort, params=somatic):
        render.show(grid, key="cln-oncoprint", name=f"{name}_oncoprint")

st.subheader("T-cell repertoire")
repertoire = vc.RepertoireParams()
if not study.has("tcr"):
    st.info(vc.NO_TCR)
elif not (patients := filters.compute(vc.repertoire_patients, study, cohort=cohort)):
    st.info("No TCR sample of the selected patients falls in the day window, or "
            "samples.csv does not list the TCR samples.")
else:
    metric = st.selectbox("Metric", vc.METRICS, index=vc.METRICS.index("clonality"),
                          format_func=vc.METRIC_LABELS.get, key="cln-metric")
    matched = st.toggle("Depth-matched (rarefied to a common depth)", value=True,
                        key="cln-rarefy", disabled=metric not in vc.RAREFIED_METRICS,
                        help="Richness, Shannon and clonality grow with the number of "
                        "receptors sequenced; rarefaction makes samples comparable")
    repertoire = vc.RepertoireParams(metric, matched)
    spec = filters.compute(vc.repertoire_metric, study, cohort=cohort, params=repertoire)
    render.show(spec, key="cln-rarefied" if spec.key == "rarefied" else "cln-metric-fig",
                name=f"{name}_{spec.key}")
    render.show(filters.compute(vc.repertoire_metrics, study, cohort=cohort),
                key="cln-metric-table", name=f"{name}_tcr_metrics")
    c1, c2 = st.columns([2, 1])
    repertoire = replace(repertoire, patient=c1.selectbox("Patient", patients, key="cln-patient"),
                         top=c2.slider("Baseline top clones", 3, 20, 10, key="cln-top"))
    left, right = st.columns(2)
    with left:
        render.show(filters.compute(vc.top_clones, study, cohort=cohort, params=repertoire),
                    key="cln-area", name=f"{name}_{repertoire.patient}_top_clones")
    with right:
        render.show(filters.compute(vc.overlap, study, cohort=cohort, params=repertoire),
                    key="cln-overlap", name=f"{name}_{repertoire.patient}_overlap")

clones = vc.ClonesParams()
if sources := filters.compute(vc.clone_sources, study):
    st.subheader("Clones across time")
    c1, c2, c3, c4 = st.columns(4)
    source = c1.selectbox("Clones from", sources, format_func=vc.SOURCES.get, key="cln-source")
    ref = c2.selectbox("Reference", ["auto", "baseline"], key="cln-reference",
                       format_func={"auto": "infusion product when sequenced, else baseline",
                                    "baseline": "baseline"}.get)
    who = c3.selectbox("Patient", list(ctx.subjects), key="cln-track-patient")
    later = filters.compute(vc.later_timepoints, study, source=source)
    when = c4.selectbox("Compare the reference with", later, key="cln-track-tp",
                        index=later.index("D28") if "D28" in later else 0)
    clones = vc.ClonesParams(patient=who, source=source, timepoint=when,
                             metric=repertoire.metric, reference=ref)
    render.show(filters.compute(vc.clone_alluvial, study, params=clones), key="cln-alluvial")
    if volcano := filters.compute(vc.clone_volcano, study, params=clones):
        render.show(volcano, key="cln-volcano")
        render.show(filters.compute(vc.clone_changes, study, params=clones), key="cln-changes")
    for k, view in enumerate((vc.fate_figure, vc.fate_table)):
        render.show(filters.compute(view, study, cohort=cohort, params=clones),
                    key=f"cln-fate-{k}")
if filters.compute(vc.has_cell_receptors, study):
    st.subheader("Receptors per cell")
    for k, view in enumerate((vc.clonotypes_table, vc.clone_embedding, vc.clone_phenotype)):
        if spec := filters.compute(view, study, cohort=cohort, params=vc.ClonesParams()):
            render.show(spec, key=f"cln-cells-{k}")

render.show_params({"somatic": asdict(somatic), "repertoire": asdict(repertoire),
                    "clones": asdict(clones), "cohort": cohort.describe()})
