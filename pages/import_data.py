"""Import data: files as the lab has them -> detected mapping (editable) -> preview and
validation report -> a new study folder. Nothing is written before Save; a study is never
overwritten. On a shared server only users in STUDY_CREATORS may import, into STUDIES_ROOT."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import streamlit as st

from components import access, render
from components.safe import md
from views import importing as imp
from views.importing import ImportSettings, StudyError

st.title("Import data")
root = os.environ.get("STUDIES_ROOT")
# the identity app.py proved (OIDC login or the proxy's user), never a bare header
viewer = render.current_viewer() if root else None
if root:
    if not access.may_create_studies(viewer):
        st.info("Your account may not create studies on this server. The administrator "
                "lists who may in STUDY_CREATORS (see docs/importing.md).")
        st.stop()
st.caption("Lab sheets (wide or long, Excel or CSV), SDTM, Olink, AIRR, 10x, MAF and "
           "single-cell files. See docs/importing.md for the shapes that are recognised.")

# ---- 1. files ------------------------------------------------------------------------------
limit = imp.upload_limit_mb()
how = "Upload files" if root else st.radio("Files", ["A folder or file on this computer",
                                                     "Upload files"], horizontal=True,
                                           key="imp-how")
source: Path | None = None
if how == "Upload files":
    files = st.file_uploader(f"Files (at most {limit} MB together)", accept_multiple_files=True,
                             key="imp-files")
    if files:
        key = imp.upload_key(files)
        if st.session_state.get("_imp_upload_key") != key:
            try:
                folder = imp.restage_uploads(files, limit_mb=limit,
                                             previous=st.session_state.get("_imp_upload_dir"))
            except StudyError as err:
                st.error(md(err))
                st.stop()
            st.session_state.update(_imp_upload_key=key, _imp_upload_dir=str(folder))
        source = Path(st.session_state["_imp_upload_dir"])
else:
    try:
        source = imp.source_folder(st.text_input("Folder or file", key="imp-path",
                                                 placeholder="/data/lab_export"))
    except StudyError as err:
        st.error(md(err))
        st.stop()
if source is None:
    st.stop()

# ---- 2. choices ----------------------------------------------------------------------------
left, right = st.columns(2)
order = left.selectbox("Ambiguous dates such as 03/04/2025", list(imp.DATE_ORDERS),
                       key="imp-order")
tissue = right.selectbox("Tissue of the measurements", imp.TISSUES, key="imp-tissue")
base = st.session_state.get("_imp_settings") or ImportSettings()
if st.session_state.get("_imp_source") != str(source):
    base = ImportSettings()
    st.session_state["_imp_source"] = str(source)
settings = imp.with_choices(base, order=order, tissue=tissue)
try:
    proposal = imp.propose(source, settings)
except StudyError as err:
    st.error(md(err))
    st.stop()

st.subheader("Detected mapping")
st.caption("Change a table (patients, measurements, events, ..., or skip) or what a column maps "
           "to (a canonical analyte such as ANC, a role such as subject_id or date, or skip).")
rows = imp.mapping_rows(proposal)
edited = st.data_editor(rows, key="imp-map", hide_index=True, width="stretch",
                        disabled=["file", "sheet", "kind", "layout", "column", "unit"],
                        column_config={"table": st.column_config.SelectboxColumn(
                            "table", options=imp.table_options())})
labels = imp.visit_labels(proposal)
edited_tp = None
if labels is not None:
    st.caption("Visit labels -> study day (day 0 = infusion)")
    edited_tp = st.data_editor(labels, key="imp-tp", hide_index=True, disabled=["label"])
try:
    new = imp.edited_settings(settings, rows=rows, edited=edited, labels=labels,
                              edited_labels=edited_tp)
except ValueError as err:
    st.error(md(err))
    st.stop()
if new != settings:
    st.session_state["_imp_settings"] = new.with_(day_first=base.day_first, tissue=base.tissue)
    for k in ("imp-map", "imp-tp"):
        st.session_state.pop(k, None)
    st.rerun()
with st.expander("Notes on the mapping"):
    st.text(proposal.text())
for q in proposal.questions:
    st.warning(q)
if not proposal.ready:
    st.stop()

# ---- 3. preview and validation -------------------------------------------------------------
study = imp.preview(proposal)
st.subheader("Preview")
st.caption(md(imp.preview_caption(study)))
if proposal.single_cell:
    st.caption("The single-cell file was checked (see the notes above); it is copied on save.")
tables = imp.preview_tables(study)
for tab, frame in zip(st.tabs(list(tables) or ["(none)"]), tables.values(), strict=False):
    with tab:
        st.dataframe(frame, hide_index=True)
report = imp.validation(study)
st.subheader(report.title)
st.caption(report.caption)
if not report.empty:
    st.dataframe(report.data, hide_index=True, width="stretch")

# ---- 4. save -------------------------------------------------------------------------------
st.subheader("Save as a new study")
name = st.text_input("Study name", key="imp-name", placeholder="my_study")
target = None
try:
    target = imp.target_folder(name, root=root)
except StudyError as err:
    st.error(md(err))
if target is not None:
    st.caption(f"writes {md(target)}")
if st.button("Save study", type="primary", disabled=target is None, key="imp-save"):
    try:
        # on a server the new study is open to its creator only, until [access] lists others
        owner = [viewer.email] if root and viewer is not None and viewer.email else None
        saved = imp.write_study(proposal, target, access=owner)
    except StudyError as err:
        st.error(md(err))
        st.stop()
    render.audit("study_created", study=target.name, files=len(proposal.items))
    if staged := st.session_state.pop("_imp_upload_dir", None):
        imp.discard(staged)      # the uploads now live in the study; the private copy goes
        st.session_state.pop("_imp_upload_key", None)
    st.success(md(f"Saved {saved.title}: {len(saved.subject_ids)} patients; "
                  f"{saved.report.summary()}"))
    if root:
        st.markdown(f"[Open {md(target.name)}](./?study={quote(target.name, safe='')})")
    else:
        st.code(f"streamlit run app.py -- --study {target}", language="bash")
