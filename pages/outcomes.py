"""Outcomes: response rates at the landmarks and Kaplan-Meier survival."""

from __future__ import annotations

import streamlit as st

from components import render, session, sidebar
from components.safe import md
from views import outcomes as vo

ctx = session.context(applies="patients; not the day window (response rates and "
                      "survival need each patient's whole follow-up)")
study = ctx.study
st.title("Outcomes")
st.caption(f"{md(study.title)} · cohort: {md(ctx.cohort.describe())} · "
           f"{len(ctx.subjects)} patients")
if not ctx.subjects:
    st.info("No patients in this cohort: widen the cohort filter in the sidebar.")
    st.stop()

st.subheader("Overall response rate")
study_rules = session.cached_view(vo.common.rules, study)
c1, c2 = st.columns([3, 2])
sources = vo.sources(study)
source = c1.radio("Responses from", sources, horizontal=True,
                  key=sidebar.linked("out-source", options=sources),
                  help="NIH / BSH: derived from blood counts at each landmark. recorded: the "
                       "study's responses table (NE on or after an HSCT).")
ti_window = int(c2.number_input("Transfusion-free window (d)", 7, 365, study_rules.ti_window,
                                key=sidebar.linked("out-ti", study_default=True, kind=int, bounds=(7, 365)),
                                disabled=source == "recorded"))
if not study.has("responses"):
    st.info("No recorded responses (responses.csv): rates are derived from blood counts only.")
if source != "recorded" and not study.has("measurements"):
    st.info("No blood counts (measurements with ANC, HGB, PLT, RETIC): responses cannot be "
            "derived, so every patient is not evaluable.")
orr_params = vo.orr_params(study_rules, source=source, ti_window=ti_window)
orr = session.cached_view(vo.orr_figure, study, cohort=ctx.cohort, params=orr_params)
if orr is not None:
    render.show(orr, key="out-orr", name=f"{study.name}_orr_{source}")
    percent = {"orr": st.column_config.NumberColumn("ORR", format="percent"),
               "ci_low": st.column_config.NumberColumn(format="percent"),
               "ci_high": st.column_config.NumberColumn(format="percent")}
    render.show_table(orr.data, key="out-orr-table", name=f"{study.name}_orr_table_{source}",
                      column_config=percent)

st.subheader("Survival")
c1, c2 = st.columns([3, 1])
endpoints = c1.multiselect("Endpoints", list(vo.ENDPOINT_LABELS), default=["OS"],
                          format_func=vo.ENDPOINT_LABELS.get,
                          key=sidebar.linked("out-endpoint", options=list(vo.ENDPOINT_LABELS),
                                             shape="many"),
                          help="OS: every death. OS censored at HSCT: sensitivity analysis. "
                               "EFS: HSCT, progression or death. PFS: progression or death. "
                               "Several: one curve each (e.g. OS and PFS).") or ["OS"]
endpoint = vo.endpoint_stem(endpoints)
split, day = "none", study_rules.survival_landmark_day
if c2.toggle("Split by response", key=sidebar.linked("out-by-group", kind=bool),
             disabled=len(endpoints) > 1, help="One endpoint at a time") and len(endpoints) == 1:
    s1, s2 = st.columns([3, 1])
    split = s1.radio("Groups", ("landmark", "best"), horizontal=True,
                     key=sidebar.linked("out-split", options=("landmark", "best")),
                     format_func={"landmark": "response by a landmark day (time from it)",
                                  "best": "best response over the whole follow-up"}.get,
                     help="A patient must survive long enough to respond: splitting from "
                          "infusion by best response favours responders (immortal-time "
                          "bias). The landmark analysis groups patients still at risk at "
                          "the landmark by their response up to it.")
    day = int(s2.number_input("Landmark day", 7, 730, study_rules.survival_landmark_day,
                              key=sidebar.linked("out-landmark", study_default=True, kind=int, bounds=(7, 730)),
                              disabled=split != "landmark"))
params = vo.survival_params(study_rules, endpoints=endpoints, split=split, source=source,
                            landmark_day=day, ti_window=ti_window)
if note := vo.survival_note(study, cohort=ctx.cohort, params=params):
    (st.warning if split == "best" else st.caption)(note)
render.show(session.cached_view(vo.survival, study, cohort=ctx.cohort, params=params),
            key="out-km", name=f"{study.name}_{endpoint}_km")
render.show(session.cached_view(vo.survival_medians, study, cohort=ctx.cohort, params=params),
            key="out-km-summary", name=f"{study.name}_{endpoint}_median", title=False)
if note := vo.follow_up_note(study):
    st.info(note)
render.show_params(params)
render.show_rules(vo.rules_of(study, vo.SurvivalParams(landmark_day=params.landmark_day,
                                                       ti_window=orr_params.ti_window)),
                  names=vo.RULES_SHOWN, key="out-rules")
