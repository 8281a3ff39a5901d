"""views.patient without the UI: the one-patient slice, stepping, selections, the laboratory
listing and the lanes of the demo's patients."""

from __future__ import annotations

import polars as pl
import pytest

from analysis.vocab import DayWindow
from views import patient as vp


def test_patient_study_keeps_only_that_patient(demo_study):
    one = vp.patient_study(demo_study, "SAA-004")
    assert one.subject_ids == ["SAA-004"]
    for name in ("measurements", "events", "responses", "samples"):
        assert set(one.table(name).get_column("subject_id")) == {"SAA-004"}
    assert set(one.proteomics.get_column("sample_id")) <= set(one.samples["sample_id"])
    assert one.cache_key != demo_study.cache_key
    with pytest.raises(KeyError, match="NOPE"):
        vp.patient_study(demo_study, "NOPE")


def test_neighbours_and_order(demo_study):
    order = vp.patient_order(demo_study, subjects=["SAA-005", "SAA-002"])
    assert order == ["SAA-002", "SAA-005"]
    assert vp.neighbours(order, "SAA-002") == (None, "SAA-005")
    assert vp.neighbours(order, "SAA-005") == ("SAA-002", None)


def test_selections():
    ev = {"selection": {"points": [{"customdata": ["sample", "S1_D28_SCRNA", "scrna"]}]}}
    assert vp.selected_sample(ev) == "S1_D28_SCRNA"
    assert vp.selected_subject(ev) is None
    assert vp.selected_subject({"selection": {"points": [{"customdata": ["SAA-003"]}]}}) == \
        "SAA-003"
    assert vp.selected_subject({"selection": {"points": []}}) is None
    assert vp.selected_sample(None) is None


def test_lanes_follow_the_demo_story(demo_study):
    lanes = vp.lanes(demo_study, params=vp.PatientParams("SAA-004"))
    course = lanes["course"]
    assert course.filter(pl.col("kind") == "hsct").get_column("day").to_list() == [121]
    # after HSCT: no omics sample, ciclosporin GVHD prophylaxis from the day before
    assert lanes["samples"].get_column("day").max() < 121
    support = lanes["support"]
    assert support.filter(pl.col("row") == "Ciclosporin").get_column("day").to_list() == [120]
    tox = vp.lanes(demo_study, params=vp.PatientParams("SAA-003"))["toxicity"]
    crs = tox.filter((pl.col("row") == "CRS") & (pl.col("kind") == "episode"))
    assert crs.get_column("grade").to_list() == [3]
    assert "Tocilizumab 8 mg/kg" in crs["text"][0] and "Dexamethasone" in crs["text"][0]
    car = vp.lanes(demo_study, params=vp.PatientParams("SAA-005"))["car_qpcr"]
    blq = car.filter(pl.col("blq"))
    assert blq.height and (blq["plot_value"] == blq["lloq"] / 2).all()


def test_laboratory_listing_and_wide_view(demo_study):
    lab = vp.laboratory(demo_study, params=vp.PatientParams("SAA-005")).data
    anc = lab.filter(pl.col("analyte") == "ANC")
    assert (anc.filter(pl.col("value") < 0.5).get_column("ctcae_grade") == 4).all()
    assert lab.filter(pl.col("analyte") == "CRP").get_column("ctcae_grade").null_count() == \
        lab.filter(pl.col("analyte") == "CRP").height
    wide = vp.laboratory_wide(lab)
    assert wide.columns[0] == "analyte" and "d0" in wide.columns
    cell = wide.filter(pl.col("analyte").str.starts_with("ANC")).get_column("d0").item()
    assert cell.endswith("(G4)")


def test_lane_choice_and_day_window(demo_study):
    p = vp.PatientParams("SAA-001", lanes=("counts", "car_qpcr"),
                          days=DayWindow(-10, 60))
    spec = vp.timeline(demo_study, params=p)
    titles = [a.text for a in spec.fig.layout.annotations][:2]
    assert titles == ["Blood counts", "CAR-T (qPCR)"]
    lo, hi = spec.fig.layout.xaxis.range
    assert lo < -10 < 60 < hi < 65


def test_where_a_sample_opens(demo_study):
    page, label, focus, presets = vp.sample_view(demo_study, "SAA-002_D28_SCRNA")
    assert page == "immune_landscape" and "single-cell" in label
    assert focus == {"subjects": ("SAA-002",), "days": DayWindow(28, 28),
                     "label": "sample SAA-002_D28_SCRNA"}
    assert presets == {"il-color": "Shared focus"}
    page, _, _, presets = vp.sample_view(demo_study, "SAA-002_M3_TCR")
    assert page == "clones" and presets == {"cln-patient": "SAA-002"}
    assert vp.sample_view(demo_study, "SAA-002_D28_PROT")[0] == "compare"
    assert vp.sample_view(demo_study, "NOPE") is None


def test_patient_log_lanes_label_decades_only(demo_study):
    """Log lanes (counts, CAR-T, cytokines) label 1, 10, 100 ..., not "2" and "5" between."""
    from views import patient as vp

    fig = vp.timeline(demo_study, params=vp.PatientParams(subject_id="SAA-001")).fig
    logs = [fig.layout[k] for k in fig.layout if k.startswith("yaxis")
            and fig.layout[k].type == "log"]
    assert len(logs) >= 4
    assert all(a.dtick == 1 and a.exponentformat == "power" for a in logs)
