"""Figures of views/clones.py: trace types and titles (cheap), and every figure exported as
PNG, SVG and PDF through components.export (needs Chromium)."""

from __future__ import annotations

import shutil

import plotly.graph_objects as go
import polars as pl
import pytest

from analysis.cohort import Cohort
from components import export
from components.figures import clones as figs
from views import car_cells as car
from views import clones as vc
from views.spec import FigureSpec


def _specs(study, cohort):
    out = []
    p = car.CarParams()
    out = [view(study, cohort=cohort, params=p) for view in (
        car.car_histogram, car.car_fraction, car.car_phenotype, car.car_markers,
        car.cd7_groups, car.cd7_test)]
    out += [view(study, cohort=cohort, params=car.CompositionParams())
            for view in (car.composition_test, car.composition_table)]
    out.append(vc.rarefied(study, cohort=cohort, params=vc.RepertoireParams()))
    cp = vc.ClonesParams(patient="SAA-001", source="tcr", timepoint="D28")
    out += [view(study, cohort=cohort, params=cp) for view in (
        vc.clone_alluvial, vc.clone_volcano, vc.clone_changes, vc.fate_figure, vc.fate_table)]
    return [s for s in out if isinstance(s, FigureSpec)]


@pytest.fixture(scope="module")
def demo_specs(demo_study):
    return _specs(demo_study, Cohort())


def test_view_figures_on_the_demo(demo_specs):
    kinds = {s.key: {type(t).__name__ for t in s.fig.data} for s in demo_specs}
    assert kinds["car-cut"] == {"Bar"}
    assert kinds["clone-alluvial"] == {"Sankey"}
    assert "Scattergl" in kinds["clone-volcano"]
    assert len(demo_specs) >= 9
    alluvial = next(s for s in demo_specs if s.key == "clone-alluvial")
    sankey = alluvial.fig.data[0]
    assert sum(1 for lab in sankey.node.label if lab.startswith("#")) == 10
    assert any(": contracted" in lab for lab in sankey.node.label)
    hist = next(s for s in demo_specs if s.key == "car-cut")
    assert hist.fig.layout.shapes and hist.fig.layout.shapes[0].type == "line"   # the cut
    assert "mixture" in hist.caption


def test_alluvial_flows_carry_reference_share():
    states = pl.DataFrame({"subject_id": ["P"] * 4, "clonotype": ["a", "a", "b", "b"],
                           "rank": [1, 1, 2, 2], "step": [1, 2, 1, 2],
                           "timepoint": ["BL", "D28", "BL", "D28"], "day": [0, 28, 0, 28],
                           "class": ["reference", "lost", "reference", "persistent"],
                           "weight": [0.3, 0.3, 0.1, 0.1]})
    fig = figs.clone_alluvial(states)
    link = fig.data[0].link
    assert sorted(link.value) == [0.1, 0.3]
    assert isinstance(fig, go.Figure) and len(fig.data[0].node.label) == 4


def test_every_figure_exports(export_ready, demo_specs):
    for spec in demo_specs:
        for fmt in ("png", "svg", "pdf"):
            data = export.export_figure(spec.fig, fmt, width=800, height=500, scale=1)
            assert len(data) > 1000, (spec.key, fmt)


def test_receptor_figures_export(export_ready, shared_data, tmp_path):
    from data_loaders import load_study

    folder = tmp_path / "wu"
    folder.mkdir()
    shutil.copy(shared_data / "scrna_tcr" / "wu2020_200.h5mu", folder)
    study = load_study(folder)
    table, emb, pheno = (view(study, cohort=Cohort(), params=vc.ClonesParams()) for view in (
        vc.clonotypes_table, vc.clone_embedding, vc.clone_phenotype))
    assert table.data.height == 99
    assert emb is not None and pheno.data.height == 0          # no clone of 2+ cells here
    kinds = {t.name for t in emb.fig.data}
    assert "no clonotype" in kinds and "clone size 1" in kinds
    assert len(export.export_figure(emb.fig, "svg", width=600, height=500, scale=1)) > 1000


def test_overlap_heatmap_ticks_are_two_short_upright_lines():
    import polars as pl

    from components.figures.clones import overlap_heatmap

    df = pl.DataFrame({"timepoint_a": ["Screening", "Screening", "D28", "D28"],
                       "timepoint_b": ["Screening", "D28", "Screening", "D28"],
                       "day_a": [-11, -11, 28, 28], "day_b": [-11, 28, -11, 28],
                       "morisita_horn": [1.0, 0.8, 0.8, 1.0]})
    fig = overlap_heatmap(df)
    assert list(fig.data[0].x) == ["Screening<br>d-11", "D28<br>d28"]
    assert fig.layout.xaxis.tickangle == 0 and fig.layout.xaxis.automargin is True
