"""views/landscape.py on the demo: the embedding as the page draws it (colours, facets, the
cohort), a selection's origin and marker genes, the composition views, the option lists the
page offers, and "Show the code" rebuilding an embedding from its Params."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest

from analysis.cohort import Cohort
from analysis.embedding import cell_table
from tests.conftest import package_env
from views import code
from views import landscape as lv


@pytest.fixture(scope="module")
def basis(demo_study):
    return lv.bases(demo_study)[0]


def test_embedding_draws_the_cohort_coloured_as_asked(demo_study, basis):
    spec = lv.embedding(demo_study, params=lv.LandscapeParams(lv.RNA, basis))
    assert spec.view == "views.landscape.embedding"
    assert spec.caption.startswith("Showing 20,000 of 20,000 cells")
    assert {t.name for t in spec.fig.data} >= {"CAR-T", "CD8 TEM"}
    one = Cohort(subjects=(demo_study.subject_ids[0],))
    spec = lv.embedding(demo_study, cohort=one, params=lv.LandscapeParams(
        lv.RNA, basis, "Gene", "CD7"))
    assert set(spec.data.get_column("subject_id")) == {demo_study.subject_ids[0]}
    assert spec.fig.data[0].marker.colorbar.title.text.startswith("CD7")
    facets = lv.embedding(demo_study, params=lv.LandscapeParams(
        lv.RNA, basis, facet_windows=("Pre-infusion", "Post-infusion")))
    titles = {a.text for a in facets.fig.layout.annotations}
    assert {"Pre-infusion", "Post-infusion"} <= titles


def test_signature_colour_comes_from_the_params(demo_study, basis):
    ifn = next(g for g in lv.shipped_sets() if g.name == "TYPE_I_IFN_SCORE_RICE2013")
    spec = lv.embedding(demo_study, params=lv.LandscapeParams(
        lv.RNA, basis, "Signature score", signature=ifn))
    assert spec.fig.data[0].marker.colorbar.title.text.startswith(ifn.name)
    # a signature set while colouring by cell type does not colour the points
    plain = lv.embedding(demo_study, params=lv.LandscapeParams(lv.RNA, basis, signature=ifn))
    assert all(t.marker.colorbar.title.text is None for t in plain.fig.data)


def test_selection_summary_and_markers(demo_study):
    cells = cell_table(demo_study)
    car = tuple(cells.filter(pl.col("cell_type") == "CAR-T")["cell"].to_list())
    sel = lv.SelectionParams(lv.RNA, car)
    summary = lv.selection_summary(demo_study, params=sel)
    assert summary.data.get_column("n_cells").sum() == len(car)
    subjects, days = lv.selection_extent(summary.data)
    assert summary.caption.startswith(f"From patients {', '.join(subjects)}; "
                                      f"days {days.lo} to {days.hi}")
    assert days.lo is not None and days.lo > 0          # CAR-T cells only after the infusion
    top = lv.selection_markers(demo_study, params=sel)
    assert top.data.height == 25 and top.data.get_column("gene")[0] == "CAR"
    with pytest.raises(ValueError, match="leaves other cells"):
        lv.selection_markers(demo_study, params=lv.SelectionParams(
            lv.RNA, tuple(cells["cell"].to_list())))


def test_selected_cells_reads_the_chart_selection():
    event = {"selection": {"points": [{"customdata": [7, "x"]}, {"customdata": 3},
                                      {"customdata": [7, "x"]}, {"x": 1}]}}
    assert lv.selected_cells(event) == (3, 7)
    assert lv.selected_cells(None) == () and lv.selected_cells({}) == ()


@pytest.mark.parametrize("view", lv.COMPOSITION_VIEWS)
def test_composition_views_on_the_cohort(demo_study, view):
    spec = lv.composition(demo_study, params=lv.CompositionParams(view))
    assert spec.fig.data and spec.data.height
    assert spec.view == "views.landscape.composition"
    two = Cohort(subjects=tuple(demo_study.subject_ids[:2]))
    narrowed = lv.composition(demo_study, cohort=two, params=lv.CompositionParams(view))
    assert set(narrowed.data.get_column("subject_id")) <= set(two.subjects)


def test_option_lists(demo_study):
    assert lv.sources(demo_study)[0] == lv.RNA
    assert lv.colour_options(lv.RNA, focus=True)[-1] == "Shared focus"
    assert "Shared focus" not in lv.colour_options(lv.FLOW)
    genes = lv.gene_choices(demo_study)
    assert genes[0] == "CD7" and len(genes) == len(set(genes))
    mine = lv.user_gene_sets(gmt=b"MY_SET\tdesc\tCD7\tCD3E\n", gmt_name="mine.gmt",
                             typed="ISG15, MX1")
    assert [g.name for g in mine] == ["MY_SET", "typed genes"]
    with pytest.raises(ValueError, match="mine.gmt"):
        lv.user_gene_sets(gmt=b"\xff\xfe\x00bad", gmt_name="mine.gmt")


def test_snippet_rebuilds_the_embedding(demo_study, demo_dir, basis, tmp_path):
    ifn = next(g for g in lv.shipped_sets() if g.name == "TYPE_I_IFN_SCORE_RICE2013")
    spec = lv.embedding(demo_study, cohort=Cohort(groups=("Responder",)), params=lv.
                        LandscapeParams(lv.RNA, basis, "Signature score", signature=ifn,
                                        facet_windows=("Pre-infusion", "Day 1-60")))
    script = tmp_path / "rebuild.py"
    script.write_text(code.snippet(spec, demo_dir))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False, env=package_env())
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "landscape.json").read_text(encoding="utf-8"))
    assert written == json.loads(spec.fig.to_json())


def test_current_selection_and_the_focus_it_sets(demo_study, basis):
    rna = lv.LandscapeParams(lv.RNA, basis)
    flow = lv.LandscapeParams(lv.FLOW, "PCA (flow)", cofactor=150.0, per_file=200)
    assert lv.current_selection(None, rna) is None
    assert lv.current_selection((lv.RNA, ()), rna) is None            # nothing selected
    assert lv.current_selection((lv.FLOW, (1, 2)), rna) is None       # another source
    sel = lv.current_selection((lv.RNA, (5, 9)), rna)
    assert sel == lv.SelectionParams(lv.RNA, (5, 9)) and sel.embedding is None
    assert lv.current_selection((lv.FLOW, (1, 2)), flow).embedding == flow
    cells = cell_table(demo_study)
    car = tuple(cells.filter(pl.col("cell_type") == "CAR-T")["cell"].to_list())
    summary = lv.selection_summary(demo_study, params=lv.SelectionParams(lv.RNA, car))
    focus = lv.selection_focus(demo_study, summary)
    subjects, days = lv.selection_extent(summary.data)
    assert (focus.subjects, focus.days) == (subjects, days) and days.lo is not None
    assert focus.label == f"{len(car):,} selected cells"
    assert focus.study_key == demo_study.cache_key


def test_comparable_sets_are_single_cell_sets_and_the_current_selection():
    kept = {"a": (lv.RNA, (1, 2)), "events": (lv.FLOW, (3,)), "b": (lv.RNA, (4,))}
    assert lv.comparable_sets(kept) == {"a": (1, 2), "b": (4,)}
    now = lv.SelectionParams(lv.RNA, (7, 8))
    assert list(lv.comparable_sets(kept, now)) == ["a", "b", "current selection"]
    assert "current selection" not in lv.comparable_sets(kept, lv.SelectionParams(lv.FLOW, (1,)))


def test_colour_sets_and_brought_gene_sets():
    class Upload:
        name = "mine.gmt"

        def getvalue(self) -> bytes:
            return b"MY_SET\tdesc\tCD7\tCD3E\n"

    mine = lv.brought_gene_sets(Upload(), typed="ISG15 MX1")
    assert [g.name for g in mine] == ["MY_SET", "typed genes"]
    assert lv.brought_gene_sets(None) == ()
    sets = lv.colour_sets(mine)
    assert list(sets)[-2:] == ["MY_SET", "typed genes"]
    assert set(g.name for g in lv.shipped_sets()) <= set(sets)
    assert set(lv.COMPOSITION_KEYS) == set(lv.COMPOSITION_VIEWS)
