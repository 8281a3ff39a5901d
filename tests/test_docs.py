"""docs/data-format.md describes every table column and every canonical analyte the loader
accepts, and the README opens with the two commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_loaders.analytes import CATALOGUE
from data_loaders.schema import EVENT_CATEGORIES, TABLES

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "data-format.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("table", list(TABLES))
def test_every_column_documented(table):
    missing = [c for c in TABLES[table].columns if c not in DOC]
    assert not missing, f"{table}: {missing} not in docs/data-format.md"


def test_every_analyte_and_category_documented():
    assert not [a for a in CATALOGUE if f"| {a} |" not in DOC]
    assert all(c in DOC for c in EVENT_CATEGORIES)


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme[:1500]
    assert "make run" in head and "make test" in head
