"""Slides: tick figures (standard figures and those shown on other pages), order them, and
download a 16:9 PowerPoint deck, one multi-page PDF or a ZIP of SVG files."""

from __future__ import annotations

from functools import partial

import streamlit as st

from components import deck, export, render, session, sidebar
from components.safe import md
from views import slides as vs


def _deck_bytes(ctx: session.PageContext, chosen: tuple, shown: dict,
                params: vs.SlidesParams) -> bytes:
    # runs on click, outside the script thread: everything it needs is passed in
    render.export_server()
    return vs.deck_bytes(ctx.study, cohort=ctx.cohort, chosen=chosen, shown=shown,
                         params=params)

ctx = session.context(applies="patients and days as each slide's page does")
study = ctx.study
st.title("Slides")
st.caption("Tick the figures for your deck and set their order. Standard figures are built "
           "from the study and the sidebar cohort; figures opened on other pages in this "
           "session are listed as you last saw them. Titles can be edited.")

# a figure shown on a page goes on a slide as it was drawn there (no live links, µg and µL)
shown = vs.shown_specs(render.shown_figures(study), as_shown=render.as_shown)
# the preview is filled in below but drawn here, above the table: the deck's figures are
# seen without scrolling past the list of figures
top = st.container()
table = vs.listing(shown)
edited = st.data_editor(
    table, key="slides-table", hide_index=True, disabled=["source"],
    height=vs.editor_height(table),        # every row visible: no grid that hides rows
    column_config={"include": st.column_config.CheckboxColumn("On a slide"),
                   "order": st.column_config.NumberColumn("Order", min_value=1, step=1),
                   "title": st.column_config.TextColumn("Slide title"), "id": None})
choice = vs.choose(edited)

c1, c2, c3 = st.columns([2, 1, 1])
deck_title = c1.text_input("Deck title", value=study.title or study.study_id,
                           key=sidebar.linked("slides-deck-title", study_default=True))
fmt = c2.radio("Format", list(deck.DECK_FORMATS),
               key=sidebar.linked("slides-format", options=list(deck.DECK_FORMATS)),
               format_func=lambda f: deck.DECK_FORMATS[f][0])
with c3:
    with_title = st.checkbox("Title slide (study, date, cohort)", value=True,
                             key=sidebar.linked("slides-title-slide", kind=bool))
    footer = st.checkbox("Provenance footer on each figure", value=fmt != "pptx",
                         key=sidebar.linked("slides-footer", study_default=True, kind=bool))
params = vs.SlidesParams(choice.ids, deck_title, with_title, fmt, footer)
render.show_params(params)

if not choice.rows:
    st.info("No figure is ticked: tick at least one row in the table above.")
    st.stop()

blocker = render.export_blocker()
deck_plan = vs.plan(study, cohort=ctx.cohort, choice=choice, shown=shown,
                    title_slide=with_title, call=session.cached_view)
if warning := deck_plan.skipped_message(md):
    st.warning(warning)
n = deck_plan.n_slides
st.download_button(
    f"Download {n} slides ({deck.DECK_FORMATS[fmt][0]})",
    data=b"" if blocker else render.audited(
        partial(_deck_bytes, ctx, choice.rows, shown, params), event="export",
        file=deck.deck_file_name(study.study_id, fmt), format=fmt, slides=n),
    file_name=deck.deck_file_name(study.study_id, fmt), mime=deck.DECK_FORMATS[fmt][1],
    key="slides-download", on_click="ignore", type="primary", disabled=bool(blocker),
    icon=":material/slideshow:", help=blocker)
if blocker:
    st.warning(blocker)

with top:
    st.subheader("Preview")
    ids = list(choice.ids)
    pick = st.selectbox("Slide", ids, key=sidebar.linked("slides-preview", options=ids),
                        format_func=choice.title_of)
    if preview := deck_plan.built.get(pick):
        slide = preview[0]
        render.show_figure(export.presentation_figure(slide.fig, title=slide.title),
                           key="slides-preview-fig",
                           name=f"{study.name}_{slide.key or 'slide'}",
                           data=slide.data, params=slide.params, register=False)
        st.caption(md(slide.caption) or "No parameters recorded for this figure.")
    else:
        st.info("This standard figure cannot be built for this study and cohort (its data "
                "is missing); it will be left out of the deck.")
if preview:
    render.show_code(preview[0])
