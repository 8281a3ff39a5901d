"""Outcomes: response rates at the landmarks and Kaplan-Meier survival."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import streamlit as st

from analysis.outcomes import ENDPOINTS, ORR_CAPTION, kaplan_meier, orr, survival_data
from analysis.response import derived_responses, recorded_responses
from analysis.rules import rules_for
from analysis.survival import landmark
from components import filters, render
from components.figures.clinical import km_plot, orr_plot
from components.safe import md

RULES_SHOWN = ("retic_threshold", "ti_window", "count_window", "count_tie", "nonsevere_pr",
               "plt_support_days", "rbc_support_days", "gcsf_support_days",
               "screening_window", "baseline_on_ld_day", "landmark_tolerance",
               "survival_landmark_day")


@dataclass(frozen=True)
class OutcomeParams:
    source: str
    ti_window: int
    endpoint: str
    by_group: bool
    cohort: str
    split: str = "landmark"
    landmark_day: int | None = None


ctx = filters.context()
study = ctx.study
ids = tuple(ctx.subjects)
st.title("Outcomes")
st.caption(f"{md(study.title)} · cohort: {md(ctx.cohort.describe())} · {len(ids)} patients")
if not ids:
    st.info("No patients in this cohort: widen the cohort filter in the sidebar.")
    st.stop()

st.subheader("Overall response rate")
c1, c2 = st.columns([3, 2])
sources = ["NIH", "BSH"] + (["recorded"] if study.has("responses") else [])
source = c1.radio("Responses from", sources, horizontal=True, key="out-source",
                  help="NIH / BSH: derived from blood counts at each landmark. recorded: the "
                       "study's responses table (NE on or after an HSCT).")
rules = rules_for(study)
ti_window = int(c2.number_input("Transfusion-free window (d)", 7, 365, rules.ti_window,
                                key="out-ti", disabled=source == "recorded"))
rules = rules.with_(ti_window=ti_window)
if not study.has("responses"):
    st.info("No recorded responses (responses.csv): rates are derived from blood counts only.")
if source != "recorded" and not study.has("measurements"):
    st.info("No blood counts (measurements with ANC, HGB, PLT, RETIC): responses cannot be "
            "derived, so every patient is not evaluable.")
table = filters.compute(orr, study, criteria=source, rules=rules, subjects=ids)
render.show_figure(orr_plot(table, title=f"Overall response rate (CR + PR), {source}"),
                   key="out-orr", name=f"{study.name}_orr_{source}", data=table,
                   params={"criteria": source, "rules": rules.changed()})
render.show_table(table, key="out-orr-table", name=f"{study.name}_orr_table_{source}",
                  column_config={"orr": st.column_config.NumberColumn("ORR", format="percent"),
                                 "ci_low": st.column_config.NumberColumn(format="percent"),
                                 "ci_high": st.column_config.NumberColumn(format="percent")})
st.caption(ORR_CAPTION.format(tol=rules.landmark_tolerance))

st.subheader("Survival")
c1, c2 = st.columns([3, 1])
endpoint = c1.radio("Endpoint", list(ENDPOINTS), horizontal=True, key="out-endpoint",
                    format_func=lambda e: {"OS_HSCT_CENSORED": "OS censored at HSCT"}.get(e, e),
                    help="OS: every death. OS censored at HSCT: sensitivity analysis. EFS: HSCT, "
                         "progression or death. PFS: progression or death.")
by_group = c2.toggle("Split by response", key="out-by-group")
split, lm_day = "landmark", None
if by_group:
    s1, s2 = st.columns([3, 1])
    split = s1.radio("Groups", ("landmark", "best"), horizontal=True, key="out-split",
                     format_func={"landmark": "response by a landmark day (time from it)",
                                  "best": "best response over the whole follow-up"}.get,
                     help="A patient must survive long enough to respond: splitting from "
                          "infusion by best response favours responders (immortal-time "
                          "bias). The landmark analysis groups patients still at risk at "
                          "the landmark by their response up to it.")
    lm_day = int(s2.number_input("Landmark day", 7, 730, rules.survival_landmark_day,
                                 key="out-landmark", disabled=split != "landmark"))
    rules = rules.with_(survival_landmark_day=lm_day)
params = OutcomeParams(source, ti_window, endpoint, by_group, ctx.cohort.describe(), split,
                       lm_day if split == "landmark" else None)

surv = filters.compute(survival_data, study, endpoint=endpoint) \
    .filter(pl.col("subject_id").is_in(list(ids)))
group_col, x_note = None, None
if by_group and split == "landmark":
    resp = filters.compute(recorded_responses, study) if source == "recorded" else \
        filters.compute(derived_responses, study, criteria=source, rules=rules)
    lm = landmark(surv, resp, day=lm_day)
    left_out = lm.filter(pl.col("landmark_group").is_null())
    surv, group_col = lm.filter(pl.col("landmark_group").is_not_null()), "landmark_group"
    x_note = f"days after the day-{lm_day} landmark"
    st.caption(f"Landmark analysis at day {lm_day} ({source} responses): {surv.height} patients "
               f"at risk at day {lm_day}, grouped by a CR or PR on or before it; time counts "
               f"from day {lm_day}. Left out: {left_out.height}"
               + (" (" + "; ".join(f"{r['subject_id']}: {r['landmark_note']}"
                                   for r in left_out.iter_rows(named=True)) + ")"
                  if left_out.height else "") + ".")
elif by_group:
    surv = surv.join(ctx.groups.select("subject_id", "response_group"), on="subject_id")
    group_col = "response_group"
    st.warning("Immortal-time bias: best response over the whole follow-up is known only at "
               "the end, and a patient must survive to respond, so this split favours "
               "responders from day 0. Use the landmark analysis for a comparison.")
km = kaplan_meier(surv, group=group_col)
name, definition = ENDPOINTS[endpoint]
fig = km_plot(km.curve, km.at_risk, censored=km.censored,
              note=definition.split(": ", 1)[1].split(";")[0],
              title=f"{name} (Kaplan-Meier, 95% CI)"
              + (f", landmark day {lm_day}" if group_col == "landmark_group" else ""))
if x_note:
    fig.update_xaxes(title_text=f"Time ({x_note})", row=2, col=1)
render.show_figure(fig, key="out-km", name=f"{study.name}_{endpoint}_km", data=surv,
                   params=params)
st.caption(f"Definition. {definition}")
medians = km.summary.with_columns(
    pl.format("{} ({}-{})", *[pl.col(c).round(0).cast(pl.Int64).cast(pl.String)
                              .fill_null("NR") for c in ("median", "median_ci_low",
                                                         "median_ci_high")])
    .alias("median days (95% CI)")).select("group", "n", "events", "median days (95% CI)")
render.show_table(medians, key="out-km-summary", name=f"{study.name}_{endpoint}_median")
st.caption("NR = not reached. Numbers at risk under the plot share its time axis. The full "
           "table: python cli.py table survival --endpoint " + endpoint)
if study.patients.get_column("last_contact_day").drop_nulls().len() == 0:
    st.info("patients.csv has no last_contact_day: follow-up of surviving patients ends at "
            "their last recorded measurement or event.")
render.show_params(params)
render.show_rules(rules, names=RULES_SHOWN, key="out-rules")
