"""Slides: tick figures (standard figures and those shown on other pages), order them, and
download a 16:9 PowerPoint deck, one multi-page PDF or a ZIP of SVG files."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial

import polars as pl
import streamlit as st

from components import deck, export, filters, render
from components.figures.registry import standard_figures
from components.safe import md


@dataclass(frozen=True)
class SlidesParams:
    figures: tuple[str, ...]
    deck_title: str
    title_slide: bool
    format: str
    footer: bool


def _standard(study, key: str, cohort) -> list[deck.Slide]:  # noqa: ANN001
    return filters.compute(deck.standard_slides, study, cohort=cohort, keys=(key,))


def _slides(rows: pl.DataFrame, study, cohort, shown: dict) -> list[deck.Slide]:  # noqa: ANN001
    out = []
    for fid, title in rows.select("id", "title").iter_rows():
        if fid.startswith("std:"):
            built = _standard(study, fid[4:], cohort)
            out += [deck.Slide(title or s.title, s.fig, s.caption, s.params, s.key, s.data)
                    for s in built]
        elif fid in shown:
            f = shown[fid]
            caption = deck.caption_from_params(f.params)
            if f.cohort != cohort.describe():
                caption = f"{caption} · cohort: {f.cohort}".strip(" ·")
            out.append(deck.Slide(title or f.title, f.fig, caption, f.params, f.key, f.data))
    return out


def _deck_bytes(rows, study, ctx, shown, params: SlidesParams) -> bytes:  # noqa: ANN001
    # runs on click, outside the script thread
    render.export_server()
    slides = _slides(rows, study, ctx.cohort, shown)
    prov = export.Provenance.of(study, ctx.cohort, params=asdict(params),
                                figure=params.deck_title)
    title = deck.title_slide(study, ctx.cohort, title=params.deck_title) \
        if params.title_slide else None
    build = {"pptx": deck.build_pptx, "pdf": deck.build_pdf, "zip": deck.build_svg_zip}
    return build[params.format](slides, title=title, provenance=prov, footer=params.footer)


ctx = filters.context()
study = ctx.study
st.title("Slides")
st.caption("Tick the figures for your deck and set their order. Standard figures are built "
           "from the study and the sidebar cohort; figures opened on other pages in this "
           "session are listed as you last saw them. Titles can be edited.")

standard = standard_figures()
shown = {f"page:{f.key}": f for f in render.shown_figures(study)}
rows = [{"include": True, "order": i + 1, "title": s.title, "source": "standard figure",
         "id": f"std:{s.key}"} for i, s in enumerate(standard)]
rows += [{"include": False, "order": len(rows) + j + 1, "title": f.title,
          "source": f"shown on a page ({f.key})", "id": fid}
         for j, (fid, f) in enumerate(shown.items())]
if not rows:
    st.info("No figures to put on slides yet: no standard figures are registered for this "
            "app and no page has shown a figure in this session. Open a page with a figure, "
            "then come back.")
    st.stop()

table = pl.DataFrame(rows, schema={"include": pl.Boolean, "order": pl.Int64,
                                   "title": pl.String, "source": pl.String, "id": pl.String})
edited = st.data_editor(
    table, key="slides-table", hide_index=True, disabled=["source"],
    height=35 * (table.height + 1) + 3,        # every row visible: no grid that hides rows
    column_config={"include": st.column_config.CheckboxColumn("On a slide"),
                   "order": st.column_config.NumberColumn("Order", min_value=1, step=1),
                   "title": st.column_config.TextColumn("Slide title"), "id": None})
chosen = edited.filter(pl.col("include")).sort("order", nulls_last=True)

c1, c2, c3 = st.columns([2, 1, 1])
deck_title = c1.text_input("Deck title", value=study.title or study.study_id,
                           key="slides-deck-title")
fmt = c2.radio("Format", list(deck.DECK_FORMATS), key="slides-format",
               format_func=lambda f: deck.DECK_FORMATS[f][0])
with c3:
    with_title = st.checkbox("Title slide (study, date, cohort)", value=True,
                             key="slides-title-slide")
    footer = st.checkbox("Provenance footer on each figure", value=fmt != "pptx",
                         key="slides-footer")
params = SlidesParams(tuple(chosen.get_column("id").to_list()), deck_title, with_title, fmt,
                      footer)
render.show_params(params)

if chosen.height == 0:
    st.info("No figure is ticked: tick at least one row in the table above.")
    st.stop()

blocker = render.export_blocker()
# count what the deck will hold, not what was ticked: a standard figure without data for
# this cohort (e.g. responders vs non-responders with no non-responder) is left out, and said
per_row = {fid: len(_slides(chosen.filter(pl.col("id") == fid), study, ctx.cohort, shown))
           for fid in chosen.get_column("id").to_list()}
skipped = [t for fid, t in chosen.select("id", "title").iter_rows() if per_row[fid] == 0]
n = sum(per_row.values()) + (1 if with_title else 0)
if skipped:
    st.warning(f"{len(skipped)} ticked figure(s) cannot be built for this study and cohort "
               "(their data is missing, e.g. a comparison needs both response groups) and "
               "are left out of the deck: " + "; ".join(md(t) for t in skipped) + ".")
st.download_button(
    f"Download {n} slides ({deck.DECK_FORMATS[fmt][0]})",
    data=b"" if blocker else render.audited(
        partial(_deck_bytes, chosen, study, ctx, shown, params), event="export",
        file=deck.deck_file_name(study.study_id, fmt), format=fmt, slides=n),
    file_name=deck.deck_file_name(study.study_id, fmt), mime=deck.DECK_FORMATS[fmt][1],
    key="slides-download", on_click="ignore", type="primary", disabled=bool(blocker),
    icon=":material/slideshow:", help=blocker)
if blocker:
    st.warning(blocker)

st.subheader("Preview")
pick = st.selectbox("Slide", chosen.get_column("id").to_list(), key="slides-preview",
                    format_func=dict(zip(chosen["id"], chosen["title"], strict=True)).get)
preview = _slides(chosen.filter(pl.col("id") == pick), study, ctx.cohort, shown)
if preview:
    slide = preview[0]
    render.show_figure(export.presentation_figure(slide.fig, title=slide.title),
                       key="slides-preview-fig", name=f"{study.name}_{slide.key or 'slide'}",
                       data=slide.data, params=slide.params, register=False)
    st.caption(md(slide.caption) or "No parameters recorded for this figure.")
else:
    st.info("This standard figure cannot be built for this study and cohort (its data is "
            "missing); it will be left out of the deck.")
