"""Cytokines & safety: cytokines with CRS/ICANS episodes, ASTCT 2019 grading from vitals,
adverse events and infections (rules: analysis.toxicity)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import streamlit as st

from analysis import toxicity as tox
from analysis.rules import rules_for
from components import filters, render
from components.figures.safety import (
    adverse_event_bars,
    astct_heatmap,
    cytokine_panels,
    grade_incidence_bars,
    peak_vs_grade,
)
from views import patient as vp
from views import safety as sv

PANEL = (*tox.CYTOKINES, *tox.INFLAMMATION_MARKERS)


@dataclass(frozen=True)
class SafetyParams:
    patient: str | None
    days: tuple[int, int]
    peak_window_end: int
    crs_window_end: int
    crs_masked_fever: bool
    fever_carry_days: int
    ae_categories: tuple[str, ...]
    ae_min_grade: int
    ae_term_contains: str
    cohort: str


ctx = filters.context()
study = ctx.study
st.title("Cytokines & safety")
events = ctx.apply(study.events, day_col=None)
episodes = tox.toxicity_episodes(events)

st.subheader("Cytokines")
measured = set(study.analytes_present())
present = [a for a in PANEL if a in measured]
c1, c2 = st.columns([2, 3])
patient = c1.selectbox("Patient", ctx.subjects, key="saf-patient") if ctx.subjects else None
days = c2.slider("Days shown", -30, 120, (-7, 28), key="saf-days")
peak_end = days[1] if days[1] > 0 else 28
if not present:
    st.info("No cytokine measurements: add IL6, IFNG, IL10, IL2, TNFA, IL2RA (pg/mL, panel "
            "cytokine), FERRITIN (ng/mL) or CRP (mg/L) rows to measurements.")
elif patient is not None:
    missing = [a for a in tox.CYTOKINES if a not in present]
    if missing:
        st.caption(f"Not measured in this study: {', '.join(missing)}.")
    cyto = study.series(analytes=present, subjects=[patient]).filter(
        pl.col("day").is_between(*days))
    render.show_figure(
        filters.cached(cytokine_panels, cyto, episodes, facet_order=present, colors=ctx.colors,
                       x_range=days, marks=sv.hsct_marks(study, subjects=[patient]),
                       titles={a: f"{a} ({study.catalogue[a].unit})"
                                             if a in study.catalogue else a for a in present},
                       title=f"{patient}: cytokines, ferritin and CRP"),
        key="saf-cytokines", name=f"{study.name}_{patient}_cytokines", data=cyto)
    st.caption("Log10 axes. Shading: CRS episodes (full height) and ICANS (band along the top), "
               "coloured by ASTCT grade. Dash-dot line: an HSCT in the days shown.")
    peaks = filters.compute(tox.cytokine_peaks_table, study, to_day=peak_end)
    peaks = peaks.filter(pl.col("subject_id").is_in(list(ctx.subjects)))
    st.markdown(f"**Peak per patient, days 0-{peak_end}**")
    render.show_table(peaks, key="saf-peaks", name=f"{study.name}_cytokine_peaks")
    render.show_figure(filters.cached(peak_vs_grade, peaks, facet_order=present,
                                      colors=ctx.colors, title="Peak value against CRS max grade"),
                       key="saf-peak-grade", name=f"{study.name}_peak_vs_crs", data=peaks)

# ---- cytokines across the cohort (views.safety) --------------------------------------------
st.subheader("Cytokines across the cohort")
if present:
    k1, k2, k3 = st.columns([2, 2, 3])
    align = k1.radio("Align to", list(sv.ALIGNMENTS), format_func=sv.ALIGNMENTS.get,
                     horizontal=True, key="saf-coh-align")
    show = k2.radio("Show", ("patients", "groups"), horizontal=True, key="saf-coh-show",
                    format_func={"patients": "Every patient",
                                 "groups": "By response group (n per day)"}.get)
    chosen = k3.multiselect("Analytes", present, default=present[:4], key="saf-coh-analytes")
    coh_params = sv.CohortCytokineParams(analytes=tuple(chosen or present), align=align,
                                         show=show, days=tuple(days))
    coh = filters.compute(sv.cohort_cytokines, study, cohort=ctx.cohort, params=coh_params)
    picked = render.show_figure(coh.fig, key="saf-coh-cytokines",
                                name=f"{study.name}_cohort_cytokines", data=coh.data,
                                params=coh_params, on_select="rerun",
                                selection_mode=("points",))
    st.caption(coh.caption + " Days shown follow the slider above."
               + (" Click a patient's point to open the Patient page." if show == "patients"
                  else ""))
    if (sid := vp.selected_subject(picked)) is not None:
        st.session_state["_pt_pending"] = sid
        st.switch_page("pages/patient.py")
else:
    st.info("No cytokine measurements to compare across patients.")

st.subheader("CRS and ICANS (ASTCT 2019)")
# ---- CRS graded from vitals: window, infections, masked fever (analysis.toxicity) ----------
CRS_RULES = ("crs_window_end", "crs_episode_margin", "crs_masked_fever", "crs_fever_carry_days",
             "crs_fever_c", "crs_hypotension_sbp", "crs_low_flow_max_lpm")
rules = rules_for(study)
measured_vitals = [a for a in tox.VITALS if a in measured]
if "TEMP" in measured_vitals:
    r1, r2, r3 = st.columns(3)
    window_end = int(r1.number_input(
        "CRS window ends (day)", 1, 365, min(max(rules.crs_window_end, 1), 365),
        key="saf-crs-window",
        help="Vitals are graded from infusion to this day and around recorded CRS episodes; "
             "never on infection days without a CRS record."))
    masked = r2.checkbox("Masked fever carries after tocilizumab/steroids",
                         rules.crs_masked_fever, key="saf-masked",
                         help="ASTCT 2019: after tocilizumab or steroids given for CRS, fever "
                              "is no longer required; hypotension and hypoxia still grade.")
    carry = int(r3.number_input("Fever counts for (days, antipyretics)", 0, 14,
                                min(max(rules.crs_fever_carry_days, 0), 14), key="saf-carry",
                                help="A febrile day also counts for this many following days."))
    rules = rules.with_(crs_window_end=window_end, crs_masked_fever=masked,
                        crs_fever_carry_days=carry)
carry, window_end, masked = (rules.crs_fever_carry_days, rules.crs_window_end,
                             rules.crs_masked_fever)
if not study.has("events"):
    st.info("No events table: CRS and ICANS grades, adverse events and infections need "
            "events.csv with categories crs, icans, adverse_event, infection (day, end_day, "
            "term, grade).")
else:
    crs = filters.compute(tox.crs_table, study, rules=rules).filter(
        pl.col("subject_id").is_in(list(ctx.subjects)))
    incidence = tox.grade_incidence(crs)
    i1, i2 = st.columns([2, 3])
    with i1:
        render.show_figure(filters.cached(grade_incidence_bars, incidence,
                                          title="Patients by max grade"),
                           key="saf-incidence", name=f"{study.name}_crs_icans_incidence",
                           data=incidence)
    with i2:
        render.show_table(incidence, key="saf-incidence-table", name=f"{study.name}_incidence")
        render.show_table(tox.onset_duration(crs), key="saf-onset",
                          name=f"{study.name}_onset_duration")
    render.show_table(crs, key="saf-crs", name=f"{study.name}_crs")
    # ---- medications given for CRS and ICANS (views.safety) --------------------------------
    treated = filters.compute(sv.crs_treatments, study, cohort=ctx.cohort)
    st.markdown(f"**{treated.title}**")
    st.caption(treated.caption)
    render.show_table(treated.data, key="saf-crs-treatment", name=f"{study.name}_crs_treatment")

st.markdown("**Grade derived from vitals**")
vitals = [a for a in tox.VITALS if a in measured]
if "TEMP" not in vitals:
    st.info("No vitals to grade from: ASTCT grading needs TEMP (C), and SBP (mmHg), "
            "VASOPRESSORS (count) and O2_LPM (L/min, 0 = room air) in measurements.")
else:
    comp = filters.compute(tox.astct_comparison_table, study, rules=rules) \
        .filter(pl.col("subject_id").is_in(list(ctx.subjects)))
    n_bad = comp.filter(~pl.col("crs_grade_agrees").fill_null(True)).height
    if n_bad:
        st.warning(f"{n_bad} of {comp.height} patient(s): the max grade derived from vitals "
                   "differs from the recorded one (see note).")
    else:
        st.success(f"Derived and recorded max grades agree for all {comp.height} patient(s) "
                   "with vitals.")
    render.show_table(comp, key="saf-astct", name=f"{study.name}_astct_vs_recorded")
    daily = filters.compute(tox.crs_daily_table, study, rules=rules) \
        .filter(pl.col("subject_id").is_in(list(ctx.subjects)) & pl.col("day").is_between(*days))
    render.show_figure(filters.cached(astct_heatmap, daily, title="ASTCT grade from vitals "
                                      "per day (text: recorded grade)"),
                       key="saf-astct-map", name=f"{study.name}_astct_daily", data=daily)
    st.caption(f"Fever TEMP >= {rules.crs_fever_c:g}; hypotension SBP < "
               f"{rules.crs_hypotension_sbp:g} = grade 2, 1 vasopressor = 3, >= 2 = 4; O2 <= "
               f"{rules.crs_low_flow_max_lpm:g} L/min (low-flow) = 2, above (high-flow) = 3. "
               f"Graded only from day 0 to day {window_end} and within "
               f"{rules.crs_episode_margin} day(s) of recorded CRS episodes, never on days of "
               "a documented infection without a CRS record"
               + ("; after tocilizumab or a steroid given during CRS, fever is not required"
                  if masked else "") + ". Positive-pressure ventilation (grade 4) and "
               "vasopressin are not in these vitals and are not derived.")
    not_graded = daily.filter(~pl.col("graded"))
    st.markdown(f"**Each day: graded or not, and why** ({not_graded.height} day(s) not graded)")
    render.show_table(daily.select("subject_id", "day", "derived_grade", "recorded_grade",
                                   "graded", "fever_masked", "basis", "reason"),
                      key="saf-crs-daily", name=f"{study.name}_crs_daily")

st.subheader("Adverse events")
a1, a2, a3 = st.columns([3, 1, 1])
cats = tuple(a1.multiselect("Categories", tox.AE_CATEGORIES, default=list(tox.AE_CATEGORIES),
                            key="saf-ae-cats"))
min_grade = int(a2.selectbox("Worst grade at least", (0, 1, 2, 3, 4, 5), key="saf-ae-grade"))
term = a3.text_input("Term contains", key="saf-ae-term")
if study.has("events"):
    ae = tox.adverse_event_summary(events, n_patients=len(ctx.subjects), categories=cats,
                                   min_grade=min_grade, term_contains=term)
    st.caption(f"Patients by worst grade per term; % of {len(ctx.subjects)} patients.")
    render.show_table(ae, key="saf-ae", name=f"{study.name}_adverse_events")
    if ae.height:
        render.show_figure(filters.cached(adverse_event_bars, ae,
                                          title="Adverse events by worst grade"),
                           key="saf-ae-bars", name=f"{study.name}_adverse_events", data=ae)
    st.markdown("**Infections**")
    inf = tox.infections(events)
    if inf.height:
        render.show_table(inf, key="saf-infections", name=f"{study.name}_infections")
    else:
        st.caption("No infections recorded.")
render.show_rules(rules, names=CRS_RULES, key="saf-rules")
render.show_params(SafetyParams(patient, tuple(days), peak_end, window_end, masked, carry, cats,
                                min_grade, term, ctx.cohort.describe()))
