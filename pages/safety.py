"""Cytokines & safety: cytokines with CRS/ICANS episodes, ASTCT 2019 grading from vitals,
adverse events and infections. The recipes are in views/safety.py and views/toxicity.py (rules:
analysis.toxicity); this page reads widgets into their Params."""

from __future__ import annotations

import streamlit as st

from analysis import vocab
from components import render, session, sidebar
from views import safety as sv


def show(view: object, params: object, key: str, name: str, **kw: object) -> object:
    """Show the view's record for `params` (nothing when it returns None); returns it."""
    spec = session.cached_view(view, study, cohort=ctx.cohort, params=params)
    if spec is not None:
        render.show(spec, key=key, name=f"{study.name}_{name}", **kw)
    return spec


ctx = session.context(applies="patients; not the day window: the cytokine figures show "
                      "the days set by 'Days shown' around infusion, and CRS, ICANS and "
                      "adverse events are counted over each patient's whole course")
study = ctx.study
st.title("Cytokines & safety")

st.subheader("Cytokines")
present = sv.present_panel(study)
c1, c2 = st.columns([2, 3])
patient = c1.selectbox("Patient", ctx.subjects,
                       key=sidebar.linked("saf-patient", options=ctx.subjects)) \
    if ctx.subjects else None
days = vocab.DayWindow(*c2.slider("Days shown", -30, 120, (-7, 28),
                                  key=sidebar.linked("saf-days", kind=int, shape="range",
                                                     bounds=(-30, 120))))
if not present:
    st.info("No cytokine measurements: add IL6, IFNG, IL10, IL2, TNFA, IL2RA (pg/mL, panel "
            "cytokine), FERRITIN (ng/mL) or CRP (mg/L) rows to measurements.")
elif patient is not None:
    if note := sv.not_measured_note(study):
        st.caption(note)
    pparams = sv.PatientCytokineParams(patient=patient, days=days)
    show(sv.patient_cytokines, pparams, "saf-cytokines", f"{patient}_cytokines")
    show(sv.peaks, pparams, "saf-peaks", "cytokine_peaks")
    show(sv.peak_figure, pparams, "saf-peak-grade", "peak_vs_crs")

st.subheader("Cytokines across the cohort")
if present:
    k1, k2, k3 = st.columns([2, 3, 3])
    align = k1.radio("Align to", list(sv.ALIGNMENTS), format_func=sv.ALIGNMENTS.get,
                     horizontal=True, key=sidebar.linked("saf-coh-align", options=list(sv.ALIGNMENTS)))
    shown = k2.radio("Show", list(sv.SHOW), format_func=sv.SHOW.get,
                     key=sidebar.linked("saf-coh-show", options=list(sv.SHOW)))
    chosen = k3.multiselect("Analytes", present, default=present[:4],
                            key=sidebar.linked("saf-coh-analytes", study_default=True, options=present,
                                               shape="many"))
    coh_params = sv.CohortCytokineParams(analytes=tuple(chosen or present), align=align,
                                         show=shown, days=days)
    show(sv.cohort_cytokines, coh_params, "saf-coh-cytokines", "cohort_cytokines",
         opens_patient=shown != "groups")
    st.caption("Days shown follow the slider above."
               + (" Click a patient's point to open the Patient page." if shown != "groups"
                  else ""))
else:
    st.info("No cytokine measurements to compare across patients.")

st.subheader("CRS and ICANS (ASTCT 2019)")
crs_params = sv.CrsParams(days=days)
if sv.has_vitals(study):
    start = session.cached_view(sv.crs_defaults, study)
    r1, r2, r3 = st.columns(3)
    crs_params = sv.crs_params(
        study, days=days,
        window_end=int(r1.number_input(
            "CRS window ends (day)", 1, 365, start.window_end,
            key=sidebar.linked("saf-crs-window", study_default=True, kind=int, bounds=(1, 365)),
            help="Vitals are graded from infusion to this day and around recorded CRS "
                 "episodes; never on infection days without a CRS record.")),
        masked_fever=r2.checkbox(
            "Masked fever carries after tocilizumab/steroids", start.masked_fever,
            key=sidebar.linked("saf-masked", study_default=True, kind=bool),
            help="ASTCT 2019: after tocilizumab or steroids given for CRS, fever is no longer "
                 "required; hypotension and hypoxia still grade."),
        fever_carry_days=int(r3.number_input(
            "Fever counts for (days, antipyretics)", 0, 14, start.fever_carry_days,
            key=sidebar.linked("saf-carry", study_default=True, kind=int, bounds=(0, 14)),
            help="A febrile day also counts for this many following days.")))
if not study.has("events"):
    st.info("No events table: CRS and ICANS grades, adverse events and infections need "
            "events.csv with categories crs, icans, adverse_event, infection (day, end_day, "
            "term, grade).")
else:
    i1, i2 = st.columns([2, 3])
    with i1:
        show(sv.incidence, crs_params, "saf-incidence", "crs_icans_incidence")
    with i2:
        show(sv.incidence_table, crs_params, "saf-incidence-table", "incidence", title=False)
        show(sv.onset, crs_params, "saf-onset", "onset_duration", title=False)
    show(sv.crs_episodes, crs_params, "saf-crs", "crs", title=False)
    show(sv.crs_treatments, None, "saf-crs-treatment", "crs_treatment")

st.markdown("**Grade derived from vitals**")
if not sv.has_vitals(study):
    st.info("No vitals to grade from: ASTCT grading needs TEMP (C), and SBP (mmHg), "
            "VASOPRESSORS (count) and O2_LPM (L/min, 0 = room air) in measurements.")
else:
    agree, message = session.cached_view(sv.astct_agreement, study, cohort=ctx.cohort,
                                         params=crs_params)
    (st.success if agree else st.warning)(message)
    show(sv.astct_comparison, crs_params, "saf-astct", "astct_vs_recorded", title=False)
    show(sv.astct_daily, crs_params, "saf-astct-map", "astct_daily", opens_patient=True)
    show(sv.astct_day_table, crs_params, "saf-crs-daily", "crs_daily")

st.subheader("Adverse events")
a1, a2, a3 = st.columns([3, 1, 1])
ae_params = sv.AdverseEventParams(
    categories=tuple(a1.multiselect("Categories", vocab.AE_CATEGORIES,
                                    default=list(vocab.AE_CATEGORIES),
                                    key=sidebar.linked("saf-ae-cats", options=vocab.AE_CATEGORIES,
                                                       shape="many"))),
    min_grade=int(a2.selectbox("Worst grade at least", (0, 1, 2, 3, 4, 5),
                               key=sidebar.linked("saf-ae-grade", options=(0, 1, 2, 3, 4, 5)))),
    term_contains=a3.text_input("Term contains", key=sidebar.linked("saf-ae-term")))
if study.has("events"):
    show(sv.adverse_events, ae_params, "saf-ae", "adverse_events", title=False)
    show(sv.adverse_event_figure, ae_params, "saf-ae-bars", "adverse_events")
    st.markdown("**Infections**")
    if show(sv.infections, None, "saf-infections", "infections", title=False) is None:
        st.caption("No infections recorded.")
render.show_rules(sv.crs_rules(study, crs_params), names=sv.CRS_RULES, key="saf-rules")
render.show_params(crs_params)
