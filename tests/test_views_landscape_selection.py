"""views/landscape_selection.py on the demo: a selection's origin and marker genes, the chart's
selection read as cells, the selection a session keeps (this source's, with cells), the focus
it sets, and the sets that can be compared with each other."""

from __future__ import annotations

import polars as pl
import pytest

from analysis.embedding import cell_table
from views import landscape as lv
from views import landscape_selection as lsel


@pytest.fixture(scope="module")
def basis(demo_study):
    return lv.bases(demo_study)[0]


def test_selection_summary_and_markers(demo_study):
    cells = cell_table(demo_study)
    car = tuple(cells.filter(pl.col("cell_type") == "CAR-T")["cell"].to_list())
    sel = lsel.SelectionParams(lv.RNA, car)
    summary = lsel.selection_summary(demo_study, params=sel)
    assert summary.data.get_column("n_cells").sum() == len(car)
    subjects, days = lsel.selection_extent(summary.data)
    assert summary.caption.startswith(f"From patients {', '.join(subjects)}; "
                                      f"days {days.lo} to {days.hi}")
    assert days.lo is not None and days.lo > 0          # CAR-T cells only after the infusion
    top = lsel.selection_markers(demo_study, params=sel)
    assert top.data.height == 25 and top.data.get_column("gene")[0] == "CAR"
    with pytest.raises(ValueError, match="leaves other cells"):
        lsel.selection_markers(demo_study, params=lsel.SelectionParams(
            lv.RNA, tuple(cells["cell"].to_list())))


def test_selected_cells_reads_the_chart_selection():
    event = {"selection": {"points": [{"customdata": [7, "x"]}, {"customdata": 3},
                                      {"customdata": [7, "x"]}, {"x": 1}]}}
    assert lsel.selected_cells(event) == (3, 7)
    assert lsel.selected_cells(None) == () and lsel.selected_cells({}) == ()


def test_current_selection_and_the_focus_it_sets(demo_study, basis):
    rna = lv.LandscapeParams(lv.RNA, basis)
    flow = lv.LandscapeParams(lv.FLOW, "PCA (flow)", cofactor=150.0, per_file=200)
    assert lsel.current_selection(None, rna) is None
    assert lsel.current_selection((lv.RNA, ()), rna) is None            # nothing selected
    assert lsel.current_selection((lv.FLOW, (1, 2)), rna) is None       # another source
    sel = lsel.current_selection((lv.RNA, (5, 9)), rna)
    assert sel == lsel.SelectionParams(lv.RNA, (5, 9)) and sel.embedding is None
    assert lsel.current_selection((lv.FLOW, (1, 2)), flow).embedding == flow
    cells = cell_table(demo_study)
    car = tuple(cells.filter(pl.col("cell_type") == "CAR-T")["cell"].to_list())
    summary = lsel.selection_summary(demo_study, params=lsel.SelectionParams(lv.RNA, car))
    focus = lsel.selection_focus(demo_study, summary)
    subjects, days = lsel.selection_extent(summary.data)
    assert (focus.subjects, focus.days) == (subjects, days) and days.lo is not None
    assert focus.label == f"{len(car):,} selected cells"
    assert focus.study_key == demo_study.cache_key


def test_comparable_sets_are_single_cell_sets_and_the_current_selection():
    kept = {"a": (lv.RNA, (1, 2)), "events": (lv.FLOW, (3,)), "b": (lv.RNA, (4,))}
    assert lsel.comparable_sets(kept) == {"a": (1, 2), "b": (4,)}
    now = lsel.SelectionParams(lv.RNA, (7, 8))
    assert list(lsel.comparable_sets(kept, now)) == ["a", "b", "current selection"]
    events = lsel.SelectionParams(lv.FLOW, (1,))
    assert "current selection" not in lsel.comparable_sets(kept, events)
