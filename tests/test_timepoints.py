"""Timepoint labels as labs write them -> study day; a study's own map wins; unknown labels
stay unresolved (None), never guessed."""

from __future__ import annotations

import pytest

from data_loaders.timepoints import label_day, timepoint_days


@pytest.mark.parametrize("label,day", [
    ("Screening", -14), ("Baseline", -7), ("pre", -1), ("Pre-infusion", -1), ("D0", 0),
    ("D14", 14), ("Day 28", 28), ("day+28", 28), ("D-5", -5), ("Day -3", -3), ("d_14", 14),
    ("W4", 28), ("Week 4", 28), ("M3", 90), ("Month 6", 180), ("M12", 365), ("M24", 730),
    ("Y1", 365), ("28 days", 28), ("28", 28), ("-3", -3), ("第28天", 28), ("第4周", 28),
    ("第3个月", 90), ("基线", -7),
])
def test_default_labels(label, day):
    assert label_day(label) == day


@pytest.mark.parametrize("label", ["post", "EOT", "relapse", "", None, "nan", "D28x"])
def test_unresolved_labels_are_none(label):
    assert label_day(label) is None


def test_study_map_overrides_defaults_after_folding():
    over = {"Baseline": -3, "post": 30}
    assert label_day("baseline", overrides=over) == -3
    assert label_day("POST", overrides=over) == 30
    assert label_day("D14", overrides=over) == 14
    assert timepoint_days(["D14", "post", "D14", "EOT"], overrides=over) == {
        "D14": 14, "post": 30, "EOT": None}
