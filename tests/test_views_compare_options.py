"""views/compare_options.py: the defaults the Compare page opens on (a linked layer the study
lacks falls back, a new focus opens the layer and window that hold it), the group choices and
labels, and the names a page needs from its choices."""

from __future__ import annotations

from analysis.cohort import Cohort, Focus
from analysis.vocab import DayWindow
from views import compare as cv
from views import compare_options as co


def test_opening_choices(demo_study):
    assert co.opening_choices(demo_study) == (co.default_layer(demo_study), "D28")
    assert co.opening_choices(demo_study, layer="rna", window="M3") == ("rna", "M3")
    assert co.opening_choices(demo_study, layer="no such layer", window="M6") == \
        (co.default_layer(demo_study), "M6")
    clicked = Focus(("SAA-002",), DayWindow(90, 90), "sample SAA-002_M3_RNA")
    assert co.opening_choices(demo_study, layer="proteomics", window="D28",
                              focus=clicked) == ("rna", "M3")
    wide = Focus(("SAA-002",), DayWindow(20, 100))       # two windows: the chosen window stays
    assert co.opening_choices(demo_study, layer="rna", window="D14", focus=wide) == \
        ("proteomics", "D14")


def test_group_choices_and_labels(demo_study):
    ids = demo_study.subject_ids
    assert co.patient_choices(demo_study) == list(ids)
    assert co.other_patients(demo_study, ids[:2]) == ids[2:]
    assert co.other_values(["a", "b", "c"], "b") == ["a", "c"]
    assert co.grouping_label("response_group") == "Responders vs non-responders"
    assert co.grouping_label("sex") == "sex"
    assert co.panel_choices(demo_study)[0] is None
    assert co.panel_choices(demo_study)[1:] == co.panels(demo_study)
    assert co.panel_label(None) == "all panels" and co.panel_label("cbc") == "cbc"
    assert co.WINDOW_CHOICES[-1] == co.CUSTOM_WINDOW and co.DEFAULT_WINDOW in co.WINDOW_CHOICES
    assert set(co.EFFECT_LABELS) == {"hedges_g", "cliffs_delta"}


def test_notes_names_and_feature(demo_study):
    assert co.day_window_note(None) is None and co.day_window_note(Cohort()) is None
    assert "trajectory below" in co.day_window_note(Cohort(days=DayWindow(0, 90)))
    params = co.CompareParams(layer="rna", window="21:35")
    assert co.file_stem(demo_study, params) == f"{demo_study.name}_rna_21-35"
    assert co.feature_choice(["A", "B"], "B") == "B"
    assert co.feature_choice(["A", "B"], "gone") == "A"
    assert co.feature_choice(["A", "B"], None) == "A"


def test_old_import_path_keeps_working():
    assert cv.CompareParams is co.CompareParams and cv.focus_defaults is co.focus_defaults
    assert set(co.__all__) <= set(cv.__all__)
