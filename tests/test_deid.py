"""De-identified mode: no dates, no exact ages, no free text in tables, exports or any page."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from components.export import csv_bytes
from data_loaders import TABLE_NAMES, load_study
from data_loaders.deid import age_band, deidentify

ROOT = Path(__file__).resolve().parent.parent
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
BAND = re.compile(r"^(\d+-\d+|90\+)$")

PATIENTS = """subject_id,age,sex,infusion_date,prior_therapy,notes,referral
P1,34,M,2025-01-10,hATG + CsA,seen by Dr Who on 2024-12-01,letter from Leeds
P2,91,F,2025-02-01,CsA,,
P3,,F,2025-02-03,,,
"""
MEASUREMENTS = """subject_id,date,analyte,value,unit
P1,2025-01-10,ANC,0.3,10^9/L
P1,2025-01-17,ANC,0.9,10^9/L
P2,2025-02-08,ANC,1.2,10^9/L
"""
EVENTS = """subject_id,day,category,term,grade,narrative
P1,3,crs,Cytokine release syndrome,2,fever from 2025-01-13 at home
P2,5,adverse_event,Neutropenia,3,
"""


@pytest.fixture
def tiny(write_study):
    folder = write_study(patients=PATIENTS, measurements=MEASUREMENTS, events=EVENTS,
                         **{"study.toml": '[study]\ntitle = "Tiny 2025-01-01"\n'
                                          '[deidentify]\nfree_text = ["referral", '
                                          '"events.narrative"]\n'})
    return load_study(folder)


def test_age_band():
    assert [age_band(a) for a in (0, 4.9, 5, 37, 39.99, 89.9, 90, 104)] == \
        ["0-4", "0-4", "5-9", "35-39", "35-39", "85-89", "90+", "90+"]
    assert age_band(None) is None and age_band(float("nan")) is None and age_band(-1) is None


def test_dates_removed_from_every_table(tiny):
    assert "infusion_date" in tiny.patients.columns
    assert "date" in tiny.measurements.columns  # kept by the loader next to the derived day
    deid = deidentify(tiny)
    for name in TABLE_NAMES:
        frame = deid.table(name)
        assert not [c for c, t in frame.schema.items() if t in (pl.Date, pl.Datetime)
                    or isinstance(t, pl.Datetime)], name
        assert not DATE.search(csv_bytes(frame).decode()), name
    assert deid.measurements.get_column("day").to_list() == \
        tiny.measurements.get_column("day").to_list()


def test_ages_become_bands(tiny):
    patients = deidentify(tiny).patients
    assert patients.get_column("age_band").to_list() == ["30-34", "90+", None]
    # the canonical column keeps its type (analyses still run) and holds no exact age
    assert patients.schema["age"] == pl.Float64
    assert patients.get_column("age").null_count() == patients.height


def test_free_text_hidden_coded_terms_kept(tiny):
    deid = deidentify(tiny)
    p = deid.patients
    # in the model but free text: blanked; outside the model: not there at all
    assert p.get_column("prior_therapy").null_count() == p.height
    assert "notes" not in p.columns and "referral" not in p.columns
    assert "narrative" not in deid.events.columns
    assert deid.events.get_column("term").to_list() == ["Cytokine release syndrome",
                                                        "Neutropenia"]
    assert deid.patients.get_column("sex").to_list() == ["M", "F", "F"]


def test_safe_columns_and_free_text_settings(tiny):
    deid = deidentify(replace(tiny, config={"deid": {"safe_columns": ["patients.referral"],
                                                     "free_text": ["events.term"]}}))
    assert deid.patients.get_column("referral").to_list()[0] == "letter from Leeds"
    assert "notes" not in deid.patients.columns
    assert deid.events.get_column("term").null_count() == 2
    assert deid.patients.get_column("prior_therapy").null_count() == 3  # always hidden


def test_dates_in_text_report_and_title_are_replaced(tiny):
    deid = deidentify(tiny)
    assert deid.title == "Tiny [date]"
    text = " ".join(f.message for f in deid.report.findings) + repr(deid.config)
    assert not DATE.search(text)
    assert not DATE.search(csv_bytes(deid.report.to_frame()).decode())


def test_original_untouched_and_cache_keys_differ(tiny):
    before = tiny.patients.clone()
    deid = deidentify(tiny)
    assert tiny.patients.equals(before)
    assert deid.cache_key != tiny.cache_key
    assert deid.subject_ids == tiny.subject_ids and deid.path == tiny.path


def test_demo_exports_carry_no_date_or_exact_age(demo_study):
    deid = deidentify(demo_study)
    exact = {str(int(a)) for a in demo_study.patients.get_column("age").drop_nulls()}
    for name in TABLE_NAMES:
        text = csv_bytes(deid.table(name)).decode()
        assert not DATE.search(text), f"{name} export holds a date"
    patients = pl.read_csv(csv_bytes(deid.patients), infer_schema=False)
    assert "infusion_date" not in patients.columns
    assert patients.get_column("age").null_count() == patients.height
    bands = patients.get_column("age_band").drop_nulls().to_list()
    assert len(bands) == patients.height and all(BAND.match(a) for a in bands)
    assert not exact & set(bands)
    assert patients.get_column("prior_therapy").null_count() == patients.height


# ---- every page of the app, de-identified -----------------------------------------------------
def _pages() -> list[tuple[str, str]]:
    from tests.test_app_pages import PAGES

    return PAGES


def _rendered_text(at) -> str:
    """Every string the run sent to the browser: element protos, dataframe cells as CSV."""
    parts = []

    def walk(node):
        value = getattr(node, "value", None)
        if type(node).__name__ == "Dataframe" and value is not None:
            parts.append(value.to_csv(index=False))
        elif getattr(node, "proto", None) is not None:
            parts.append(str(node.proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


_AGE_WORD = re.compile(r"\bage\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d+)?(?![\d.])")


def _valid_band(match: re.Match) -> str:
    lo, hi = int(match.group(1)), int(match.group(2))
    return "" if lo % 5 == 0 and hi == lo + 4 else match.group(0)


def _leak(text: str, exact_ages: set[int]) -> str | None:
    """A date anywhere, or an exact age on a line that speaks of age (bands do not count)."""
    hit = DATE.search(text)
    if hit:
        return f"date ...{text[max(0, hit.start() - 80):hit.end()]}"
    for line in text.splitlines():
        if not _AGE_WORD.search(line):
            continue
        rest = re.sub(r"(\d{1,3})\s*-\s*(\d{1,3})", _valid_band, line)
        if any(float(n) in exact_ages for n in _NUMBER.findall(rest)):
            return f"exact age in: {line[:200]}"
    return None


def test_leak_detector_has_teeth():
    ages = {32, 37, 63}
    assert _leak("Age, years: median (range),37 (32-63),32 (32-32)", ages)
    assert _leak("infused 2025-02-21", ages)
    assert _leak("age: 63.0", ages)
    assert _leak("Age band,30-34,35-39,60-64", ages) is None
    assert _leak("Age, years: median (range),-,-", ages) is None
    assert _leak("page 32 of 63", ages) is None          # no "age" word
    assert _leak("ANC 37 on day 63", ages) is None


def test_every_page_deidentified(monkeypatch, demo_dir, demo_study, real_navigation):
    """DEID=1 on the demo: each page's rendered output holds no date and no exact age."""
    from streamlit.testing.v1 import AppTest

    pages = _pages()
    assert pages, "no page files"
    exact = {int(a) for a in demo_study.patients.get_column("age").drop_nulls()}
    monkeypatch.setenv("STUDY_DIR", str(demo_dir))
    monkeypatch.setenv("DEID", "1")
    monkeypatch.delenv("STUDIES_ROOT", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    seen = []
    for file, title in pages:
        at.switch_page(file).run()
        assert not at.exception, (file, [e.value for e in at.exception])
        assert at.title and at.title[0].value == title
        leak = _leak(_rendered_text(at), exact)
        assert leak is None, f"{file}: {leak}"
        for df in at.dataframe:
            for col in df.value.columns:
                if re.fullmatch(r"(?i)age|age_.*|.*_age", str(col)):
                    values = [str(v) for v in df.value[col].dropna()]
                    assert all(BAND.match(v) for v in values), (file, col, values)
        seen.append(file)
    assert len(seen) == len(pages)
