"""views/clones.py and views/car_cells.py on the demo: the page's defaults (most recurrent
genes, first patient with a repertoire), the cohort narrowing every record, one record per view
(so "Show the code" can rebuild each), and the records of one computation agreeing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from analysis.cohort import Cohort
from tests.conftest import ROOT
from views import car_cells as car
from views import clones as vc
from views import code


def test_somatic_defaults_and_cohort(demo_study):
    genes = vc.somatic_genes(demo_study)
    spec = vc.vaf(demo_study)
    assert set(spec.data.get_column("gene")) == set(genes[:9])
    one = Cohort(subjects=("SAA-001",))
    narrowed = vc.vaf(demo_study, cohort=one, params=vc.SomaticParams(tuple(genes[:3]), True))
    assert set(narrowed.data.get_column("subject_id")) <= {"SAA-001"}
    assert narrowed.fig.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="No gene chosen"):
        vc.vaf(demo_study, params=vc.SomaticParams(()))
    grid = vc.oncoprint(demo_study, cohort=one)
    assert grid is not None and set(grid.data.get_column("subject_id")) == {"SAA-001"}


def test_vaf_legend_lists_patients_in_study_order(demo_study):
    """The first gene panel lacks some patients: the legend still reads in the study's order
    (the sidebar's and every other per-patient figure's), not in order of first appearance."""
    spec = vc.vaf(demo_study)
    legend = [t.name for t in spec.fig.data if t.showlegend]
    assert legend == [s for s in demo_study.subject_ids if s in set(legend)]
    assert len(legend) == spec.data.get_column("subject_id").n_unique()


def test_vaf_lines_orders_the_legend_by_category_orders():
    import polars as pl

    from components.figures.clones import vaf_lines

    tracks = pl.DataFrame({"subject_id": ["P3", "P1", "P2", "P3"], "gene": ["A", "B", "B", "B"],
                           "day": [0, 0, 0, 10], "vaf": [0.1, 0.2, 0.3, 0.05]})
    by_default = vaf_lines(tracks)
    assert [t.name for t in by_default.data if t.showlegend] == ["P1", "P2", "P3"]
    given = vaf_lines(tracks, category_orders={"subject_id": ["P2", "P3"]})
    assert [t.name for t in given.data if t.showlegend] == ["P2", "P3", "P1"]
    # each line stays in its gene's panel
    assert {(t.name, t.xaxis) for t in given.data} == {("P3", "x"), ("P1", "x2"), ("P2", "x2"),
                                                        ("P3", "x2")}


def test_repertoire_metric_raw_or_depth_matched(demo_study):
    matched = vc.repertoire_metric(demo_study, params=vc.RepertoireParams("shannon"))
    assert matched.key == "rarefied" and "Rarefaction" in matched.caption
    raw = vc.repertoire_metric(demo_study, params=vc.RepertoireParams("shannon", False))
    assert raw.key == "tcr_shannon" and "not depth-matched" in raw.caption
    # top-10 share does not depend on depth: never rarefied
    assert vc.repertoire_metric(demo_study, params=vc.RepertoireParams("top10_share")).key == \
        "tcr_top10_share"
    first = vc.repertoire_patients(demo_study)[0]
    assert vc.top_clones(demo_study).key == f"{first}_top_clones"
    assert vc.overlap(demo_study, params=vc.RepertoireParams(patient="SAA-003")).fig.layout \
        .title.text.startswith("SAA-003")


def test_sibling_records_share_one_computation(demo_study):
    p = car.CompositionParams(window_b="Day 61+")
    fig, table = car.composition_test(demo_study, params=p), car.composition_table(
        demo_study, params=p)
    assert fig.data is table.data               # one run behind both
    assert fig.view == "views.car_cells.composition_test"
    assert table.view == "views.car_cells.composition_table"
    cp = vc.ClonesParams(patient="SAA-001", source="tcr", timepoint="D28")
    assert vc.clone_alluvial(demo_study, params=cp).key == "clone-alluvial"
    assert vc.clone_changes(demo_study, params=cp).data.height <= 50


def test_show_the_code_rebuilds_a_clones_figure(demo_study, demo_dir, tmp_path):
    spec = vc.repertoire_metric(demo_study, cohort=Cohort(groups=("Responder",)),
                                params=vc.RepertoireParams("simpson", False))
    script = tmp_path / "rebuild.py"
    script.write_text(code.snippet(spec, demo_dir), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "tcr_simpson.json").read_text(encoding="utf-8"))
    assert written == json.loads(spec.fig.to_json())
