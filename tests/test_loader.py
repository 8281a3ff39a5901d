"""Loader and validation: each problem is reported with file, row and column, and the good rows
and other tables still load."""

from __future__ import annotations

import polars as pl
import pytest

from data_loaders import StudyError, load_study

MEAS_HEADER = "subject_id,day,analyte,value,unit\n"


def _finding(study, problem_part: str):
    hits = [f for f in study.report.findings if problem_part in f.problem]
    assert hits, f"no finding with {problem_part!r}: {[f.message for f in study.report.findings]}"
    return hits[0]


def test_clean_study_loads_with_canonical_names_and_units(write_study):
    folder = write_study(measurements=MEAS_HEADER + "P1,0,NEUT,0.4,10^9/L\nP1,7,HGB,8.5,g/dL\n"
                         "P2,7,PLAT,15,GI/L\nP2,14,ANC,900,cells/uL\n")
    study = load_study(folder)
    assert study.report.ok, study.report.to_frame()
    m = study.measurements.sort("subject_id", "day")
    assert m.get_column("analyte").to_list() == ["ANC", "HGB", "PLT", "ANC"]
    assert m.get_column("value").to_list() == pytest.approx([0.4, 85.0, 15.0, 0.9])
    assert set(m.get_column("unit")) == {"10^9/L", "g/L"}
    assert m.get_column("panel").to_list() == ["cbc"] * 4


def test_unknown_unit_names_file_row_column_and_fix(write_study):
    folder = write_study(measurements=MEAS_HEADER + "P1,0,ANC,0.4,10^9/L\nP1,3,HGB,5,mmol/M\n")
    study = load_study(folder)
    f = _finding(study, "unit 'mmol/M' for HGB is not known")
    assert (f.file, f.rows, f.column) == ("measurements.csv", (3,), "unit")
    assert "g/L" in f.fix and "g/dL" in f.fix
    assert "measurements.csv, row 3, column 'unit'" in f.message
    # the good row still loads
    assert study.measurements.height == 1


def test_broken_measurements_leave_other_tables_loaded(write_study):
    folder = write_study(measurements="subject_id,day,analyte\nP1,0,ANC\n",
                         events="subject_id,day,category\nP1,0,infusion\n")
    study = load_study(folder)
    f = _finding(study, "required column(s)")
    assert f.file == "measurements.csv" and "'value'" in f.problem and "'unit'" in f.problem
    assert study.events.height == 1 and study.patients.height == 2
    assert not study.has("measurements")


@pytest.mark.parametrize(
    ("row", "problem", "column"),
    [
        ("P9,0,ANC,0.4,10^9/L", "subject_id 'P9' is not in the patients table", "subject_id"),
        ("P1,0,ANC,lots,10^9/L", "value is not a number", "value"),
        ("P1,0,ANC,nan,10^9/L", "not finite", "value"),
        ("P1,0,ANC,-2,10^9/L", "negative value", "value"),
        ("P1,1.5,ANC,2,10^9/L", "whole number", "day"),
        ("P1,0,XYZ,2,10^9/L", "analyte 'XYZ' is not known", "analyte"),
        ("P1,-900,ANC,2,10^9/L", "earlier than -365", "day"),
    ],
)
def test_row_problems_are_errors_with_row_and_column(write_study, row, problem, column):
    folder = write_study(measurements=MEAS_HEADER + "P2,0,ANC,0.3,10^9/L\n" + row + "\n")
    study = load_study(folder)
    f = _finding(study, problem)
    assert f.severity == "error" and f.rows == (3,) and f.column == column
    assert study.measurements.height == 1


def test_duplicates_identical_dropped_conflicting_reported(write_study):
    folder = write_study(measurements=MEAS_HEADER + "P1,0,ANC,0.4,10^9/L\nP1,0,ANC,0.4,10^9/L\n"
                         "P1,7,ANC,0.5,10^9/L\nP1,7,ANC,0.9,10^9/L\n")
    study = load_study(folder)
    dup = _finding(study, "identical duplicate")
    assert dup.severity == "warning" and dup.rows == (2, 3)
    conflict = _finding(study, "conflicting duplicates")
    assert conflict.severity == "error" and conflict.rows == (4, 5)
    assert study.measurements.height == 1


def test_day_derived_from_date_and_infusion_date(write_study):
    folder = write_study(measurements="subject_id,date,analyte,value,unit\n"
                         "P1,2025-01-17,ANC,0.4,10^9/L\nP1,2025-01-05,ANC,0.2,10^9/L\n",
                         events="subject_id,date,end_date,category,grade\n"
                         "P2,2025-02-03,2025-02-06,crs,2\n")
    study = load_study(folder)
    assert study.report.ok, study.report.to_frame()
    assert sorted(study.measurements.get_column("day").to_list()) == [-5, 7]
    ev = study.events.row(0, named=True)
    assert (ev["day"], ev["end_day"]) == (2, 5)


def test_day_not_derivable_without_infusion_date(write_study):
    folder = write_study(patients="subject_id,age\nP1,30\n",
                         measurements="subject_id,date,analyte,value,unit\n"
                         "P1,2025-01-17,ANC,0.4,10^9/L\n")
    f = _finding(load_study(folder), "cannot be derived")
    assert f.rows == (2,) and f.column == "date"


def test_unparseable_date(write_study):
    folder = write_study(measurements="subject_id,date,analyte,value,unit\n"
                         "P1,17th of January,ANC,0.4,10^9/L\n")
    f = _finding(load_study(folder), "not a date")
    assert f.rows == (2,) and f.column == "date"


def test_duplicate_patient(write_study):
    folder = write_study(patients="subject_id,age\nP1,30\nP1,31\nP2,40\n")
    study = load_study(folder)
    f = _finding(study, "duplicate patient")
    assert f.rows == (2, 3) and f.column == "subject_id"
    assert study.subject_ids == ["P2"]


def test_empty_and_header_only_files(write_study):
    folder = write_study(measurements="", events="subject_id,day,category\n")
    study = load_study(folder)
    assert _finding(study, "is empty").file == "measurements.csv"
    assert _finding(study, "no data rows").file == "events.csv"
    assert study.patients.height == 2


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [("\ufeffsubject_id,age\nP1,30\n".encode(), "utf-8-sig"),
     ("subject_id,age,prior_therapy\nP1,30,Ciclosporin Müller\n".encode("latin-1"), "latin-1")],
)
def test_encodings_are_tried_and_named(write_study, raw, encoding):
    study = load_study(write_study(**{"patients.csv": raw, "patients": None}))
    assert study.subject_ids == ["P1"]
    note = _finding(study, f"encoding {encoding}")
    assert note.severity == "note"
    if encoding == "latin-1":
        assert study.patients.get_column("prior_therapy")[0] == "Ciclosporin Müller"


def test_binary_garbage_is_reported_not_raised(write_study):
    study = load_study(write_study(measurements=b"\x00\x01\x02garbage\xff\x00"))
    assert _finding(study, "not a text file").file == "measurements.csv"


def test_semicolon_delimiter_and_decimal_comma(write_study):
    study = load_study(write_study(measurements="subject_id;day;analyte;value;unit\n"
                                   "P1;0;ANC;0,45;10^9/L\n"))
    assert study.measurements.get_column("value").to_list() == [0.45]
    assert _finding(study, "delimiter ';'").severity == "note"


def test_parquet_and_excel_inputs(write_study, tmp_path):
    folder = write_study()
    pl.DataFrame({"subject_id": ["P1"], "day": [3], "analyte": ["PLT"], "value": [12.0],
                  "unit": ["10^9/L"]}).write_parquet(folder / "measurements.parquet")
    pl.DataFrame({"subject_id": ["P2"], "day": [1], "category": ["crs"], "grade": [1]}
                 ).write_excel(folder / "events.xlsx")
    study = load_study(folder)
    assert study.report.ok, study.report.to_frame()
    assert study.measurements.row(0, named=True)["value"] == 12.0
    assert study.events.row(0, named=True)["grade"] == 1
    assert {s.format for s in study.sources} >= {"parquet", "excel"}


def test_study_toml_renames_files_and_custom_analytes(write_study):
    folder = write_study(**{
        "labs.csv": "Patient,Day,Test,Result,Units\nP1,0,MYPOP,12,%\n",
        "study.toml": '[study]\nid = "X-1"\n[tables.measurements]\nfiles = ["labs.csv"]\n'
                      'rename = { Test = "analyte" }\n'
                      '[analytes.MYPOP]\npanel = "immunophenotype"\nunit = "%"\n',
    })
    study = load_study(folder)
    assert study.study_id == "X-1" and study.report.ok, study.report.to_frame()
    row = study.measurements.row(0, named=True)
    assert (row["analyte"], row["panel"], row["value"]) == ("MYPOP", "immunophenotype", 12.0)


def test_invalid_toml_is_reported(write_study):
    study = load_study(write_study(**{"study.toml": "[study\nid="}))
    assert _finding(study, "not valid TOML").file == "study.toml"
    assert study.patients.height == 2


def test_sample_keyed_tables_check_sample_ids(write_study):
    folder = write_study(samples="sample_id,subject_id,day,assay\nS1,P1,0,proteomics\n",
                         proteomics="sample_id,feature,value\nS1,IL6,3.2\nS9,IL6,4.0\n")
    study = load_study(folder)
    f = _finding(study, "sample_id 'S9' is not in the samples table")
    assert f.rows == (3,)
    joined = study.with_samples(study.proteomics)
    assert joined.select("subject_id", "day").row(0) == ("P1", 0)


def test_mutation_vaf_as_percent_is_flagged(write_study):
    folder = write_study(samples="sample_id,subject_id,day\nS1,P1,0\n",
                         mutations="sample_id,gene,vaf\nS1,PIGA,0.12\nS1,BCOR,35\n")
    f = _finding(load_study(folder), "looks like a percentage")
    assert f.rows == (3,) and f.column == "vaf"


def test_rna_counts_wide_matrix(write_study):
    folder = write_study(samples="sample_id,subject_id,day\nS1,P1,0\nS2,P2,0\n",
                         rna_counts="gene,S1,S2,S3\nIFI27,10,200,5\nMX1,3,abc,1\n")
    study = load_study(folder)
    assert study.rna_counts.columns == ["gene", "S1"]
    assert _finding(study, "not in the samples table").column == "S3"
    assert _finding(study, "non-negative whole numbers").column == "S2"


def test_events_categories_and_products(write_study):
    folder = write_study(events="subject_id,day,category,product,grade\n"
                         "P1,3,Transfusion,Platelets,\nP1,4,party,,\nP1,5,crs,,7\n")
    study = load_study(folder)
    assert study.events.row(0, named=True)["product"] == "PLT"
    assert _finding(study, "category is not known").rows == (3,)
    assert _finding(study, "grade outside").rows == (4,)


def test_missing_folder_raises_study_error(tmp_path):
    with pytest.raises(StudyError, match="is not a study folder"):
        load_study(tmp_path / "nope")


def test_fingerprint_changes_when_a_file_changes(write_study):
    import os

    from data_loaders import fingerprint

    folder = write_study()
    before = fingerprint(folder)
    p = folder / "patients.csv"
    p.write_text(p.read_text() + "P3,20,F,2025-03-01,\n")
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    assert fingerprint(folder) != before
    assert load_study(folder).subject_ids == ["P1", "P2", "P3"]


def test_demo_study_validates_cleanly(demo_study):
    assert demo_study.report.ok, demo_study.report.to_frame().filter(
        pl.col("severity") == "error")
    for table in ("patients", "measurements", "events", "responses", "samples", "proteomics",
                  "rna_counts", "mutations", "tcr", "single_cell"):
        assert demo_study.has(table), table
    assert len(demo_study.subject_ids) == 5


def test_canonical_column_is_not_taken_for_an_alias(write_study):
    """events has its own `units` column (units transfused); the alias units -> unit must not
    rename it."""
    study = load_study(write_study(events="subject_id,day,category,product,units\n"
                                   "P1,9,transfusion,PLT,2\n"))
    assert study.report.ok, study.report.to_frame()
    assert study.events.row(0, named=True)["units"] == 2.0


def test_obs_is_read_without_the_counts_and_equals_adata_obs(demo_dir, write_study):
    import pandas as pd

    study = load_study(demo_dir)
    obs = study.obs
    assert "adata" not in study.__dict__   # obs alone did not open the AnnData
    pd.testing.assert_frame_equal(obs, study.adata.obs)
    assert load_study(write_study(patients="subject_id\nP1\n")).obs is None


def test_tissue_spelling_is_folded(write_study):
    study = load_study(write_study(measurements="subject_id,day,analyte,value,unit,tissue\n"
                                   "P1,0,ANC,0.4,10^9/L,Blood\nP1,1,ANC,0.5,10^9/L, blood\n"
                                   "P1,2,ANC,0.6,10^9/L,MARROW\n"))
    assert study.measurements.get_column("tissue").to_list() == ["blood", "blood", "marrow"]


def test_medication_class_comes_from_the_term_when_product_is_empty(write_study):
    folder = write_study(events="subject_id,day,end_day,category,term,product\n"
                         "P1,2,2,medication,Tocilizumab 8 mg/kg,\n"
                         "P1,3,5,Medication,Dexamethasone 10 mg,\n"
                         "P1,3,9,medication,Ciclosporin,\n"
                         "P1,30,90,medication,Eltrombopag 150 mg,\n"
                         "P1,20,27,medication,Piperacillin/tazobactam,\n"
                         "P1,4,4,medication,Methylprednisolone,Steroids\n"
                         "P1,5,5,medication,Paracetamol,\n"
                         "P1,6,6,medication,Anakinra,biologic\n"
                         "P1,7,7,transfusion,PLT,platelets\n")
    study = load_study(folder)
    ev = study.events.sort("day")
    assert ev.get_column("product").to_list() == [
        "tocilizumab", "corticosteroid", "ciclosporin", "corticosteroid", "other", "biologic",
        "PLT", "anti_infective", "tpo_ra"]
    f = _finding(study, "medication class (product) is not known")
    assert (f.severity, f.rows, f.column) == ("warning", (9,), "product")
    assert "tpo_ra" in f.fix
