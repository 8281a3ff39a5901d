"""Property-based tests (hypothesis) on the readers and the unit converter.

Two promises: a valid table written as CSV, Parquet or Excel comes back from `load_study` with
the same values (units converted by the table in data_loaders/units.py); and a damaged file
(flipped or cut bytes, random text in a cell, a random unit) never makes `load_study` raise: it
becomes a finding in the report and the other tables still load. Examples are few and the
search is derandomised so the file runs in seconds and fails the same way on every machine.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_loaders import ValidationReport, load_study
from data_loaders.analytes import CATALOGUE
from data_loaders.readers import read_table
from data_loaders.units import CONVERSIONS, convert_units, unit_key

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PATIENTS = "subject_id,age,sex,infusion_date\nP1,34,M,2025-01-10\nP2,51,F,2025-02-01\n" \
           "P3,45,F,2025-03-01\n"
EVENTS = "subject_id,day,category,term,grade\nP1,0,infusion,CAR-T,\nP2,3,crs,CRS,1\n"
MEAS_COLUMNS = ["subject_id", "day", "analyte", "value", "unit"]

# (analyte, unit as written, factor, offset) for every conversion the table offers an analyte
# of the catalogue, so that round trips exercise the unit converter too.
_UNIT_CHOICES = sorted({
    (name, frm, fac, off)
    for name, a in CATALOGUE.items()
    for only, frm, to, fac, off in CONVERSIONS
    if to == a.unit and only in (None, name)
})
# Plain text that survives every format unchanged (no edge whitespace, no NUL, no surrogates).
_TEXT = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S"),
                              exclude_characters="\x00"), min_size=1, max_size=30)


def _rows(draw_unit: bool) -> st.SearchStrategy[list[tuple]]:
    unit = st.sampled_from(_UNIT_CHOICES) if draw_unit else st.sampled_from(
        [(n, a.unit, 1.0, 0.0) for n, a in CATALOGUE.items()])
    row = st.tuples(st.sampled_from(["P1", "P2", "P3"]), st.integers(-30, 400), unit,
                    st.floats(0, 1e6, allow_nan=False, allow_infinity=False),
                    _TEXT)
    # one row per subject, day and analyte: a second one would be a conflicting duplicate
    return st.lists(row, min_size=1, max_size=25, unique_by=lambda r: (r[0], r[1], r[2][0]))


def _frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        {"subject_id": [r[0] for r in rows], "day": [r[1] for r in rows],
         "analyte": [r[2][0] for r in rows], "value": [r[3] for r in rows],
         "unit": [r[2][1] for r in rows], "comment": [r[4] for r in rows]},
        schema={"subject_id": pl.String, "day": pl.Int64, "analyte": pl.String,
                "value": pl.Float64, "unit": pl.String, "comment": pl.String})


def _study(folder: Path, measurements: pl.DataFrame, fmt: str) -> None:
    (folder / "patients.csv").write_text(PATIENTS)
    (folder / "events.csv").write_text(EVENTS)
    if fmt == "csv":
        measurements.write_csv(folder / "measurements.csv")
    elif fmt == "parquet":
        measurements.write_parquet(folder / "measurements.parquet")
    else:
        measurements.write_excel(folder / "measurements.xlsx")


@pytest.mark.slow
@FUZZ
@given(rows=_rows(draw_unit=True), fmt=st.sampled_from(["csv", "parquet", "xlsx"]))
def test_valid_frames_round_trip_with_units_converted(rows, fmt):
    frame = _frame(rows)
    with tempfile.TemporaryDirectory(prefix="robust_fuzz_") as tmp:
        _study(Path(tmp), frame, fmt)
        study = load_study(tmp)
    assert study.report.ok, study.report.to_frame()
    got = study.measurements.sort("subject_id", "day", "analyte")
    want = sorted(rows, key=lambda r: (r[0], r[1], r[2][0]))
    assert got.height == len(want)
    assert got.get_column("subject_id").to_list() == [r[0] for r in want]
    assert got.get_column("day").to_list() == [r[1] for r in want]
    assert got.get_column("analyte").to_list() == [r[2][0] for r in want]
    assert got.get_column("unit").to_list() == [CATALOGUE[r[2][0]].unit for r in want]
    assert got.get_column("value").to_list() == pytest.approx(
        [r[3] * r[2][2] + r[2][3] for r in want], rel=1e-12, abs=1e-9)
    assert got.get_column("comment").to_list() == [r[4] for r in want]
    assert study.events.height == 2


@FUZZ
@given(analyte=st.sampled_from(sorted(CATALOGUE)), unit=st.text(max_size=12),
       value=st.floats(allow_nan=True, allow_infinity=True))
def test_unit_converter_never_raises_and_never_guesses(analyte, unit, value):
    frame = pl.DataFrame({"analyte": [analyte], "value": [value], "unit": [unit]},
                         schema={"analyte": pl.String, "value": pl.Float64, "unit": pl.String})
    out = convert_units(frame, dict(CATALOGUE)).row(0, named=True)
    canon = CATALOGUE[analyte].unit
    listed = {unit_key(f): (fac, off) for only, f, to, fac, off in CONVERSIONS
              if to == canon and only in (None, analyte)}
    key = unit_key(unit) or unit_key(canon)
    assert out["unit_known"] == (key in listed or key == unit_key(canon))
    assert out["unit_canonical"] == canon
    if out["unit_known"] and math.isfinite(value):
        fac, off = listed.get(key, (1.0, 0.0))
        assert out["value_canonical"] == pytest.approx(value * fac + off)
    if not out["unit_known"]:
        assert out["value_canonical"] is None


@FUZZ
@given(unit=st.text(max_size=15), value=_TEXT, day=_TEXT)
def test_random_cells_become_findings_not_exceptions(unit, value, day):
    frame = pl.DataFrame({"subject_id": ["P1", "P2"], "day": ["7", day],
                          "analyte": ["ANC", "PLT"], "value": ["0.5", value],
                          "unit": ["10^9/L", unit]})
    with tempfile.TemporaryDirectory(prefix="robust_fuzz_") as tmp:
        frame.write_csv(Path(tmp) / "measurements.csv")
        (Path(tmp) / "patients.csv").write_text(PATIENTS)
        (Path(tmp) / "events.csv").write_text(EVENTS)
        study = load_study(tmp)
    assert isinstance(study.report, ValidationReport)
    assert study.events.height == 2
    assert 1 <= study.measurements.height <= 2      # the good row always loads
    if study.measurements.height == 1:              # the other row was refused: it says why
        assert study.report.errors and all(f.fix for f in study.report.errors)


def _corrupt(data: bytes, how: str, at: float, junk: bytes) -> bytes:
    i = min(int(at * len(data)), max(len(data) - 1, 0))
    if how == "flip":
        return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:] if data else junk
    if how == "truncate":
        return data[:i]
    if how == "insert":
        return data[:i] + junk + data[i:]
    return junk


@FUZZ
@given(fmt=st.sampled_from(["csv", "parquet", "xlsx"]),
       how=st.sampled_from(["flip", "truncate", "insert", "replace"]),
       at=st.floats(0, 1), junk=st.binary(min_size=1, max_size=64))
def test_damaged_files_never_raise_and_spare_the_other_tables(fmt, how, at, junk):
    frame = _frame([("P1", d, ("ANC", "10^9/L", 1.0, 0.0), 0.5 + d, "ok") for d in range(40)])
    with tempfile.TemporaryDirectory(prefix="robust_fuzz_") as tmp:
        _study(Path(tmp), frame, fmt)
        path = next(Path(tmp).glob("measurements.*"))
        path.write_bytes(_corrupt(path.read_bytes(), how, at, junk))
        study = load_study(tmp)                     # must not raise, whatever the bytes
        try:
            read_table(path)
        except Exception as exc:                    # noqa: BLE001 - the property under test
            assert type(exc).__name__ == "StudyError", repr(exc)
    assert study.patients.height == 3 and study.events.height == 2
    assert study.measurements.height <= 40
    if study.measurements.height < 40:
        assert any(f.file == path.name for f in study.report.findings)


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from(
    [".csv", ".tsv", ".txt", ".parquet", ".xlsx", ".csv.gz"]))
def test_random_bytes_in_any_format_are_a_finding(data, suffix):
    with tempfile.TemporaryDirectory(prefix="robust_fuzz_") as tmp:
        (Path(tmp) / "patients.csv").write_text(PATIENTS)
        (Path(tmp) / f"events{suffix}").write_bytes(data)
        study = load_study(tmp)
    assert study.patients.height == 3
    assert study.events.height <= 2 ** 16
    for f in study.report.errors:
        assert f.file and f.fix
