"""Somatic clones (VAF tracks, oncoprint grid) and the clone/repertoire figure factories."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
import pytest

from analysis.clones import oncoprint_grid, sequenced_samples, vaf_tracks
from components.figures import clones as fig

SAMPLES = """sample_id,subject_id,day,timepoint,assay
P1_S,P1,-10,Screening,mutations
P1_D28,P1,28,D28,mutations
P1_M6,P1,180,M6,mutations
P2_S,P2,-9,Screening,mutations
P2_T,P2,-9,Screening,tcr
"""
MUTATIONS = """sample_id,gene,vaf,variant,classification
P1_S,DNMT3A,0.05,p.R882H,Missense_Mutation
P1_S,DNMT3A,0.02,p.W860*,Nonsense_Mutation
P1_M6,DNMT3A,0.20,p.R882H,Missense_Mutation
P2_S,PIGA,0.10,p.R119W,Missense_Mutation
"""


@pytest.fixture
def small(write_study):
    from data_loaders import load_study

    return load_study(write_study(samples=SAMPLES, mutations=MUTATIONS))


def test_sequenced_samples_come_from_assay_and_mutations(small):
    ids = sequenced_samples(small).get_column("sample_id").to_list()
    assert set(ids) == {"P1_S", "P1_D28", "P1_M6", "P2_S"}       # not the TCR sample


def test_vaf_tracks_fill_not_detected_with_zero(small):
    tr = vaf_tracks(small).filter(pl.col("subject_id") == "P1")
    assert tr.select("day", "vaf", "detected").rows() == [(-10, 0.05, True), (28, 0.0, False),
                                                          (180, 0.2, True)]
    assert tr.get_column("classification").to_list() == ["Missense_Mutation"] * 3
    assert "p.R882H" in tr.get_column("variant")[0]


def test_oncoprint_grid_baseline_and_last(small):
    g = oncoprint_grid(small)
    p1 = g.filter(pl.col("subject_id") == "P1").sort("when", "gene")
    assert p1.select("when", "gene", "day", "vaf").rows() == [
        ("Baseline", "DNMT3A", -10, 0.05), ("Baseline", "PIGA", -10, 0.0),
        ("Last follow-up", "DNMT3A", 180, 0.2), ("Last follow-up", "PIGA", 180, 0.0)]
    assert g.filter(pl.col("subject_id") == "P2").get_column("when").unique().to_list() == [
        "Baseline"]                                              # no sample after day 0


def test_no_mutations_gives_empty_frames(write_study):
    from data_loaders import load_study

    study = load_study(write_study(samples=SAMPLES))
    assert vaf_tracks(study).height == 0 and oncoprint_grid(study).height == 0


def test_demo_clones_grow_and_shrink(demo_study):
    g = oncoprint_grid(demo_study)
    vaf = {(r["subject_id"], r["gene"], r["when"]): r["vaf"] for r in g.iter_rows(named=True)}
    assert vaf[("SAA-005", "DNMT3A", "Last follow-up")] > 3 * vaf[("SAA-005", "DNMT3A",
                                                                   "Baseline")]
    assert vaf[("SAA-001", "BCOR", "Last follow-up")] < vaf[("SAA-001", "BCOR", "Baseline")]


# ---- figures ---------------------------------------------------------------------------------
def test_vaf_lines_panels_traces_and_log_axis(demo_study):
    tracks = vaf_tracks(demo_study)
    f = fig.vaf_lines(tracks)
    genes = tracks.get_column("gene").n_unique()
    pairs = tracks.select("subject_id", "gene").unique().height
    assert isinstance(f, go.Figure) and len(f.data) == pairs
    assert len(f.layout.annotations) == genes                   # one title per gene panel
    assert f.layout.yaxis.type == "linear"
    logf = fig.vaf_lines(tracks.with_columns(pl.lit(False).alias("detected")), log_y=True)
    assert logf.layout.yaxis.type == "log"
    assert all(min(t.y) == fig.VAF_FLOOR for t in logf.data)


def test_oncoprint_two_panels(demo_study):
    f = fig.oncoprint(oncoprint_grid(demo_study))
    assert [t.name for t in f.data] == ["Baseline", "Last follow-up"]
    assert all(isinstance(t, go.Heatmap) for t in f.data)
    assert list(f.data[0].y) == [f"SAA-00{i}" for i in range(1, 6)]


def test_repertoire_figures(demo_study):
    from analysis.repertoire import morisita_overlap, repertoire_table, top_clone_tracking

    table = repertoire_table(demo_study).with_columns(
        pl.when(pl.col("subject_id") <= "SAA-003").then(pl.lit("Responder"))
        .otherwise(pl.lit("Non-responder")).alias("group"))
    f = fig.repertoire_lines(table, metric="top10_share")
    assert len(f.data) == 5 and {t.name for t in f.data} == {"Responder", "Non-responder"}
    assert sum(t.showlegend for t in f.data) == 2
    tr = top_clone_tracking(demo_study, top=5).filter(pl.col("subject_id") == "SAA-001")
    area = fig.clone_area(tr)
    assert len(area.data) == 6 and {t.stackgroup for t in area.data} == {"clones"}
    assert area.data[-1].name == "other clonotypes"
    ov = morisita_overlap(demo_study).filter(pl.col("subject_id") == "SAA-001")
    heat = fig.overlap_heatmap(ov)
    assert len(heat.data[0].z) == ov.get_column("sample_a").n_unique()
    assert heat.data[0].z[0][0] == pytest.approx(1.0)


def test_clones_standard_figure(demo_study):
    from analysis.cohort import Cohort
    from views.deck import slide

    out = slide("clones").build(demo_study, Cohort())
    assert out is not None and out.data.height > 0 and len(out.fig.data) > 0


def test_gene_recurrence_orders_by_patients_then_samples(small):
    from analysis.clones import gene_recurrence

    ranked = gene_recurrence(vaf_tracks(small))
    assert ranked.get_column("gene").to_list() == ["DNMT3A", "PIGA"]
    assert ranked.row(0, named=True) == {"gene": "DNMT3A", "n_patients": 1, "n_samples": 2,
                                         "max_vaf": 0.20}


def test_clones_page_bounds_panels_for_an_exome_sized_study(write_study, app_page):
    """Hundreds of mutated genes (a MAF from exome sequencing) must not make one subplot per
    gene: the page starts with the most recurrent genes."""
    rows = [f"P1_S,G{i:03d},0.1" for i in range(300)] + ["P2_S,G299,0.2"]
    folder = write_study(samples=SAMPLES, mutations="sample_id,gene,vaf\n" + "\n".join(rows))
    at = app_page("pages/clones.py", study=folder)
    assert not at.exception
    chosen = at.multiselect(key="cln-genes").value
    assert chosen[0] == "G299" and len(chosen) == 9
