"""The page, the Slides page, the standard deck (views.DECK) and `cli.py export --view` draw
the same figure for the same Params: each page's figure, as recorded when it was shown, is
rebuilt through the other three and compared as plotly JSON."""

from __future__ import annotations

import json

import pytest

from analysis.cohort import Cohort
from views import code
from views.deck import DECK, DeckSlide, slide
from views.slides import slides as slides_for

# the pages whose figures are deck slides, and the deck slide each one is
PAGE_SLIDES = {
    "pages/overview.py": ("ov-swimmer", "swimmer"),
    "pages/blood_counts.py": ("bc-counts", "blood_counts"),
    "pages/outcomes.py": ("out-orr", "orr"),
    "pages/kinetics.py": ("kin-curve", "kinetics"),
    "pages/immune_landscape.py": ("il-comp", "composition"),
}


def _json(fig: object) -> dict:
    return json.loads(fig.to_json())


def _shown(at: object, key: str) -> object:
    return at.session_state["_figure_registry"][key]


@pytest.fixture(scope="module")
def cohort(demo_study) -> Cohort:
    return Cohort(subjects=tuple(demo_study.subject_ids[:4]), day_min=-10, day_max=200)


@pytest.mark.parametrize("page", list(PAGE_SLIDES))
def test_page_deck_slides_page_and_cli_draw_the_same_figure(app_page, demo_study, demo_dir,
                                                            cohort, tmp_path, page):
    from cli import main

    key, deck_key = PAGE_SLIDES[page]
    query = {"patients": ",".join(cohort.subjects), "days": f"{cohort.day_min}:{cohort.day_max}"}
    at = app_page(page, query=query)
    assert not at.exception, [e.value for e in at.exception]
    spec = _shown(at, key)
    assert spec.cohort == cohort, "the page's record carries the sidebar cohort"
    entry = next(s for s in DECK if s.key == deck_key)
    assert spec.view == f"{entry.view.__module__}.{entry.view.__name__}"
    # at its defaults the page shows the deck's slide: same view, same Params
    assert spec.params == entry.params
    # the deck, for the page's Params
    deck_spec = DeckSlide(deck_key, entry.title, entry.view, spec.params).build(demo_study,
                                                                               cohort)
    assert _json(deck_spec.fig) == _json(spec.fig)
    # the Slides page's slide for the standard figure
    (slide,) = slides_for(demo_study, cohort=cohort, chosen=[(f"std:{deck_key}", None)],
                          shown={})
    assert _json(slide.fig) == _json(spec.fig)
    # cli.py export --view, from the command "Show the code" offers
    out = tmp_path / "fig.json"
    args = code.command(spec, demo_dir, out=str(out)).split(" ", 2)[2]
    import shlex

    assert main(shlex.split(args)) == 0
    assert json.loads(out.read_text()) == _json(spec.fig)


def test_changed_page_options_reach_deck_and_cli_through_params(app_page, demo_study,
                                                                demo_dir, tmp_path):
    import shlex

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
    import shlex

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
    for key in ("kinetics", "cytokines", "crs_ae"):
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
    for key in ("kinetics", "cytokines", "crs_ae"):
        assert slide(key).build(study, Cohort()) is None
