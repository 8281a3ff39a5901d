"""Screen rendering rules of components.theme: tables show an empty cell where a value is
missing (never "None"), units with the micro sign, the CSV frame untouched."""

from __future__ import annotations

import polars as pl

from components.theme import display_frame, display_unit


def test_text_cells_are_blank_units_get_the_micro_sign_numbers_stay_numbers():
    df = pl.DataFrame({"subject_id": ["A", None], "fold_expansion": [12.3456789, None],
                       "unit": ["copies/ug gDNA", "cells/uL"]})
    view = display_frame(df)
    assert view["subject_id"].to_list() == ["A", ""]
    assert view["fold_expansion"].dtype == pl.Float64           # the grid blanks the null
    assert view["unit"].to_list() == ["copies/µg gDNA", "cells/µL"]
    assert df["unit"].to_list() == ["copies/ug gDNA", "cells/uL"]  # the input is not changed


def test_show_table_blanks_missing_numbers():
    """render.show_table draws a missing number as a blank cell (the grid's placeholder),
    keeps it a number, and fills empty text cells."""
    from streamlit.testing.v1 import AppTest

    def app() -> None:
        import polars as pl

        from components import render

        render.show_table(pl.DataFrame({"tlast": [28, None], "note": ["x", None]}),
                          key="t", name="t")

    at = AppTest.from_function(app).run(timeout=60)
    assert not at.exception
    grid = at.dataframe[0]
    assert grid.proto.placeholder == ""
    assert grid.value["tlast"].isna().tolist() == [False, True]
    assert grid.value["note"].tolist() == ["x", ""]


def test_a_page_format_is_left_alone():
    df = pl.DataFrame({"unit": ["ug", None]})
    assert display_frame(df, keep={"unit": {"label": "Unit"}})["unit"].to_list() == ["ug", None]
    assert display_frame(df.head(0)).schema == df.schema


def test_display_unit_keeps_gene_names():
    assert display_unit("copies/ug gDNA") == "copies/µg gDNA"
    assert display_unit("LUM") == "LUM" and display_unit("ug") == "µg"
