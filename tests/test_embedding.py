"""Embeddings: on-disk cache hit/miss by file content and parameters (PCA only, tiny), one
small UMAP fit, the stratified reproducible subsample, the gene-column store, and the page
(AppTest) on the demo, with a selection, and on a study without single-cell data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from analysis import embedding as emb
from analysis.cohort import Cohort
from data_loaders import load_study

PCA = emb.EmbeddingParams(method="pca", n_pcs=5, n_top_genes=30)
SAMPLES = ("sample_id,subject_id,day,timepoint,assay\nS1,P1,-5,Screening,scrna\n"
           "S2,P1,28,D28,scrna\nS3,P2,-3,Screening,scrna\nS4,P2,30,D28,scrna\n")


def _write_h5ad(folder, *, seed: int = 0, n: int = 240, g: int = 60) -> None:
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    types = np.array(["CD4 T", "NK", "B"])[np.arange(n) % 3]
    lam = np.full((n, g), 0.5)
    for k, t in enumerate(("CD4 T", "NK", "B")):
        lam[types == t, k * 10:(k + 1) * 10] = 5.0
    counts = rng.poisson(lam).astype(np.float32)
    obs = pd.DataFrame({"subject_id": np.where(np.arange(n) < n // 2, "P1", "P2"),
                        "sample_id": np.array(["S1", "S2", "S3", "S4"])[np.arange(n) * 4 // n],
                        "cell_type": types}, index=[f"c{i}" for i in range(n)])
    var = pd.DataFrame(index=[f"G{j}" for j in range(g)])
    ad.AnnData(sp.csr_matrix(counts), obs=obs, var=var).write_h5ad(folder / "cells.h5ad")


@pytest.fixture
def tiny(write_study):
    folder = write_study(samples=SAMPLES)
    _write_h5ad(folder)
    return folder


def test_cache_hit_and_miss_by_content_and_params(tiny):
    study = load_study(tiny)
    first = emb.embed_study(study, params=PCA)
    assert first.source == "computed" and first.coords.shape == (240, 2)
    assert first.coords.dtype == np.float32 and first.cache_file.parent == tiny / ".cache"
    again = emb.embed_study(load_study(tiny), params=PCA)
    assert again.source == "cache" and again.cache_file == first.cache_file
    assert np.array_equal(again.coords, first.coords)
    other = emb.embed_study(study, params=emb.EmbeddingParams(method="pca", n_pcs=4,
                                                             n_top_genes=30))
    assert other.source == "computed" and other.cache_file != first.cache_file
    assert emb.COMPUTED_BASIS in emb.available_bases(study, params=PCA)
    _write_h5ad(tiny, seed=1)                  # same name, new content
    changed = emb.embed_study(load_study(tiny), params=PCA)
    assert changed.source == "computed" and changed.cache_file != first.cache_file


def test_read_only_study_caches_in_user_folder(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setattr("os.access", lambda p, mode: False)
    loc = emb.cache_location(tiny)
    assert not loc.in_study and "not writable" in loc.note
    assert str(loc.folder).startswith(str(tmp_path / "user-cache"))
    out = emb.embed_study(load_study(tiny), params=PCA)
    assert out.cache_file.parent == loc.folder and "not writable" in out.note


def test_embedding_precomputed_in_a_read_only_study_is_used(tiny, tmp_path, monkeypatch):
    """`cli.py embed` run by the data owner writes <study>/.cache; the server, which may only
    read the studies volume, must use that file instead of computing again."""
    first = emb.embed_study(load_study(tiny), params=PCA)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setattr("os.access", lambda p, mode: False)
    again = emb.embed_study(load_study(tiny), params=PCA)
    assert again.source == "cache" and again.cache_file == first.cache_file
    assert again.cache_file.parent == tiny / ".cache"


def test_gene_vector_reads_one_normalised_column(tiny):
    import anndata as ad

    study = load_study(tiny)
    raw = ad.read_h5ad(tiny / "cells.h5ad").X.toarray()
    expect = np.log1p(raw[:, 3] / raw.sum(axis=1) * 1e4)
    assert np.allclose(emb.gene_vector(study, gene="G3"), expect, atol=1e-5)
    with pytest.raises(KeyError):
        emb.gene_vector(study, gene="NOPE")


def test_cell_table_derives_days_and_car_status(tiny):
    cells = emb.cell_table(load_study(tiny))
    assert cells.height == 240 and tuple(cells.columns[:7]) == emb.CELL_COLUMNS
    assert cells.filter(pl.col("sample_id") == "S2").get_column("day").unique().to_list() == [28]
    assert not cells.get_column("car_positive").any()
    assert cells.get_column("response_group").null_count() == 0


@pytest.mark.slow
def test_one_small_umap_fit():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(c, 0.3, (60, 6)) for c in (0.0, 4.0)]).astype(np.float32)
    coords = emb.embed_matrix(x, params=emb.EmbeddingParams(n_neighbors=8, n_pcs=4, threads=1),
                              select_genes=False)
    assert coords.shape == (120, 2) and np.isfinite(coords).all()
    a, b = coords[:60].mean(axis=0), coords[60:].mean(axis=0)
    spread = coords[:60].std(axis=0).max()
    assert np.linalg.norm(a - b) > 2 * spread       # the two clusters stay apart


def test_stratified_subsample_is_reproducible_and_keeps_rare_strata():
    rng = np.random.default_rng(0)
    n = 30_000
    cells = pl.DataFrame({"sample_id": rng.choice(["A", "B", "C"], n),
                          "cell_type": np.where(rng.random(n) < 0.002, "rare",
                                                rng.choice(["T", "NK"], n))})
    pick = emb.stratified_subsample(cells, max_points=3_000, seed=1)
    assert len(pick) <= 3_000 and np.all(np.diff(pick) > 0)
    assert np.array_equal(pick, emb.stratified_subsample(cells, max_points=3_000, seed=1))
    assert not np.array_equal(pick, emb.stratified_subsample(cells, max_points=3_000, seed=2))
    sub = cells[pick]
    full_share = cells.group_by("sample_id", "cell_type").len().sort("sample_id", "cell_type")
    sub_share = sub.group_by("sample_id", "cell_type").len().sort("sample_id", "cell_type")
    assert full_share.height == sub_share.height               # every stratum drawn
    big = full_share.filter(pl.col("cell_type") != "rare")
    ratio = sub_share.filter(pl.col("cell_type") != "rare").get_column("len") / \
        big.get_column("len")
    assert ratio.min() > 0.08 and ratio.max() < 0.12           # proportional
    assert (sub_share.filter(pl.col("cell_type") == "rare").get_column("len") >= 10).all()
    assert len(emb.stratified_subsample(cells[:100], max_points=3_000)) == 100


def test_highly_variable_genes_find_the_planted_ones():
    rng = np.random.default_rng(0)
    lam = np.full((400, 100), 1.0)
    lam[:200, :8], lam[200:, :8] = 0.2, 1.8       # same mean, far more variable
    x = np.log1p(rng.poisson(lam)).astype(np.float32)
    hvg = emb.highly_variable_genes(x, n_top=8, n_bins=5)
    assert len(set(hvg) & set(range(8))) >= 6


def test_drawn_cells_follow_the_cohort(demo_study):
    basis = emb.available_bases(demo_study)[0]
    everyone = emb.drawn_cells(demo_study, basis=basis, max_points=2_000)
    assert everyone.frame.height <= 2_000 and everyone.n_total == demo_study.adata.n_obs
    assert everyone.frame.get_column("x").dtype == pl.Float32
    one = emb.drawn_cells(demo_study, basis=basis, cohort=Cohort(subjects=("SAA-001",)),
                          max_points=2_000)
    assert set(one.frame.get_column("subject_id")) == {"SAA-001"}
    assert one.n_total < everyone.n_total


# ---- page ------------------------------------------------------------------------------------
PAGE = "pages/immune_landscape.py"


def _texts(at) -> str:
    parts = [m.value for m in (*at.markdown, *at.caption, *at.info, *at.subheader)]
    return " ".join(str(p) for p in parts)


@pytest.mark.slow
def test_page_on_demo_with_selection_summary_and_markers(app_page):
    at = app_page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Immune landscape"
    assert "Showing 20,000 of 20,000 cells" in _texts(at)
    at.selectbox(key="il-color").set_value("Gene").run()
    assert at.selectbox(key="il-gene").value == "CD7"
    at.session_state["il-selection"] = ("Single-cell RNA", np.arange(0, 400))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Selection: 400 cells" in _texts(at)
    tables = [d.value for d in at.dataframe]
    markers = next(t for t in tables if "log2_fold_change" in t.columns)
    assert len(markers) == 25
    from components.session import FOCUS_KEY

    focus = at.session_state[FOCUS_KEY]
    assert focus.subjects and focus.days.lo is not None
    for view in ("By response group", "CD7+ T and NK", "CAR+ T cells vs qPCR"):
        at.button_group(key="il-comp-view").set_value(view).run()
        assert not at.exception, (view, [e.value for e in at.exception])
    at.multiselect(key="il-facet").set_value(["Pre-infusion", "Post-infusion"]).run()
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.slow
def test_page_on_flow_only_study(app_page, tmp_path, demo_dir):
    import shutil

    folder = tmp_path / "flowonly"
    folder.mkdir()
    for name in ("patients.csv", "samples.csv", "responses.csv"):
        shutil.copy(demo_dir / name, folder / name)
    shutil.copytree(demo_dir / "flow", folder / "flow")
    at = app_page(PAGE, study=folder)
    assert not at.exception, [e.value for e in at.exception]
    text = _texts(at)
    assert "events" in text and "flow cytometry events only" in text
    at.selectbox(key="il-color").set_value("Marker").run()
    assert not at.exception and at.selectbox(key="il-marker").value


def test_page_explains_missing_single_cell_data(app_page, write_study):
    at = app_page(PAGE, study=write_study())
    assert not at.exception, [e.value for e in at.exception]
    info = " ".join(i.value for i in at.info)
    assert "no single-cell file" in info and "flow_fcs" in info


def test_extent_holds_every_finite_point_and_ignores_nan_and_infinity():
    from analysis.embedding import extent

    coords = np.array([[0.0, 10.0], [4.0, 20.0], [2.0, 15.0]], dtype=np.float32)
    (x0, x1), (y0, y1) = extent(coords, pad=0.0)
    assert (x0, x1, y0, y1) == (0.0, 4.0, 10.0, 20.0)
    (x0, x1), (y0, y1) = extent(coords, pad=0.25)
    assert (x0, x1, y0, y1) == (-1.0, 5.0, 7.5, 22.5)
    bad = np.vstack([coords, [[np.nan, -np.inf], [np.inf, np.nan]]]).astype(np.float32)
    assert extent(bad, pad=0.0) == ((0.0, 4.0), (10.0, 20.0))
    # one value on an axis: a span of 1 is padded around it
    assert extent(np.array([[3.0, 3.0]]), pad=0.5) == ((2.5, 3.5), (2.5, 3.5))
    assert extent(np.full((4, 2), np.nan)) == ((0.0, 1.0), (0.0, 1.0))
    assert extent(np.empty((0, 2))) == ((0.0, 1.0), (0.0, 1.0))
