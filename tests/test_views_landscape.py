"""views/landscape.py on the demo: the embedding as the page draws it (colours, facets, the
cohort), the option lists the page offers, and "Show the code" rebuilding an embedding from
its Params."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from analysis.cohort import Cohort
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


def test_selection_and_composition_names_keep_their_old_home():
    from views import landscape_composition as lc
    from views import landscape_selection as lsel
    from views.landscape import selection_markers

    assert lv.composition is lc.composition and lv.CompositionParams is lc.CompositionParams
    assert lv.SelectionParams is lsel.SelectionParams and selection_markers is \
        lsel.selection_markers
    with pytest.raises(AttributeError):
        _ = lv.no_such_name
