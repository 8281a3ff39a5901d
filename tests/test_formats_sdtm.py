"""CDISC SDTM reader: the CDISC pilot (../shared/data/sdtm) mapped onto canonical tables, the
no-day-0 study-day conversion, and malformed domains that must name the file and the problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from data_loaders import load_study
from data_loaders.errors import ValidationReport
from data_loaders.formats.sdtm import read_sdtm, sdtm_day_expr, sdtm_dy_to_day

UNMAPPED = {"ANISO": 16, "BUN": 430, "CA": 430, "CHOL": 430, "CK": 428, "CL": 422, "COLOR": 210,
            "GLUC": 427, "KETONES": 210, "MACROCY": 11, "PH": 210,
            "PHOS": 429, "POLYCHR": 2, "PROT": 430, "SPGRAV": 210, "TSH": 68, "URATE": 430,
            "UROBIL": 210, "VITB12": 68}
TOML = """[study]
title = "CDISC pilot"
[[sources]]
format = "sdtm"
path = "sdtm"
options = { treatments = { XANOMELINE = "infusion" } }
"""


@pytest.fixture(scope="module")
def pilot(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("pilot")
    (root / "sdtm").mkdir()
    for name in ("dm", "ae", "ex", "lb"):
        shutil.copy(shared_data / "sdtm" / f"{name}.xpt", root / "sdtm" / f"{name}.xpt")
    (root / "study.toml").write_text(TOML)
    return load_study(root)


def _notes(study, text: str) -> list:
    return [f for f in study.report.findings if text in f.problem]


# ---- study days ------------------------------------------------------------------------------
def test_sdtm_study_days_have_no_day_zero():
    assert [sdtm_dy_to_day(d) for d in (1, 2, 15, -1, -7)] == [0, 1, 14, -1, -7]
    with pytest.raises(ValueError):
        sdtm_dy_to_day(0)
    out = pl.DataFrame({"dy": [1, -1, 29]}).select(sdtm_day_expr(pl.col("dy")))
    assert out.to_series().to_list() == [0, -1, 28]


def test_pilot_days_are_counted_from_first_exposure(pilot):
    # 01-701-1015: RFXSTDTC 2014-01-02; ALB at LBDY -7 (screening) and LBDY 15 (week 2).
    alb = pilot.measurements.filter((pl.col("subject_id") == "01-701-1015")
                                    & (pl.col("analyte") == "ALB")).sort("day")
    assert alb.get_column("day").to_list()[:2] == [-7, 14]
    pat = pilot.patients.filter(pl.col("subject_id") == "01-701-1015").row(0, named=True)
    assert str(pat["infusion_date"]) == "2014-01-02"
    assert _notes(pilot, "infusion_date taken from RFXSTDTC")


# ---- DM, LB, AE, EX on the real pilot files ----------------------------------------------------
def test_pilot_patients(pilot):
    p = pilot.patients
    assert p.height == 306
    assert set(p.get_column("sex").unique().to_list()) == {"F", "M"}
    assert p.get_column("infusion_date").null_count() == 52   # screen failures: never exposed
    death = p.filter(pl.col("subject_id") == "01-701-1211").get_column("death_day").item()
    assert death == 60                                         # 2013-01-14 - 2012-11-15
    assert p.get_column("death_day").drop_nulls().len() == 3


def test_pilot_labs_mapped_and_converted(pilot):
    m = pilot.measurements
    assert m.height == 8960   # MCH (fmol(Fe) -> pg) and MCHC (mmol/L -> g/L) included
    assert m.get_column("subject_id").n_unique() == 60
    haem = {"WBC", "ALC", "AMC", "PLT", "HGB", "RBC", "HCT", "MCV", "EOS", "BASO"}
    assert haem <= set(pilot.analytes_present("cbc"))
    units = dict(m.select("analyte", "unit").unique().iter_rows())
    assert units["HGB"] == "g/L" and units["PLT"] == "10^9/L" and units["HCT"] == "%"
    assert units["MCH"] == "pg" and units["MCHC"] == "g/L"
    # HGB arrives in mmol/L (LBSTRESN); 1 mmol/L Hb = 16.11 g/L
    import pyreadstat

    lb, _ = pyreadstat.read_xport(str(pilot.path / "sdtm" / "lb.xpt"))
    first = lb[(lb.USUBJID == "01-701-1015") & (lb.LBTESTCD == "HGB")].sort_values("LBDY")
    hgb = m.filter((pl.col("subject_id") == "01-701-1015") & (pl.col("analyte") == "HGB")
                   ).sort("day").get_column("value").to_list()[0]
    assert first.LBSTRESU.iloc[0] == "mmol/L"
    assert hgb == pytest.approx(first.LBSTRESN.iloc[0] * 16.11, rel=1e-6)
    assert _notes(pilot, "units converted")


def test_pilot_unmapped_test_codes_are_notes_with_row_counts(pilot):
    notes = [f for f in pilot.report.findings if "is not mapped to a canonical analyte" in
             f.problem]
    assert all(f.severity == "note" and f.file == "sdtm/lb.xpt" for f in notes)
    found = {f.problem.split("'")[1]: f.n_rows for f in notes}
    assert found == UNMAPPED
    assert "430 row(s) not loaded" in next(f.problem for f in notes if "'BUN'" in f.problem)
    assert not pilot.report.errors


def test_pilot_adverse_events_and_exposure(pilot):
    ev = pilot.events
    counts = dict(ev.group_by("category").len().iter_rows())
    assert counts == {"adverse_event": 816, "infection": 46, "infusion": 365}
    assert set(ev.filter(pl.col("category") != "infusion").get_column("grade")
               .unique().to_list()) == {1, 2, 3}
    assert _notes(pilot, "MILD 1, MODERATE 2, SEVERE 3")
    partial = _notes(pilot, "without a complete AESTDTC date")
    assert partial and partial[0].n_rows == 26 and partial[0].severity == "warning"
    placebo = _notes(pilot, "EXTRT 'PLACEBO' is not mapped")
    assert placebo and placebo[0].n_rows == 226
    inventory = {(s.table, s.file): s.format for s in pilot.sources}
    assert inventory[("measurements", "sdtm/lb.xpt")] == "sdtm-xpt"


# ---- small hand-written domains ----------------------------------------------------------------
DM = ("STUDYID,USUBJID,RFSTDTC,RFXSTDTC,AGE,AGEU,SEX,DTHDTC\n"
      "S,P1,2025-01-01,2025-01-06,40,YEARS,M,\n"
      "S,P2,2025-02-01,2025-02-01,55,YEARS,F,2025-03-03\n")


def _domains(tmp_path: Path, **domains: str) -> Path:
    folder = tmp_path / "sdtm"
    folder.mkdir(exist_ok=True)
    for name, text in {"dm": DM, **domains}.items():
        (folder / f"{name}.csv").write_text(text)
    return folder


def test_reference_start_not_infusion_uses_dates(tmp_path):
    # P1's reference start (RFSTDTC) is 5 days before the infusion (RFXSTDTC): dates decide.
    lb = ("USUBJID,LBTESTCD,LBSTRESN,LBSTRESU,LBDY,LBDTC\n"
          "P1,NEUT,1.5,GI/L,1,2025-01-01\n"
          "P1,NEUT,2.5,GI/L,,2025-01-08\n"
          "P1,PLAT,20,GI/L,8,\n"
          "P2,HGB,6.2,mmol/L,-1,\n")
    rep = ValidationReport()
    raws = read_sdtm(_domains(tmp_path, lb=lb), {}, rep)
    meas = next(r for r in raws if r.table == "measurements").frame
    assert meas.get_column("day").to_list() == ["-5", "2", "2", "-1"]
    assert meas.get_column("analyte").to_list() == ["ANC", "ANC", "PLT", "HGB"]
    assert any("RFSTDTC differs from the infusion date" in f.problem for f in rep.findings)


def test_infusion_date_from_ex_and_responses(tmp_path):
    ex = ("USUBJID,EXTRT,EXDOSE,EXDOSU,EXSTDTC,EXSTDY\n"
          "P1,FLUDARABINE,30,mg/m2,2025-01-01,1\n"
          "P1,CD7 CAR-T,2,10^6 cells/kg,2025-01-06,6\n"
          "P1,ONDANSETRON,8,mg,2025-01-06,6\n")
    rs = ("USUBJID,RSTESTCD,RSSTRESC,RSDTC,RSCAT\n"
          "P1,OVRLRESP,PR,2025-02-03,NIH\nP1,OVRLRESP,SD,2025-04-06,NIH\n"
          "P1,MARROW,HYPOCELLULAR,2025-04-06,NIH\n")
    ae = ("USUBJID,AEDECOD,AESEV,AETOXGR,AESTDTC,AESTDY,AEBODSYS\n"
          "P1,Cytokine release syndrome,,2,2025-01-07,,GENERAL\n"
          "P1,PNEUMONIA,SEVERE,,2025-01-20,,INFECTIONS AND INFESTATIONS\n")
    rep = ValidationReport()
    raws = read_sdtm(_domains(tmp_path, ex=ex, rs=rs, ae=ae), {"infusion_date": "EX"}, rep)
    by = {(r.table, r.file): r.frame for r in raws}
    pat = by[("patients", "dm.csv")]
    assert pat.filter(pl.col("subject_id") == "P1").get_column("infusion_date").item() == \
        "2025-01-06"
    assert pat.filter(pl.col("subject_id") == "P1").get_column("dose_per_kg").item() == "2.0"
    ev = by[("events", "ex.csv")]
    assert dict(zip(ev.get_column("category"), ev.get_column("day"), strict=True)) == \
        {"lymphodepletion": "-5", "infusion": "0"}
    assert any("EXTRT 'ONDANSETRON' is not mapped" in f.problem for f in rep.findings)
    resp = by[("responses", "rs.csv")]
    assert resp.get_column("response").to_list() == ["PR", "NR"]
    assert resp.get_column("day").to_list() == ["28", "90"]
    aes = by[("events", "ae.csv")]
    assert aes.get_column("category").to_list() == ["crs", "infection"]
    assert aes.get_column("grade").to_list() == ["2", "3"]


def test_vital_signs_and_unmapped_domain(tmp_path):
    vs = ("USUBJID,VSTESTCD,VSSTRESN,VSSTRESU,VSDY\n"
          "P2,TEMP,38.5,C,2\nP2,SYSBP,90,mmHg,2\nP2,WEIGHT,70,kg,1\n")
    folder = _domains(tmp_path, vs=vs, mh="USUBJID\nP2\n")
    rep = ValidationReport()
    meas = next(r for r in read_sdtm(folder, {}, rep) if r.table == "measurements").frame
    assert meas.get_column("analyte").to_list() == ["TEMP", "SBP"]
    assert meas.get_column("day").to_list() == ["1", "1"]
    assert meas.get_column("tissue").null_count() == 2
    text = " | ".join(f.problem for f in rep.findings)
    assert "VSTESTCD 'WEIGHT' is not mapped to a canonical analyte: 1 row(s) not loaded" in text
    assert "not read (domain not mapped): mh.csv" in text


# ---- malformed ---------------------------------------------------------------------------------
def _error(tmp_path: Path, rep: ValidationReport, **domains: str) -> str:
    from data_loaders.errors import StudyError

    try:
        read_sdtm(_domains(tmp_path, **domains), {}, rep)
    except StudyError as err:
        return str(err)
    return " | ".join(f.message for f in rep.errors)


def test_missing_required_variable(tmp_path):
    msg = _error(tmp_path, ValidationReport(), lb="USUBJID,LBTESTCD,LBSTRESN\nP1,NEUT,1\n")
    assert "lb.csv" in msg and "LBSTRESU" in msg and "missing" in msg


def test_wrong_delimiter(tmp_path):
    msg = _error(tmp_path, ValidationReport(),
                 lb="USUBJID:LBTESTCD:LBSTRESN:LBSTRESU\nP1:NEUT:1:GI/L\n")
    assert "lb.csv" in msg and "USUBJID" in msg and "missing" in msg


def test_non_numeric_result(tmp_path):
    lb = "USUBJID,LBTESTCD,LBSTRESN,LBSTRESU,LBDY\nP2,NEUT,1.2,GI/L,2\nP2,NEUT,high,GI/L,3\n"
    msg = _error(tmp_path, ValidationReport(), lb=lb)
    assert "lb.csv" in msg and "row 3" in msg and "LBSTRESN is not a number ('high')" in msg


def test_truncated_xpt(tmp_path, shared_data):
    folder = tmp_path / "cut"
    folder.mkdir()
    (folder / "dm.xpt").write_bytes((shared_data / "sdtm" / "dm.xpt").read_bytes()[:99_990])
    from data_loaders.errors import StudyError

    with pytest.raises(StudyError, match=r"dm\.xpt: .*truncated"):
        read_sdtm(folder, {}, ValidationReport())


def test_missing_dm_is_a_finding_in_the_study(tmp_path):
    (tmp_path / "sdtm").mkdir()
    (tmp_path / "sdtm" / "lb.csv").write_text("USUBJID,LBTESTCD,LBSTRESN,LBSTRESU\nP1,NEUT,1,GI/L\n")
    (tmp_path / "study.toml").write_text('[[sources]]\nformat = "sdtm"\npath = "sdtm"\n')
    study = load_study(tmp_path)
    err = [f for f in study.report.errors if "no DM domain" in f.problem]
    assert err and err[0].file == "sdtm"


def test_concomitant_medications_become_medication_events(tmp_path):
    cm = ("USUBJID,CMTRT,CMDECOD,CMCLAS,CMDOSE,CMDOSU,CMSTDY,CMENDY,CMSTDTC\n"
          "P2,ACTEMRA,TOCILIZUMAB,,8,mg/kg,3,3,\n"
          "P2,DEXAMETHASONE,DEXAMETHASONE,CORTICOSTEROIDS,10,mg,4,6,\n"
          "P2,Drug X,,ANTIBACTERIALS FOR SYSTEMIC USE,,,10,,\n"
          "P2,PROMACTA,ELTROMBOPAG,,50,mg,30,90,\n"
          "P2,PARACETAMOL,PARACETAMOL,ANALGESICS,1,g,2,2,\n"
          "P2,ACICLOVIR,ACICLOVIR,,,,,,2025-01\n")
    rep = ValidationReport()
    raws = read_sdtm(_domains(tmp_path, cm=cm), {}, rep)
    ev = next(r for r in raws if r.table == "events" and r.file == "cm.csv").frame
    assert ev.get_column("category").unique().to_list() == ["medication"]
    assert ev.get_column("term").to_list()[:2] == ["ACTEMRA 8 mg/kg", "DEXAMETHASONE 10 mg"]
    # class from CMDECOD first (ACTEMRA is a brand), then CMTRT, then CMCLAS
    assert ev.get_column("product").to_list() == ["tocilizumab", "corticosteroid",
                                                  "anti_infective", "tpo_ra", "other"]
    assert ev.get_column("day").to_list() == ["2", "3", "9", "29", "1"]
    assert ev.get_column("end_day").to_list()[:2] == ["2", "5"]
    text = " | ".join(f.problem for f in rep.findings)
    assert "1 medication record(s) of no recognised class" in text
    # the partial date (2025-01) cannot be placed in time: reported, not loaded
    assert "without a study day and without a complete CMSTDTC date" in text
