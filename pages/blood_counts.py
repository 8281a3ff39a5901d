"""Blood counts: counts over time, the response they imply (NIH or BSH), baseline, recovery,
CTCAE grades and ICAHT."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import streamlit as st

from components import render, session, sidebar
from components.safe import md
from views import blood_counts as vbc
from views import medications as vmed
from views.spec import TableSpec

ctx = session.context(applies="patients, and the day window to the counts, the "
                      "medications and the responses per assessment; not to baseline, "
                      "recovery, CTCAE and ICAHT (each is defined over its own days from "
                      "infusion)")
study = ctx.study
st.title("Blood counts")
present = vbc.present_counts(study)
if not present:
    st.info("This study has no blood counts: add measurements with analytes ANC, HGB, PLT, "
            "RETIC, WBC or ALC (panel cbc) to see counts, responses and recovery.")
    st.stop()

focus = session.get_focus(study)
if focus is not None:
    c1, c2 = st.columns([5, 1])
    c1.info(f"Highlighting {md(focus.describe())} (chosen on another page).")
    if c2.button("Clear focus", key="bc-clear-focus"):
        session.set_focus(None)
        st.rerun()

c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
analytes = c1.multiselect("Counts", present,
                          key=sidebar.linked("bc-analytes", study_default=True, options=present, shape="many"),
                          default=vbc.default_counts(present))
view = c2.radio("Show", vbc.COUNT_VIEWS, key=sidebar.linked("bc-view", options=vbc.COUNT_VIEWS))
log_y = c2.toggle("Log axis", key=sidebar.linked("bc-log", kind=bool))
criteria = c3.radio("Criteria", vbc.CRITERIA, horizontal=True,
                    key=sidebar.linked("bc-criteria", options=vbc.CRITERIA),
                    help="NIH: Townsley 2017. BSH: Killick 2016 (PR needs transfusion "
                         "independence).")
study_rules = vbc.study_rules(study)
ti_window = int(c3.number_input("Transfusion-free window (d)", 7, 365, study_rules.ti_window,
                                key=sidebar.linked("bc-ti", kind=int, bounds=(7, 365),
                                                   study_default=True)))
value_window = int(c4.number_input("Count window (± d)", 0, 30, study_rules.count_window,
                                   key=sidebar.linked("bc-vw", kind=int, bounds=(0, 30),
                                                   study_default=True)))
retic_options = vbc.retic_options(study_rules)
retic = float(c4.selectbox(
    "Reticulocyte cut-off", retic_options,
    key=sidebar.linked("bc-retic", options=retic_options, study_default=True),
    index=retic_options.index(float(study_rules.retic_threshold)),
    format_func=vbc.retic_label, help="RETIC below this (x10^9/L) counts towards severe."))
bin_days = int(c4.selectbox("Median bin (d)", vbc.BIN_DAYS, index=1,
                            key=sidebar.linked("bc-bin", options=vbc.BIN_DAYS),
                            disabled=view == "per patient"))
params = vbc.CountParams(
    analytes=tuple(analytes), view=view, log_y=log_y, bin_days=bin_days, criteria=criteria,
    **vbc.common.overrides(study_rules, ti_window=ti_window, count_window=value_window,
                           retic_threshold=retic),
    highlight=focus.subjects if focus else (),
    shade=focus.days if focus else None)
rules = vbc.rules_of(study, params)

spec = session.cached_view(vbc.counts, study, cohort=ctx.cohort, params=params) \
    if analytes else None
if spec is None:
    st.info("Choose at least one count.")
else:
    render.show(spec, key="bc-counts", name=f"{study.name}_blood_counts"
                + ("" if view == "per patient" else "_by_group"),
                opens_patient=view == "per patient")
if vbc.transfusions(study) is None:
    st.info("No transfusions are recorded (events with category transfusion, product RBC or "
            "PLT): the transfusion rug is empty and BSH partial responses cannot be judged.")
render.show_params(params)

# ---- medications that act on the counts (views.medications) --------------------------------
meds = session.cached_view(vmed.medication_table, study, cohort=ctx.cohort,
                           params=vmed.MedicationParams(classes=vmed.COUNT_DRUGS))
with st.expander(vbc.medications_heading(meds)):
    st.caption(meds.caption + " G-CSF-supported neutrophil counts do not make a response "
               "criterion met (see the rules below).")
    render.show_table(meds.data, key="bc-medications", name=f"{study.name}_count_medications")

st.subheader("Response per assessment")
heat = session.cached_view(vbc.responses_heatmap, study, cohort=ctx.cohort, params=params)
if heat is None:
    st.info("No assessment days in this cohort and day window.")
else:
    render.show(heat, key="bc-heatmap", name=f"{study.name}_responses_{criteria}",
                opens_patient=True)
    st.caption("Click a patient's row to open the Patient page.")
    render.show(session.cached_view(vbc.best_responses, study, cohort=ctx.cohort,
                                    params=params),
                key="bc-best", name=f"{study.name}_best_{criteria}")
    cmp = session.cached_view(vbc.derived_vs_recorded, study, cohort=ctx.cohort, params=params)
    if cmp is None:
        st.info("No recorded responses (responses.csv), so only derived responses are shown.")
    else:
        (st.success if vbc.all_agree(cmp) else st.warning)(cmp.caption)
        # the rule of each derived response below the grid as wrapped text (CSV: every column)
        render.show_table(cmp.data, key="bc-compare", name=f"{study.name}_derived_vs_recorded",
                          column_config={"agree": "agrees", **dict.fromkeys(
                              vbc.COMPARE_RULE_COLUMNS)})
        if not cmp.empty:
            st.table(vbc.compare_rules(cmp))
        render.show_code(cmp)

def _grid_with_rules(view: Callable[..., TableSpec], grid: Mapping[str, object],
                     rules_of: Callable[[TableSpec], object], name: str) -> None:
    """A table whose rule text would widen it past the page: the grid (`grid` is its
    column_config) with each row's rule below it as wrapped text; the CSV keeps every column."""
    spec = session.cached_view(view, study, cohort=ctx.cohort, params=vbc.TableParams(rules))
    st.subheader(spec.title)
    render.show_table(spec.data, key=spec.key, name=f"{study.name}_{name}", column_config=grid)
    if not spec.empty:
        st.table(rules_of(spec))
    st.caption(spec.caption)
    render.show_code(spec)


# Baseline: the counts, their days and the severity in the grid, the rule below it
_grid_with_rules(vbc.baseline_view, vbc.BASELINE_GRID, vbc.baseline_rules, "baseline")
for view in (vbc.recovery_view, vbc.ctcae_view):
    spec = session.cached_view(view, study, cohort=ctx.cohort, params=vbc.TableParams(rules))
    st.subheader(spec.title)
    render.show(spec, key=spec.key, name=f"{study.name}_{spec.key.removeprefix('bc-')}",
                title=False)
# ICAHT: the grades and the counts behind them in the grid, the rule of each grade below
_grid_with_rules(vbc.icaht_view, vbc.ICAHT_GRID, vbc.icaht_rules, "icaht")
render.show_rules(rules, names=vbc.RULES_SHOWN, key="bc-rules")
