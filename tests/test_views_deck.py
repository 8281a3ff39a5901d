"""Every slide of the standard deck (views.DECK) is a figure a page draws: the page, the
Slides page, the deck and `cli.py export --view` draw the same figure for the same Params. Each
page's figure, as recorded when it was shown, is rebuilt through the other three and compared
as plotly JSON; a deck entry without a page (or whose page does not draw it) fails."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from analysis.cohort import Cohort
from analysis.vocab import DayWindow
from views import code
from views import deck as views_deck
from views import slides as views_slides
from views.deck import DECK, DeckSlide, SlideSkipped, slide
from views.slides import slides as slides_for
from views.spec import view_name

ROOT = Path(__file__).resolve().parents[1]


def _json(fig: object) -> dict:
    return json.loads(fig.to_json())


def _shown(at: object, key: str) -> object:
    return at.session_state["_figure_registry"][key]


# the sidebar cohort of the comparison: four of the demo's patients; the volcano needs both
# groups of at least two (the demo's five are three responders and two non-responders)
WHOLE_COHORT = {"compare-volcano"}


@pytest.fixture(scope="module")
def cohort(demo_study) -> Cohort:
    return Cohort(subjects=tuple(demo_study.subject_ids[:4]), days=DayWindow(-10, 200))


def test_every_deck_slide_names_a_page_of_the_app():
    import ast

    tree = ast.parse((ROOT / "app.py").read_text())
    pages = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", "") == "PAGES")
    files = {row[1] for row in pages} - {"pages/slides.py"}
    keys = [s.key for s in DECK]
    assert len(set(keys)) == len(keys), "deck keys are unique"
    for entry in DECK:
        assert entry.page in files, f"deck slide {entry.key!r} names no page of the app"
        assert entry.page_key, f"deck slide {entry.key!r} names no figure key on its page"
        assert getattr(entry.view, "__recipe__", False), f"{entry.key}: not a view"


@pytest.mark.parametrize("entry", DECK, ids=[s.key for s in DECK])
def test_page_deck_slides_page_and_cli_draw_the_same_figure(app_page, demo_study, demo_dir,
                                                            cohort, tmp_path, entry):
    from cli import main
    from components import export, render

    if entry.key in WHOLE_COHORT:
        cohort = Cohort(subjects=tuple(demo_study.subject_ids), days=DayWindow(-10, 200))
    query = {"patients": ",".join(cohort.subjects),
             "days": str(cohort.days),
             **{k: list(v) if isinstance(v, tuple) else v
                for k, v in entry.options_for(demo_study, cohort).items()}}
    at = app_page(entry.page, query=query)
    assert not at.exception, [e.value for e in at.exception]
    registry = at.session_state["_figure_registry"]
    assert entry.page_key in registry, \
        f"{entry.page} does not draw {entry.page_key!r} (deck slide {entry.key!r})"
    spec = registry[entry.page_key]
    assert spec.cohort == cohort, "the page's record carries the sidebar cohort"
    assert spec.view == view_name(entry.view), "the slide is drawn by the view the page calls"
    # with the slide's options the page makes the slide's Params
    assert spec.params == entry.params_for(demo_study, cohort)
    page_fig = _json(spec.fig)
    # the deck, for the study and cohort
    deck_spec = entry.build(demo_study, cohort)
    assert deck_spec is not None and deck_spec.key == entry.key
    assert _json(deck_spec.fig) == page_fig
    # ... and for the page's Params, whatever they are
    assert _json(entry.build(demo_study, cohort, params=spec.params).fig) == page_fig
    # the Slides page's recipe for the standard figure
    (one,) = slides_for(demo_study, cohort=cohort, chosen=[(f"std:{entry.key}", None)],
                        shown={})
    assert _json(one.fig) == page_fig and one.title == entry.title
    # cli.py export --view, from the command "Show the code" offers
    out = tmp_path / "fig.json"
    args = code.command(spec, demo_dir, out=str(out)).split(" ", 2)[2]
    assert main(shlex.split(args)) == 0
    assert json.loads(out.read_text()) == page_fig
    # the Slides page itself: its preview of the slide is the page's figure in the template
    at = app_page("pages/slides.py", query={k: query[k] for k in ("patients", "days")})
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="slides-preview").set_value(f"std:{entry.key}").run()
    assert not at.exception, [e.value for e in at.exception]
    (chart,) = [c for c in at.get("plotly_chart") if "slides-preview-fig" in c.proto.id]
    expected = render.as_shown(export.presentation_figure(spec.fig, title=entry.title))
    assert json.loads(chart.proto.spec) == _json(expected)


def test_changed_page_options_reach_deck_and_cli_through_params(app_page, demo_study,
                                                                demo_dir, tmp_path):
    from cli import main

    at = app_page("pages/blood_counts.py")
    at.radio(key="bc-view").set_value("group median + IQR").run()
    at.toggle(key="bc-log").set_value(True).run()
    at.radio(key="bc-criteria").set_value("BSH").run()
    assert not at.exception
    spec = _shown(at, "bc-counts")
    assert (spec.params.view, spec.params.log_y, spec.params.criteria) == \
        ("group median + IQR", True, "BSH")
    rebuilt = DeckSlide("blood_counts", "", spec.view and DECK[1].view, spec.params) \
        .build(demo_study, spec.cohort)
    assert _json(rebuilt.fig) == _json(spec.fig)
    out = tmp_path / "counts.json"
    assert main(shlex.split(code.command(spec, demo_dir, out=str(out)).split(" ", 2)[2])) == 0
    assert json.loads(out.read_text()) == _json(spec.fig)


def test_survival_page_and_cli_agree_and_the_deck_draws_os_and_pfs(app_page, demo_study,
                                                                   demo_dir, tmp_path):
    from cli import main

    at = app_page("pages/outcomes.py")
    at.toggle(key="out-by-group").set_value(True).run()
    assert not at.exception
    spec = _shown(at, "out-km")
    assert spec.params.split == "landmark"
    out = tmp_path / "km.json"
    assert main(shlex.split(code.command(spec, demo_dir, out=str(out)).split(" ", 2)[2])) == 0
    assert json.loads(out.read_text()) == _json(spec.fig)
    deck = next(s for s in DECK if s.key == "survival").build(demo_study)
    assert {t.legendgroup or t.name for t in deck.fig.data} >= {"OS", "PFS"}


# ---- the kinetics and safety slides ----------------------------------------------------------
def test_standard_figures_on_demo(demo_study):
    for key in ("kinetics", "cytokines", "crs_icans", "adverse_events"):
        spec = slide(key).build(demo_study, Cohort())
        assert spec is not None and spec.key == key and len(spec.fig.data) > 0
        assert spec.data is not None and spec.data.height > 0
    spec = slide("kinetics").build(demo_study, Cohort(subjects=("SAA-001",)))
    assert [t.name for t in spec.fig.data][0] == "SAA-001"
    assert spec.fig.layout.yaxis.type == "log"


def test_standard_figures_skip_missing_data(write_study):
    from data_loaders import load_study

    study = load_study(write_study(
        measurements="subject_id,day,analyte,value,unit\nP1,0,ANC,0.2,10^9/L\n"))
    for key in ("kinetics", "cytokines", "crs_icans", "adverse_events", "embedding",
                "composition", "compare-volcano", "clones", "repertoire"):
        try:
            assert slide(key).build(study, Cohort()) is None, key
        except SlideSkipped as why:              # the view said why: the message is kept
            assert str(why), key


def test_a_view_that_says_why_it_cannot_draw_is_skipped_with_its_message(demo_study,
                                                                        monkeypatch):
    """A view's ValueError is a skip carrying the view's message (the Slides page shows
    it); any other error is raised as it is; the deck leaves the skipped slide out."""
    def refused(study, *, cohort=None):
        raise ValueError("DESeq2 needs at least 2 patients in each group")

    def broken(study, *, cohort=None):
        raise KeyError("no_such_column")

    extra = (DeckSlide("zz-refused", "Test refused", refused),
             DeckSlide("zz-broken", "Test broken", broken))
    monkeypatch.setattr(views_deck, "DECK", DECK + extra)
    with pytest.raises(SlideSkipped, match="DESeq2 needs at least 2 patients in each group"):
        slide("zz-refused").build(demo_study, Cohort())
    with pytest.raises(KeyError, match="no_such_column"):
        slide("zz-broken").build(demo_study, Cohort())
    assert views_deck.build(demo_study, Cohort(), keys=("zz-refused", DECK[0].key)) \
        and [s.key for s in views_deck.build(demo_study, Cohort(), keys=("zz-refused",))] == []
    plan = views_slides.plan(demo_study, cohort=None, choice=views_slides.Choice(
        (("std:zz-refused", "Refused"), (f"std:{DECK[0].key}", "First"))), shown={})
    assert plan.skipped == ("Refused",) and len(plan.built[f"std:{DECK[0].key}"]) == 1
    message = plan.skipped_message()
    assert "Refused (DESeq2 needs at least 2 patients in each group)" in message


@pytest.mark.slow
def test_above_raster_above_the_embedding_slide_is_the_pages_raster(app_page, demo_dir,
                                                                     tmp_path):
    """Above the study's raster_above the Immune landscape draws the raster of every cell
    (views.landscape_raster.raster), and so do the deck and the CLI (raster_above lowered in
    study.toml to below the demo's 20,000 cells)."""
    import shutil

    from cli import main
    from data_loaders import load_study

    folder = tmp_path / "demo"
    shutil.copytree(demo_dir, folder, ignore=shutil.ignore_patterns(".cache"))
    with (folder / "study.toml").open("a", encoding="utf-8") as fh:
        fh.write("\n[rules]\nraster_above = 1000\nraster_points_below = 2000\n")
    entry = slide("embedding")
    at = app_page(entry.page, study=folder, query=dict(entry.page_options), timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    spec = _shown(at, entry.page_key)
    study = load_study(folder)
    assert spec.view == "views.landscape_raster.raster" == view_name(entry.view_for(study))
    assert spec.params == entry.params_for(study, spec.cohort)
    page_fig = _json(spec.fig)
    assert page_fig["layout"]["images"][0]["source"].startswith("data:image/png;base64,")
    assert _json(entry.build(study, spec.cohort).fig) == page_fig
    out = tmp_path / "raster.json"
    assert main(shlex.split(code.command(spec, folder, out=str(out)).split(" ", 2)[2])) == 0
    assert json.loads(out.read_text()) == page_fig
