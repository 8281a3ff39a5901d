"""Overview: who is in the study, how they did, and what was sampled when."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import streamlit as st

from analysis.baseline import baseline
from analysis.outcomes import baseline_table, study_summary, swimmer_events, swimmer_lanes
from analysis.quality import ASSAY_PAGES, sample_availability
from analysis.response import derived_responses
from analysis.rules import rules_for
from components import filters, render
from components.figures.clinical import swimmer_plot
from components.figures.quality import availability_matrix
from components.safe import md

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class OverviewParams:
    cohort: str
    sort_by: str
    criteria: str = "NIH"


ctx = filters.context()
study = ctx.study
ids = list(ctx.subjects)
st.title("Overview")
st.caption(f"{md(study.title)} · study id {md(study.study_id)} · "
           f"cohort: {md(ctx.cohort.describe())}")

summary = study_summary(study, groups=ctx.groups, subjects=ids)
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
sources = ctx.groups.filter(pl.col("subject_id").is_in(ids)).get_column("group_source") \
    .value_counts(sort=True)
st.caption("Response groups come from: " + ", ".join(
    f"{r['group_source']} ({r['count']})" for r in sources.iter_rows(named=True))
    + ". Order: override, then derived from counts (NIH), then recorded.")

st.subheader("Baseline characteristics")
patients = study.patients.filter(pl.col("subject_id").is_in(ids))
rules = rules_for(study)
severity = filters.compute(baseline, study, rules=rules)
table1 = baseline_table(patients, groups=ctx.groups, severity=severity)
render.show_table(table1, key="ov-table1", name=f"{study.name}_table1")
st.caption("Severity at baseline (derived): modified Camitta from the last counts before "
           f"lymphodepletion (within {rules.screening_window} d, never after it) and the marrow "
           "cellularity; the recorded diagnosis (patients.diagnosis) is shown apart. Per "
           "patient, with the counts and days used: the Baseline table on the Blood counts "
           "page.")

st.subheader("Swimmer plot")
sort_by = st.radio("Sort lanes by", ["follow-up", "response"], horizontal=True, key="ov-sort")
params = OverviewParams(cohort=ctx.cohort.describe(), sort_by=sort_by)
responses = filters.compute(derived_responses, study, criteria=params.criteria, rules=rules)
lanes = swimmer_lanes(study, groups=ctx.groups).filter(pl.col("subject_id").is_in(ids))
events = swimmer_events(study, responses=responses).filter(pl.col("subject_id").is_in(ids))
if lanes.height:
    render.show_figure(filters.cached(swimmer_plot, lanes, events, sort_by=sort_by),
                       key="ov-swimmer",
                       name=f"{study.name}_swimmer", data=events, params=params)
    missing = [what for what, ok in (
        ("transfusions", any(k.endswith("transfusion") for k in events["kind"].unique())),
        ("CRS/ICANS episodes", study.events.filter(
            pl.col("category").is_in(["crs", "icans"])).height > 0),
        ("last contact days", patients.get_column("last_contact_day").drop_nulls().len() > 0))
        if not ok]
    if missing:
        st.info("Not in this study, so not drawn: " + ", ".join(missing) + ". Add them to "
                "events.csv (category transfusion/crs/icans) or patients.csv "
                "(last_contact_day).")
    st.caption("Lanes run from infusion to last contact; HSCT, progression and death are "
               "marked (from events or patients.csv); assessments on or after an HSCT are NE "
               "for the CAR-T.")
else:
    st.info("No patients in this cohort.")
render.show_params(params)
render.show_rules(rules, names=("retic_threshold", "ti_window", "count_window",
                                "nonsevere_pr", "plt_support_days", "rbc_support_days",
                                "gcsf_support_days", "screening_window",
                                "baseline_on_ld_day"), key="ov-rules")

st.subheader("Sample availability")
avail = ctx.apply(filters.compute(sample_availability, study))
if avail.height:
    render.show_figure(filters.cached(availability_matrix, avail), key="ov-availability",
                       name=f"{study.name}_sample_availability", data=avail)
    links = {a: ASSAY_PAGES[a] for a in avail.get_column("assay").unique().sort().to_list()
             if a in ASSAY_PAGES and (ROOT / ASSAY_PAGES[a]).exists()}
    if links:
        cols = st.columns(min(len(links), 5))
        for i, (assay, page) in enumerate(links.items()):
            cols[i % len(cols)].page_link(page, label=f"{assay} →",
                                          icon=":material/open_in_new:")
else:
    st.info("No samples table and no blood-count, CAR-T or cytokine measurements at sample "
            "timepoints: nothing to show. Add samples.csv (sample_id, subject_id, day, "
            "timepoint, assay).")
