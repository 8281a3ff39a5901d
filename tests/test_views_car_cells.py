"""views/car_cells.py option logic: the CAR+ cut the page adjusts becomes a fixed cut only when
it differs from the study's, and the composition comparison the page picks becomes its Params."""

from __future__ import annotations

from views import car_cells as car


def test_an_unchanged_cut_keeps_the_study_rule(demo_study):
    base = car.car_cut(demo_study)
    assert base.feature is not None
    at = car.cut_value(base)
    assert car.car_params(base, cut_at=at) == car.CarParams()
    moved = car.car_params(base, cut_at=at + 0.5, window="Day 61+")
    assert moved == car.CarParams(threshold=at + 0.5, window="Day 61+")
    assert car.DEFAULT_WINDOW in car.WINDOW_LABELS


def test_composition_params_from_the_page_choice():
    options = car.comparisons("Day 1-60")
    assert options[0] == "Responders vs non-responders" and "with Day 1-60" not in options
    assert car.composition_params(window="Day 1-60", against=options[0]) == \
        car.CompositionParams(window="Day 1-60")
    assert car.composition_params(window="Day 1-60", against="with Day 61+",
                                  transform="logit") == \
        car.CompositionParams(window="Day 1-60", window_b="Day 61+", transform="logit")
