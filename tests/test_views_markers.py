"""Marker genes of every cell type over the whole store (views/markers.py): a job keyed by
the study's files and the Params, stored on disk; `cli.py markers` and the Immune landscape
submit the same job, so a table one computed is read by the other (another process) and by a
second session, never computed again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import jobs
from jobs import core

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/immune_landscape.py"


@pytest.fixture
def demo_copy(demo_dir: Path, tmp_path: Path) -> Path:
    study = tmp_path / "demo"
    shutil.copytree(demo_dir, study, ignore=shutil.ignore_patterns(".cache"))
    return study


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CART_JOBS": "inline"})


def test_cli_job_is_read_by_the_app_and_by_a_second_run(demo_copy, tmp_path, monkeypatch):
    from analysis import embedding as emb
    from data_loaders import load_study
    from views import landscape as lv
    from views import markers as mk

    out = tmp_path / "markers.csv"
    first = _cli("markers", "--study", str(demo_copy), "--top", "10", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "markers:" in first.stderr and "the stored result" not in first.stderr
    written = pl.read_csv(out)
    assert list(written.columns[:4]) == ["group", "n_cells_group", "rank", "gene"]
    b_genes = written.filter(pl.col("group") == "B").get_column("gene").to_list()
    assert len(b_genes) == 10 and {"CD79A", "CD22"} <= set(b_genes[:5])

    # the app process: the same job is found on disk; nothing is computed here
    def never(*a: object, **k: object) -> None:
        raise AssertionError("the stored table was computed again")

    monkeypatch.setattr(mk, "group_sums", never)
    study = load_study(demo_copy)
    params = mk.GroupMarkersParams(top=10)
    with core._forget_all():
        assert mk.group_markers_ready(study, params=params)
        assert not mk.group_markers_ready(study, params=mk.GroupMarkersParams(top=5))
        spec = mk.group_markers(study, params=params)
    assert spec.data.get_column("gene").to_list() == written.get_column("gene").to_list()
    assert "sidebar filter does not narrow" in spec.caption
    # each group's rows are that group's selection-vs-rest markers, as a lasso gives them
    cell_type = emb.cell_table(study).get_column("cell_type").to_numpy()
    b_cells = tuple(int(c) for c in np.flatnonzero(cell_type == "B"))
    lasso = lv.selection_markers(study, params=lv.SelectionParams(lv.RNA, b_cells, top=10))
    assert lasso.data.get_column("gene").to_list() == b_genes

    again = _cli("markers", "--study", str(demo_copy), "--top", "10")
    assert again.returncode == 0 and "the stored result" in again.stderr
    assert again.stdout.splitlines()[1].startswith("B,")


def test_not_computed_and_bad_grouping_say_what_to_do(demo_copy):
    from data_loaders import load_study
    from views import markers as mk

    study = load_study(demo_copy)
    assert mk.groupings(study)[0] == "cell_type"
    with core._forget_all():
        with pytest.raises(ValueError, match="have not been computed"):
            mk.group_markers(study, params=mk.GroupMarkersParams())
        bad = jobs.submit(mk.run_group_markers, study, params=mk.GroupMarkersParams("nope"),
                          progress=jobs.progress, study=study)
        assert bad.status() == "error"
        assert "'nope' is not a cell grouping" in bad.error() and "cell_type" in bad.error()
    r = _cli("markers", "--study", str(demo_copy), "--by", "nope")
    assert r.returncode == 2 and "'nope' is not a cell grouping" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_page_runs_the_job_on_request_and_a_second_session_reads_it(app_page, demo_copy):
    with core._forget_all():
        at = app_page(PAGE, study=demo_copy, timeout=300)
        assert not at.exception, [e.value for e in at.exception]
        assert "Marker genes of every cell type" in [h.value for h in at.header]
        assert not any("n_cells_group" in d.value.columns for d in at.dataframe)
        at.button(key="il-gm-start").click().run()
        assert not at.exception, [e.value for e in at.exception]
        table = next(d.value for d in at.dataframe if "n_cells_group" in d.value.columns)
        assert {"B", "NK", "CD8 TEM"} <= set(table["group"])
    with core._forget_all():         # a second session (and process memory forgotten)
        second = app_page(PAGE, study=demo_copy, timeout=300)
        assert not any(b.key == "il-gm-start" for b in second.button)
        assert any("n_cells_group" in d.value.columns for d in second.dataframe)


def test_a_cluster_column_is_a_grouping_of_its_own(tmp_path):
    """A file with an annotation and a leiden column offers both; the clusters' tables are the
    types' tables when each cluster is one type. A file whose cell types are its clusters
    offers them once."""
    import anndata as ad
    import pandas as pd

    from data_loaders import load_study
    from tests import sc_shapes
    from views import markers as mk

    folder = tmp_path / "annotated"
    folder.mkdir()
    path = sc_shapes.cellxgene(folder / "cells.h5ad")
    adata = ad.read_h5ad(path)
    cluster_of = {"CD8 T": "0", "NK": "1", "B": "2"}
    adata.obs["leiden"] = pd.Categorical(adata.obs["cell_type"].astype(str).map(cluster_of))
    adata.write_h5ad(path)
    study = load_study(folder)
    assert mk.groupings(study) == ["cell_type", "leiden"]
    by_type = mk.run_group_markers(study, params=mk.GroupMarkersParams(top=5))
    by_cluster = mk.run_group_markers(study, params=mk.GroupMarkersParams("leiden", top=5))
    assert set(by_cluster.get_column("group")) == set(cluster_of.values())
    for cell_type, cluster in cluster_of.items():
        genes = [by.filter(pl.col("group") == g).get_column("gene").to_list()
                 for by, g in ((by_type, cell_type), (by_cluster, cluster))]
        assert genes[0] == genes[1] and len(genes[0]) == 5

    plain = tmp_path / "clustered"
    plain.mkdir()
    sc_shapes.scanpy_processed(plain / "cells.h5ad")
    assert mk.groupings(load_study(plain)) == ["cell_type"]      # leiden is the cell type


def test_pieces_summed_apart_give_the_one_pass_table(demo_copy, monkeypatch):
    """The job sums pieces of cells (one task each on a cluster; here one after the other)
    and adds them: the table is rank_groups' over the whole store in one pass."""
    from analysis import embedding as emb
    from analysis.markers import rank_groups
    from data_loaders import load_study
    from views import markers as mk

    study = load_study(demo_copy)
    monkeypatch.setattr(mk, "PIECE_CELLS", 700)
    steps: list[str] = []
    with core._forget_all():
        got = mk.run_group_markers(study, params=mk.GroupMarkersParams(top=50),
                                   progress=lambda f, m: steps.append(m))
    whole = rank_groups(emb.read_marker_index(study),
                        labels=emb.cell_table(study).get_column("cell_type").to_numpy(),
                        top=50, patients=emb.cell_table(study).get_column("subject_id").to_numpy())
    assert emb.cell_table(study).height > 5 * 700            # several pieces
    assert got.get_column("gene").to_list() == whole.get_column("gene").to_list()
    assert np.allclose(got.get_column("z_score").to_numpy(), whole.get_column("z_score").to_numpy())
    assert steps[-1].startswith("markers of ")
