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


def test_patient_lines_never_yellow_or_the_platelet_rug_orange():
    """Patient and analyte lines use the patient palette: no yellow (unreadable on white) and
    not the orange of the platelet-transfusion rug; the first five hues are distinct."""
    from components.figures.cytokines import cohort_cytokine_panels
    from components.figures.safety import cytokine_panels
    from components.theme import OKABE_ITO, PATIENT_PALETTE, PLT_RUG_COLOR

    yellow = OKABE_ITO[3]
    assert yellow not in PATIENT_PALETTE and PLT_RUG_COLOR not in PATIENT_PALETTE
    assert len(set(PATIENT_PALETTE[:5])) == 5
    ids = [f"P{i}" for i in range(9)]
    df = pl.DataFrame({"subject_id": ids, "analyte": "IL6", "day": 1, "value": 5.0})
    for fig in (cohort_cytokine_panels(df), cytokine_panels(df)):
        used = {t.line.color for t in fig.data}
        assert len(used) == 9 and not used & {yellow, PLT_RUG_COLOR}


def test_colour_patients_by_response_group_is_one_study_setting(demo_dir, tmp_path):
    """study.toml [display] colour_patients_by = "response_group": every per-patient figure
    built through views.common.colors draws each patient in its group's colour."""
    import shutil

    import pytest

    from components.theme import GROUP_COLORS
    from data_loaders import load_study
    from views import common
    from views import kinetics as vk

    folder = tmp_path / "demo"
    shutil.copytree(demo_dir, folder, ignore=shutil.ignore_patterns(".cache"))
    with (folder / "study.toml").open("a") as fh:
        fh.write('\n[display]\ncolour_patients_by = "response_group"\n')
    study = load_study(folder)
    assert common.colour_by(study) == "response_group"
    colours = common.colors(study)
    assert colours["SAA-001"] == colours["SAA-002"] == GROUP_COLORS["Responder"]
    assert colours["SAA-004"] == colours["SAA-005"] == GROUP_COLORS["Non-responder"]
    spec = vk.curve(study, params=vk.CurveParams())
    lines = {t.name: t.line.color for t in spec.fig.data if t.name in colours}
    assert len(lines) == 5 and all(c == colours[n] for n, c in lines.items())
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    text = (bad / "study.toml").read_text().replace('"response_group"', '"rainbow"')
    (bad / "study.toml").write_text(text)
    with pytest.raises(ValueError, match="colour_patients_by"):
        common.colors(load_study(bad))


def test_blood_count_table_headers_read_as_labels():
    from components.theme import column_label

    assert column_label("days_anc_le_0_5") == "Days ANC ≤ 0.5"
    assert column_label("anc_recovery_day") == "ANC recovery (day)"
    assert column_label("baseline_anc") == "Baseline ANC (10⁹/L)"
    assert column_label("last_rbc_transfusion_day") == "Last RBC transfusion (day)"


def test_log_axis_within_one_decade_still_has_labels():
    """TNF-alpha between 2.5 and 8.8 pg/mL: no power of ten in range, so 2, 3, 5, 7 label
    the axis; a range across decades keeps decade labels only."""
    import plotly.graph_objects as go

    from components.theme import label_decades

    narrow = go.Figure(go.Scatter(x=[1, 2], y=[2.5, 8.8]))
    narrow.update_yaxes(type="log")
    label_decades(narrow)
    assert [v for v in narrow.layout.yaxis.tickvals if 2.5 <= v <= 8.8] == [3.0, 5.0, 7.0]
    wide = go.Figure(go.Scatter(x=[1, 2], y=[2.5, 880]))
    wide.update_yaxes(type="log")
    label_decades(wide)
    assert wide.layout.yaxis.dtick == 1 and wide.layout.yaxis.tickvals is None


def test_powers_of_ten_in_units_are_superscripts_on_screen():
    from components.theme import column_label

    assert display_unit("Absolute neutrophil count (10^9/L)") == \
        "Absolute neutrophil count (10⁹/L)"
    assert column_label("WBC (10^9/L)") == "WBC (10⁹/L)"
