"""Kinetics: CAR-T expansion and persistence (qPCR and flow), CD7-specific readouts and
exposure-response (rules: analysis.kinetics, DESIGN.md section 3)."""

from __future__ import annotations

import streamlit as st

from components import render, session, sidebar
from components.safe import md
from views import kinetics as kv

ctx = session.context(applies="patients, and the day window to the curves, qPCR vs flow "
                      "and the CD7 readouts; not to the per-patient parameters, the model "
                      "and exposure-response (Cmax, AUC and the fit need the whole series)")
study = ctx.study
st.title("Kinetics")
rules = session.cached_view(kv.common.rules, study)
present = session.cached_view(kv.present_assays, study)
if not present:
    st.info("This study has no CAR-T measurements: add CAR_QPCR (copies/ug gDNA), CAR_PCT "
            "(% of CD3+) or CAR_ABS (cells/uL) rows, with their lloq, to measurements.")
    st.stop()

c1, c2 = st.columns([3, 2])
assay = c1.radio("Assay", present, format_func=kv.LABELS.get, horizontal=True,
                  key=sidebar.linked("kin-assay", options=present))
view = c2.radio("Show", kv.VIEWS, horizontal=True,
                key=sidebar.linked("kin-view", options=kv.VIEWS))
with st.expander("Analysis options (AUC window, values below the LLOQ, landmarks)"):
    o = st.columns(5)
    auc_end = int(o[0].number_input("AUC window end (day)", 1, 365, 28,
                                 key=sidebar.linked("kin-auc-end", kind=int, bounds=(1, 365))))
    blq = []
    for col, (pos, default) in zip(o[1:4], kv.BLQ_DEFAULTS, strict=True):
        blq.append(col.selectbox(f"BLQ {pos}", kv.BLQ_POLICIES,
                                 index=kv.BLQ_POLICIES.index(default),
                                 key=sidebar.linked(f"kin-blq-{pos}",
                                                    options=kv.BLQ_POLICIES)))
    tol = int(o[4].number_input("Landmark tolerance (days)", 0, 60, 7,
                            key=sidebar.linked("kin-tol", kind=int, bounds=(0, 60))))
    p1, p2 = st.columns(2)
    impute0 = p1.checkbox("No day-0 sample: start the AUC at 0 on day 0", rules.auc_impute_day0,
                          key=sidebar.linked("kin-impute0", kind=bool, study_default=True),
                          help="Off: without a day-0 value the AUC is not computed (PKNCA "
                               "imputes a start level of 0 only when asked).")
    nonexp = p2.selectbox("Non-expanders in group geometric means",
                          kv.NONEXPANDER_POLICIES,
                          index=kv.NONEXPANDER_POLICIES.index(rules.kinetics_nonexpanders),
                          key=sidebar.linked("kin-nonexp", study_default=True,
                                             options=kv.NONEXPANDER_POLICIES),
                          format_func=kv.NONEXPANDER_LABELS.get)
    st.caption("BLQ = value < LLOQ. Leading: before the first quantifiable value; middle: "
               "between quantifiable values; trailing: after the last one. AUC by linear-up/"
               "log-down trapezoids. Landmarks D28, M3 (day 90), M6 (180), M12 (365): the "
               "nearest sample within the tolerance decides.")
nca = kv.NcaParams(assay, auc_end, *blq, tol,
                   None if impute0 == rules.auc_impute_day0 else impute0,
                   None if nonexp == rules.kinetics_nonexpanders else nonexp)

focus = session.get_focus(study)
if focus is not None:
    f1, f2 = st.columns([6, 1])
    f1.info(f"Focus from another page: {md(focus.describe())}")
    if f2.button("Clear focus", key="kin-clear-focus"):
        session.set_focus(None)
        st.rerun()
params = kv.CurveParams(assay=assay, view=view, highlight=focus.subjects if focus else (),
                        shade=focus.days if focus else None)
render.show(session.cached_view(kv.curve, study, cohort=ctx.cohort, params=params),
            key="kin-curve", name=f"{study.name}_kinetics_{assay}", opens_patient=True)

st.subheader("Parameters per patient")
render.show(session.cached_view(kv.nca_table, study, cohort=ctx.cohort, params=nca),
            key="kin-params", name=f"{study.name}_kinetics_parameters", title=False)
st.markdown("**By response group** (geometric mean, geometric CV%)")
render.show(session.cached_view(kv.nca_by_group, study, cohort=ctx.cohort, params=nca),
            key="kin-summary", name=f"{study.name}_kinetics_by_group", title=False)

st.subheader("Kinetic model: expansion, contraction, persistence")
if assay == "CAR_PCT":
    st.caption("The model is fitted to transgene levels (qPCR) or CAR+ cell counts; choose "
               "one of those assays above.")
elif st.toggle("Fit the model", value=len(ctx.subjects) <= 30,
               key=sidebar.linked("kin-model", study_default=True, kind=bool),
               help="Per patient, by maximum likelihood (seconds per patient on large "
                    "cohorts; the result is kept for the session)"):
    mparams = kv.KineticModelParams(assay=assay)
    render.show(session.cached_view(kv.model_figure, study, cohort=ctx.cohort, params=mparams),
                key="kin-model-fig", name=f"{study.name}_kinetic_model", opens_patient=True)
    st.caption("Click a patient's point to open the Patient page.")
    render.show(session.cached_view(kv.model_table, study, cohort=ctx.cohort, params=mparams),
                key="kin-model-table", name=f"{study.name}_kinetic_model", title=False)

st.subheader("qPCR vs flow")
conc = session.cached_view(kv.concordance, study, cohort=ctx.cohort, params=params)
if conc is None:
    st.info(kv.no_concordance(present))
else:
    render.show(conc, key="kin-concordance", name=f"{study.name}_qpcr_vs_flow")

st.subheader("CD7-specific readouts")
cd7 = session.cached_view(kv.cd7_readouts, study, cohort=ctx.cohort, params=params)
if cd7 is None:
    st.info("No CD7-specific readouts: add CD7NEG_T_PCT (% of CD3+) and NK_ABS (cells/uL) "
            "to measurements (panel immunophenotype).")
else:
    render.show(cd7, key="kin-cd7", name=f"{study.name}_cd7_readouts")

st.subheader("Exposure-response")
exposures = ("cmax", kv.auc_column(auc_end))
par = st.radio("Exposure", exposures, horizontal=True,
               key=sidebar.linked("kin-exposure", options=exposures),
               format_func=lambda p: "Cmax" if p == "cmax" else f"AUC0-{auc_end}")
eparams = kv.ExposureParams(nca=nca, parameter=par)
for col, spec in zip(st.columns(2), session.cached_view(kv.exposure, study, cohort=ctx.cohort,
                                                        params=eparams), strict=True):
    with col:
        render.show(spec, key=spec.key, name=f"{study.name}_{par}_vs_{spec.key[7:]}")
render.show(session.cached_view(kv.exposure_tests, study, cohort=ctx.cohort, params=eparams),
            key="kin-er-tests", name=f"{study.name}_exposure_tests", title=False)
render.show_rules(kv.nca_rules(study, nca), names=kv.KIN_RULES, key="kin-rules")
render.show_params(nca)
