"""The command line: validate, table, tables, sample."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_validate_demo_exits_zero(demo_dir):
    r = cli("validate", str(demo_dir))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 error(s)" in r.stdout


def test_validate_broken_measurements_exits_nonzero_and_names_row(write_study):
    folder = write_study(measurements="subject_id,day,analyte,value,unit\n"
                         "P1,0,ANC,0.5,10^9/L\nP1,7,HGB,9,mmol/M\n")
    r = cli("validate", str(folder))
    assert r.returncode == 1
    assert "measurements.csv, row 3, column 'unit'" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_validate_missing_folder_is_one_line_error(tmp_path):
    r = cli("validate", str(tmp_path / "absent"))
    assert r.returncode == 2 and r.stderr.startswith("error:")
    assert "Traceback" not in r.stderr


def test_table_canonical_to_stdout_and_parquet(write_study, tmp_path):
    folder = write_study(measurements="subject_id,day,analyte,value,unit\nP1,0,NEUT,400,/uL\n")
    r = cli("table", "--study", str(folder), "measurements")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("subject_id,day,analyte,value,unit")
    assert "P1,0,ANC,0.4,10^9/L" in r.stdout
    out = tmp_path / "m.parquet"
    r = cli("table", "--study", str(folder), "measurements", "--format", "parquet", "--out",
            str(out))
    assert r.returncode == 0 and pl.read_parquet(out).height == 1


def test_table_unknown_name(write_study):
    r = cli("table", "--study", str(write_study()), "nonsense")
    assert r.returncode == 2 and "unknown table 'nonsense'" in r.stderr


def test_every_command_has_help():
    r = cli("--help")
    assert r.returncode == 0
    commands = [c for c in ("validate", "sample", "table", "tables") if c in r.stdout]
    assert len(commands) == 4
    for c in commands:
        assert cli(c, "--help").returncode == 0


def test_sample_writes_a_valid_study(tmp_path):
    out = tmp_path / "cohort"
    r = cli("sample", "--out", str(out), "--patients", "6", "--cells", "2000", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert cli("validate", str(out)).returncode == 0
