"""Medication courses of the cohort (views.medications), as the Blood counts page lists them."""

from __future__ import annotations

import polars as pl

from analysis.cohort import Cohort
from views import medications as vmed


def test_count_drugs_of_the_demo(demo_study):
    t = vmed.medication_table(demo_study,
                              params=vmed.MedicationParams(classes=vmed.COUNT_DRUGS)).data
    assert set(t.get_column("drug_class")) == {"g_csf", "tpo_ra", "ciclosporin",
                                               "corticosteroid"}
    # SAA-002 (partial responder) gets eltrombopag on days 44-173 (sample_data/README.md)
    elt = t.filter((pl.col("subject_id") == "SAA-002") & (pl.col("drug_class") == "tpo_ra"))
    assert elt.select("term", "day", "end_day", "days").row(0) == (
        "Eltrombopag 150 mg daily", 44, 173, 130)
    # G-CSF recorded as growth_factor is listed as class g_csf
    assert t.filter(pl.col("drug_class") == "g_csf").get_column("term").str.contains(
        "filgrastim").all()
    assert "anti_infective" not in set(t.get_column("drug_class"))


def test_cohort_and_window(demo_study):
    t = vmed.medication_table(demo_study, cohort=Cohort(subjects=("SAA-004",), days=":30"),
                              params=vmed.MedicationParams()).data
    assert set(t.get_column("subject_id")) == {"SAA-004"}
    assert (t.get_column("day") <= 30).all()
    assert "ciclosporin" not in set(t.get_column("drug_class"))   # GVHD prophylaxis from d120
