"""Kinetics: CAR-T expansion and persistence (qPCR and flow), CD7-specific readouts and
exposure-response (rules: analysis.kinetics, DESIGN.md section 3)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import streamlit as st

from analysis import kinetics as kin
from analysis import post_hsct
from analysis.cohort import NON_RESPONDER, NOT_EVALUABLE, RESPONDER
from analysis.rules import rules_for
from analysis.toxicity import crs_table
from components import filters, render
from components.figures.kinetics import (
    concordance_scatter,
    exposure_strip,
    kinetics_curve,
    readout_panels,
)
from components.safe import md
from components.theme import GROUP_COLORS
from views import kinetics as kv
from views import patient as vp

LABELS = {"CAR_QPCR": "qPCR (copies/ug gDNA)", "CAR_PCT": "Flow (% of CD3+)",
          "CAR_ABS": "Flow (cells/uL)"}
VIEWS = ("Per patient", "Geometric mean by response group")
GROUP_ORDER = (RESPONDER, NON_RESPONDER, NOT_EVALUABLE)


@dataclass(frozen=True)
class KineticsParams:
    assay: str
    view: str
    auc_end: int
    blq_leading: str
    blq_middle: str
    blq_trailing: str
    landmark_tolerance: int
    auc_impute_day0: bool
    nonexpanders: str
    cohort: str


KIN_RULES = ("post_hsct_display", "auc_impute_day0", "kinetics_nonexpanders", "replicate_quantifiable_share",
             "exact_max_n")
ctx = filters.context()
study = ctx.study
st.title("Kinetics")
rules = rules_for(study)
series_all = kin.with_groups(filters.compute(kin.kinetic_series, study, analytes=kin.ASSAYS,
                                             rules=rules), groups=ctx.groups)
hsct = filters.compute(post_hsct.hsct_days, study)
series_all = post_hsct.for_display(series_all, hsct=hsct, rules=rules)
present = [a for a in kin.ASSAYS if a in set(series_all.get_column("assay").to_list())]
if not present:
    st.info("This study has no CAR-T measurements: add CAR_QPCR (copies/ug gDNA), CAR_PCT "
            "(% of CD3+) or CAR_ABS (cells/uL) rows, with their lloq, to measurements.")
    st.stop()

c1, c2 = st.columns([3, 2])
assay = c1.radio("Assay", present, format_func=LABELS.get, horizontal=True, key="kin-assay")
view = c2.radio("Show", VIEWS, horizontal=True, key="kin-view")
with st.expander("Analysis options (AUC window, values below the LLOQ, landmarks)"):
    o = st.columns(5)
    auc_end = int(o[0].number_input("AUC window end (day)", 1, 365, 28, key="kin-auc-end"))
    blq = [o[i + 1].selectbox(f"BLQ {pos}", kin.BLQ_POLICIES, index=kin.BLQ_POLICIES.index(d),
                              key=f"kin-blq-{pos}")
           for i, (pos, d) in enumerate((("leading", "zero"), ("middle", "drop"),
                                         ("trailing", "zero")))]
    tol = int(o[4].number_input("Landmark tolerance (days)", 0, 60, 7, key="kin-tol"))
    p1, p2 = st.columns(2)
    impute0 = p1.checkbox("No day-0 sample: start the AUC at 0 on day 0", rules.auc_impute_day0,
                          key="kin-impute0",
                          help="Off: without a day-0 value the AUC is not computed (PKNCA "
                               "imputes a start level of 0 only when asked).")
    nonexp = p2.selectbox("Non-expanders in group geometric means",
                          kin.NONEXPANDER_POLICIES,
                          index=kin.NONEXPANDER_POLICIES.index(rules.kinetics_nonexpanders),
                          key="kin-nonexp",
                          format_func={"exclude": "left out (counted and stated)",
                                       "half_lloq": "Cmax at LLOQ/2"}.get)
    rules = rules.with_(auc_impute_day0=impute0, kinetics_nonexpanders=nonexp)
    st.caption("BLQ = value < LLOQ. Leading: before the first quantifiable value; middle: "
               "between quantifiable values; trailing: after the last one. AUC by linear-up/"
               "log-down trapezoids. Landmarks D28, M3 (day 90), M6 (180), M12 (365): the "
               "nearest sample within the tolerance decides.")
params = KineticsParams(assay, view, auc_end, *blq, tol, rules.auc_impute_day0,
                        rules.kinetics_nonexpanders, ctx.cohort.describe())

focus = filters.get_focus(study)
if focus is not None:
    f1, f2 = st.columns([6, 1])
    f1.info(f"Focus from another page: {md(focus.describe())}")
    if f2.button("Clear focus", key="kin-clear-focus"):
        filters.set_focus(None)
        st.rerun()
highlight = focus.subjects if focus else ()
shade = (focus.day_min, focus.day_max) if focus else None

series = ctx.apply(series_all.filter(pl.col("assay") == assay))
label = study.analyte_label(assay)
unit = study.catalogue[assay].unit if assay in study.catalogue else ""
if view == VIEWS[0]:
    fig = filters.cached(kinetics_curve, series, colors=ctx.colors, title=label,
                         y_title=label, highlight=highlight, shade=shade)
    data = series
else:
    data = kin.group_curve(post_hsct.for_summary(series))
    fig = filters.cached(kinetics_curve, data, y="geo_mean", color="response_group", blq=None,
                         colors=GROUP_COLORS, title=f"{label}: geometric mean by group",
                         y_title=label, shade=shade, hover="geo_mean", n="n")
render.show_figure(fig, key="kin-curve", name=f"{study.name}_kinetics_{assay}", data=data,
                   params=params)
st.caption("Log10 axis. Open markers: below the LLOQ, drawn at LLOQ/2; dotted line: LLOQ. "
           "Group curves are geometric means of the patients sampled on each day (the number "
           "over each point is n on that day). A dash-dot line marks each HSCT; values after it are "
           + ("not drawn" if rules.post_hsct_display == "stop" else "dashed and faded")
           + " (post_hsct_display) and never enter the group curves.")

st.subheader("Parameters per patient")
table = filters.compute(kin.kinetics_table, study, auc_end=auc_end, blq_leading=blq[0],
                        blq_middle=blq[1], blq_trailing=blq[2], landmark_tolerance=tol,
                        rules=rules)
table = table.filter(pl.col("subject_id").is_in(list(ctx.subjects)))
auc_col = kin.auc_column(auc_end)
render.show_table(table.filter(pl.col("assay") == assay), key="kin-params",
                  name=f"{study.name}_kinetics_parameters")
st.markdown("**By response group** (geometric mean, geometric CV%)")
summary = kin.group_summary(table, groups=ctx.groups, parameters=("cmax", auc_col),
                            nonexpanders=rules.kinetics_nonexpanders)
render.show_table(summary.filter(pl.col("assay") == assay), key="kin-summary",
                  name=f"{study.name}_kinetics_by_group")

# ---- cellular-kinetics model next to NCA (views.kinetics) --------------------------------
st.subheader("Kinetic model: expansion, contraction, persistence")
if assay == "CAR_PCT":
    st.caption("The model is fitted to transgene levels (qPCR) or CAR+ cell counts; choose "
               "one of those assays above.")
else:
    fit_now = st.toggle("Fit the model", value=len(ctx.subjects) <= 30, key="kin-model",
                        help="Per patient, by maximum likelihood (seconds per patient on "
                             "large cohorts; the result is kept for the session)")
    if fit_now:
        mparams = kv.KineticModelParams(assay=assay)
        fitted = filters.compute(kv.fits, study, params=mparams)
        mfig = kv.model_figure(study, cohort=ctx.cohort, params=mparams, fitted=fitted)
        picked = render.show_figure(mfig.fig, key="kin-model-fig",
                                    name=f"{study.name}_kinetic_model", data=mfig.data,
                                    params=mparams, on_select="rerun",
                                    selection_mode=("points",))
        st.caption(mfig.caption + " Click a patient's point to open the Patient page.")
        if (sid := vp.selected_subject(picked)) is not None:
            st.session_state["_pt_pending"] = sid
            st.switch_page("pages/patient.py")
        mtable = kv.model_table(study, cohort=ctx.cohort, params=mparams, fitted=fitted)
        render.show_table(mtable.data, key="kin-model-table",
                          name=f"{study.name}_kinetic_model")
        st.caption(mtable.caption + " Same table: `python cli.py table kinetic_model "
                   f"--study {study.path.name} --assay {assay}`.")

st.subheader("qPCR vs flow")
flow = assay if assay != "CAR_QPCR" else next((a for a in ("CAR_PCT", "CAR_ABS")
                                               if a in present), None)
if "CAR_QPCR" in present and flow:
    pairs = kin.concordance(ctx.apply(series_all), x="CAR_QPCR", y=flow)
    corr = filters.cached(kin.repeated_correlation, pairs)
    render.show_figure(filters.cached(concordance_scatter, pairs, colors=ctx.colors,
                                      x_title=LABELS["CAR_QPCR"], y_title=LABELS[flow],
                                      title=corr.short()),
                       key="kin-concordance", name=f"{study.name}_qpcr_vs_flow", data=pairs)
    st.caption(f"Paired samples (same patient and day). {corr.describe()}. Several samples "
               "per patient are not independent, so the correlation is the within-patient one "
               "(repeated-measures correlation, Bakdash & Marusich 2017) and each patient's own "
               "rho; a Spearman over all samples pooled would count every sample as a patient. "
               "BLQ values are drawn at LLOQ/2 as open markers and left out of the statistics.")
else:
    st.info("Concordance needs both qPCR (CAR_QPCR) and flow (CAR_PCT or CAR_ABS) "
            "measurements; this study has only " + ", ".join(present) + ".")

st.subheader("CD7-specific readouts")
cd7 = ctx.apply(filters.compute(kin.kinetic_series, study, analytes=kin.CD7_READOUTS))
if cd7.height:
    days = series.get_column("day")
    xr = (float(days.min()) - 5, float(days.max()) + 5) if series.height else None
    render.show_figure(filters.cached(readout_panels, cd7, facet_order=kin.CD7_READOUTS,
                                      log_facets=("NK_ABS",), colors=ctx.colors,
                                      titles={a: study.analyte_label(a) for a in
                                              kin.CD7_READOUTS}, x_range=xr,
                                      highlight=highlight),
                       key="kin-cd7", name=f"{study.name}_cd7_readouts", data=cd7)
    st.caption("Same time axis as the curves above: on-target depletion of CD7+ NK cells and "
               "the emergence of CD7-negative T cells.")
else:
    st.info("No CD7-specific readouts: add CD7NEG_T_PCT (% of CD3+) and NK_ABS (cells/uL) "
            "to measurements (panel immunophenotype).")

st.subheader("Exposure-response")
crs = filters.compute(crs_table, study, rules=rules_for(study))
er = kin.exposure_response(table, groups=ctx.groups, crs=crs, assay=assay)
par = st.radio("Exposure", ("cmax", auc_col), horizontal=True, key="kin-exposure",
               format_func=lambda p: "Cmax" if p == "cmax" else f"AUC0-{auc_end}")
tests = filters.cached(kin.exposure_tests, er, parameters=(par,), exact_max_n=rules.exact_max_n)
e1, e2 = st.columns(2)
for col, by, order, name in ((e1, "response_group", GROUP_ORDER, "Best response group"),
                             (e2, "crs_max_grade", None, "CRS max grade")):
    row = tests.filter(pl.col("versus") == by)
    note = row.get_column("detail")[0] if row.height else ""
    with col:
        render.show_figure(
            filters.cached(exposure_strip, er.with_columns(pl.col(by).cast(pl.String)), x=by,
                           y=par, colors=ctx.colors, category_order=order, x_title=name,
                           y_title=f"Cmax ({unit})" if par == "cmax" else
                           f"AUC0-{auc_end} ({unit} x day)",
                           title=note),
            key=f"kin-er-{by}", name=f"{study.name}_{par}_vs_{by}", data=er)
render.show_table(tests, key="kin-er-tests", name=f"{study.name}_exposure_tests")
st.caption("One point per patient. Response groups: exact Mann-Whitney U (exact permutation p "
           "when tied; the same test as the Compare page, analysis.stats, so the same patients "
           "give the same p); CRS grade: Spearman rho with a permutation p. n is printed with "
           "each test."
           + (f" Above {kin.MWU_EXACT_MAX_N} patients (Mann-Whitney) or "
              f"{kin.SPEARMAN_PERMUTATION_MAX_N} (Spearman) the p value is asymptotic, as the "
              "test column says." if tests.get_column("test").str.contains("asymptotic").any()
              else ""))
render.show_rules(rules, names=KIN_RULES, key="kin-rules")
render.show_params(params)
