"""components.links: widget values as query-string text and back (a link's page options)."""

from __future__ import annotations

import pytest

from components.links import decode_option, encode_option


@pytest.mark.parametrize(("value", "shape", "options", "kind"), [
    ("CAR_QPCR", "one", ("CAR_QPCR", "CAR_PCT"), str),
    (28, "one", (7, 14, 28), int),
    (True, "one", None, bool),
    (False, "one", None, bool),
    (0.05, "one", None, float),
    (["IL6", "IFNG"], "many", ("IL6", "IFNG", "IL10"), str),
    ([], "many", ("IL6", "IFNG"), str),
    ((0, 28), "range", None, int),
    ((-7, 90), "range", None, int),
    (None, "one", (None, "CD7"), str),
])
def test_values_round_trip(value, shape, options, kind):
    text = encode_option(value, shape=shape, options=options)
    raw = text if isinstance(text, list) else [text]
    got, problems = decode_option(raw, shape=shape, options=options, kind=kind)
    assert problems == []
    assert got == value and type(got) is type(value)


def test_a_choice_the_study_lacks_is_named():
    got, problems = decode_option(["NOPE"], options=("CD7", "CD3"))
    assert got is None and "'NOPE'" in problems[0]
    got, problems = decode_option(["IL6", "XYZ"], shape="many", options=("IL6", "IFNG"))
    assert got == ["IL6"] and "'XYZ'" in problems[0]


def test_numbers_are_parsed_and_clamped():
    assert decode_option(["abc"], kind=int)[0] is None
    got, problems = decode_option(["500"], kind=int, bounds=(0, 365))
    assert got == 365 and "outside 0..365" in problems[0]
    got, problems = decode_option(["-50", "30"], shape="range", kind=int, bounds=(-30, 365))
    assert got == (-30, 30) and problems
    assert decode_option(["30", "10"], shape="range", kind=int)[0] is None
    assert decode_option(["30"], shape="range", kind=int)[0] is None


def test_a_closed_vocabulary_as_a_literal_names_what_is_outside_it():
    from typing import Literal

    from analysis.vocab import RESPONSE_CRITERIA, ResponseCriteria

    got, problems = decode_option(["BSH"], options=ResponseCriteria)
    assert got == "BSH" and problems == []
    got, problems = decode_option(["Camitta"], options=ResponseCriteria)
    assert got is None and "'Camitta' (not among the choices here)" in problems[0]
    got, problems = decode_option(["NIH", "EBMT"], shape="many", options=ResponseCriteria)
    assert got == ["NIH"] and "'EBMT'" in problems[0]
    assert encode_option("NIH", options=ResponseCriteria) == "NIH"
    assert decode_option(["1"], options=Literal[1, 2])[0] == 1      # matched by text
    assert RESPONSE_CRITERIA == ("NIH", "BSH")
    with pytest.raises(TypeError, match="choices or a Literal"):
        decode_option(["NIH"], options="NIH")
