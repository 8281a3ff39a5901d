"""Receptors joined to cells: clonotypes per cell from the MuData airr modality and from 10x
VDJ contigs named in [single_cell] receptor_files."""

from __future__ import annotations

import shutil

import numpy as np
import polars as pl
import pytest

import cli
from analysis import clonotypes as ct
from data_loaders import load_study
from data_loaders.single_cell import SingleCellStore
from data_loaders.single_cell.receptors import read_10x_contig_chains

VDJ = "tcr/vdj_nextgem_hs_pbmc3_t_filtered_contig_annotations.csv.gz"


def _chains(rows):
    cols = ["cell_id", "locus", "junction_aa", "duplicate_count"]
    return pl.DataFrame([dict(zip(cols, r, strict=True)) for r in rows]).with_columns(
        pl.lit(True).alias("productive"), pl.lit("P1").alias("subject_id"),
        pl.lit("S1").alias("sample_id"), pl.lit(None, pl.Int64).alias("cell"))


def test_pairing_primary_chain_and_multichain():
    chains = _chains([
        ("c1", "TRA", "CAVA", 5), ("c1", "TRB", "CASB", 9),
        ("c2", "TRA", "CAVA", 7), ("c2", "TRB", "CASB", 3), ("c2", "TRB", "CASX", 1),
        ("c3", "TRB", "CASB", 4),                              # orphan VDJ: its own clone
        ("c4", "TRA", "A1", 1), ("c4", "TRA", "A2", 1), ("c4", "TRA", "A3", 1),
        ("c4", "TRB", "CASB", 2)])
    got = {r["cell_id"]: r for r in ct.cell_clonotypes(chains).iter_rows(named=True)}
    assert got["c1"]["chain_pairing"] == "single pair"
    assert got["c2"]["chain_pairing"] == "extra VDJ"
    assert got["c1"]["clonotype"] == got["c2"]["clonotype"]    # same primary pair
    assert got["c1"]["clone_size"] == 2
    assert got["c3"]["chain_pairing"] == "orphan VDJ"
    assert got["c3"]["clonotype"] != got["c1"]["clonotype"]
    assert got["c4"]["chain_pairing"] == "multichain" and got["c4"]["clonotype"] is None


def test_nucleotide_definition_splits_what_amino_acids_join():
    chains = _chains([("c1", "TRB", "CASB", 1), ("c2", "TRB", "CASB", 1)]).with_columns(
        pl.Series("junction", ["TGTGCC", "TGCGCA"]))
    assert ct.cell_clonotypes(chains).get_column("clonotype").n_unique() == 1
    assert ct.cell_clonotypes(chains, sequence="nt").get_column("clonotype").n_unique() == 2


def test_real_10x_contigs_expanded_clones_agree_with_cell_ranger(shared_data):
    path = shared_data / VDJ
    chains = read_10x_contig_chains(path).with_columns(
        pl.lit("P1").alias("subject_id"), pl.lit("S1").alias("sample_id"),
        pl.lit(None, pl.Int64).alias("cell"))
    clones = ct.cell_clonotypes(chains)
    assert clones.filter(pl.col("clone_size") > 1).height > 0          # expanded clones
    raw = pl.read_csv(path, infer_schema_length=0).filter(
        (pl.col("is_cell") == "True") & (pl.col("high_confidence") == "True")) \
        .group_by("barcode").agg(pl.col("raw_clonotype_id").first())
    joined = clones.join(raw, left_on="cell_id", right_on="barcode").filter(
        pl.col("chain_pairing") == "single pair")
    # a paired CDR3 aa clonotype is one Cell Ranger clonotype (Cell Ranger also splits by nt)
    per = joined.group_by("clonotype").agg(pl.col("raw_clonotype_id").n_unique())
    assert per.get_column("raw_clonotype_id").max() <= 2
    assert (per.get_column("raw_clonotype_id") == 1).mean() > 0.95


def test_real_h5mu_clonotypes_table(shared_data, tmp_path, capsys):
    folder = tmp_path / "wu"
    folder.mkdir()
    shutil.copy(shared_data / "scrna_tcr" / "wu2020_200.h5mu", folder)
    study = load_study(folder)
    table = ct.clonotype_table(study)
    assert table.columns[:7] == ["cell_id", "sample_id", "subject_id", "day", "cell_type",
                                 "clonotype", "clone_size"]
    assert table.height == 99              # 100 cells with expression and chains; 1 multichain
    # the file's own clonotypes (Wu et al.) are one per cell in this 200-cell cut, and so
    # are ours: no expanded clone, no clone shared between samples
    assert table.get_column("clone_size").max() == 1
    assert table.group_by("clonotype").agg(pl.col("sample_id").n_unique()) \
        .get_column("sample_id").max() == 1
    orig = study.single_cell.canonical("clonotype")
    assert orig.drop_nulls().n_unique() == orig.drop_nulls().len()
    assert table.get_column("clonotype").str.starts_with(table.get_column("subject_id")).all()
    assert cli.main(["table", "clonotypes", "--study", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("cell_id,sample_id,subject_id,day,cell_type,clonotype,clone_size")
    assert len(out) == table.height + 1


def test_receptor_files_join_10x_contigs_to_cells(shared_data, tmp_path):
    import anndata as ad
    import scipy.sparse as sp

    path = shared_data / VDJ
    barcodes = pl.read_csv(path, infer_schema_length=0).filter(
        pl.col("is_cell") == "True").get_column("barcode").unique(maintain_order=True)[:300]
    n = len(barcodes)
    obs = {"patient": ["P1"] * n, "sample": ["P1_D0"] * (n // 2) + ["P1_D28"] * (n - n // 2),
           "day": [0] * (n // 2) + [28] * (n - n // 2)}
    import pandas as pd

    adata = ad.AnnData(X=sp.csr_matrix(np.ones((n, 3), dtype=np.float32)),
                       obs=pd.DataFrame(obs, index=[f"P1_{b}" for b in barcodes]),
                       var=pd.DataFrame(index=["CD3E", "CD8A", "GZMB"]))
    folder = tmp_path / "s"
    folder.mkdir()
    adata.write_h5ad(folder / "cells.h5ad")
    (folder / "patients.csv").write_text("subject_id\nP1\n")
    (folder / "study.toml").write_text(
        f'[single_cell]\nfile = "cells.h5ad"\nreceptor_files = ["{path}"]\n')
    study = load_study(folder)
    chains = study.single_cell.receptors
    matched = chains.filter(pl.col("cell").is_not_null())
    assert matched.get_column("cell_id").n_unique() == n       # barcode inside the cell name
    table = ct.clonotype_table(study)
    assert table.height > 0.9 * n
    assert set(table.get_column("sample_id").unique()) == {"P1_D0", "P1_D28"}
    # the same cells' clones across time: reference day 0 against day 28
    from analysis.clone_tracking import clone_tracking_table

    for source in ("cells", "cells_cd8"):
        tracked = clone_tracking_table(study, source=source)
        assert tracked.get_column("source").unique().to_list() == [source]
        assert tracked.get_column("sample_a").unique().to_list() == ["P1_D0"]
        assert tracked.get_column("sample_b").unique().to_list() == ["P1_D28"]
        assert tracked.get_column("dominant_rank").max() == 10


def test_demo_t_cells_carry_paired_receptors(demo_study, demo_dir, capsys):
    """The demo's cell_receptors.tsv (AIRR with cell_id): T cells only, mostly paired
    TRA+TRB, every chain on a cell of the h5ad; `table clonotypes` prints one row per cell."""
    assert isinstance(demo_study.single_cell, SingleCellStore)
    table = ct.clonotype_table(demo_study)
    assert {"cell_id", "sample_id", "clonotype", "clone_size"} <= set(table.columns)
    chains = demo_study.single_cell.receptors
    assert chains.filter(pl.col("cell").is_null()).height == 0
    cells = ct.study_cell_clonotypes(demo_study)
    types = demo_study.single_cell.obs_column("cell_type").cast(pl.String)
    kinds = set(types.gather(cells.get_column("cell").to_numpy()).to_list())
    assert kinds == {"CD4 T", "CD8 TEM", "CAR-T"}
    pairing = cells.get_column("chain_pairing").value_counts(normalize=True)
    share = dict(pairing.iter_rows())
    assert share["single pair"] > 0.75 and share.get("multichain", 0) == 0
    assert table.height == cells.filter(pl.col("clonotype").is_not_null()).height > 5000
    assert cli.main(["table", "clonotypes", "--study", str(demo_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(",") == table.columns
    assert len(lines) == table.height + 1


def test_store_without_receptors_is_empty(tmp_path):
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    adata = ad.AnnData(X=sp.csr_matrix(np.ones((2, 2), dtype=np.float32)),
                       obs=pd.DataFrame({"subject_id": ["P1", "P1"], "day": [0, 28]},
                                        index=["c1", "c2"]),
                       var=pd.DataFrame(index=["CD3E", "CD8A"]))
    adata.write_h5ad(tmp_path / "single_cell.h5ad")
    (tmp_path / "patients.csv").write_text("subject_id\nP1\n")
    study = load_study(tmp_path)
    assert isinstance(study.single_cell, SingleCellStore)
    assert ct.clonotype_table(study).height == 0


@pytest.mark.parametrize("size,label", [(1, "1"), (2, "2"), (4, "3-5"), (20, "6-20"),
                                        (21, ">20")])
def test_expansion_bins(size, label):
    assert pl.select(ct.expansion_label(pl.lit(size))).item() == label


def test_clone_shared_between_samples_and_not_between_patients():
    chains = pl.DataFrame({
        "cell_id": ["a1", "a1", "a2", "a2", "b1", "b1"],
        "locus": ["TRA", "TRB"] * 3, "junction_aa": ["CAVA", "CASB"] * 3,
        "duplicate_count": [1] * 6, "productive": [True] * 6,
        "subject_id": ["P1", "P1", "P1", "P1", "P2", "P2"],
        "sample_id": ["P1_D0", "P1_D0", "P1_D28", "P1_D28", "P2_D0", "P2_D0"],
        "cell": [0, 0, 1, 1, 2, 2]})
    got = {r["cell_id"]: r for r in ct.cell_clonotypes(chains).iter_rows(named=True)}
    assert got["a1"]["clonotype"] == got["a2"]["clonotype"] == "P1:C1"
    assert got["a1"]["clone_size"] == 1 and got["a1"]["clone_size_patient"] == 2
    assert got["b1"]["clonotype"] == "P2:C1"                  # a public CDR3 pair: two clones
    counts = ct.cell_clone_counts(ct.cell_clonotypes(chains))
    assert counts.filter(pl.col("clonotype") == "P1:C1").get_column("sample_id").to_list() \
        == ["P1_D0", "P1_D28"]
