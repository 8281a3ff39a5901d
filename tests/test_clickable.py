"""Click targets on per-patient heatmaps (components/clickable.py)."""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from components.clickable import clickable_cells, fill_hovertemplate
from components.figures.clinical import response_heatmap
from components.figures.quality import availability_matrix
from components.figures.safety import astct_heatmap

SUBJECTS = ["P1", "P2", "P3"]


def _responses() -> pl.DataFrame:
    return pl.DataFrame({"subject_id": ["P1", "P1", "P2"], "timepoint": ["D28", "M3", "D28"],
                         "response": ["PR", "CR", "NR"],
                         "reason": ["ANC 0.6 (d27)", "PLT 120 (d91)", "ANC 0.1 (d28)"]})


def test_each_patient_cell_gets_a_target_with_its_hover_text():
    fig = response_heatmap(_responses(), subjects=SUBJECTS, timepoints=["D28", "M3"],
                           category="response", text="reason")
    heat = fig.data[0]
    out = clickable_cells(fig, subjects=SUBJECTS)
    assert out is not fig and len(fig.data) == 1, "the view's figure is left as it was"
    assert [type(t).__name__ for t in out.data] == ["Heatmap", "Scatter"]
    targets = out.data[1]
    # one target per cell (3 patients x 2 timepoints), on the heatmap's categories
    assert list(zip(targets.x, targets.y, strict=True)) == [
        (x, y) for y in SUBJECTS for x in ("D28", "M3")]
    assert [c[0] for c in targets.customdata] == [y for y in SUBJECTS for _ in range(2)]
    # the hover text is the heatmap's own (its template shows the cell's customdata)
    assert list(targets.hovertext) == [heat.customdata[i][j] for i in range(3)
                                       for j in range(2)]
    assert targets.hovertext[1] == "P1 · M3: PLT 120 (d91)"
    assert targets.marker.color == "rgba(0,0,0,0)" and targets.showlegend is False
    assert out.layout.hoverdistance == -1


def test_a_template_with_values_and_a_side_box_is_filled_per_cell():
    daily = pl.DataFrame({"subject_id": ["P1", "P2"], "day": [1, 2], "grade": [2, 0],
                          "recorded": [2, None]})
    fig = astct_heatmap(daily, x="day", y="subject_id", z="grade", recorded="recorded")
    targets = clickable_cells(fig, subjects=SUBJECTS).data[1]
    cells = dict(zip(zip(targets.x, targets.y, strict=True), targets.hovertext, strict=True))
    assert cells[(1, "P1")] == "P1 · day 1: derived grade 2"
    assert cells[(2, "P2")] == "P2 · day 2: derived grade 0"
    extras = {(x, y): c[1] for x, y, c in zip(targets.x, targets.y, targets.customdata,
                                              strict=True)}
    assert extras[(1, "P1")] == "r2" and extras[(2, "P2")] == ""


def test_hoverinfo_text_heatmaps_in_subplots_keep_their_axes():
    avail = pl.DataFrame({"subject_id": ["P1", "P2", "P1"], "timepoint": ["D0", "D0", "D28"],
                          "assay": ["cbc", "cbc", "tcr"], "n_samples": [1, 1, 2]})
    fig = availability_matrix(avail)
    out = clickable_cells(fig, subjects=SUBJECTS)
    targets = [t for t in out.data if isinstance(t, go.Scatter)]
    heatmaps = [t for t in out.data if isinstance(t, go.Heatmap)]
    assert len(targets) == len(heatmaps) == 2
    for heat, target in zip(heatmaps, targets, strict=True):
        assert (target.xaxis or "x") == (heat.xaxis or "x")
        assert (target.yaxis or "y") == (heat.yaxis or "y")
    texts = [t for target in targets for t in target.hovertext if t]
    assert "P1 · D28 · tcr: 2 sample(s)" in texts


def test_a_heatmap_of_no_patient_is_left_alone():
    fig = go.Figure(go.Heatmap(z=[[1, 2], [3, 4]], x=["CD3", "CD19"], y=["c1", "c2"]))
    assert clickable_cells(fig, subjects=SUBJECTS) is fig
    scatter = go.Figure(go.Scatter(x=[1], y=[2]))
    assert clickable_cells(scatter, subjects=SUBJECTS) is scatter


def test_patients_on_the_columns_are_found_too():
    fig = go.Figure([go.Heatmap(z=[[1, 2]], x=["P1", "P2"], y=["IL6"]),
                     go.Scatter(x=["P1"], y=["IL6"])])
    out = clickable_cells(fig, subjects=SUBJECTS)
    targets = out.data[2]
    assert [c[0] for c in targets.customdata] == ["P1", "P2"]
    # a figure with other traces keeps plotly's hover distance
    assert out.layout.hoverdistance is None


def test_fill_hovertemplate_formats_and_indexes():
    cell = {"x": 3, "y": "P1", "z": 0.12345, "customdata": ["a", ["b", "c"]]}
    assert fill_hovertemplate("%{y} d%{x}: %{z:.2f} %{customdata[1][0]} %{text}", cell) == \
        "P1 d3: 0.12 b "


def test_a_click_on_a_target_names_its_patient():
    from components.session import clicked_patient

    fig = response_heatmap(_responses(), subjects=SUBJECTS, timepoints=["D28", "M3"],
                           category="response", text="reason")
    targets = clickable_cells(fig, subjects=SUBJECTS).data[1]
    event = {"selection": {"points": [{"curve_number": 1, "point_index": 3,
                                       "x": targets.x[3], "y": targets.y[3],
                                       "customdata": list(targets.customdata[3])}]}}
    assert clicked_patient(event, subjects=SUBJECTS, fig=fig) == "P2"
