"""Responders vs non-responders: what differs, before and after infusion, between two groups of
patients, for any feature layer (patient-level tests). The recipes are in views/compare.py; this
page reads widgets into their CompareParams (views/compare_options.py: the option lists,
defaults and focus rules)."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from components import jobs_panel, render, session, sidebar
from components.safe import md
from views import compare as cv
from views import compare_options as co

ctx = session.context(applies="patients (the groups compared); the day window only to "
                      "the feature's course over time (each comparison has its own window)")
study, cohort = ctx.study, ctx.cohort
st.title("Responders vs non-responders")
st.caption("One value per patient per window (the sample closest to the window centre); "
           "two-sided Mann-Whitney, exact or by permutation for small groups (analysis.stats, "
           "the same test as the Kinetics page); BH-FDR across features. Positive effect = "
           "higher in group A.")
for la, why in co.missing_layers(study).items():
    if why:
        st.caption(f"Not available: {co.LAYER_LABELS[la]} ({md(why)}).")
if not (layers := co.layers(study)):
    st.info("Nothing to compare: this study has no measurements, proteomics, bulk RNA, "
            "mutations, TCR or single-cell data. Add at least one of these tables.")
    st.stop()
# a link's layer and window come before defaults; both defaults depend on the study (its
# layers; a focus), so both always stay in the link
layer_key = sidebar.linked("cmp-layer", options=layers, study_default=True)
window_key = sidebar.linked("cmp-window", options=co.WINDOW_CHOICES, study_default=True)
# a focus set elsewhere (a sample clicked on the Patient page) opens its layer and window once;
# a link that names the layer or window shows those: its focus counts as seen
focus = session.get_focus(study)
if focus is not None and (sidebar.from_link(layer_key) or sidebar.from_link(window_key)):
    st.session_state["cmp-focus-seen"] = focus
fresh = focus if focus is not None and st.session_state.get("cmp-focus-seen") != focus else None
if fresh is not None:
    st.session_state["cmp-focus-seen"] = fresh
st.session_state["cmp-layer"], st.session_state["cmp-window"] = co.opening_choices(
    study, layer=st.session_state.get("cmp-layer"), window=st.session_state.get("cmp-window"),
    focus=fresh)

c1, c2, c3 = st.columns(3)
layer = c1.selectbox("Layer", layers, format_func=co.LAYER_LABELS.get, key=layer_key)
window = c2.selectbox("Window", co.WINDOW_CHOICES, key=window_key)
if window == co.CUSTOM_WINDOW:
    window = c2.text_input("Days (start:end)", co.CUSTOM_DAYS, key=sidebar.linked("cmp-days"))
groupings = session.cached_view(co.grouping_columns, study)
group_by = c3.selectbox("Groups", groupings, key=sidebar.linked("cmp-groupby", options=groupings),
                        format_func=co.grouping_label)
ga = gb = None
ids_a: list[str] = []
ids_b: list[str] = []
if group_by == co.CUSTOM_SPLIT:
    patients = co.patient_choices(study)
    ids_a = c3.multiselect("Group A", patients,
                           key=sidebar.linked("cmp-split-a", options=patients, shape="many"))
    others = co.other_patients(study, ids_a)
    ids_b = c3.multiselect("Group B", others,
                           key=sidebar.linked("cmp-split-b", options=others, shape="many"))
elif len(values := session.cached_view(co.group_values, study,
                                       params={"column": group_by})) > 2:
    ga = c3.selectbox("Group A", values, key=sidebar.linked("cmp-group-a", options=values))
    rest = co.other_values(values, ga)
    gb = c3.selectbox("Group B", rest, key=sidebar.linked("cmp-group-b", options=rest))

o1, o2, o3, o4 = st.columns(4)
change = o1.checkbox("Change from baseline", key=sidebar.linked("cmp-change", kind=bool))
effects = list(co.EFFECT_LABELS)
effect = o2.radio("Effect size", effects, key=sidebar.linked("cmp-effect", options=effects),
                  format_func=co.EFFECT_LABELS.get)
method = o3.radio("RNA method", co.METHODS, key=sidebar.linked("cmp-method", options=co.Method),
                  format_func=co.METHOD_LABELS.get) if layer == "rna" else "rank"
panels = co.panel_choices(study)
panel = o3.selectbox("Panel", panels, key=sidebar.linked("cmp-panel", options=panels),
                     format_func=co.panel_label) if layer == "measurements" else None
fdr = o4.select_slider("FDR", co.FDR_CHOICES, value=0.1,
                       key=sidebar.linked("cmp-fdr", options=co.FDR_CHOICES))
min_n = o4.number_input("Min. patients per group for a test", 2, 10, co.MIN_N,
                        key=sidebar.linked("cmp-min-n", kind=int, bounds=(2, 10)))
f1, f2 = st.columns(2)
study_rules = co.rules(study)
across = f1.checkbox("BH-FDR across all windows", study_rules.fdr_across_windows,
                     key=sidebar.linked("cmp-fdr-windows", kind=bool, study_default=True),
                     help="One FDR family over every window (baseline, D14, D28, M3, M6, M12) "
                          "instead of one per window.")
defining_in = f2.checkbox("Group-defining counts in the FDR family", study_rules.defining_in_fdr,
                          key=sidebar.linked("cmp-defining-fdr", kind=bool, study_default=True),
                          help="ANC, PLT, HGB and RETIC make the response groups; testing them "
                               "between those groups is circular, so by default they are "
                               "marked and left out of the FDR family.")
params = co.CompareParams(layer, str(window), group_by, ga, gb, tuple(ids_a), tuple(ids_b),
                          change, method, effect, panel, fdr, int(min_n), across, defining_in)
if method == "deseq2" and jobs_panel.run(
        cv.run_comparison, study, cohort=cohort, params=cv.comparison_params(params),
        study=study, key="cmp-deseq2", label="DESeq2 on raw counts") is None:
    st.stop()     # a job on the jobs cluster: progress and Cancel above, the page reruns after
try:
    with st.spinner("Comparing ..."):
        got = session.cached_view(cv.summary, study, cohort=cohort, params=params)
except ValueError as err:
    st.warning(md(err))
    st.stop()
if note := co.day_window_note(cohort):
    st.caption(note)
if note := co.focus_note(study, cohort=cohort, params=params, focus=focus):
    st.info(md(note))
render.show_params(params)
if got.empty:
    st.info(md(got.empty))
    st.stop()

m1, m2, m3, m4 = st.columns(4)
m1.metric(f"n {md(got.label_a)}", got.n_a)
m2.metric(f"n {md(got.label_b)}", got.n_b)
m3.metric("Features tested", f"{got.n_tested} / {got.n_features}")
m4.metric(f"q <= {fdr:g}", got.n_hits)
for line in got.notes:
    st.caption(md(line))
if got.untested:
    st.info("No test is possible here: " + md(got.untested) + ". The values are shown below.")

name = co.file_stem(study, params)
if got.n_tested:
    spec = session.cached_view(cv.volcano, study, cohort=cohort, params=params)
    event = render.show(spec, key="cmp-volcano", name=f"{name}_volcano", on_select="rerun",
                        selection_mode=("points",))
    clicked = co.clicked_feature(event)
    if clicked and clicked != st.session_state.get("cmp-last-click"):
        st.session_state["cmp-last-click"] = clicked
        st.session_state["cmp-feature"] = clicked

render.show(session.cached_view(cv.ranked, study, cohort=cohort, params=params), key="cmp-table",
            name=f"{name}_ranked")
st.subheader("Top features per patient")
render.show(session.cached_view(cv.heatmap, study, cohort=cohort, params=params, focus=focus),
            key="cmp-heatmap", name=f"{name}_heatmap")

st.subheader("One feature over time")
features = session.cached_view(cv.features, study, cohort=cohort, params=params)
feature_key = sidebar.linked("cmp-feature", options=features)
st.session_state["cmp-feature"] = co.feature_choice(features, st.session_state.get("cmp-feature"))
feature = st.selectbox("Feature (or click a point in the volcano)", features, key=feature_key)
one = replace(params, feature=feature)
trajectory = session.cached_view(cv.course, study, cohort=cohort, params=one, focus=focus)
render.show(trajectory, key="cmp-trajectory", name=f"{study.name}_{feature}_course")
render.show(session.cached_view(cv.window_tests, study, cohort=cohort, params=one),
            key="cmp-windows", name=f"{study.name}_{feature}_by_window")
render.show_rules(co.rules(study, params=params), names=co.CMP_RULES, key="cmp-rules")
