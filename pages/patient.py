"""Patient: one patient, every layer of the study on one infusion-aligned time axis, with the
patient's facts, a laboratory listing with CTCAE grades and the view as a slide
(recipes: views.patient)."""

from __future__ import annotations

from functools import partial

import streamlit as st

from analysis import vocab
from components import profiles, render, session, sidebar
from components.figures.patient import LANE_TITLES, LANES
from components.safe import md
from views import patient as vp

ctx = session.context(applies="patients (those you can pick); not the day window (the "
                      "timeline shows the patient's whole course)")
study = ctx.study
st.title("Patient")
order = vp.patient_order(study, subjects=ctx.subjects)
if not order:
    st.info("No patient to show: the cohort filter in the sidebar keeps none, or the study's "
            "patients table is empty.")
    st.stop()

# a patient picked on another page (a click) takes effect before the widgets; one the cohort
# no longer keeps gives way to the link's or the first
pending = session.take_patient()
if pending in order:
    st.session_state["pt-subject"] = pending
elif "pt-subject" in st.session_state and st.session_state["pt-subject"] not in order:
    del st.session_state["pt-subject"]


def _go(subject: str | None) -> None:
    if subject is not None:
        st.session_state["pt-subject"] = subject


subject_key = sidebar.linked("pt-subject", options=order, param="patient",
                             label="the patient (of this study and cohort)")
current = st.session_state.get(subject_key, order[0])
prev, nxt = vp.neighbours(order, current)
c1, c2, c3, c4 = st.columns([1, 3, 1, 2], vertical_alignment="bottom")
c1.button("Previous", key="pt-prev", on_click=_go, args=(prev,), disabled=prev is None,
          icon=":material/arrow_back:", width="stretch")
subject = c2.selectbox("Patient", order, key=subject_key,
                       help="Patients of the sidebar cohort, in study order")
c3.button("Next", key="pt-next", on_click=_go, args=(nxt,), disabled=nxt is None,
          icon=":material/arrow_forward:", width="stretch")
criteria = c4.radio("Response criteria", vocab.RESPONSE_CRITERIA, horizontal=True,
                    key=sidebar.linked("pt-criteria", options=vocab.RESPONSE_CRITERIA))
with st.expander("Lanes"):
    lanes = st.multiselect("Draw these lanes (empty: every lane with data)", LANES,
                           format_func=LANE_TITLES.get,
                           key=sidebar.linked("pt-lanes", options=LANES, shape="many"))
focus = session.get_focus(study)
shade = focus.days if focus is not None and subject in focus.subjects else None
params = vp.PatientParams(subject_id=subject, criteria=criteria, lanes=tuple(lanes),
                          shade=shade)

sections = vp.fact_sections(session.cached_view(vp.header, study, cohort=None,
                                                 params=params).data)
cols = st.columns(min(len(sections), 4) or 1)
for i, (section, items) in enumerate(sections):
    with cols[i % len(cols)]:
        st.markdown(f"**{md(section)}**")
        for item, value in items:
            st.caption(f"{md(item)}: **{md(value)}**")

st.caption("One axis for every lane: days from CAR-T infusion. Below-LLOQ CAR-T values are "
           "drawn at LLOQ/2 as open circles. Click a sample to open it on its page.")
# not offered to the Slides page as it is (twelve lanes do not fit 16:9): the slide button
# below draws the compact version
event = render.show(session.cached_view(vp.timeline, study, cohort=ctx.cohort, params=params),
                    key="pt-timeline", name=f"{study.name}_{subject}", on_select="rerun",
                    selection_mode=("points",), register=False)
clicked = vp.selected_sample(event)
if clicked:
    # (a chart's selection is forgotten once its page is left, so this does not repeat)
    target = vp.sample_view(study, clicked)
    if target is None:
        st.info(f"No page shows the assay of sample {md(clicked)}.")
    else:
        page, label, focus_fields, presets = target
        session.set_focus(session.Focus(study_key=study.cache_key, **focus_fields))
        st.session_state.update(presets)   # e.g. colour the embedding by the focus
        st.switch_page(f"pages/{page}.py")


def _slide(params: vp.PatientParams) -> bytes:
    render.export_server()
    spec = vp.slide(study, cohort=ctx.cohort, params=params)
    prov = render.figure_provenance(spec.title, spec.params, ctx)
    return profiles.build_patient_slide(spec, provenance=prov)


def _profiles(subjects: tuple[str, ...], criteria: str) -> bytes:
    render.export_server()
    specs = vp.profile_slides(study, cohort=ctx.cohort, subjects=subjects,
                              params=vp.PatientParams(subject_id="", criteria=criteria))
    prov = render.figure_provenance("Patient profiles", {"patients": subjects}, ctx)
    return profiles.build_profiles_pdf(specs, provenance=prov)


b1, b2 = st.columns(2)
blocker = render.export_blocker()
b1.download_button("This patient as a slide (PPTX)", help=blocker or (
                   "16:9: the whole view (the lanes shown above) in two columns of lanes "
                   "on one day axis, with the course as lines"),
                   data=b"" if blocker else render.audited(
                       partial(_slide, params),
                       file=f"{subject}.pptx", format="pptx"),
                   file_name=f"{study.name}_{subject}.pptx", key="pt-slide",
                   mime="application/vnd.openxmlformats-officedocument.presentationml."
                        "presentation", on_click="ignore", disabled=bool(blocker),
                   icon=":material/slideshow:")
b2.download_button(f"Patient profiles of the cohort ({len(order)} pages, PDF)",
                   data=b"" if blocker else render.audited(
                       partial(_profiles, tuple(order), criteria),
                       file="profiles.pdf", format="pdf"),
                   file_name=f"{study.name}_patient_profiles.pdf", key="pt-profiles",
                   mime="application/pdf", on_click="ignore", disabled=bool(blocker),
                   icon=":material/picture_as_pdf:", help=blocker)

with st.expander("All patients (click one to open it)"):
    picker = session.cached_view(vp.cohort_picker, study, cohort=ctx.cohort, params=params)
    pick = render.show(picker, key="pt-picker", name=f"{study.name}_patients",
                       on_select="rerun", selection_mode=("points",), register=False)
    chosen = vp.selected_subject(pick)
    if chosen and chosen != subject and st.session_state.get("_pt_picked") != chosen:
        st.session_state["_pt_picked"] = chosen
        session.open_patient(chosen)

st.subheader("Laboratory listing")
lab = session.cached_view(vp.laboratory, study, cohort=None, params=params)
st.caption(lab.caption)
render.show_table(vp.laboratory_wide(lab.data), key="pt-lab",
                  name=f"{study.name}_{subject}_laboratory")
render.show_code(lab)
render.show_params(params)
