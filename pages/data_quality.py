"""Data & quality: what was loaded, what was wrong with it, and what is available when."""

from __future__ import annotations

import streamlit as st

from components import render, session, sidebar
from components.export import csv_bytes
from components.safe import md
from views import data_quality as vdq

ctx = session.context(applies="patients and the day window in sample availability; the "
                      "validation report and the inventory cover every file")
study = ctx.study
st.title("Data & quality")
st.caption(f"{md(study.title)} · folder {md(study.name)} · study id {md(study.study_id)}")

loaded = vdq.summary(study)
c1, c2, c3, c4 = st.columns(4)
c1.metric("Patients", loaded.patients)
c2.metric("Tables loaded", loaded.tables)
c3.metric("Errors", loaded.errors)
c4.metric("Warnings", loaded.warnings)
{"error": st.error, "warning": st.warning, "success": st.success}[loaded.level](loaded.verdict)

st.subheader("Validation report")
severities = st.pills("Show", vdq.SEVERITIES, selection_mode="multi",
                      default=list(vdq.SEVERITIES),
                      key=sidebar.linked("dq-severity", options=vdq.Severity, shape="many"))
shown = session.cached_view(vdq.report, study, cohort=None,
                            params=vdq.ReportParams(tuple(severities or ())))
if shown is not None:
    render.show(shown, key="dq-report", name=f"{study.name}_validation_report", title=False)
else:
    st.caption("Nothing to show for this selection.")

st.subheader("What was loaded")
inventory = session.cached_view(vdq.inventory, study, cohort=None, params=None)
render.show_table(inventory.data, key="dq-inventory", name=f"{study.name}_inventory",
                  column_config={"rows_read": "rows in files", "rows": "rows loaded"})
render.show_code(inventory)

st.subheader("Sample availability")
avail = session.cached_view(vdq.availability, study, cohort=ctx.cohort, params=None)
if avail is not None:
    render.show(avail, key="dq-availability", name=f"{study.name}_sample_availability",
                opens_patient=True)
else:
    st.info("No samples table and no blood-count, CAR-T or cytokine measurements at sample "
            "timepoints: nothing to show. Add samples.csv (sample_id, subject_id, day, "
            "timepoint, assay).")

st.subheader("Templates for your own data")
st.caption("Empty CSV files with every column of each table (required columns first). "
           "See docs/data-format.md for units, aliases and an example.")
cols = st.columns(5)
for i, tpl in enumerate(vdq.templates()):
    cols[i % 5].download_button(f"{tpl.name}.csv", data=csv_bytes(tpl.frame),
                                file_name=f"{tpl.name}.csv", mime="text/csv",
                                key=f"dq-tpl-{tpl.name}", help=tpl.description,
                                on_click="ignore")
