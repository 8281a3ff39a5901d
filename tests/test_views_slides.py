"""The Slides page's recipe (views/slides.py): the listing, which rows are ticked and in what
order, and what the deck will hold."""

import polars as pl

from views import slides as vs
from views.deck import DECK


def test_listing_ticks_the_standard_deck_and_lists_shown_figures_unticked(demo_study):
    spec = DECK[0].build(demo_study)
    table = vs.listing({"page:x": spec})
    assert table.height == len(DECK) + 1
    assert table.get_column("include").to_list() == [True] * len(DECK) + [False]
    assert table.get_column("id").to_list()[-1] == "page:x"
    assert vs.editor_height(table) == 35 * (table.height + 1) + 3


def test_choose_keeps_ticked_rows_in_their_order_unordered_last():
    edited = pl.DataFrame(
        {"include": [True, False, True, True, None], "order": [3, 1, None, 1, 2],
         "title": ["c", "x", "last", "a", "n"], "source": [""] * 5,
         "id": ["std:c", "std:x", "std:last", "std:a", "std:n"]}, schema=vs.ROW_SCHEMA)
    choice = vs.choose(edited)
    assert choice.ids == ("std:a", "std:c", "std:last")
    assert choice.title_of("std:c") == "c"
    assert vs.choose(edited.with_columns(include=pl.lit(False))).rows == ()


def test_plan_counts_the_slides_the_deck_holds_and_names_those_left_out(demo_study):
    choice = vs.Choice(((f"std:{DECK[0].key}", "First"), ("page:gone", "Missing [x]")))
    plan = vs.plan(demo_study, cohort=None, choice=choice, shown={}, title_slide=True)
    assert len(plan.built[f"std:{DECK[0].key}"]) == 1
    assert plan.built["page:gone"] == []
    assert plan.skipped == ("Missing [x]",)
    assert plan.n_slides == 2
    message = plan.skipped_message(lambda t: t.replace("[", "\\["))
    assert message.startswith("1 ticked figure(s)") and "Missing \\[x]" in message
    assert vs.plan(demo_study, cohort=None, choice=choice, shown={},
                   title_slide=False).n_slides == 1
    assert vs.plan(demo_study, cohort=None, choice=vs.Choice(()), shown={}
                   ).skipped_message() is None
