"""Patient profiles as files: `cli.py export --patient-profiles` writes one PDF page per patient
(bookmarked, with the patient's facts), and one patient's view as a one-slide PowerPoint."""

from __future__ import annotations

import io

from views import patient as vp


def test_cli_patient_profiles_one_page_per_patient(export_ready, demo_dir, demo_study,
                                                  tmp_path, capsys):
    from pypdf import PdfReader

    from cli import main

    out = tmp_path / "profiles.pdf"
    assert main(["export", "--patient-profiles", "--study", str(demo_dir),
                 "--out", str(out)]) == 0
    reader = PdfReader(str(out))
    assert len(reader.pages) == len(demo_study.subject_ids) == 5
    assert [o.title for o in reader.outline] == [f"Patient {s}" for s in demo_study.subject_ids]
    box = reader.pages[0].mediabox
    assert box.height > box.width          # portrait: the lanes need the height
    text = reader.pages[2].extract_text()
    assert "SAA-003" in text and "Best response" in text and "Samples" in text
    assert "wrote 5 patient profile pages" in capsys.readouterr().out


def test_cli_patient_profiles_follow_the_cohort(export_ready, demo_dir, tmp_path):
    from pypdf import PdfReader

    from cli import main

    out = tmp_path / "two.pdf"
    assert main(["export", "--patient-profiles", "--study", str(demo_dir), "--out", str(out),
                 "--patients", "SAA-002,SAA-004"]) == 0
    assert len(PdfReader(str(out)).pages) == 2
    assert main(["export", "--patient-profiles", "--study", str(demo_dir),
                 "--out", str(tmp_path / "x.pptx")]) != 0


def test_patient_slide_is_one_slide(export_ready, demo_study):
    from pptx import Presentation

    from components import profiles

    spec = vp.slide(demo_study, params=vp.PatientParams("SAA-001"))
    # the whole view: every lane the page draws (the course as lines), in two columns of
    # lanes on one day axis, no legends
    page = vp.timeline(demo_study, params=vp.PatientParams("SAA-001"))
    page_lanes = [a.text for a in page.fig.layout.annotations][:12]
    titles = [a.text for a in spec.fig.layout.annotations]
    assert set(titles[:11]) == set(page_lanes) - {"Course"} and len(page_lanes) == 12
    assert {a.x for a in spec.fig.layout.annotations[:11]} == {
        spec.fig.layout.xaxis.domain[0], spec.fig.layout.xaxis2.domain[0]}
    axes = [spec.fig.layout[k] for k in spec.fig.layout if k.startswith("xaxis")]
    assert len({a.matches for a in axes if a.matches}) == 1        # one day axis for all
    assert sum(a.matches is None for a in axes) == 1
    assert "Last contact" in titles and spec.fig.layout.showlegend is False
    assert "Best response (NIH): CR" in spec.caption
    prs = Presentation(io.BytesIO(profiles.build_patient_slide(spec)))
    assert len(prs.slides) == 1
    assert prs.slides[0].shapes.title.text == "Patient SAA-001"
