"""MAF reader: the TCGA LAML file (maftools) with percent VAF and `End_position`, read counts,
and malformed files that must name the file and the problem."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from data_loaders.errors import StudyError, ValidationReport
from data_loaders.formats.maf import read_maf

LAML = "mutations/tcga_laml.maf.gz"


def test_tcga_laml(shared_data: Path):
    rep = ValidationReport()
    (raw,) = read_maf(shared_data / LAML, {}, rep)
    df = raw.frame
    assert raw.table == "mutations" and raw.delimiter == "\t"
    assert df.height == 2207 - 93            # 93 rows have no i_TumorVAF_WU
    assert df.get_column("sample_id").n_unique() == 189
    first = df.row(0, named=True)
    assert (first["sample_id"], first["gene"], first["variant"], first["classification"]) == \
        ("TCGA-AB-2988", "ABCA10", "p.K960R", "Splice_Site")
    assert float(first["vaf"]) == pytest.approx(0.4566)     # i_TumorVAF_WU 45.66 (percent)
    assert df.get_column("vaf").cast(pl.Float64).max() <= 1
    # two TET2 insertions of TCGA-AB-2865 share "p.K1422fs": told apart by position
    tet2 = df.filter((pl.col("sample_id") == "TCGA-AB-2865") & (pl.col("gene") == "TET2"))
    assert {"p.K1422fs (4:106193801 ->AT)", "p.K1422fs (4:106193802 ->TA)"} <= \
        set(tet2.get_column("variant"))
    notes = " | ".join(f.problem for f in rep.findings)
    assert "2,207 variants of 193 samples; VAF from i_TumorVAF_WU (percent / 100)" in notes
    warn = next(f for f in rep.warnings if "without a VAF" in f.problem)
    assert warn.n_rows == 93


def test_classification_filter_is_reported(shared_data: Path):
    rep = ValidationReport()
    (raw,) = read_maf(shared_data / LAML, {"classifications": ["Missense_Mutation"]}, rep)
    assert set(raw.frame.get_column("classification")) == {"Missense_Mutation"}
    assert any("Silent 449" in f.problem for f in rep.findings)


def test_read_counts_and_version_line(tmp_path):
    p = tmp_path / "x.maf"
    p.write_text("#version 2.4\nHugo_Symbol\tTumor_Sample_Barcode\tHGVSp_Short\tt_alt_count\t"
                 "t_depth\tVariant_Classification\tChromosome\tStart_Position\t"
                 "Reference_Allele\tTumor_Seq_Allele2\n"
                 "DNMT3A\tS1\tp.R882H\t30\t100\tMissense_Mutation\t2\t25457242\tC\tT\n"
                 "PIGA\tS1\t.\t5\t50\tIntron\tX\t15337000\tA\tG\n")
    rep = ValidationReport()
    (raw,) = read_maf(p, {}, rep)
    assert raw.frame.get_column("vaf").to_list() == ["0.3", "0.1"]
    assert raw.frame.get_column("variant").to_list() == ["p.R882H", "X:15337000 A>G"]
    assert raw.frame.get_column("depth").to_list() == ["100", "50"]
    assert raw.frame.get_column("_row").to_list() == [3, 4]


def test_missing_required_column(tmp_path):
    p = tmp_path / "x.maf"
    p.write_text("Hugo_Symbol\tt_alt_count\tt_depth\nDNMT3A\t3\t10\n")
    with pytest.raises(StudyError, match=r"x\.maf: .*'Tumor_Sample_Barcode' missing"):
        read_maf(p, {}, ValidationReport())


def test_no_vaf(tmp_path):
    p = tmp_path / "x.maf"
    p.write_text("Hugo_Symbol\tTumor_Sample_Barcode\nDNMT3A\tS1\n")
    with pytest.raises(StudyError, match=r"x\.maf: has no variant allele fraction"):
        read_maf(p, {}, ValidationReport())


def test_wrong_delimiter(tmp_path):
    p = tmp_path / "x.maf"
    p.write_text("Hugo_Symbol,Tumor_Sample_Barcode,t_alt_count,t_depth\nDNMT3A,S1,3,10\n")
    with pytest.raises(StudyError, match=r"x\.maf: .*single column"):
        read_maf(p, {}, ValidationReport())


def test_truncated_gzip(tmp_path, shared_data):
    p = tmp_path / "cut.maf.gz"
    p.write_bytes((shared_data / LAML).read_bytes()[:20_000])
    with pytest.raises(StudyError, match=r"cut\.maf\.gz: is not a complete gzip file"):
        read_maf(p, {}, ValidationReport())


def test_truncated_text(tmp_path, shared_data):
    text = gzip.decompress((shared_data / LAML).read_bytes()).decode()
    p = tmp_path / "cut.maf"
    p.write_text(text[:5000])
    with pytest.raises(StudyError, match=r"cut\.maf: ends in the middle of a row"):
        read_maf(p, {}, ValidationReport())


def test_non_numeric_counts(tmp_path):
    p = tmp_path / "x.maf"
    p.write_text("Hugo_Symbol\tTumor_Sample_Barcode\tt_alt_count\tt_depth\n"
                 "DNMT3A\tS1\t3\t10\nTET2\tS1\tmany\t10\n")
    rep = ValidationReport()
    (raw,) = read_maf(p, {}, rep)
    assert raw.frame.height == 1
    (err,) = rep.errors
    assert err.file == "x.maf" and err.rows == (3,) and "t_alt_count is not a number" in \
        err.problem
