"""The cohort filter (analysis.cohort): its day window is a vocab.DayWindow, read from the same
"lo:hi" text as everywhere, and applied to frames inclusively."""

from __future__ import annotations

import polars as pl
import pytest

from analysis.cohort import GROUPS, Cohort, apply_cohort
from analysis.vocab import RESPONSE_GROUPS, DayWindow


def test_cohort_days_are_a_day_window():
    c = Cohort.of(subjects=["P1"], days="0:28")
    assert c.days == DayWindow(0, 28) == Cohort(subjects=("P1",), days="0:28").days
    assert Cohort.of(days=":90").days.text == ":90"
    # a named window keeps its days only: the same filter as its lo:hi
    assert Cohort.of(days="D28") == Cohort(days=DayWindow(21, 35)) == Cohort(days="21:35")
    assert Cohort().days.is_everything and Cohort().is_everything
    assert not Cohort.of(days="61:").is_everything
    assert c.describe() == "patients P1; days 0..28"
    assert GROUPS == RESPONSE_GROUPS
    with pytest.raises(ValueError, match="window"):
        Cohort.of(days="28")


def test_apply_cohort_keeps_the_window_days_inclusive():
    frame = pl.DataFrame({"subject_id": ["P1"] * 5, "day": [-1, 0, 14, 28, 29]})
    groups = pl.DataFrame({"subject_id": ["P1"], "response_group": ["Responder"]})
    kept = apply_cohort(frame, Cohort.of(days="0:28"), groups=groups)
    assert kept.get_column("day").to_list() == [0, 14, 28]
    assert apply_cohort(frame, Cohort(), groups=groups).height == 5


def test_focus_days_are_a_day_window():
    from analysis.cohort import Focus

    f = Focus(("SAA-002",), DayWindow(14, 28), "lassoed cells")
    assert f.days == DayWindow.of(14, 28) and f.describe() == "lassoed cells: SAA-002, days 14..28"
    assert Focus(("P1",), DayWindow(None, 90)).describe() == "focus: P1, days ..90"
    assert Focus(("P1",), ":90") == Focus(("P1",), DayWindow(None, 90, "first three months"))
    with pytest.raises(TypeError, match="one DayWindow"):
        Focus(("P1",), 14, 28)               # two bounds where one window goes
    assert Focus(("P1",)).days.is_everything and Focus(("P1",)).describe() == "focus: P1"
