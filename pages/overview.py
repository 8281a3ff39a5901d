"""Overview: who is in the study, how they did, and what was sampled when."""

from __future__ import annotations

import streamlit as st

from components import render, session, sidebar
from components.safe import md
from views import overview as vo

ctx = session.context(applies="patients, and the day window to sample availability; "
                      "not to Table 1 and the swimmer plot (each patient's whole course)")
study = ctx.study
st.title("Overview")
st.caption(f"{md(study.title)} · study id {md(study.study_id)} · "
           f"cohort: {md(ctx.cohort.describe())}")

summary = session.cached_view(vo.summary, study, cohort=ctx.cohort)
c1, c2, c3, c4 = st.columns(4)
c1.metric("Patients", summary.patients)
c2.metric("Median follow-up", "-" if summary.median_follow_up_days is None
          else f"{summary.median_follow_up_days:.0f} d",
          help="Infusion to last contact or death (patients.last_contact_day / death_day; "
               "else the last measurement day).")
c3.metric("ORR (best)", "-" if summary.orr is None
          else f"{100 * summary.orr:.0f}% ({summary.responders}/{summary.patients})",
          help="Responders (CR or PR) over all patients in the cohort.")
if summary.orr_ci:
    c4.metric("95% CI (exact)", f"{100 * summary.orr_ci[0]:.0f}-{100 * summary.orr_ci[1]:.0f}%")
st.caption("Response groups come from: " + vo.group_sources(study, cohort=ctx.cohort)
           + ". Order: override, then derived from counts (NIH), then recorded.")

st.subheader("Baseline characteristics")
render.show(session.cached_view(vo.table1, study, cohort=ctx.cohort), key="ov-table1",
            name=f"{study.name}_table1", title=False)

st.subheader("Swimmer plot")
params = vo.SwimmerParams(sort_by=st.radio("Sort lanes by", vo.SORT_ORDERS, horizontal=True,
                                           key=sidebar.linked("ov-sort",
                                                              options=vo.SORT_ORDERS)))
swimmer = session.cached_view(vo.swimmer, study, cohort=ctx.cohort, params=params)
if swimmer is None:
    st.info("No patients in this cohort.")
else:
    render.show(swimmer, key="ov-swimmer", name=f"{study.name}_swimmer", opens_patient=True)
    st.caption("Click a patient's lane to open the Patient page.")
    if missing := vo.not_drawn_note(study, swimmer):
        st.info(missing)
render.show_params(params)
render.show_rules(session.cached_view(vo.common.rules, study), names=vo.RULES_SHOWN,
                  key="ov-rules")

st.subheader("Sample availability")
avail = session.cached_view(vo.availability, study, cohort=ctx.cohort)
if avail is None:
    st.info("No samples table and no blood-count, CAR-T or cytokine measurements at sample "
            "timepoints: nothing to show. Add samples.csv (sample_id, subject_id, day, "
            "timepoint, assay).")
else:
    render.show(avail, key="ov-availability", name=f"{study.name}_sample_availability",
                opens_patient=True)
    if links := vo.assay_pages(avail):
        cols = st.columns(min(len(links), 5))
        for i, (assay, page) in enumerate(links.items()):
            cols[i % len(cols)].page_link(page, label=f"{assay} →",
                                          icon=":material/open_in_new:")
