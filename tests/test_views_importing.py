"""views/importing.py: the Import page's rules outside the page (where a study is written,
what the date and tissue choices set, the validation table, staging uploads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from views import importing as imp


def test_target_folder_rules(tmp_path):
    assert imp.target_folder("  ", root=None) is None
    assert imp.target_folder("trial", root=None) == Path.home() / "cart-studies" / "trial"
    assert imp.target_folder(f"{tmp_path}/x", root=None) == tmp_path / "x"
    assert imp.target_folder("trial_2", root=str(tmp_path)) == tmp_path / "trial_2"
    with pytest.raises(imp.StudyError):
        imp.target_folder("../escape", root=str(tmp_path))


def test_choices_make_settings():
    s = imp.with_choices(imp.ImportSettings(), order="day-first", tissue="marrow")
    assert (s.day_first, s.tissue) == (True, "marrow")
    s = imp.with_choices(s, order="ask", tissue="(as given)")
    assert (s.day_first, s.tissue) == (None, None)
    assert {"patients", "sdtm", "single_cell"} <= set(imp.table_options())


def test_source_folder_and_staging(tmp_path):
    assert imp.source_folder("") is None
    with pytest.raises(imp.StudyError, match="does not exist"):
        imp.source_folder(str(tmp_path / "missing"))
    first = imp.restage([("a.csv", b"subject_id\nP1\n")], previous=None, limit_mb=5)
    second = imp.restage([("b.csv", b"subject_id\nP2\n")], previous=str(first), limit_mb=5)
    assert not first.exists() and (second / "b.csv").is_file()
    imp.discard(str(second))
    assert not second.exists()


def test_validation_table_of_a_preview(write_study):
    from data_loaders import load_study

    study = load_study(write_study(measurements="subject_id,day,analyte,value,unit\n"
                                                "P1,1,HGB,5,mmol/L\n"))
    spec = imp.validation(study)
    assert spec.data.columns == ["severity", "table", "file", "message"]
    assert spec.caption == study.report.summary()
    assert any("mmol/L" in m for m in spec.data.get_column("message").to_list())
