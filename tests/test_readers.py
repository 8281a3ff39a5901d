"""data_loaders.readers: numbers in Excel workbooks are read in full, not as the engine's text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from data_loaders.readers import read_table

xlsxwriter = pytest.importorskip("xlsxwriter")


def _workbook(path: Path) -> Path:
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("labs")
    ws.write_row(0, 0, ["subject_id", "value", "note", "day"])
    ws.write_row(1, 0, [1001, 6.103515625e-05, "x", 0])
    ws.write_row(2, 0, [1002, 1.2e-10, "<0.1", 28])
    ws.write_row(3, 0, [1003, 12.3456789012345, 0.25, 90])
    ws.write_datetime(4, 3, dt.datetime(2025, 1, 3), wb.add_format({"num_format": "yyyy-mm-dd"}))
    ws.write(4, 0, "P-4")
    ws.write(4, 1, "n/a")
    wb.close()
    return path


def test_small_and_long_numbers_keep_every_digit(tmp_path: Path) -> None:
    """The engine's own text keeps nine decimals: 6.103515625e-05 -> "0.000061035" and
    1.2e-10 -> "0.000000000" (a value lost). Both must come back exactly, as must a number with
    15 significant digits; integers (ids, days), text, '<0.1' and dates keep their text."""
    frame = read_table(_workbook(tmp_path / "labs.xlsx")).frame
    assert frame.get_column("subject_id").to_list() == ["1001", "1002", "1003", "P-4"]
    values = frame.get_column("value").to_list()
    assert [float(v) for v in values[:3]] == [6.103515625e-05, 1.2e-10, 12.3456789012345]
    assert values[3] == "n/a"
    assert frame.get_column("note").to_list() == ["x", "<0.1", "0.25", None]
    assert frame.get_column("day").to_list()[:3] == ["0", "28", "90"]
    assert frame.get_column("day").to_list()[3].startswith("2025-01-03")
