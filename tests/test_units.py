"""Unit conversion table and analyte aliases."""

from __future__ import annotations

import polars as pl
import pytest

from data_loaders.analytes import CATALOGUE, canonical_analyte
from data_loaders.units import convert_units, unit_key


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "expected"),
    [
        ("HGB", 8.5, "g/dL", 85.0),
        ("HGB", 5.0, "mmol/L", 80.55),
        ("HGB", 92.0, "g/L", 92.0),
        ("ANC", 800.0, "cells/uL", 0.8),
        ("ANC", 1.2, "10^3/uL", 1.2),
        ("ANC", 1.2, "x10E9/L", 1.2),
        ("PLT", 15.0, "GI/L", 15.0),
        ("PLT", 15.0, "10*9/L", 15.0),
        ("CRP", 2.5, "mg/dL", 25.0),
        ("FERRITIN", 1000.0, "ug/L", 1000.0),
        ("IL6", 0.05, "ng/mL", 50.0),
        ("NK_ABS", 0.2, "10^9/L", 200.0),
        ("TEMP", 100.4, "F", 38.0),
        ("CAR_QPCR", 1500.0, "copies/µg gDNA", 1500.0),
        ("ANC", 0.7, "", 0.7),   # blank unit takes the canonical unit
    ],
)
def test_conversion(analyte, value, unit, expected):
    df = pl.DataFrame({"analyte": [analyte], "value": [value], "unit": [unit or None]})
    out = convert_units(df, CATALOGUE).row(0, named=True)
    assert out["unit_known"]
    assert out["value_canonical"] == pytest.approx(expected, rel=1e-6)
    assert out["unit_canonical"] == CATALOGUE[analyte].unit


@pytest.mark.parametrize(("analyte", "unit"), [("ANC", "mmol/L"), ("RETIC", "%"),
                                                ("HGB", "furlongs")])
def test_unknown_unit_is_not_converted(analyte, unit):
    df = pl.DataFrame({"analyte": [analyte], "value": [1.0], "unit": [unit]})
    out = convert_units(df, CATALOGUE).row(0, named=True)
    assert not out["unit_known"] and out["value_canonical"] is None


def test_lloq_converted_with_value():
    df = pl.DataFrame({"analyte": ["CAR_QPCR"], "value": [0.02], "unit": ["copies/ng gDNA"],
                       "lloq": [0.05]})
    out = convert_units(df, CATALOGUE).row(0, named=True)
    assert out["lloq"] == pytest.approx(50.0) and out["value_canonical"] == pytest.approx(20.0)


@pytest.mark.parametrize(("alias", "canon"), [("NEUT", "ANC"), ("PLAT", "PLT"), ("RETI", "RETIC"),
                                              ("LYM", "ALC"), ("HGB", "HGB"), ("IL-6", "IL6"),
                                              ("sIL-2R", "IL2RA"), ("TNF-a", "TNFA"),
                                              ("car_qpcr", "CAR_QPCR"), ("Nonsense", None)])
def test_aliases(alias, canon):
    assert canonical_analyte(alias) == canon


def test_unit_key_folds_spellings():
    assert unit_key(" x10E9/L ") == unit_key("10^9/L") == unit_key("10*9/l")
    assert unit_key("µg") == unit_key("ug") == unit_key("mcg")
