"""The bad-input corpus (tests/bad_inputs/cases.toml): every broken or unusual file is reported
with file, row, column and what to do; the good tables beside it still load; `cli.py validate`
exits non-zero exactly for the broken ones and never prints a traceback; the Data & quality page
renders."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import polars as pl
import pytest

import cli
from components.export import csv_bytes
from data_loaders import load_study
from tests.conftest import package_env

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
CASES = tomllib.loads((CORPUS / "cases.toml").read_text(encoding="utf-8"))["case"]
ROOT = Path(__file__).resolve().parent.parent

# A small study in which every table is good; each case swaps one file for a corpus file.
GOOD = {
    "patients.csv": "subject_id,age,sex,infusion_date,death_day\nP1,34,M,2025-01-10,\n"
                    "P2,51,F,2025-02-01,\nP3,45,F,2025-03-01,100\n",
    "measurements.csv": "subject_id,day,analyte,value,unit\nP1,0,ANC,0.4,10^9/L\n"
                        "P1,7,ANC,0.9,10^9/L\nP1,7,HGB,85,g/L\nP2,0,PLT,15,10^9/L\n"
                        "P2,14,ANC,1.2,10^9/L\nP3,7,IL6,120,pg/mL\n"
                        "P3,28,CAR_QPCR,15000,copies/ug gDNA\n",
    "events.csv": "subject_id,day,category,term,grade,product,units\nP1,0,infusion,CAR-T,,,\n"
                  "P1,3,crs,CRS,1,,\nP2,5,transfusion,,,PLT,1\nP3,10,icans,ICANS,2,,\n",
    "responses.csv": "subject_id,day,response\nP1,28,PR\nP2,28,NR\nP3,90,CR\n",
    "samples.csv": "sample_id,subject_id,day,timepoint,tissue,assay\n"
                   "S1,P1,-7,baseline,blood,rnaseq\nS2,P1,28,D28,blood,rnaseq\n"
                   "S3,P2,-7,baseline,marrow,rnaseq\nS4,P3,28,D28,blood,rnaseq\n",
    "proteomics.csv": "sample_id,feature,value\nS1,IL6,3.2\nS2,IL6,4.1\nS3,IFNG,2.0\n",
    "mutations.csv": "sample_id,gene,vaf,depth\nS1,PIGA,0.12,300\nS3,BCOR,0.05,250\n",
    "tcr.csv": "sample_id,junction_aa,count,productive\nS1,CASSLGQAYEQYF,12,true\n"
               "S2,CASSPDRGNTEAFF,5,true\n",
    "rna_counts.csv": "gene,S1,S2,S3,S4\nIFI27,10,200,5,7\nMX1,3,40,1,2\n",
}
BY_SUBJECT = ("measurements", "events", "responses", "samples")
BY_SAMPLE = ("proteomics", "mutations", "tcr")
# One case of each kind of file for the (slower) AppTest of the Data & quality page.
PAGE_CASES = ("patients_binary.csv", "patients_formula.csv", "measurements_unknown_unit.csv",
              "measurements_merged_header.xlsx", "measurements_truncated.parquet",
              "single_cell_truncated.h5ad", "sdtm_dm_truncated.xpt", "samples_missing_day.csv")


def _ids(case: dict) -> str:
    return case["file"]


def build(case: dict, folder: Path) -> Path:
    """The good study with the case's file in place of the table it plays."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in GOOD.items():
        if case.get("keep_base") or name.split(".")[0] != case["table"]:
            (folder / name).write_text(text, encoding="utf-8")
    target = folder / case["as"]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CORPUS / case["file"], target)
    if case.get("toml"):
        (folder / "study.toml").write_text(case["toml"], encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def good_study(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("good")
    for name, text in GOOD.items():
        (folder / name).write_text(text, encoding="utf-8")
    study = load_study(folder)
    assert not study.report.findings, study.report.to_frame()
    return study


def test_corpus_is_complete_and_small():
    files = {p.name for p in CORPUS.iterdir() if p.name not in ("cases.toml", "make_corpus.py")
             and not p.name.startswith((".", "__"))}
    assert len(CASES) >= 40
    assert files == {c["file"] for c in CASES}, "every corpus file has exactly one case"
    assert all((CORPUS / f).stat().st_size < 64 * 1024 for f in files)
    assert {c["table"] for c in CASES} >= {"patients", "measurements", "events", "responses",
                                           "samples", "proteomics", "mutations", "tcr",
                                           "rna_counts", "single_cell", "sdtm", "study"}
    assert {Path(c["as"]).suffix for c in CASES} >= {".csv", ".parquet", ".xlsx", ".h5ad",
                                                      ".xpt", ".txt", ".gz", ".toml"}


def _expected_rows(good, study, table: str) -> int:
    """Rows of the good `table` that must load: all of them, less those whose patient or sample
    the case's broken file took away."""
    frame = good.table(table)
    if table in BY_SUBJECT:
        frame = frame.filter(pl.col("subject_id").is_in(study.subject_ids))
    samples = study.samples.get_column("sample_id")
    if table in BY_SAMPLE:
        frame = frame.filter(pl.col("sample_id").is_in(samples.implode()))
    if table == "rna_counts":   # a matrix: sample columns without a sample are left out
        kept = [c for c in frame.columns if c == "gene" or c in samples.to_list()]
        assert study.rna_counts.columns == (kept if len(kept) > 1 else ["gene"])
        return frame.height if len(kept) > 1 else 0
    return frame.height


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_case_is_reported_and_good_tables_load(case, good_study, tmp_path, capsys):
    study = load_study(build(case, tmp_path / "study"))
    hits = [f for f in study.report.findings
            if case["problem"] in f.problem and f.file == case["as"]]
    assert hits, f"no finding with {case['problem']!r}: " + "\n".join(
        f.message for f in study.report.findings)
    f = hits[0]
    assert f.severity == case["severity"], f.message
    assert f.column == case.get("column"), f.message
    if "rows" in case:
        assert list(f.rows) == case["rows"], f.message
        assert f"row{'s' if len(case['rows']) > 1 else ''} {case['rows'][0]}" in f.message
    assert f.message.startswith(f.file)
    for finding in study.report.errors + study.report.warnings:
        assert finding.fix.strip(), f"no advice in: {finding.message}"

    # the good tables beside it load fully (less rows of patients/samples the case removed)
    for table in GOOD_TABLES:
        if table == case["table"]:
            continue
        assert study.table(table).height == _expected_rows(good_study, study, table), table
    if case["table"] not in ("patients", "samples"):
        assert study.subject_ids == good_study.subject_ids
    assert study.report.ok is not case["broken"], study.report.to_frame()

    # the command line agrees, in one line per finding and without a traceback
    code = cli.main(["validate", str(tmp_path / "study")])
    out = capsys.readouterr()
    assert code == (1 if case["broken"] else 0), out.out
    assert "Traceback" not in out.out + out.err
    assert case["problem"] in out.out


GOOD_TABLES = ("patients", "measurements", "events", "responses", "samples", "proteomics",
               "mutations", "tcr", "rna_counts")


def test_formula_cells_load_as_data_and_are_escaped_on_export(tmp_path):
    case = next(c for c in CASES if c["file"] == "patients_formula.csv")
    study = load_study(build(case, tmp_path / "study"))
    therapy = study.patients.sort("subject_id").get_column("prior_therapy").to_list()
    assert therapy[0] == "=cmd|' /C calc'!A0"   # kept verbatim, never evaluated
    text = csv_bytes(study.patients).decode()
    assert "'=cmd|" in text and "'@SUM(" in text
    assert "\n=cmd" not in text and ",=cmd" not in text


def test_a_million_identical_rows(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "patients.csv").write_text(GOOD["patients.csv"])
    row = "P1,7,ANC,0.9,10^9/L\n"
    (folder / "measurements.csv").write_text("subject_id,day,analyte,value,unit\n"
                                             + row * 1_000_000)
    (folder / "events.csv").write_text(GOOD["events.csv"])
    study = load_study(folder)
    assert study.measurements.height == 1
    assert study.events.height == 4
    f = next(f for f in study.report.findings if "identical duplicate" in f.problem)
    assert f.severity == "warning" and f.n_rows == 1_000_000 and f.rows[:2] == (2, 3)
    assert "999,999 identical duplicate row(s) dropped" in f.problem and f.fix
    assert study.report.ok


def test_real_entry_point_exits_non_zero_without_traceback(tmp_path):
    """`python cli.py validate` as a user types it, on a truncated Parquet file."""
    case = next(c for c in CASES if c["file"] == "measurements_truncated.parquet")
    folder = build(case, tmp_path / "study")
    run = subprocess.run([sys.executable, str(ROOT / "cli.py"), "validate", str(folder)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert case["problem"] in run.stdout and "measurements.parquet" in run.stdout


@pytest.mark.parametrize("name", PAGE_CASES)
def test_data_quality_page_renders(name, app_page, tmp_path):
    case = next(c for c in CASES if c["file"] == name)
    at = app_page("pages/data_quality.py", study=build(case, tmp_path / "study"))
    assert not at.exception, at.exception
    assert at.title[0].value == "Data & quality"
    shown = [df.value for df in at.dataframe]
    report = next(v for v in shown if "problem" in v.columns)
    assert report["problem"].str.contains(case["problem"], regex=False).any()
    if case["broken"]:
        assert at.error, "the page says that problems need fixing"


# ---- hostile shapes too big to commit: made here (tests/bad_inputs/make_corpus.py) ------------
_PEAK = """
import resource, sys
from data_loaders import load_study
study = load_study({folder!r})
for f in study.report.errors:
    print("FINDING", f.file, "|", f.problem)
print("TABLES", study.events.height, len(study.subject_ids))
print("PEAK_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def _load_measuring_peak(folder: Path) -> tuple[list[str], str, int]:
    run = subprocess.run([sys.executable, "-c", _PEAK.format(folder=str(folder))],
                         capture_output=True, text=True, timeout=300, env=package_env())
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    peak = int(next(v for v in lines if v.startswith("PEAK_MB")).split()[1])
    tables = next(v for v in lines if v.startswith("TABLES"))
    return [v for v in lines if v.startswith("FINDING")], tables, peak


@pytest.mark.parametrize("shape", ["gzip_bomb", "wide_csv"])
def test_generated_hostile_file_is_refused_before_it_is_read(shape, tmp_path):
    """A 2.4 MB .csv.gz of valid rows that unpacks to 1 GB, and a 14 MB CSV whose header has
    10^6 columns: each is a finding naming the file, the rest of the study loads, and the
    loading process stays small (each took more than 6 GB before the limits)."""
    from tests.bad_inputs.make_corpus import gzip_bomb, wide_csv

    folder = build({"table": "measurements", "file": "measurements_header_only.csv",
                    "as": "unused.csv"}, tmp_path / "study")
    (folder / "unused.csv").unlink()
    if shape == "gzip_bomb":
        path = gzip_bomb(folder / "measurements.csv.gz", unpacked_bytes=10**9)
        assert path.stat().st_size < 3 * 1024 * 1024
        expect = "measurements.csv.gz | unpacks to more than 512.0 MB (a 2.4 MB file); not read"
    else:
        path = wide_csv(folder / "measurements.csv", columns=10**6)
        expect = "measurements.csv | has more than 50,000 columns in its header line; not read"
    findings, tables, peak = _load_measuring_peak(folder)
    assert any(expect in f for f in findings), findings
    assert tables == "TABLES 4 3"          # events and patients of the good study
    assert peak < 1500, f"peak resident memory {peak} MB"


def test_hostile_study_does_not_break_other_sessions(tmp_path, monkeypatch, real_navigation):
    """Two studies on a server; the alphabetically first cannot be loaded within the worker's
    memory limit. A new session skips it and says so; a session that asks for it gets its
    finding naming the file; the good study keeps working in every session."""
    from streamlit.testing.v1 import AppTest

    from tests.bad_inputs.make_corpus import wide_csv
    from tests.test_app_auth import AUTH

    root = tmp_path / "root"
    bad = build({"table": "measurements", "file": "measurements_header_only.csv",
                 "as": "unused.csv"}, root / "a_hostile")
    (bad / "unused.csv").unlink()
    wide_csv(bad / "measurements.csv", columns=10**6)
    build({"table": "none", "file": "patients_site2.csv", "as": "extra.csv"}, root / "b_good")
    (root / "server.toml").write_text("[limits]\nmax_columns = 2000000\n"
                                      "[worker]\nmemory_mb = 700\nretries = 0\n")
    monkeypatch.setenv("STUDIES_ROOT", str(root))
    monkeypatch.delenv("STUDY_DIR", raising=False)
    monkeypatch.delenv("CART_LOAD_WORKER", raising=False)

    def session(query: dict[str, str] | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        # a shared server serves data only behind a login (tests/test_app_auth.py)
        at.secrets["auth"] = AUTH
        at.user = {"is_logged_in": True, "email": "ana@lab.org", "email_verified": True}
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, at.exception
        return at

    def plain(elements) -> str:   # markdown source with its backslash escapes undone
        return re.sub(r"\\(.)", r"\1", " ".join(e.value for e in elements))

    first = session()
    warnings = plain(first.warning)
    assert "'a_hostile' could not be loaded" in warnings and "showing 'b_good'" in warnings
    assert "3 patients" in plain(first.caption)

    asked = session({"study": "a_hostile"})
    errors = plain(asked.error)
    assert "measurements.csv" in errors and "ran out of memory" in errors, errors

    again = session({"study": "b_good"})
    assert not again.error and "3 patients" in plain(again.caption)
    again.switch_page("pages/data_quality.py").run()
    assert not again.exception
