"""The converted single-cell store (data_loaders/single_cell/convert.py, zarr_store.py): the
same obs, genes, selections, marker ranks and embeddings as the .h5ad it was made from, read
from a folder, a file:// URL or fsspec's memory filesystem."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from analysis import embedding as emb
from analysis.markers import rank_markers
from data_loaders import load_study
from data_loaders.single_cell.convert import write_store
from data_loaders.single_cell.zarr_store import ConvertedStore, read_manifest

CANONICAL = ("subject_id", "sample_id", "day", "timepoint", "cell_type", "tissue",
             "car_positive", "clonotype")


@pytest.fixture(scope="module")
def converted(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo study with its converted store, converted by `cli.py convert`
    with gene ranges small enough that the gene-major copy is assembled from several."""
    import cli

    folder = tmp_path_factory.mktemp("converted") / "demo"
    shutil.copytree(demo_dir, folder, ignore=shutil.ignore_patterns(".cache"))
    assert cli.main(["convert", "--study", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def pair(demo_dir: Path, converted: Path) -> tuple:
    source = load_study(demo_dir).single_cell
    store = load_study(converted).single_cell
    return source, store


def test_the_study_reads_the_converted_store_and_says_so(converted: Path) -> None:
    study = load_study(converted)
    assert isinstance(study.single_cell, ConvertedStore)
    notes = [f.problem for f in study.report.findings if f.table == "single_cell"]
    assert any("converted store" in n for n in notes)
    assert read_manifest(converted / "single_cell.store.zarr")["n_obs"] == 20_000


def test_obs_columns_are_the_same(pair: tuple) -> None:
    source, store = pair
    assert store.n_obs == source.n_obs
    for name in CANONICAL:
        a, b = source.canonical(name), store.canonical(name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype and a.equals(b), name
    assert store.cell_names == source.cell_names
    assert store.samples().equals(source.samples())
    # the file's own columns are kept as they are
    assert store.obs_column("sample_id").equals(source.obs_column("sample_id"))


def test_genes_and_gene_columns_are_the_same(pair: tuple) -> None:
    source, store = pair
    assert store.gene_names == source.gene_names and store.gene_ids == source.gene_ids
    for gene in ("CD7", "CD3E", source.gene_names[-1]):
        assert np.array_equal(store.gene_column(gene), source.gene_column(gene)), gene
    with pytest.raises(KeyError):
        store.gene_column("NOT-A-GENE")


def test_a_selection_reads_the_same_rows_in_the_order_asked(pair: tuple) -> None:
    source, store = pair
    rows = np.array([19_999, 3, 3, 150, 7_001, 0])
    a, b = source.expression_rows(rows), store.expression_rows(rows)
    assert a.shape == b.shape == (6, len(source.gene_names))
    assert abs(a - b).max() == 0
    assert abs(b[1] - b[2]).max() == 0    # a repeated row comes back twice


def test_marker_ranks_give_the_same_markers(pair: tuple, demo_dir: Path,
                                            converted: Path) -> None:
    source, store = pair
    a, b = source.marker_arrays(), store.marker_arrays()
    for k in ("nnz", "total", "ties_nonzero", "rank_total"):
        assert np.allclose(getattr(a, k), getattr(b, k)), k
    sel = np.zeros(source.n_obs, dtype=bool)
    sel[np.random.default_rng(1).choice(source.n_obs, 500, replace=False)] = True
    got = [rank_markers(emb.read_marker_index(load_study(d)), selected=sel, top=25)
           for d in (demo_dir, converted)]
    assert got[0].get_column("gene").to_list() == got[1].get_column("gene").to_list()
    assert np.allclose(got[0].get_column("z_score").to_numpy(),
                       got[1].get_column("z_score").to_numpy())
    big = ~sel        # the other branch: fewer rows on the unselected side
    both = [rank_markers(emb.read_marker_index(load_study(d)), selected=big, top=10)
            for d in (demo_dir, converted)]
    assert np.allclose(both[0].get_column("p_value").to_numpy(),
                       both[1].get_column("p_value").to_numpy())


def test_embeddings_counts_and_the_content_key_are_the_same(pair: tuple) -> None:
    source, store = pair
    assert store.embeddings == source.embeddings
    for key in store.embeddings:
        assert np.array_equal(store.embedding(key), source.embedding(key))
    assert store.content_key == source.content_key     # derived caches are shared
    assert np.array_equal(store.counts_column("CD7"), source.counts_column("CD7"))


def test_anndata_opens_the_converted_store(converted: Path) -> None:
    import anndata as ad

    lazy = ad.experimental.read_lazy(str(converted / "single_cell.store.zarr"))
    assert lazy.shape == (20_000, 1500)
    assert set(lazy.layers.keys()) >= {"X_by_gene", "marker_ranks", "counts"}


def test_a_changed_source_file_is_read_itself_with_a_warning(converted: Path,
                                                           tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    shutil.copytree(converted, folder)
    h5ad = folder / "single_cell.h5ad"
    with h5ad.open("ab") as fh:         # another version of the file
        fh.write(b"\0")
    os.utime(h5ad, ns=(1, 1))
    study = load_study(folder)
    assert not isinstance(study.single_cell, ConvertedStore)
    assert any("another version" in f.problem for f in study.report.findings
               if f.severity == "warning")


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_the_store_reads_the_same_from_a_url(pair: tuple, tmp_path: Path,
                                             scheme: str) -> None:
    source = pair[0]
    url = f"memory://{tmp_path.name}/sc.store.zarr" if scheme == "memory" else \
        (tmp_path / "sc.store.zarr").as_uri()
    write_store(source, url)
    store = ConvertedStore(url)
    assert store.n_obs == source.n_obs
    assert store.canonical("subject_id").equals(source.canonical("subject_id"))
    assert np.array_equal(store.gene_column("CD7"), source.gene_column("CD7"))
    rows = [10, 2, 19_000]
    assert abs(store.expression_rows(rows) - source.expression_rows(rows)).max() == 0


def test_a_study_reads_its_store_from_a_url_without_the_file(pair: tuple, demo_dir: Path,
                                                            tmp_path: Path) -> None:
    url = f"memory://{tmp_path.name}/shared.store.zarr"
    write_store(pair[0], url)
    folder = tmp_path / "host"
    shutil.copytree(demo_dir, folder, ignore=shutil.ignore_patterns(".cache",
                                                                    "single_cell.h5ad"))
    import tomllib

    import tomli_w

    toml = folder / "study.toml"
    config = tomllib.loads(toml.read_text())
    config.setdefault("single_cell", {})["store"] = url
    toml.write_text(tomli_w.dumps(config))
    study = load_study(folder)
    assert isinstance(study.single_cell, ConvertedStore) and study.single_cell.source is None
    assert not study.report.errors
    cells = emb.cell_table(study)
    assert cells.height == 20_000 and cells.get_column("subject_id").null_count() == 0
    # receptor files named in study.toml are found in the study folder, not beside the URL
    assert study.single_cell.receptors.height == load_study(demo_dir).single_cell.receptors.height


def test_the_gene_major_copy_is_ready_in_a_converted_store(pair: tuple, tmp_path: Path) -> None:
    source, store = pair
    assert store.has_gene_major_copy and store.gene_cache_ready()
    assert not source.has_gene_major_copy
    plain = load_study(_copy_without_store(pair, tmp_path))
    assert not plain.single_cell.gene_cache_ready()
    assert emb.expression_store(plain) is not None and plain.single_cell.gene_cache_ready()


def _copy_without_store(pair: tuple, tmp_path: Path) -> Path:
    folder = tmp_path / "plain"
    shutil.copytree(pair[0].path.parent, folder,
                    ignore=shutil.ignore_patterns(".cache", "*.store.zarr"))
    return folder
