"""Responders vs non-responders: what differs, before and after infusion, between two groups of
patients, for any feature layer (patient-level tests; analysis.differential)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import streamlit as st

from analysis import differential as dif
from analysis.rules import rules_for
from components import filters, render
from components.figures import compare as cf
from components.safe import md


@dataclass(frozen=True)
class CompareParams:
    layer: str
    window: str
    group_by: str
    group_a: str
    group_b: str
    change_from_baseline: bool
    method: str
    effect_measure: str
    panel: str | None
    fdr: float
    min_n: int
    fdr_across_windows: bool
    defining_in_fdr: bool


ctx = filters.context()
study = ctx.study
st.title("Responders vs non-responders")
st.caption("One value per patient per window (the sample closest to the window centre); "
           "two-sided Mann-Whitney, exact or by permutation for small groups (analysis.stats, "
           "the same test as the Kinetics page); BH-FDR across features. Positive effect = "
           "higher in group A.")
CMP_RULES = ("group_defining_analytes", "defining_in_fdr", "fdr_across_windows", "exact_max_n")
rules = rules_for(study)

missing = dif.available_layers(study)
layers = [la for la in dif.LAYERS if not missing[la]]
for la in dif.LAYERS:
    if missing[la]:
        st.caption(f"Not available: {dif.LAYER_LABELS[la]} ({md(missing[la])}).")
if not layers:
    st.info("Nothing to compare: this study has no measurements, proteomics, bulk RNA, "
            "mutations, TCR or single-cell data. Add at least one of these tables.")
    st.stop()

c1, c2, c3 = st.columns(3)
layer = c1.selectbox("Layer", layers, format_func=dif.LAYER_LABELS.get, key="cmp-layer",
                     index=layers.index("proteomics") if "proteomics" in layers else 0)
window = c2.selectbox("Window", [*dif.WINDOWS, "custom"], index=2, key="cmp-window")
if window == "custom":
    window = c2.text_input("Days (start:end)", "21:35", key="cmp-days")
group_by = c3.selectbox("Groups", ["response_group", *filters.compute(dif.grouping_columns, study),
                                   "custom split"], key="cmp-groupby",
                        format_func=lambda c: "Responders vs non-responders"
                        if c == "response_group" else c)
groups, ga, gb = None, None, None
if group_by == "custom split":
    ga_ids = c3.multiselect("Group A", study.subject_ids, key="cmp-split-a")
    gb_ids = c3.multiselect("Group B", [s for s in study.subject_ids if s not in ga_ids],
                            key="cmp-split-b")
    groups = (tuple(ga_ids), tuple(gb_ids))
elif len(values := filters.compute(dif.group_values, study, column=group_by)) > 2:
    ga = c3.selectbox("Group A", values, key="cmp-group-a")
    gb = c3.selectbox("Group B", [v for v in values if v != ga], key="cmp-group-b")

o1, o2, o3, o4 = st.columns(4)
change = o1.checkbox("Change from baseline", key="cmp-change")
effect_measure = o2.radio("Effect size", ["hedges_g", "cliffs_delta"], key="cmp-effect",
                          format_func={"hedges_g": "Hedges' g",
                                       "cliffs_delta": "Cliff's delta"}.get)
method, panel = "rank", None
if layer == "rna":
    method = o3.radio("RNA method", ["rank", "deseq2"], key="cmp-method",
                      format_func={"rank": "Rank test on log-CPM",
                                   "deseq2": "DESeq2 on raw counts (about a minute)"}.get)
if layer == "measurements":
    panels = sorted(study.measurements.get_column("panel").drop_nulls().unique().to_list())
    panel = o3.selectbox("Panel", [None, *panels], key="cmp-panel",
                         format_func=lambda p: "all panels" if p is None else p)
fdr = o4.select_slider("FDR", [0.01, 0.05, 0.1, 0.2, 0.25], value=0.1, key="cmp-fdr")
min_n = o4.number_input("Min. patients per group for a test", 2, 10, dif.MIN_N,
                        key="cmp-min-n")
f1, f2 = st.columns(2)
across = f1.checkbox("BH-FDR across all windows", rules.fdr_across_windows, key="cmp-fdr-windows",
                     help="One FDR family over every window (baseline, D14, D28, M3, M6, M12) "
                          "instead of one per window.")
defining_in = f2.checkbox("Group-defining counts in the FDR family", rules.defining_in_fdr,
                          key="cmp-defining-fdr",
                          help="ANC, PLT, HGB and RETIC make the response groups; testing them "
                               "between those groups is circular, so by default they are "
                               "marked and left out of the FDR family.")
rules = rules.with_(fdr_across_windows=across, defining_in_fdr=defining_in)

try:
    _, label_a, label_b = filters.compute(dif.assign_groups, study, groups=groups,
                                          group_column=group_by, group_a=ga, group_b=gb)
    kw = {"layer": layer, "window": window, "groups": groups, "group_a": ga, "group_b": gb,
          "group_column": group_by if groups is None else "response_group",
          "change_from_baseline": change, "panel": panel, "subjects": ctx.subjects,
          "rules": rules}
    with st.spinner("Comparing ..." if method == "rank" else "Running DESeq2 ..."):
        res = filters.compute(dif.compare, study, effect_measure=effect_measure,
                              method=method, min_n=int(min_n), **kw)
except ValueError as err:
    st.warning(md(err))
    st.stop()
if ctx.cohort.day_min is not None or ctx.cohort.day_max is not None:
    st.caption("The comparison uses its own window above; the sidebar's day window limits the "
               "trajectory below.")

params = CompareParams(layer, str(window), group_by, label_a, label_b, change, method,
                       effect_measure, panel, fdr, int(min_n), across, defining_in)
render.show_params(params)
if res.height == 0:
    st.info(f"No {dif.LAYER_LABELS[layer].lower()} values for {md(label_a)} or {md(label_b)} in this "
            "window. Try another window or layer; the Data & quality page shows which samples "
            "exist.")
    st.stop()

tested = res.filter(pl.col("p_value").is_not_null())
m1, m2, m3, m4 = st.columns(4)
m1.metric(f"n {md(label_a)}", int(res.get_column("n_group_a").max()))
m2.metric(f"n {md(label_b)}", int(res.get_column("n_group_b").max()))
m3.metric("Features tested", f"{tested.height} / {res.height}")
m4.metric(f"q <= {fdr:g}", tested.filter(pl.col("q_value") <= fdr).height)
st.caption(md(res.get_column("window_rule")[0] + ". FDR: " + (
    res.get_column("fdr_family").drop_nulls().first() or "no test in the family")))
defining = res.filter(pl.col("defines_groups").fill_null(False))
if defining.height:
    st.caption(f"Defines the groups: {md(', '.join(defining.get_column('feature').to_list()))} "
               "(the response groups are made from these counts; shown and tested, "
               + ("in the FDR family on request" if defining_in else
                  "not in the FDR family: their q is empty") + ").")
if tested.height == 0:
    st.info("No test is possible here: " + md(res.get_column("reason").drop_nulls().first() or
            "no values") + ". The values are shown below.")
elif notes := res.get_column("note").drop_nulls().unique().to_list():
    st.caption("Note: " + md(notes[0]))

name = f"{study.name}_{layer}_{window}".replace(":", "-")
if tested.height:
    event = render.show_figure(
        filters.cached(cf.volcano, tested, fdr=fdr, group_a=label_a, group_b=label_b,
                       x_title=tested.get_column("effect_measure")[0],
                       title=f"{label_a} vs {label_b}: {layer} at {window}"),
        key="cmp-volcano", name=f"{name}_volcano", data=cf.ranked_table(res), params=params,
        on_select="rerun", selection_mode=("points",))
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    clicked = points[0].get("customdata") if points else None
    clicked = clicked[0] if isinstance(clicked, list) else clicked
    if clicked and clicked != st.session_state.get("cmp-last-click"):
        st.session_state["cmp-last-click"] = clicked
        st.session_state["cmp-feature"] = clicked

st.subheader("Ranked features")
render.show_table(cf.ranked_table(res), key="cmp-table", name=f"{name}_ranked")

st.subheader("Top features per patient")
top = cf.top_features(res, n=20)
vals = filters.compute(dif.patient_values, study, features=tuple(top),
                       **{k: v for k, v in kw.items() if k != "rules"})
render.show_figure(filters.cached(cf.zscore_heatmap, vals, features=top,
                                  group_order=[label_a, label_b],
                                  title=f"Top {len(top)} features, z-scored ({window})"),
                   key="cmp-heatmap", name=f"{name}_heatmap", data=vals, params=params)

st.subheader("One feature over time")
features = res.get_column("feature").to_list()
if st.session_state.get("cmp-feature") not in features:
    st.session_state["cmp-feature"] = features[0]
feature = st.selectbox("Feature (or click a point in the volcano)", features, key="cmp-feature")
course_kw = {k: kw[k] for k in ("layer", "groups", "group_column", "group_a", "group_b",
                                "panel", "subjects")}
course_rules = {"rules": rules}
course = ctx.apply(filters.compute(dif.feature_course, study, feature=feature, **course_kw))
tests = filters.compute(dif.feature_windows, study, feature=feature, min_n=int(min_n),
                        change_from_baseline=change, effect_measure=effect_measure,
                        **course_kw, **course_rules)
render.show_figure(filters.cached(cf.feature_trajectory, course, tests=tests,
                                  y_title=dif.value_label(study, layer=layer, feature=feature),
                                  title=f"{feature}: every patient, every timepoint"),
                   key="cmp-trajectory", name=f"{study.name}_{feature}_course", data=course,
                   params=params)
render.show_table(tests.select("window", "days", "n_group_a", "n_group_b", "effect",
                               "effect_measure", "p_value", "q_value", "median_a", "median_b",
                               "test", "reason"),
                  key="cmp-windows", name=f"{study.name}_{feature}_by_window")
render.show_rules(rules, names=CMP_RULES, key="cmp-rules")
