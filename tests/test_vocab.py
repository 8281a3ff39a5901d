"""One vocabulary (analysis.vocab): tissues folded once by the loader, cell lineage from an
explicit table of names with a study setting, the CD7 threshold a setting."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from analysis import vocab
from analysis.composition import car_fraction_of_t, cd7_fractions, lineage_summary
from analysis.rules import DEFAULT_RULES, RuleError, rules_from_config


@pytest.mark.parametrize(("recorded", "tissue"), [
    ("blood", "blood"), ("Blood ", "blood"), ("PB", "blood"), ("peripheral blood", "blood"),
    ("Peripheral_Blood", "blood"), ("serum", "blood"), ("Plasma", "blood"), ("外周血", "blood"),
    ("BM", "marrow"), ("bone marrow", "marrow"), ("Bone Marrow Aspirate", "marrow"),
    ("骨髓", "marrow"), ("CSF", "csf"), ("", None), (None, None)])
def test_fold_tissue(recorded, tissue):
    assert vocab.fold_tissue(recorded) == tissue
    got = pl.DataFrame({"tissue": [recorded]}, schema={"tissue": pl.String}) \
        .select(vocab.fold_tissue_expr()).item()
    assert got == tissue


@pytest.mark.parametrize(("label", "lineage"), [
    ("CD4+ T cells", "T"), ("CD8 TEM", "T"), ("CAR-T", "T"), ("Treg", "T"), ("MAIT", "T"),
    ("gamma delta T cells", "T"), ("CD4 T", "T"), ("NK cells", "NK"),
    ("Natural killer cells", "NK"), ("CD56bright NK", "NK"), ("B", "B"),
    ("Transitional B cells", "B"), ("Tumor cells", "tumour"), ("Plasma cells", "plasma"),
    ("CD14+ Monocytes", "myeloid"), ("Erythroid progenitor", "erythroid"), ("HSPC", "progenitor"),
    ("Thymocyte-like blob", vocab.UNMAPPED), ("TAM", vocab.UNMAPPED)])
def test_lineage_from_the_explicit_table(label, lineage):
    assert vocab.lineage_of(label) == lineage


def _cells(labels: list[str]) -> pl.DataFrame:
    n = len(labels)
    return pl.DataFrame({"cell": list(range(n)), "sample_id": ["S1"] * n,
                         "subject_id": ["P1"] * n, "day": [28] * n, "cell_type": labels,
                         "car_positive": [lab == "CAR-T" for lab in labels]})


LABELS = ["CD4+ T cells", "Transitional B cells", "Tumor cells", "CAR-T", "NK cells",
          "CTL-like", "Treg"]


def test_transitional_b_and_tumour_cells_are_not_t_cells():
    """7 cells: CD4+ T cells, CAR-T and Treg are T (3); Transitional B cells (B) and Tumor
    cells (tumour) are not; CTL-like is unmapped. The old name pattern (a "T" at the start of
    a word) counted Transitional and Tumor as T: 5 T cells, CAR+ share 1/5 = 20% instead of
    1/3 = 33.3%. With the study setting cell_lineages = [["CTL-like", "T"]]: 4 T cells, 25%."""
    cells = _cells(LABELS)
    car = car_fraction_of_t(cells).row(0, named=True)
    assert (car["n_t_cells"], car["n_car"]) == (3, 1)
    assert car["car_pct_of_t"] == pytest.approx(100 / 3)
    rules = rules_from_config({"cell_lineages": [["CTL-like", "T"]]})
    assert rules.cell_lineages == (("CTL-like", "T"),)
    car = car_fraction_of_t(cells, rules=rules).row(0, named=True)
    assert car["n_t_cells"] == 4 and car["car_pct_of_t"] == pytest.approx(25.0)
    summary = dict(lineage_summary(cells).select("cell_type", "lineage").iter_rows())
    assert summary["CTL-like"] == vocab.UNMAPPED and summary["Tumor cells"] == "tumour"
    assert vocab.unmapped_labels(LABELS) == ["CTL-like"]


def test_study_lineage_setting_is_checked():
    with pytest.raises(ValueError, match="lineage 'Tcell' for 'X' is not one of"):
        vocab.lineage_table((("X", "Tcell"),))
    assert vocab.lineage_table(["Blast=tumour"])["blast"] == "tumour"
    with pytest.raises(RuleError):
        rules_from_config({"cell_lineages": "CTL-like=T"})


def test_cd7_threshold_is_a_setting():
    """CD7 expression 0.0, 0.4, 1.2, 2.0 on four T cells: above the default 0.0, three are
    CD7+ (3/4); with cd7_threshold = 1.0, two (2/4)."""
    cells = _cells(["CD4 T", "CD8 TEM", "Treg", "CD4 T"])
    cd7 = np.array([0.0, 0.4, 1.2, 2.0])
    t = pl.col("population") == "CD7+ T"
    assert cd7_fractions(cells, cd7=cd7).filter(t).item(0, "fraction") == 0.75
    strict = DEFAULT_RULES.with_(cd7_threshold=1.0)
    assert cd7_fractions(cells, cd7=cd7, rules=strict).filter(t).item(0, "fraction") == 0.5


def test_plasma_is_blood_on_every_page(write_study):
    """IL6 in plasma (day 28) and CAR_QPCR in serum: the loader folds both to blood once,
    keeps the recorded name in `specimen` and says so. The Compare layer then names the
    feature "IL6" (not "IL6 (plasma)"), the kinetics series (blood) keeps the serum qPCR, and
    a marrow value stays apart as "IL6 (marrow)". Before, Compare treated plasma as blood and
    Kinetics left serum out."""
    from analysis.differential import layer_values
    from analysis.kinetics import kinetic_series
    from data_loaders import load_study

    meas = ("subject_id,day,analyte,value,unit,tissue\n"
            "P1,28,IL6,12,pg/mL,Plasma\nP1,28,IL6,40,pg/mL,BM\n"
            "P1,0,CAR_QPCR,0,copies/ug gDNA,serum\nP1,7,CAR_QPCR,900,copies/ug gDNA,Serum\n")
    study = load_study(write_study(measurements=meas))
    m = study.measurements.sort("analyte", "day", "tissue")
    assert m.get_column("tissue").to_list() == ["blood", "blood", "blood", "marrow"]
    assert m.get_column("specimen").to_list() == ["serum", "serum", "plasma", "bm"]
    notes = " ".join(f.message for f in study.report.findings)
    assert "tissue names folded" in notes and "plasma -> blood (1 rows)" in notes
    feats = sorted(set(layer_values(study, layer="measurements").get_column("feature")))
    assert feats == ["CAR_QPCR", "IL6", "IL6 (marrow)"]
    assert kinetic_series(study).get_column("value").to_list() == [0.0, 900.0]


def test_serum_and_plasma_on_one_day_are_both_kept(write_study):
    """The same cytokine in serum and in plasma on one day is not a conflicting duplicate
    (their specimens differ); analyses average same-day values of one tissue."""
    from data_loaders import load_study

    meas = ("subject_id,day,analyte,value,unit,tissue\n"
            "P1,3,IL6,10,pg/mL,serum\nP1,3,IL6,14,pg/mL,plasma\n")
    study = load_study(write_study(measurements=meas))
    assert study.measurements.height == 2
    assert not [f for f in study.report.findings if f.severity == "error"]


# ---- response groups, categories, landmarks, day windows ------------------------------------
def test_response_vocabulary_is_ordered_and_typed():
    assert vocab.RESPONSE_GROUPS == ("Responder", "Non-responder", "Not evaluable")
    assert vocab.RESPONSE_CATEGORIES == ("CR", "PR", "NR", "NE")
    assert vocab.RESPONDING == ("CR", "PR") and vocab.ASSESSED == ("CR", "PR", "NR")
    ranked = sorted(vocab.RESPONSE_CATEGORIES, key=vocab.RESPONSE_RANK.get, reverse=True)
    assert tuple(ranked) == vocab.RESPONSE_CATEGORIES
    assert "medication" in vocab.EVENT_CATEGORIES
    assert set(vocab.AE_CATEGORIES) <= set(vocab.EVENT_CATEGORIES)


def test_landmarks_are_the_centres_of_the_named_windows():
    assert vocab.LANDMARKS == {"D28": 28, "M3": 90, "M6": 180, "M12": 365}
    assert all(vocab.WINDOWS[n].includes(d) for n, d in vocab.LANDMARKS.items())
    assert vocab.WINDOW_NAMES[0] == "baseline" and vocab.WINDOWS["baseline"].centre == 0


@pytest.mark.parametrize(("text", "lo", "hi", "centre"), [
    ("21:35", 21, 35, 28), (" 0 : 90 ", 0, 90, 45), (":28", None, 28, 28), ("61:", 61, None, 61),
    (":", None, None, 0), ("", None, None, 0), (None, None, None, 0), ("d28", 21, 35, 28),
    ("Baseline", None, 0, 0), ("-7:-1", -7, -1, -4)])
def test_day_window_parse(text, lo, hi, centre):
    w = vocab.DayWindow.parse(text)
    assert (w.lo, w.hi, w.centre) == (lo, hi, centre)
    assert vocab.DayWindow.parse(w.text) == vocab.DayWindow.of(lo, hi) or w.label in vocab.WINDOWS
    assert vocab.DayWindow.parse(w) is w


@pytest.mark.parametrize("text", ["M7", "40:20", "a:b", "28", "1:x"])
def test_day_window_parse_refuses_with_what_to_write(text):
    with pytest.raises(ValueError, match="window"):
        vocab.DayWindow.parse(text)


def test_day_window_filters_days_inclusively():
    days = pl.DataFrame({"day": [-3, 0, 1, 28, 29, None]}, schema={"day": pl.Int64})
    kept = days.filter(vocab.DayWindow.parse("0:28").contains("day")).get_column("day")
    assert kept.to_list() == [0, 1, 28]
    assert days.filter(vocab.DayWindow.parse(":").contains()).height == 6
    assert vocab.DayWindow.parse("0:28").includes(28) and not vocab.DayWindow.of(0, 28).includes(29)
    assert vocab.DayWindow.parse("0:28").label == "days 0:28"
    assert "closest to day 28" in vocab.WINDOWS["D28"].describe()


def test_day_window_is_lo_hi_and_prints_as_a_link_writes_it():
    w = vocab.DayWindow(0, 28)
    assert (w.lo, w.hi, w.label, w.centre) == (0, 28, "days 0:28", 14)
    assert str(w) == w.text == "0:28" and str(vocab.DayWindow(None, 28)) == ":28"
    assert str(vocab.DayWindow()) == ":" and vocab.DayWindow.parse(str(w)) == w
    # repr is Python that makes the window again (what "Show the code" writes)
    named = vocab.WINDOWS["D28"]
    for window in (w, vocab.DayWindow(61, None), named, vocab.DayWindow(0, 10, centre=3)):
        assert eval(repr(window), {"DayWindow": vocab.DayWindow}) == window
    assert repr(w) == "DayWindow(0, 28)" and repr(named) == "DayWindow(21, 35, label='D28')"
    assert named.unlabelled == vocab.DayWindow(21, 35) and w.unlabelled is w
    # JSON (exports, --params) as a link writes it; parse reads it back
    assert (w.as_json(), named.as_json(), vocab.DayWindow(61, None).as_json()) == \
        ("0:28", "D28", "61:")
    assert vocab.DayWindow.parse(named.as_json()) == named


@pytest.mark.parametrize("bad", [("D28", 21), (0.5, 3), (True, 3), (0, "28")])
def test_day_window_refuses_bounds_that_are_not_days(bad):
    # the old (label, lo, hi) order or text bounds fail loudly instead of shifting fields
    with pytest.raises(TypeError, match="whole study days"):
        vocab.DayWindow(*bad)


def test_day_window_takes_whole_numbers_of_any_type():
    import numpy as np

    w = vocab.DayWindow(np.int64(3), 28.0)
    assert (w.lo, w.hi) == (3, 28) and type(w.lo) is int and type(w.hi) is int


def test_day_window_filled_overlaps_and_within():
    cohort = vocab.DayWindow(0, 90)
    assert vocab.DayWindow(None, 28).filled(cohort) == vocab.DayWindow(0, 28)
    assert vocab.DayWindow().filled(cohort) == cohort
    assert vocab.DayWindow(7, 14).filled(cohort) == vocab.DayWindow(7, 14)
    assert vocab.DayWindow(100, None).filled(cohort) == vocab.DayWindow(100, None)  # not 100:90
    assert vocab.DayWindow(None, 5).filled(None) == vocab.DayWindow(None, 5)
    courses = pl.DataFrame({"day": [-10, 5, 40, 95], "end_day": [-2, 8, 120, 99]})
    kept = courses.filter(vocab.DayWindow(0, 90).overlaps("day", "end_day"))
    assert kept.get_column("day").to_list() == [5, 40]
    assert courses.filter(vocab.DayWindow().overlaps()).height == 4
    assert vocab.DayWindow(None, 28).within(-5.5, 100.0) == (-5.5, 28)
    assert vocab.DayWindow(3, 4).bounds == (3, 4)
