"""The Patient page (pages/patient.py, views/patient.py) on every demo patient: no exception,
the lanes the demo has for the patient, the header facts, the laboratory listing, stepping
through patients and the patient in the URL."""

from __future__ import annotations

import json

import pytest

from sample_data.generate import generate_study

DEMO_IDS = [f"SAA-00{i}" for i in range(1, 6)]
ALL_LANES = ["Course", "Response", "Blood counts", "Transfusions and medications",
             "CRS, ICANS, infections", "CAR-T (qPCR)", "CAR-T (flow)", "Cytokines",
             "CRP, ferritin", "Samples", "Somatic VAF", "Top TCR clones"]


def _timeline(at) -> dict:
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    hits = [c for c in charts if "Day from CAR-T infusion" in json.dumps(c.get("layout", {}))
            and len(c.get("data", [])) > 10]
    assert hits, "no timeline figure on the page"
    return hits[0]


def _lane_titles(fig: dict) -> list[str]:
    return [a["text"] for a in fig["layout"].get("annotations", []) if a.get("text") in
            ALL_LANES]


@pytest.mark.parametrize("subject", DEMO_IDS)
def test_patient_page_on_every_demo_patient(app_page, subject):
    at = app_page("pages/patient.py", query={"patient": subject})
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="pt-subject").value == subject
    fig = _timeline(at)
    lanes = _lane_titles(fig)
    # every demo patient has every layer (SAA-004's omics stop at HSCT but exist before it)
    assert lanes == ALL_LANES
    assert subject in fig["layout"]["title"]["text"]
    text = " ".join(c.value for c in at.caption)
    assert "Best response (NIH)" in text and "CRS max grade (ASTCT)" in text
    assert "Cmax (qPCR)" in text
    # the laboratory listing: analyte rows with CTCAE grades in the cells
    frames = [d.value for d in at.dataframe]
    listing = next(f for f in frames if "analyte" in f.columns)
    assert any(str(v).startswith("ANC") for v in listing["analyte"])
    assert listing.astype(str).apply(lambda c: c.str.contains(r"\(G\d\)")).any().any()


def test_header_facts_follow_the_demo_story(app_page):
    at = app_page("pages/patient.py", query={"patient": "SAA-003"})
    text = " ".join(c.value for c in at.caption)
    assert "grade 3" in text          # SAA-003: CRS grade 3 (sample_data/README.md)
    fig = _timeline(at)
    names = {t.get("name") for t in fig["data"]}
    assert {"Tocilizumab", "Corticosteroids"} <= names   # its CRS treatment
    assert "below LLOQ (at LLOQ/2)" in names


def test_previous_next_and_url(app_page):
    at = app_page("pages/patient.py", query={"patient": "SAA-002"})
    at.button(key="pt-next").click().run()
    assert not at.exception
    assert at.selectbox(key="pt-subject").value == "SAA-003"
    assert at.query_params["patient"] == ["SAA-003"] or at.query_params["patient"] == "SAA-003"
    at.button(key="pt-prev").click().run()
    at.button(key="pt-prev").click().run()
    assert at.selectbox(key="pt-subject").value == "SAA-001"
    assert at.button(key="pt-prev").disabled


def test_unknown_patient_in_link_says_so(app_page):
    at = app_page("pages/patient.py", query={"patient": "NOPE-9"})
    assert not at.exception
    assert any("NOPE-9" in w.value for w in at.warning)
    assert at.selectbox(key="pt-subject").value == "SAA-001"


def test_patient_without_omics_shows_only_its_lanes(app_page, tmp_path):
    folder = generate_study(tmp_path / "s", patients=2, cells=0, seed=3)
    for name in ("samples.csv", "proteomics.csv", "rna_counts.csv", "mutations.csv",
                 "tcr.csv", "single_cell.h5ad"):
        (folder / name).unlink(missing_ok=True)
    for p in (folder / "flow").glob("*"):
        p.unlink()
    at = app_page("pages/patient.py", study=folder)
    assert not at.exception, [e.value for e in at.exception]
    lanes = _lane_titles(_timeline(at))
    assert "Samples" not in lanes and "Top TCR clones" not in lanes
    assert "Blood counts" in lanes and "CAR-T (qPCR)" in lanes


def test_patient_with_patients_table_only(app_page, tmp_path):
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "patients.csv").write_text("subject_id,age,sex\nP1,40,F\nP2,51,M\n")
    at = app_page("pages/patient.py", study=folder)
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="pt-subject").value == "P1"
    text = " ".join(c.value for c in at.caption)
    assert "Age: **40 y**" in text
