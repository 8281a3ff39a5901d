"""Receptor files read per cell: AIRR TSV with cell_id, 10x contigs, the barcode join."""

from __future__ import annotations

import polars as pl
import pytest

from data_loaders.single_cell.mapping import SingleCellConfig
from data_loaders.single_cell.receptors import (
    match_cells,
    read_airr_cell_chains,
    read_receptor_file,
)

AIRR = ("sequence_id\tcell_id\tlocus\tv_call\tj_call\tjunction_aa\tproductive\t"
        "duplicate_count\n"
        "s1\tc1\tTRB\tTRBV7-2*01\tTRBJ2-1*01\tCASSLGF\tT\t5\n"
        "s2\tc1\tTRA\tTRAV1-2*01\tTRAJ33*01\tCAVMDSNYQLIW\tT\t3\n"
        "s3\tc2\t\tTRBV5-1*01\tTRBJ1-1*01\tCASSQDF\tF\t2\n")


def test_airr_with_cell_id(tmp_path):
    path = tmp_path / "rearr.tsv"
    path.write_text(AIRR)
    chains = read_receptor_file(path)
    assert chains.height == 3
    assert chains.get_column("chain").to_list() == [0, 1, 0]
    assert chains.filter(pl.col("cell_id") == "c2").item(0, "locus") == "TRB"   # from v_call
    assert chains.get_column("productive").to_list() == [True, True, False]
    assert chains.get_column("duplicate_count").to_list() == [5, 3, 2]


def test_airr_without_cell_id_says_what_to_do(shared_data):
    with pytest.raises(ValueError, match="without a cell_id column"):
        read_airr_cell_chains(shared_data / "tcr" / "airr_good_rearrangement.tsv")


def test_all_contigs_file_drops_non_cells(shared_data):
    path = shared_data / "scrna_tcr" / \
        "10k_BMMNC_5pv2_nextgem_Multiplex_vdj_t_all_contig_annotations_small.csv"
    raw = pl.read_csv(path, infer_schema_length=0)
    chains = read_receptor_file(path)
    kept = raw.filter((pl.col("is_cell").str.to_uppercase() == "TRUE")
                      & (pl.col("high_confidence").str.to_uppercase() == "TRUE"))
    assert chains.height == kept.height < raw.height


def test_barcode_join_within_the_named_sample():
    cells = pl.DataFrame({"cell_id": ["S1_AAAAAAAAAAAAAAAA-1", "S2_AAAAAAAAAAAAAAAA-1",
                                      "S2_CCCCCCCCCCCCCCCC-1"],
                          "sample_id": ["S1", "S2", "S2"]})
    chains = pl.DataFrame({"cell_id": ["AAAAAAAAAAAAAAAA-1", "CCCCCCCCCCCCCCCC-1"]})
    # the A barcode is in two samples: only the named sample resolves it
    assert match_cells(chains, cells).get_column("cell_id").to_list() == [
        "AAAAAAAAAAAAAAAA-1", "S2_CCCCCCCCCCCCCCCC-1"]
    assert match_cells(chains, cells, sample_id="S2").get_column("cell_id").to_list() == [
        "S2_AAAAAAAAAAAAAAAA-1", "S2_CCCCCCCCCCCCCCCC-1"]


def test_receptor_files_in_the_single_cell_table():
    cfg = SingleCellConfig.from_config({"receptor_files": ["a.csv", {"file": "b.tsv",
                                                                      "sample_id": "S2"}]})
    assert cfg.receptor_files == (("a.csv", None), ("b.tsv", "S2"))
    with pytest.raises(ValueError, match="needs file"):
        SingleCellConfig.from_config({"receptor_files": [{"sample_id": "S2"}]})
