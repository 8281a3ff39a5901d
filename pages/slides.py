"""Slides: tick figures (standard figures and those shown on other pages), order them, and
download a 16:9 PowerPoint deck, one multi-page PDF or a ZIP of SVG files."""

from __future__ import annotations

import dataclasses
from functools import partial

import polars as pl
import streamlit as st

from components import deck, export, render, session, sidebar
from components.safe import md
from views import slides as vs


def _deck_bytes(ctx: session.PageContext, chosen: list, shown: dict,
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
shown = {f"page:{f.key}": dataclasses.replace(f, fig=render.as_shown(f.fig))
         for f in render.shown_figures(study)}
# the preview is filled in below but drawn here, above the table: the deck's figures are
# seen without scrolling past the list of figures
top = st.container()
table = vs.rows(shown)
edited = st.data_editor(
    table, key="slides-table", hide_index=True, disabled=["source"],
    height=35 * (table.height + 1) + 3,        # every row visible: no grid that hides rows
    column_config={"include": st.column_config.CheckboxColumn("On a slide"),
                   "order": st.column_config.NumberColumn("Order", min_value=1, step=1),
                   "title": st.column_config.TextColumn("Slide title"), "id": None})
chosen = edited.filter(pl.col("include")).sort("order", nulls_last=True)
rows = list(chosen.select("id", "title").iter_rows())

c1, c2, c3 = st.columns([2, 1, 1])
deck_title = c1.text_input("Deck title", value=study.title or study.study_id,
                           key=sidebar.linked("slides-deck-title"))
fmt = c2.radio("Format", list(deck.DECK_FORMATS),
               key=sidebar.linked("slides-format", options=list(deck.DECK_FORMATS)),
               format_func=lambda f: deck.DECK_FORMATS[f][0])
with c3:
    with_title = st.checkbox("Title slide (study, date, cohort)", value=True,
                             key=sidebar.linked("slides-title-slide", kind=bool))
    footer = st.checkbox("Provenance footer on each figure", value=fmt != "pptx",
                         key=sidebar.linked("slides-footer", kind=bool))
params = vs.SlidesParams(tuple(chosen.get_column("id").to_list()), deck_title, with_title, fmt,
                         footer)
render.show_params(params)

if chosen.height == 0:
    st.info("No figure is ticked: tick at least one row in the table above.")
    st.stop()

blocker = render.export_blocker()
# count what the deck will hold, not what was ticked: a standard figure without data for
# this cohort (e.g. responders vs non-responders with no non-responder) is left out, and said
built = {fid: vs.slides(study, cohort=ctx.cohort, chosen=((fid, t),), shown=shown,
                       call=session.cached_view) for fid, t in rows}
skipped = [t for fid, t in rows if not built[fid]]
n = sum(len(b) for b in built.values()) + (1 if with_title else 0)
if skipped:
    st.warning(f"{len(skipped)} ticked figure(s) cannot be built for this study and cohort "
               "(their data is missing, e.g. a comparison needs both response groups) and "
               "are left out of the deck: " + "; ".join(md(t) for t in skipped) + ".")
st.download_button(
    f"Download {n} slides ({deck.DECK_FORMATS[fmt][0]})",
    data=b"" if blocker else render.audited(
        partial(_deck_bytes, ctx, rows, shown, params), event="export",
        file=deck.deck_file_name(study.study_id, fmt), format=fmt, slides=n),
    file_name=deck.deck_file_name(study.study_id, fmt), mime=deck.DECK_FORMATS[fmt][1],
    key="slides-download", on_click="ignore", type="primary", disabled=bool(blocker),
    icon=":material/slideshow:", help=blocker)
if blocker:
    st.warning(blocker)

with top:
    st.subheader("Preview")
    ids = [fid for fid, _ in rows]
    pick = st.selectbox("Slide", ids, key=sidebar.linked("slides-preview", options=ids),
                        format_func=dict(rows).get)
    if preview := built.get(pick):
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
