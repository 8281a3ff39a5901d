"""Repertoire readers: the AIRR package's rearrangement TSV and 10x Genomics VDJ contigs (scirpy's
copy of vdj_nextgem_hs_pbmc3) collapsed to clonotypes, and malformed files."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from data_loaders.errors import StudyError, ValidationReport
from data_loaders.formats.airr import gene_call, read_10x_vdj, read_airr

AIRR = "tcr/airr_good_rearrangement.tsv"
VDJ = "tcr/vdj_nextgem_hs_pbmc3_t_filtered_contig_annotations.csv.gz"


def test_gene_call_first_gene_without_allele():
    df = pl.DataFrame({"v": ["TRBV7-9*01,TRBV7-8*01", "None", "IGHV4-31*03"]})
    assert df.select(gene_call("v")).to_series().to_list() == ["TRBV7-9", None, "IGHV4-31"]


def test_airr_rearrangements(shared_data: Path):
    rep = ValidationReport()
    (raw,) = read_airr(shared_data / AIRR, {"sample_id": "S1"}, rep)
    df = raw.frame
    assert raw.table == "tcr" and raw.format == "airr"
    assert df.height == 3
    assert set(df.get_column("sample_id")) == {"S1"}
    top = df.row(0, named=True)
    assert (top["junction_aa"], top["v_call"], top["j_call"], top["locus"], top["count"]) == \
        ("CASGVAGTFDYW", "IGHV4-31", "IGHJ4", "IGH", "4164")
    notes = " | ".join(f.problem for f in rep.findings)
    assert "4 non-productive rearrangement(s) left out" in notes
    assert "5 rearrangement(s) collapsed to 3 clonotype(s)" in notes


def test_10x_vdj_contigs_collapse_to_cells(shared_data: Path):
    rep = ValidationReport()
    (raw,) = read_10x_vdj(shared_data / VDJ, {"sample_id": "S2"}, rep)
    df = raw.frame.with_columns(pl.col("count").cast(pl.Int64))
    assert raw.format == "10x_vdj" and raw.delimiter == ","
    assert df.height == 2952
    assert df.get_column("count").sum() == 3123           # productive chains = cells x chains
    assert dict(df.group_by("locus").len().iter_rows()) == {"TRA": 1404, "TRB": 1548}
    top = df.row(0, named=True)
    assert (top["junction_aa"], top["v_call"], top["count"]) == ("CASSLEVGGGEETQYF",
                                                                   "TRBV7-6", 16)
    notes = " | ".join(f.problem for f in rep.findings)
    assert "881 non-productive contig(s) left out" in notes
    assert "4,004 contigs -> 3,123 productive chains of 1,556 cells -> 2,952 clonotype(s)" in notes


def test_10x_barcode_suffix_and_missing_sample(tmp_path):
    p = tmp_path / "contigs.csv"
    p.write_text("barcode,is_cell,high_confidence,chain,v_gene,j_gene,productive,cdr3\n"
                 "AAA-1,True,True,TRB,TRBV2,TRBJ1-1,True,CASSF\n"
                 "CCC-1,True,True,TRB,TRBV2,TRBJ1-1,True,CASSF\n"
                 "GGG-2,True,True,TRA,TRAV1,TRAJ3,True,CAVR\n"
                 "TTT-3,True,True,TRA,TRAV1,TRAJ3,True,CAVR\n")
    rep = ValidationReport()
    (raw,) = read_10x_vdj(p, {"barcode_suffix": {"1": "D0", "2": "D28"}}, rep)
    assert sorted(raw.frame.select("sample_id", "count").iter_rows()) == [("D0", "2"),
                                                                           ("D28", "1")]
    assert any("1 row(s) could not be given a sample_id" in f.problem for f in rep.warnings)
    with pytest.raises(StudyError, match=r"contigs\.csv: does not say which sample"):
        read_10x_vdj(p, {}, ValidationReport())


def test_airr_missing_required_column(tmp_path):
    p = tmp_path / "rearr.tsv"
    p.write_text("sequence_id\tv_call\tj_call\n1\tTRBV2\tTRBJ1-1\n")
    with pytest.raises(StudyError, match=r"rearr\.tsv: .*'junction_aa' missing"):
        read_airr(p, {"sample_id": "S"}, ValidationReport())


def test_airr_wrong_delimiter(tmp_path):
    p = tmp_path / "rearr.tsv"
    p.write_text("junction_aa,v_call,j_call\nCASSF,TRBV2,TRBJ1-1\n")
    with pytest.raises(StudyError, match=r"rearr\.tsv: .*single column"):
        read_airr(p, {"sample_id": "S"}, ValidationReport())


def test_vdj_truncated(tmp_path, shared_data):
    p = tmp_path / "cut.csv.gz"
    p.write_bytes((shared_data / VDJ).read_bytes()[:50_000])
    with pytest.raises(StudyError, match=r"cut\.csv\.gz: is not a complete gzip file"):
        read_10x_vdj(p, {"sample_id": "S"}, ValidationReport())
    text = gzip.decompress((shared_data / VDJ).read_bytes()).decode()[:3000]
    q = tmp_path / "cut.csv"
    q.write_text(text)
    with pytest.raises(StudyError, match=r"cut\.csv: ends in the middle of a row"):
        read_10x_vdj(q, {"sample_id": "S"}, ValidationReport())


def test_airr_non_numeric_count(tmp_path):
    p = tmp_path / "rearr.tsv"
    p.write_text("junction_aa\tv_call\tj_call\tproductive\tduplicate_count\n"
                 "CASSF\tTRBV2\tTRBJ1-1\tT\t4\nCASSG\tTRBV2\tTRBJ1-1\tT\tfour\n")
    rep = ValidationReport()
    (raw,) = read_airr(p, {"sample_id": "S"}, rep)
    assert raw.frame.get_column("junction_aa").to_list() == ["CASSF"]
    (err,) = rep.errors
    assert err.file == "rearr.tsv" and err.rows == (3,) and "duplicate_count" in err.problem
