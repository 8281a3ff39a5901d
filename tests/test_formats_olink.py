"""Olink NPX long reader: the real Olink Analyze export (semicolon-separated), controls, LOD
flags, QC warnings, and malformed files that must name the file and the problem."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from data_loaders.errors import StudyError, ValidationReport
from data_loaders.formats.olink import read_olink

NPX = "proteomics/npx_data_long_csv_first133rows.csv"
KEEP_S = {"control_sample_types": [], "control_pattern": "^CONTROL_SAMPLE"}


def test_real_npx_file_controls_by_id(shared_data: Path):
    rep = ValidationReport()
    (raw,) = read_olink(shared_data / NPX, KEEP_S, rep)
    df = raw.frame
    assert raw.table == "proteomics" and raw.delimiter == ";" and raw.format == "olink"
    assert df.height == 68
    assert set(df.get_column("sample_id")) == {"S01", "S02"}
    assert {"sample_id", "feature", "value", "uniprot", "lod", "panel", "qc_warning",
            "below_lod"} <= set(df.columns)
    assert df.filter(pl.col("below_lod") == "true").height == 7
    assert df.get_column("panel").n_unique() == 8
    first = df.row(0, named=True)
    assert (first["feature"], first["uniprot"], first["value"], first["_row"]) == \
        ("DYNC1H1", "Q14204", "-3.9891", 2)
    notes = " | ".join(f.problem for f in rep.findings)
    assert "2 control sample(s) left out (65 rows" in notes
    assert "7 of 68 NPX values are below the assay LOD" in notes
    assert "4 value(s) carry a QC warning" in notes


def test_real_npx_file_default_excludes_controls(shared_data: Path):
    rep = ValidationReport()
    (raw,) = read_olink(shared_data / NPX, {}, rep)
    assert raw.frame.height == 0           # in these first rows every Sample_Type is CONTROL
    assert any("4 control sample(s) left out (133 rows" in f.problem for f in rep.findings)
    assert any("all 133 rows are control samples" in f.problem for f in rep.errors)


def test_comma_file_with_assay_warning_and_na(tmp_path):
    p = tmp_path / "npx.csv"
    p.write_text("SampleID,OlinkID,UniProt,Assay,Panel,LOD,NPX,QC_Warning,Assay_Warning\n"
                 "A1,OID1,P05231,IL6,Inflammation,1.2,3.5,PASS,WARN\n"
                 "A1,OID2,P01375,TNF,Inflammation,0.5,NA,PASS,PASS\n"
                 "Neg Ctrl,OID1,P05231,IL6,Inflammation,1.2,0.1,PASS,PASS\n")
    rep = ValidationReport()
    (raw,) = read_olink(p, {}, rep)
    assert raw.frame.get_column("qc_warning").to_list() == ["PASS (assay WARN)"]
    assert raw.delimiter == ","
    assert any("without an NPX value (NA)" in f.problem for f in rep.findings)
    assert any("Neg Ctrl" in f.problem for f in rep.findings)


HEADER = "SampleID;OlinkID;UniProt;Assay;Panel;LOD;NPX;QC_Warning\n"


def test_missing_required_column(tmp_path):
    p = tmp_path / "npx.csv"
    p.write_text("SampleID;OlinkID;Assay;Panel\nA1;OID1;IL6;Inflammation\n")
    with pytest.raises(StudyError, match=r"npx\.csv: .*'NPX' missing"):
        read_olink(p, {}, ValidationReport())


def test_wrong_delimiter(tmp_path):
    p = tmp_path / "npx.csv"
    p.write_text(HEADER.replace(";", "|") + "A1|OID1|P05231|IL6|Inflammation|1.2|3.5|PASS\n")
    with pytest.raises(StudyError, match=r"npx\.csv: .*single column"):
        read_olink(p, {}, ValidationReport())


def test_truncated_file(tmp_path):
    p = tmp_path / "npx.csv"
    p.write_text(HEADER + "A1;OID1;P05231;IL6;Inflammation;1.2;3.5;PASS\nA2;OID1;P052")
    with pytest.raises(StudyError, match=r"npx\.csv: ends in the middle of a row \(row 3"):
        read_olink(p, {}, ValidationReport())


def test_non_numeric_npx(tmp_path):
    p = tmp_path / "npx.csv"
    p.write_text(HEADER + "A1;OID1;P05231;IL6;Inflammation;1.2;3,5;PASS\n"
                 "A2;OID1;P05231;IL6;Inflammation;1.2;high;PASS\n")
    rep = ValidationReport()
    (raw,) = read_olink(p, {}, rep)
    assert raw.frame.get_column("value").to_list() == ["3.5"]   # decimal comma accepted
    (err,) = rep.errors
    assert err.file == "npx.csv" and err.rows == (3,) and "NPX is not a number" in err.problem
