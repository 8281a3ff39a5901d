"""Slide decks: PPTX, multi-page PDF and ZIP of SVGs round-trip with the expected slides, titles
and provenance; standard figures are built headless; the CLI writes the standard deck."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
import zipfile

import plotly.graph_objects as go
import pytest

from components import deck, export
from views import deck as views_deck
from views.spec import FigureSpec


@pytest.fixture(scope="module")
def prov() -> export.Provenance:
    return export.Provenance(study_id="DECK-1", content_hash="cd" * 32, cohort="all patients")


def _slides(n: int = 3) -> list[FigureSpec]:
    out = []
    for i in range(n):
        fig = go.Figure(go.Bar(x=["R", "NR"], y=[i + 1, 2], marker_color=["#0072B2", "#D55E00"]),
                        layout={"template": "cart", "title": f"own title {i}"})
        out.append(FigureSpec(title=f"Slide {i + 1}", fig=fig, key=f"t{i}",
                              caption=deck.caption_from_params({"window": (0, 28), "n": i}),
                              params={"window": [0, 28], "n": i}))
    return out


TITLE = deck.TitleSlide("Deck title", ("Study DECK-1 · 2026-01-01", "Cohort: all patients"))


def test_caption_from_params_is_readable():
    text = deck.caption_from_params({"analyte": "IL6", "log_y": True, "window": (0, 28),
                                     "groups": [], "skip": None, "scale": 0.5})
    assert text == "analyte: IL6 · log y: yes · window: 0, 28 · groups: all · scale: 0.5"
    assert len(deck.caption_from_params({"x": "y" * 1000})) == 300


def test_pptx_has_title_slide_then_one_figure_per_slide(export_ready, prov):
    from pptx import Presentation
    from pptx.util import Inches

    data = deck.build_pptx(_slides(), title=TITLE, provenance=prov)
    prs = Presentation(io.BytesIO(data))
    assert (prs.slide_width, prs.slide_height) == (Inches(13.333), Inches(7.5))
    slides = list(prs.slides)
    assert [s.shapes.title.text for s in slides] == ["Deck title", "Slide 1", "Slide 2",
                                                     "Slide 3"]
    assert "Cohort: all patients" in slides[0].placeholders[1].text
    for s in slides[1:]:
        pics = [sh for sh in s.shapes if sh.shape_type == 13]  # MSO_SHAPE_TYPE.PICTURE
        assert len(pics) == 1
        png = pics[0].image.blob
        assert export.png_size(png) == (2560, 1140)
        assert json.loads(export.png_text(png)["provenance"])["figure"] == s.shapes.title.text
        texts = [sh.text_frame.text for sh in s.shapes if sh.has_text_frame]
        assert any(t.startswith("window: 0, 28 · n: ") for t in texts)
        notes = s.notes_slide.notes_text_frame.text
        assert "DECK-1" in notes and '"content_hash": "' + "cd" * 32 in notes
    assert prs.core_properties.subject == "study DECK-1; cohort: all patients"


def test_pdf_has_title_page_and_one_page_per_figure(export_ready, prov):
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(deck.build_pdf(_slides(), title=TITLE, provenance=prov)))
    assert len(reader.pages) == 4
    assert [o.title for o in reader.outline] == ["Deck title", "Slide 1", "Slide 2", "Slide 3"]
    assert json.loads(reader.metadata["/Provenance"])["study_id"] == "DECK-1"
    assert reader.metadata["/Title"] == "Deck title"
    assert "Slide 2" in reader.pages[2].extract_text()


def test_svg_zip_has_one_parsable_file_per_slide_and_a_manifest(export_ready, prov):
    steps = []
    data = deck.build_svg_zip(_slides(2), title=None, provenance=prov, progress=steps.append)
    assert sum(steps) == 2
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert names == ["01_t0.svg", "02_t1.svg", "provenance.json"]
        for name in names[:2]:
            root = ET.fromstring(zf.read(name))
            assert root.tag.endswith("svg")
            assert any("trace" in (g.get("class") or "") for g in root.iter())
        manifest = json.loads(zf.read("provenance.json"))
    assert [f["title"] for f in manifest["files"]] == ["Slide 1", "Slide 2"]
    assert manifest["provenance"]["content_hash"] == "cd" * 32


def test_build_deck_refuses_unknown_format():
    with pytest.raises(ValueError, match="unknown deck format"):
        deck.build_deck(_slides(1), "key")


@pytest.fixture
def test_figures(monkeypatch):
    """Four standard slides of our own: one builds, one has no data, one says why it cannot
    be drawn, one fails."""
    from analysis.cohort import Cohort, cohort_subjects, response_groups

    def ok(study, *, cohort=None):
        fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 2]), layout={"template": "cart"})
        n = len(cohort_subjects(response_groups(study), cohort or Cohort()))
        return FigureSpec("zz-ok", "Test: patients", fig, params={"patients": n})

    def empty(study, *, cohort=None):
        return None

    def refused(study, *, cohort=None):
        raise ValueError("DESeq2 needs at least 2 patients in each group")

    def broken(study, *, cohort=None):
        raise KeyError("no_such_column")

    added = {"zz-ok": ok, "zz-empty": empty, "zz-refused": refused, "zz-broken": broken}
    monkeypatch.setattr(views_deck, "DECK", views_deck.DECK + tuple(
        views_deck.DeckSlide(key, f"Test {key}", fn) for key, fn in added.items()))
    return list(added)


def test_standard_slides_skip_missing_and_broken_builders(demo_study, test_figures):
    notes: list[str] = []
    slides = deck.standard_slides(demo_study, keys=test_figures, on_skip=notes.append)
    assert [s.key for s in slides] == ["zz-ok"]
    assert slides[0].caption == f"patients: {len(demo_study.subject_ids)}"
    assert len(notes) == 3
    assert any("no data" in n and "zz-empty" in n for n in notes)
    # the view's reason, not "no data"
    assert "skipped 'Test zz-refused': DESeq2 needs at least 2 patients in each group" in notes
    assert any("KeyError" in n and "zz-broken" in n for n in notes)


def test_title_slide_names_study_date_and_cohort(demo_study):
    import datetime as dt

    from analysis.cohort import Cohort

    t = deck.title_slide(demo_study, Cohort(groups=("Responder",)), when=dt.date(2026, 1, 2))
    assert t.title == demo_study.title
    assert t.lines == (f"Study {demo_study.study_id} · 2026-01-02",
                       "Cohort: all patients; groups Responder")


def test_cli_export_writes_the_standard_deck(export_ready, demo_dir, demo_study, tmp_path,
                                            capsys):
    from pptx import Presentation

    from cli import main

    out = tmp_path / "deck.pptx"
    assert main(["export", "--study", str(demo_dir), "--out", str(out)]) == 0
    prs = Presentation(str(out))
    titles = [s.shapes.title.text for s in prs.slides]
    assert titles[0] == demo_study.title
    assert titles[1:] == [s.title for s in deck.standard_slides(demo_study)]
    assert len(titles) >= 2
    assert f"wrote {len(titles)} slides" in capsys.readouterr().out
    assert export.export_server_running()  # the session's server was left running


def test_cli_export_refuses_unknown_patients(export_ready, demo_dir, tmp_path, capsys):
    from cli import main

    code = main(["export", "--study", str(demo_dir), "--out", str(tmp_path / "d.zip"),
                 "--patients", "NOPE-1"])
    assert code != 0 and "unknown patient" in capsys.readouterr().err


def test_slides_page_lists_standard_and_shown_figures(app_page):
    at = app_page("pages/data_quality.py")
    assert not at.exception
    at.switch_page("pages/slides.py").run()
    assert not at.exception
    assert at.title[0].value == "Slides"
    table = at.dataframe(key="slides-table").value
    ids = list(table["id"])
    assert "page:dq-availability" in ids
    assert [i for i in ids if i.startswith("std:")] == \
        [f"std:{s.key}" for s in views_deck.DECK]
    shown = table[table["id"] == "page:dq-availability"].iloc[0]
    assert not shown["include"] and shown["title"]
    button = [b.proto for b in at.get("download_button") if b.proto.id.endswith("slides-download")]
    assert button and button[0].label.startswith(f"Download {int(table['include'].sum()) + 1} ")


def test_pdf_progress_counts_figure_slides_only(export_ready):
    steps: list[int] = []
    deck.build_pdf(_slides(5), title=TITLE, progress=steps.append)
    assert sum(steps) == 5 and len(steps) >= 2  # reported per batch, not only at the end


def test_slides_page_promises_what_it_delivers_and_names_what_it_skips(app_page):
    """A cohort without non-responders: the comparison slide cannot be built; the button's
    count is that of the slides the deck will hold, and a warning names the one left out."""
    at = app_page("pages/slides.py", query={"patients": "SAA-001"})
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe(key="slides-table").value
    warnings = [w.value for w in at.warning]
    skipped = [w for w in warnings if "left out of the deck" in w]
    assert skipped, warnings
    n_skipped = int(skipped[0].split(" ticked figure")[0])
    button = [b.proto for b in at.get("download_button") if b.proto.id.endswith("slides-download")]
    assert button[0].label.startswith(
        f"Download {int(table['include'].sum()) - n_skipped + 1} ")


def test_slides_page_shows_the_preview_above_the_list_of_figures(app_page):
    """The preview figure comes first in the main panel (above the fold), then the table."""
    at = app_page("pages/slides.py")
    assert not at.exception, [e.value for e in at.exception]
    order = []

    def walk(node) -> None:
        kind = getattr(node, "type", None)
        if kind in ("plotly_chart", "dataframe", "subheader"):
            order.append(kind if kind != "subheader" else f"subheader:{node.value}")
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    assert order.index("subheader:Preview") < order.index("plotly_chart") \
        < order.index("dataframe"), order
