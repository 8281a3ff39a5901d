"""`cli.py import SRC --out STUDY` on files shaped like real lab exports: a workbook with two
wide sheets (Chinese headers with a units row; analyser codes with units in the headers),
dates in every form, visit labels, and the real public files (SDTM, Olink, AIRR, 10x VDJ, MAF).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from cli import main
from data_loaders import load_study
from data_loaders.importers.plan import ImportSettings, propose, write_study

# (patient, visit label, study day it stands for): W4, Day 28 and 第28天 are all day 28
VISITS = [("P03", "Screening", -14), ("P03", "Baseline", -7), ("P03", "D0", 0),
          ("P03", "D14", 14), ("P03", "Day 28", 28), ("P03", "M3", 90), ("P03", "Month 6", 180),
          ("P01", "W4", 28), ("P02", "第28天", 28)]


def _workbook(path: Path, *, extra_row: bool = False) -> None:
    wb = xlsxwriter.Workbook(path)
    cn = wb.add_worksheet("血常规")
    when = wb.add_format({"num_format": "yyyy-mm-dd"})
    cn.write_row(0, 0, ["住院号", "姓名", "采样日期", "白细胞", "中性粒细胞绝对值",
                        "中性粒细胞百分比", "血红蛋白", "血小板计数", "网织红细胞", "备注"])
    cn.write_row(1, 0, ["", "", "", "10^9/L", "10^9/L", "%", "g/L", "10^9/L", "10^9/L", ""])
    cn.write_row(2, 0, ["P01", "张三"])
    cn.write_datetime(2, 2, dt.datetime(2025, 1, 3, 8, 30), when)      # a datetime cell
    cn.write_row(2, 3, [3.1, 1.2, 40, 85, 12, 15, "复查"])
    cn.write_row(3, 0, ["P01", "张三", "2025/01/10", 2.0, "<0.1", 5, 80, "8↓", 10])
    cn.write_row(4, 0, ["P02", "李四"])
    cn.write_number(4, 2, 45672)                                       # an Excel serial number
    cn.write_row(4, 3, [4.0, 2.2, 55, 110, 150, 30])
    if extra_row:
        cn.write_row(5, 0, ["P02", "李四", "2025-02-12", 5.0, 2.5, 50, 115, 160, 40])
    sx = wb.add_worksheet("Sysmex")
    sx.write_row(0, 0, ["Patient ID", "Date", "NEUT#", "NEUT%", "LYMPH# [10^9/L]", "RET#",
                        "RET%", "HGB (g/dL)", "PLT [10^9/L]"])
    sx.write_row(1, 0, ["P01", "17.01.2025", 0.4, 20, 0.3, 0.011, 0.5, 7.9, 15])
    sx.write_row(2, 0, ["P02", "29.01.2025", 1.8, 60, 0.9, 0.045, 1.2, 10.2, 98])
    wb.close()


def make_export(root: Path, *, extra_row: bool = False) -> Path:
    src = root / "export"
    src.mkdir(parents=True)
    _workbook(src / "labs.xlsx", extra_row=extra_row)
    (src / "patients.csv").write_text(
        "patient_id,age,sex,infusion_date\nP01,34,M,03/01/2025\nP02,51,F,15/01/2025\n"
        "P03,47,F,25/01/2025\n", encoding="utf-8")
    rows = ["Subject,Visit,CRP (mg/L),IL-6 [pg/mL]"]
    rows += [f"{p},{v},{i + 1},{10 * (i + 1)}" for i, (p, v, _) in enumerate(VISITS)]
    (src / "cytokines.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (src / "README.md").write_text("export notes\n", encoding="utf-8")
    return src


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return make_export(tmp_path)


def test_import_writes_a_study_that_validates(export, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["import", str(export), "--out", str(out)]) == 0, capsys.readouterr()
    printed = capsys.readouterr().out
    assert "labs.xlsx#血常规: measurements (wide)" in printed
    assert "中性粒细胞百分比" in printed and "-> NEUT_PCT [%]" in printed
    assert "'姓名' identifies a person: left out" in printed
    assert main(["validate", str(out)]) == 0
    study = load_study(out)
    assert not study.report.errors
    m = study.measurements

    def value(subject: str, day: int, analyte: str) -> float:
        hit = m.filter((pl.col("subject_id") == subject) & (pl.col("day") == day)
                       & (pl.col("analyte") == analyte))
        assert hit.height == 1, (subject, day, analyte, hit)
        return hit.get_column("value").item()

    # 血常规: datetime cell, YYYY/MM/DD text and an Excel serial, days from infusion_date
    assert value("P01", 0, "WBC") == 3.1 and value("P01", 7, "PLT") == 8   # "8↓"
    assert value("P01", 7, "ANC") == 0 and m.filter(
        (pl.col("analyte") == "ANC") & (pl.col("day") == 7)).get_column("lloq").item() == 0.1
    assert value("P02", 0, "RETIC") == 30 and value("P02", 0, "NEUT_PCT") == 55
    # Sysmex: DD.MM.YYYY, codes, g/dL converted through the unit table
    assert value("P01", 14, "ANC") == 0.4 and value("P01", 14, "NEUT_PCT") == 20
    assert value("P01", 14, "HGB") == pytest.approx(79.0)
    assert value("P02", 14, "RETIC") == 0.045 and value("P02", 14, "RETIC_PCT") == 1.2
    assert value("P02", 14, "ALC") == 0.9
    # cytokines: visit labels through the timepoint map
    crp = m.filter(pl.col("analyte") == "CRP")
    assert sorted(crp.select("subject_id", "visit", "day").iter_rows()) == sorted(VISITS)
    # every valid cell is there: 3 rows x 6 analytes + 2 x 7 + 9 x 2
    assert m.height == 18 + 14 + 18
    units = dict(m.select("analyte", "unit").unique().iter_rows())
    assert units["HGB"] == "g/L" and units["NEUT_PCT"] == "%" and units["ANC"] == "10^9/L"
    assert study.patients.get_column("infusion_date").to_list() == [
        dt.date(2025, 1, 3), dt.date(2025, 1, 15), dt.date(2025, 1, 25)]
    toml = (out / "study.toml").read_text(encoding="utf-8")
    assert '"第28天" = 28' in toml and "day_first = true" in toml
    assert not any(p.name == "README.md" for p in (out / "sources").rglob("*"))


def test_dry_run_writes_nothing(export, tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["import", str(export), "--out", str(out), "--dry-run"]) == 0
    assert "dry run: nothing written" in capsys.readouterr().out
    assert not out.exists()


def test_an_existing_study_is_never_overwritten(export, tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.toml").write_text("[study]\ntitle = 'mine'\n", encoding="utf-8")
    assert main(["import", str(export), "--out", str(out)]) == 2
    assert "never overwrites" in capsys.readouterr().err
    assert (out / "study.toml").read_text(encoding="utf-8") == "[study]\ntitle = 'mine'\n"
    with pytest.raises(Exception, match="never overwrites"):
        write_study(propose(export), out)


def test_same_export_same_study_and_a_new_export_keeps_the_mapping(tmp_path, capsys):
    first = make_export(tmp_path / "a")
    assert main(["import", str(first), "--out", str(tmp_path / "s1")]) == 0
    assert main(["import", str(first), "--out", str(tmp_path / "s2")]) == 0
    t1 = (tmp_path / "s1" / "study.toml").read_text(encoding="utf-8")
    assert t1.replace("s1", "X") == (tmp_path / "s2" / "study.toml").read_text(
        encoding="utf-8").replace("s2", "X")
    newer = make_export(tmp_path / "b", extra_row=True)
    assert main(["import", str(newer), "--out", str(tmp_path / "s3"),
                 "--mapping", str(tmp_path / "s1")]) == 0
    old, new = load_study(tmp_path / "s1"), load_study(tmp_path / "s3")
    assert new.measurements.height == old.measurements.height + 6    # the new row's cells
    key = ["subject_id", "day", "analyte", "value", "unit"]
    assert old.measurements.select(key).join(new.measurements.select(key), on=key,
                                             how="anti").height == 0
    assert (tmp_path / "s3" / "study.toml").read_text(encoding="utf-8").replace("s3", "X") \
        == t1.replace("s1", "X")


def _ambiguous(src: Path) -> None:
    (src / "labs.csv").write_text("patient,date,ANC,PLT\nP1,03/01/2025,0.4,12\n"
                                  "P1,04/01/2025,0.6,15\n", encoding="utf-8")
    (src / "pts.csv").write_text("patient,infusion_date,sex\nP1,2025-01-02,M\n",
                                 encoding="utf-8")


def test_an_ambiguous_date_order_is_asked_not_guessed(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    _ambiguous(src)
    assert main(["import", str(src), "--out", str(tmp_path / "s")]) == 2
    captured = capsys.readouterr()
    assert "QUESTION" in captured.out and "--day-first" in captured.out
    assert not (tmp_path / "s").exists()
    assert main(["import", str(src), "--out", str(tmp_path / "s"), "--day-first"]) == 0
    assert load_study(tmp_path / "s").measurements.get_column("day").unique().sort().to_list() \
        == [1, 2]
    assert main(["import", str(src), "--out", str(tmp_path / "m"), "--month-first"]) == 0
    assert load_study(tmp_path / "m").measurements.get_column("day").unique().sort().to_list() \
        == [58, 89]


def test_an_analyte_it_cannot_place_is_asked_with_a_suggestion(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "labs.csv").write_text("patient,day,Neutrofile,PLT,HSC score\nP1,0,0.4,12,3\n"
                                  "P1,7,0.6,15,4\n", encoding="utf-8")
    assert main(["import", str(src), "--out", str(tmp_path / "s")]) == 2
    out = capsys.readouterr().out
    assert "column 'Neutrofile' holds numbers but names no known analyte" in out
    assert "closest: ANC" in out
    assert main(["import", str(src), "--out", str(tmp_path / "s"), "--analyte",
                 "Neutrofile=ANC", "--analyte", "HSC score=skip"]) == 0
    m = load_study(tmp_path / "s").measurements
    assert sorted(m.get_column("analyte").unique().to_list()) == ["ANC", "PLT"]
    toml = (tmp_path / "s" / "study.toml").read_text(encoding="utf-8")
    assert 'Neutrofile = "ANC"' in toml and '"HSC score" = "skip"' in toml


def test_a_percentage_column_is_never_an_absolute_count(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "labs.csv").write_text("patient,day,NEUT (%),PLT (%)\nP1,0,40,12\n",
                                  encoding="utf-8")
    assert main(["import", str(src), "--out", str(tmp_path / "s")]) == 2
    out = capsys.readouterr().out
    assert "NEUT (%)" in out and "-> NEUT_PCT" in out
    assert "'PLT (%)' holds numbers but names no known analyte (a percentage cannot be PLT" \
        in out


def test_a_bad_cell_loses_only_itself(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "labs.csv").write_text("patient,day,ANC,PLT,HGB\nP1,0,0.4,abc,80\nP1,7,-1,15,82\n"
                                  "P1,7,0.5,15,82\n", encoding="utf-8")
    study = write_study(propose(src), tmp_path / "s")
    m = study.measurements
    got = sorted(m.select("day", "analyte", "value").iter_rows())
    assert got == [(0, "ANC", 0.4), (0, "HGB", 80.0), (7, "ANC", 0.5), (7, "HGB", 82.0),
                   (7, "PLT", 15.0)]
    errors = {f.column: f for f in study.report.errors}
    assert errors["PLT"].rows == (2,) and "'abc'" in errors["PLT"].problem
    assert errors["ANC"].rows == (3,) and "negative" in errors["ANC"].problem


def test_unknown_visit_label_is_asked(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "labs.csv").write_text("patient,visit,ANC\nP1,D0,0.4\nP1,EOT,1.5\n",
                                  encoding="utf-8")
    assert main(["import", str(src), "--out", str(tmp_path / "s")]) == 2
    assert "--timepoint \"EOT=DAY\"" in capsys.readouterr().out
    assert main(["import", str(src), "--out", str(tmp_path / "s"), "--timepoint",
                 "EOT=180"]) == 0
    assert sorted(load_study(tmp_path / "s").measurements.get_column("day").to_list()) == [0, 180]


def test_header_below_title_rows_and_a_single_file(tmp_path):
    path = tmp_path / "report.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet()
    ws.write(0, 0, "血常规检验报告 (2025)")
    ws.write_row(2, 0, ["患者编号", "访视", "WBC", "PLT"])
    ws.write_row(3, 0, ["P1", "D0", 2.5, 30])
    ws.write_row(4, 0, ["P1", "D7", 3.5, 40])
    wb.close()
    prop = propose(path)
    assert prop.ready, prop.questions
    study = write_study(prop, tmp_path / "s")
    assert not study.report.errors
    assert study.measurements.filter(pl.col("analyte") == "PLT").sort("day") \
        .get_column("value").to_list() == [30, 40]


# ---- real public files ----------------------------------------------------------------------
def test_real_files_become_one_study(shared_data, tmp_path, capsys):
    src = tmp_path / "export"
    (src / "sdtm").mkdir(parents=True)
    for name in ("dm", "lb", "ae", "ex"):
        shutil.copy(shared_data / "sdtm" / f"{name}.xpt", src / "sdtm" / f"{name}.xpt")
    shutil.copy(shared_data / "mutations" / "tcga_laml.maf.gz", src)
    shutil.copy(shared_data / "tcr" / "airr_good_rearrangement.tsv", src)
    vdj = "vdj_nextgem_hs_pbmc3_t_filtered_contig_annotations.csv.gz"
    shutil.copy(shared_data / "tcr" / vdj, src)
    shutil.copy(shared_data / "proteomics" / "npx_data_long_csv_first133rows.csv", src)
    maf = pl.read_csv(shared_data / "mutations" / "tcga_laml.maf.gz", separator="\t")
    barcodes = maf.get_column("Tumor_Sample_Barcode").unique().sort().to_list()
    npx = ["S01", "S02", "CONTROL_SAMPLE_P1_A12", "CONTROL_SAMPLE_P1_B12"]
    ids = [*barcodes, "airr_good_rearrangement", vdj.split(".")[0], *npx]
    subjects = ["01-701-1015", "01-701-1023"]
    pl.DataFrame({"sample_id": ids, "subject_id": [subjects[i % 2] for i in range(len(ids))],
                  "day": [28] * len(ids)}).write_csv(src / "samples.csv")
    out = tmp_path / "study"
    assert main(["import", str(src), "--out", str(out),
                 "--option", "olink.control_sample_types=[]",
                 "--option", "olink.control_pattern=''"]) == 0, capsys.readouterr().out[-3000:]
    printed = capsys.readouterr().out
    for kind in ("sdtm", "maf", "airr", "10x_vdj", "olink", "samples (long)"):
        assert f": {kind}" in printed, kind
    assert main(["validate", str(out)]) == 0
    study = load_study(out)
    assert study.patients.height == 306
    assert study.measurements.height == 8960
    assert study.mutations.height == 2114
    assert study.tcr.get_column("sample_id").n_unique() == 2
    assert study.proteomics.height == 133


def test_single_cell_files_go_through_the_single_cell_proposal(shared_data, tmp_path, capsys):
    out = tmp_path / "h5mu"
    assert main(["import", str(shared_data / "scrna_tcr" / "wu2020_200.h5mu"),
                 "--out", str(out)]) == 0
    assert "single-cell: sources/wu2020_200.h5mu" in capsys.readouterr().out
    assert main(["validate", str(out)]) == 0
    assert load_study(out).single_cell_file.name == "wu2020_200.h5mu"

    tenx = shared_data / "10x" / "filtered_feature_bc_matrix"
    assert main(["import", str(tenx), "--out", str(tmp_path / "x")]) == 2   # which sample?
    assert "--single-cell" in capsys.readouterr().out
    assert not (tmp_path / "x").exists()
    assert main(["import", str(tenx), "--out", str(tmp_path / "x"), "--single-cell",
                 "sample_id=S1", "--single-cell", "subject_id=P1", "--single-cell",
                 "day=0"]) == 0
    assert main(["validate", str(tmp_path / "x")]) == 0
    toml = (tmp_path / "x" / "study.toml").read_text(encoding="utf-8")
    assert 'file = "sources/filtered_feature_bc_matrix"' in toml and "day = 0" in toml


def test_single_cell_findings_become_questions_or_notes(tmp_path, monkeypatch):
    import sys
    import types

    fake = types.ModuleType("data_loaders.importers.single_cell")
    fake.propose_single_cell = lambda path: {
        "file": path.name, "obs": {"subject_id": "donor_id"},
        "findings": [{"severity": "note", "message": "X holds scaled values"},
                     {"severity": "error", "message": "no time column", "fix": "give day"}]}
    monkeypatch.setitem(sys.modules, "data_loaders.importers.single_cell", fake)
    src = tmp_path / "src"
    src.mkdir()
    (src / "cells.h5ad").write_bytes(b"not read by the fake")
    prop = propose(src)
    assert prop.questions == ["cells.h5ad: no time column; give day; give it with "
                              "--single-cell KEY=VALUE"]
    assert "X holds scaled values" in prop.items[0].notes
    answered = propose(src, ImportSettings(single_cell=(("day", 0),)))
    assert answered.ready
    assert answered.single_cell == {"file": "sources/cells.h5ad",
                                    "obs": {"subject_id": "donor_id"}, "day": 0}


def test_long_sheet_notes_sheet_units_and_row_numbers(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    wb = xlsxwriter.Workbook(src / "lis.xlsx")
    notes = wb.add_worksheet("说明")
    notes.write(0, 0, "Exported from the hospital LIS; values as reported.")
    long = wb.add_worksheet("results")
    long.write(3, 0, "Laboratory results")                    # title below empty rows
    long.write_row(5, 0, ["患者编号", "检验日期", "项目", "结果", "单位"])
    long.write_row(6, 0, ["P1", "2025-01-05", "NEUT", "40", "%"])
    long.write_row(7, 0, ["P1", "2025-01-05", "NEUT#", "0.4", "10^9/L"])
    long.write_row(8, 0, ["P1", "2025-01-05", "HGB", "abc", "g/L"])
    wb.close()
    (src / "patients.csv").write_text("患者编号,性别,回输日期\nP1,男,2025-01-05\n",
                                      encoding="utf-8")
    (src / "samples.csv").write_text("sample_id,patient,timepoint\nS1,P1,D28\n",
                                     encoding="utf-8")
    # written, but validation reports the bad HGB row (exit 1)
    assert main(["import", str(src), "--out", str(tmp_path / "s")]) == 1, capsys.readouterr()
    printed = capsys.readouterr().out
    assert "lis.xlsx#说明: left out" in printed
    study = load_study(tmp_path / "s")
    m = study.measurements
    assert sorted(m.select("analyte", "value", "unit").iter_rows()) == [
        ("ANC", 0.4, "10^9/L"), ("NEUT_PCT", 40.0, "%")]
    bad = next(f for f in study.report.errors if f.column == "value")
    assert bad.rows == (9,)                                       # the spreadsheet row
    assert study.patients.get_column("sex").to_list() == ["M"]
    assert study.samples.select("day", "timepoint").row(0) == (28, "D28")

    (src / "extra.csv").write_text("patient,day,PLT (g/L)\nP1,0,12\n", encoding="utf-8")
    assert main(["import", str(src), "--out", str(tmp_path / "t")]) == 2
    assert "has unit 'g/L', which the unit table cannot convert to 10^9/L" in \
        capsys.readouterr().out


def test_events_responses_and_omics_sheets(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "patients.csv").write_text("subject,infusion_date\nP1,2025-01-10\nP2,2025-01-20\n",
                                      encoding="utf-8")
    (src / "events.csv").write_text(
        "subject,category,term,grade,start_date,stop_date\n"
        "P1,crs,Cytokine release syndrome,2,11/01/2025,14/01/2025\n"
        "P2,transfusion,Platelets,,25/01/2025,\n", encoding="utf-8")
    (src / "responses.csv").write_text("subject,visit,response\nP1,M3,complete response\n"
                                       "P2,Month 6,PR\n", encoding="utf-8")
    (src / "samples.csv").write_text("sample_id,subject,day\nS1,P1,28\nS2,P2,28\n",
                                     encoding="utf-8")
    (src / "counts.csv").write_text("gene,S1,S2\nCD3E,10,12\nGNLY,0,4\n", encoding="utf-8")
    prop = propose(src)
    assert prop.ready, prop.questions
    kinds = {d.path: d.table for d in prop.items}
    assert kinds == {"patients.csv": "patients", "events.csv": "events",
                     "responses.csv": "responses", "samples.csv": "samples",
                     "counts.csv": "rna_counts"}
    study = write_study(prop, tmp_path / "s")
    assert not study.report.errors, [f.message for f in study.report.errors]
    ev = study.events.sort("subject_id")
    assert ev.select("category", "day", "end_day").rows() == [("crs", 1, 4),
                                                             ("transfusion", 5, None)]
    assert study.responses.sort("subject_id").select("day", "response").rows() == [
        (90, "CR"), (180, "PR")]
    assert study.has("rna_counts")


def test_a_new_export_without_a_sheet_or_column_says_what_is_missing(tmp_path):
    src = make_export(tmp_path)
    study = tmp_path / "s"
    write_study(propose(src), study)
    wb = xlsxwriter.Workbook(study / "sources" / "labs.xlsx.new")
    ws = wb.add_worksheet("Sysmex")
    ws.write_row(0, 0, ["Patient ID", "Date", "NEUT#"])
    ws.write_row(1, 0, ["P01", "17.01.2025", 0.5])
    wb.close()
    (study / "sources" / "labs.xlsx").unlink()
    (study / "sources" / "labs.xlsx.new").rename(study / "sources" / "labs.xlsx")
    again = load_study(study)
    problems = " | ".join(f.message for f in again.report.findings)
    assert "has no worksheet '血常规' (sheets: Sysmex)" in problems
    assert "analyte column(s) named in study.toml are not in this export" in problems
    anc = again.measurements.filter(pl.col("analyte") == "ANC")
    assert anc.get_column("value").to_list() == [0.5]               # what is there still loads


def test_a_chinese_windows_csv_with_a_title_line(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    text = ("血常规检验结果\n住院号,采样日期,白细胞,血小板计数,备注\n"
            "P1,2025-01-05,3.2,45,镕\nP1,2025-01-12,4.1,80,\n")
    (src / "lis.csv").write_bytes(text.encode("gb18030"))
    (src / "patients.csv").write_bytes("住院号,性别,回输日期\nP1,女,2025-01-05\n".encode("gbk"))
    (src / "euro.csv").write_bytes("patient,day,Müller score\nP1,0,1\n".encode("latin-1"))
    prop = propose(src, ImportSettings(tables=(("euro.csv", "skip"),)))
    assert prop.ready, prop.questions
    study = write_study(prop, tmp_path / "s")
    assert not study.report.errors, [f.message for f in study.report.errors]
    m = study.measurements.sort("day", "analyte")
    assert m.select("day", "analyte", "value").rows() == [
        (0, "PLT", 45.0), (0, "WBC", 3.2), (7, "PLT", 80.0), (7, "WBC", 4.1)]
    assert study.patients.get_column("sex").to_list() == ["F"]
    from data_loaders.importers.sheet import decode_export

    assert decode_export("Müller".encode("latin-1"), "x")[1] == "latin-1"
    assert decode_export("血小板".encode("gb18030"), "x") == ("血小板", "gb18030")


def test_generic_omics_tables(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "patients.csv").write_text("subject_id,sex\nP1,F\n", encoding="utf-8")
    (src / "samples.csv").write_text("sample_id,subject,timepoint\nS1,P1,Baseline\n",
                                     encoding="utf-8")
    (src / "npx.csv").write_text("sample_id,protein,value\nS1,IL6,3.2\nS1,CXCL10,5.1\n",
                                 encoding="utf-8")
    (src / "variants.csv").write_text("sample_id,gene,vaf\nS1,PIGA,0.12\n", encoding="utf-8")
    (src / "clones.csv").write_text("sample_id,cdr3,count\nS1,CASSLGQAYEQYF,12\n",
                                    encoding="utf-8")
    prop = propose(src)
    assert {d.path: d.table for d in prop.items} == {
        "patients.csv": "patients", "samples.csv": "samples", "npx.csv": "proteomics",
        "variants.csv": "mutations", "clones.csv": "tcr"}
    study = write_study(prop, tmp_path / "s")
    assert not study.report.errors, [f.message for f in study.report.errors]
    assert study.samples.select("day", "timepoint").row(0) == (-7, "Baseline")
    assert (study.proteomics.height, study.mutations.height, study.tcr.height) == (2, 1, 1)
