"""The parts of the export import: dates in every form, headers with units, analyte aliases
(analyser codes, SDTM, Chinese names), the percentage guard, visit labels."""

from __future__ import annotations

from datetime import date

import pytest

from data_loaders.analytes import canonical_analyte
from data_loaders.importers.dates import inspect_dates, looks_like_dates, parse_date
from data_loaders.importers.headers import column_role, resolve_analyte, split_header, suggest


@pytest.mark.parametrize(("text", "day_first", "expected"), [
    ("2025-01-03", None, date(2025, 1, 3)),
    ("2025-01-03 08:30:00", None, date(2025, 1, 3)),        # an Excel datetime cell
    ("2025-01-03T08:30", None, date(2025, 1, 3)),
    ("2025/01/03", None, date(2025, 1, 3)),
    ("2025/1/3", None, date(2025, 1, 3)),
    ("2025.01.03", None, date(2025, 1, 3)),
    ("20250103", None, date(2025, 1, 3)),
    ("2025年1月3日", None, date(2025, 1, 3)),
    ("03.01.2025", None, date(2025, 1, 3)),                  # dotted: day-first
    ("25/01/2025", None, date(2025, 1, 25)),                 # decides itself
    ("01/25/2025", None, date(2025, 1, 25)),
    ("03/01/2025", True, date(2025, 1, 3)),
    ("03/01/2025", False, date(2025, 3, 1)),
    ("03-01-2025", True, date(2025, 1, 3)),
    ("45660", None, date(2025, 1, 3)),                       # Excel serial
    ("45660.5", None, date(2025, 1, 3)),
    ("03JAN2025", None, date(2025, 1, 3)),
    ("03-Jan-2025", None, date(2025, 1, 3)),
])
def test_every_date_form(text, day_first, expected):
    assert parse_date(text, day_first=day_first) == expected


@pytest.mark.parametrize("text", ["03/01/2025", "2025-02-30", "soon", "12", "", None])
def test_no_date_is_guessed(text):
    assert parse_date(text) is None


def test_a_column_decides_its_date_order_or_says_it_cannot():
    assert inspect_dates(["03/01/2025", "25/01/2025"]).day_first is True
    assert inspect_dates(["01/03/2025", "01/25/2025"]).day_first is False
    amb = inspect_dates(["03/01/2025", "04/01/2025"])
    assert amb.ambiguous and amb.day_first is None
    assert inspect_dates(["25/01/2025", "01/25/2025"]).conflict
    assert inspect_dates(["2025-01-03", "03.01.2025", "45660"]).forms == {
        "iso": 1, "dmy_dot": 1, "excel": 1}
    assert looks_like_dates(["2025/01/03", "2025/01/10"])
    assert not looks_like_dates(["45660", "45661"])        # numbers alone are not dates
    assert not looks_like_dates(["3.1", "2.0"])


@pytest.mark.parametrize(("header", "name", "unit"), [
    ("HGB (g/L)", "HGB", "g/L"),
    ("PLT [10^9/L]", "PLT", "10^9/L"),
    ("WBC(×10^9/L)", "WBC", "10^9/L"),
    ("血红蛋白（g/L）", "血红蛋白", "g/L"),
    ("CRP, mg/L", "CRP", "mg/L"),
    ("NEUT%", "NEUT%", None),
    ("CD4 (abs)", "CD4 (abs)", None),                        # a bracket that is no unit
])
def test_units_from_headers(header, name, unit):
    assert split_header(header) == (name, unit)


@pytest.mark.parametrize(("name", "canon"), [
    ("NEUT#", "ANC"), ("NEUT%", "NEUT_PCT"), ("LYMPH#", "ALC"), ("LYMPH%", "LYMPH_PCT"),
    ("MONO#", "AMC"), ("EO#", "EOS"), ("BASO#", "BASO"), ("RET#", "RETIC"), ("RET%", "RETIC_PCT"),
    ("PLAT", "PLT"), ("RETI", "RETIC"), ("NEUTLE", "NEUT_PCT"), ("LYM", "ALC"),
    ("白细胞", "WBC"), ("中性粒细胞绝对值", "ANC"), ("中性粒细胞百分比", "NEUT_PCT"),
    ("血红蛋白", "HGB"), ("血小板计数", "PLT"), ("网织红细胞", "RETIC"), ("淋巴细胞绝对值", "ALC"),
    ("C反应蛋白", "CRP"), ("铁蛋白", "FERRITIN"), ("白细胞介素-6", "IL6"), ("IFNγ", "IFNG"),
    ("γ-谷氨酰转移酶", "GGT"), ("Neut Abs", "ANC"),
])
def test_analyte_aliases(name, canon):
    assert canonical_analyte(name) == canon


def test_a_percentage_is_never_an_absolute_count():
    assert resolve_analyte("NEUT", "%")[0] == "NEUT_PCT"
    assert resolve_analyte("Neutrophils", "%")[0] == "NEUT_PCT"
    assert resolve_analyte("网织红细胞", "%")[0] == "RETIC_PCT"
    assert resolve_analyte("中性粒细胞%", None)[0] == "NEUT_PCT"
    canon, why = resolve_analyte("PLT", "%")
    assert canon is None and "percentage" in why
    assert resolve_analyte("NEUT#", "10^9/L")[0] == "ANC"
    assert resolve_analyte("HCT", "%")[0] == "HCT"          # a percentage analyte stays itself


def test_chosen_analyte_wins_and_unknown_gets_a_suggestion():
    assert resolve_analyte("Neutro abs", None, chosen={"Neutro abs": "ANC"}) == ("ANC", "chosen")
    assert resolve_analyte("XYZ", None)[0] is None
    assert "ANC" in suggest("NEUTT")
    assert "FERRITIN" in suggest("Ferritine")


@pytest.mark.parametrize(("header", "role"), [
    ("住院号", "subject_id"), ("Patient ID", "subject_id"), ("USUBJID", "subject_id"),
    ("采样日期", "date"), ("Collection date", "date"), ("Visit", "visit"), ("访视", "visit"),
    ("Study day", "day"), ("姓名", "_identifying"), ("WBC", None),
])
def test_column_roles(header, role):
    assert column_role(header) == role


def test_a_time_column_holding_dates_is_the_date(tmp_path):
    from data_loaders.importers.plan import propose

    (tmp_path / "lis.csv").write_text("登记号,采样时间,WBC,PLT\nP1,2025-01-03 08:30,3.1,20\n",
                                      encoding="utf-8")
    item = propose(tmp_path / "lis.csv").items[0]
    assert item.options["columns"] == {"subject_id": "登记号", "date": "采样时间"}


def test_table_choices_by_name_or_pattern():
    from data_loaders.importers.detect import table_choice

    tables = {"labs.xlsx#Notes": "skip", "gating/*": "skip", "labs.xlsx": "measurements"}
    assert table_choice(tables, "labs.xlsx#Notes", "labs.xlsx") == "skip"
    assert table_choice(tables, "labs.xlsx#CBC", "labs.xlsx") == "measurements"
    assert table_choice(tables, "gating/truth/Results_And1.txt", "gating/truth/Results_And1.txt") \
        == "skip"
    assert table_choice(tables, "other.csv", "other.csv") is None


def test_a_date_order_contradicting_the_data_is_asked(tmp_path):
    from data_loaders.importers.plan import ImportSettings, propose

    (tmp_path / "labs.csv").write_text("patient,date,ANC\nP1,01/25/2025,0.4\n",
                                       encoding="utf-8")
    (tmp_path / "pts.csv").write_text("patient,infusion_date,sex\nP1,2025-01-20,M\n",
                                      encoding="utf-8")
    assert propose(tmp_path).ready
    said = propose(tmp_path, ImportSettings(day_first=True))
    assert any("can only be month-first" in q for q in said.questions)


def test_a_workbook_declaring_a_huge_sheet_is_refused_before_reading(tmp_path):
    import xlsxwriter

    from data_loaders.importers.plan import propose

    wb = xlsxwriter.Workbook(tmp_path / "big.xlsx")
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["ID", "WBC"])
    ws.write(1048575, 16383, 1)            # declares the whole grid
    wb.close()
    prop = propose(tmp_path)
    assert prop.questions[0].startswith("big.xlsx: sheet sheet1 declares 1,048,576 rows")
    assert "max_sheet_cells" in prop.questions[0]


def test_stale_upload_folders_are_swept_and_nothing_else(tmp_path):
    """An import never saved leaves its staging folder; the next staging removes this
    user's folders untouched for longer than the setting, and nothing else."""
    import os

    from data_loaders.importers import uploads

    now = 1_800_000_000.0
    old, fresh, other = (tmp_path / f"{uploads.PREFIX}{n}" for n in ("old", "fresh", "x"))
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "labs.csv").write_text("a,b\n")
    not_ours = tmp_path / "labs-backup"
    not_ours.mkdir()
    day = 24 * 3600
    for path, age in ((old, 2 * day), (old / "labs.csv", 2 * day), (fresh, 2 * day),
                      (fresh / "labs.csv", 3600), (not_ours, 9 * day)):
        os.utime(path, (now - age, now - age))
    other.write_text("a file, not a folder")
    os.utime(other, (now - 9 * day, now - 9 * day))

    removed = uploads.sweep_stale(hours=24, root=tmp_path, now=now)
    assert removed == [old]
    assert not old.exists() and fresh.exists() and not_ours.exists() and other.exists()
    # a shorter setting reaches the folder whose newest file is an hour old
    assert uploads.sweep_stale(hours=0.5, root=tmp_path, now=now) == [fresh]


def test_staging_hours_setting(monkeypatch):
    from data_loaders.importers import uploads

    monkeypatch.setenv("IMPORT_STAGING_HOURS", "6")
    assert uploads.staging_hours() == 6.0
    monkeypatch.setenv("IMPORT_STAGING_HOURS", "soon")
    assert uploads.staging_hours() == uploads.DEFAULT_STAGING_HOURS
