"""views/compare.py on the demo: a custom split records its patient lists in the Params, so an
exported volcano is made again from the provenance inside the file; the focus from a clicked
sample picks the layer and window and is marked in the heatmap and the course."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from analysis.cohort import Cohort, Focus
from analysis.vocab import DayWindow
from components import export
from data_loaders import load_study
from views import code
from views import compare as cv
from views.shared import clear_shared

SPLIT = cv.CompareParams(group_by=cv.CUSTOM_SPLIT, patients_a=("SAA-001", "SAA-004", "SAA-005"),
                         patients_b=("SAA-002", "SAA-003"))


def _fresh(demo_dir):
    clear_shared()               # recompute: nothing shared with the first build
    return load_study(demo_dir)


def _rebuilt_from(meta: dict, demo_dir) -> object:
    params = code.params_from(cv.volcano, meta["params"])
    assert meta["cohort"] == Cohort().describe()
    return cv.volcano(_fresh(demo_dir), cohort=Cohort(), params=params)


def test_custom_split_volcano_rebuilt_from_its_provenance(demo_study, demo_dir):
    spec = cv.volcano(demo_study, params=SPLIT)
    assert spec.params.patients_a == SPLIT.patients_a and spec.view == "views.compare.volcano"
    assert "SAA-001, SAA-004, SAA-005 vs SAA-002, SAA-003" in spec.caption
    ranked = spec.data.row(0, named=True)
    assert ranked["n_group_a"] == 3 and ranked["n_group_b"] == 2
    prov = export.Provenance.of(demo_study, Cohort(), params=spec.params, figure=spec.title)
    meta = json.loads(prov.to_json())
    assert meta["params"]["patients_b"] == ["SAA-002", "SAA-003"]
    again = _rebuilt_from(meta, demo_dir)
    assert again.params == spec.params
    assert json.loads(again.fig.to_json()) == json.loads(spec.fig.to_json())
    assert again.data.equals(spec.data)
    # the lists are what made it: the response groups draw another volcano
    other = cv.volcano(demo_study, params=cv.CompareParams())
    assert json.loads(other.fig.to_json()) != json.loads(spec.fig.to_json())


def test_exported_png_carries_the_split(demo_study, demo_dir, export_ready):
    spec = cv.volcano(demo_study, params=SPLIT)
    prov = export.Provenance.of(demo_study, Cohort(), params=spec.params, figure=spec.title)
    png = export.export_figure(spec.fig, "png", provenance=prov)
    meta = json.loads(export.png_text(png)["provenance"])
    again = _rebuilt_from(meta, demo_dir)
    assert json.loads(again.fig.to_json()) == json.loads(spec.fig.to_json())


def test_summary_and_views_share_one_comparison(demo_study):
    got = cv.summary(demo_study, params=cv.CompareParams())
    assert (got.n_a, got.n_b) == (3, 2) and got.n_tested == got.n_features == 100
    assert got.label_a == "Responder" and got.empty is None
    ranked = cv.ranked(demo_study, params=cv.CompareParams())
    assert set(ranked.data.get_column("feature").head(4)) == {"IFNG", "CXCL9", "CXCL10",
                                                             "CXCL11"}
    with pytest.raises(ValueError, match="patients in both groups: SAA-001"):
        cv.summary(demo_study, params=replace(SPLIT, patients_b=("SAA-001", "SAA-002")))
    too_few = cv.summary(demo_study, params=replace(SPLIT, patients_b=("SAA-002",)))
    assert too_few.n_tested == 0 and too_few.untested


def test_focus_from_a_clicked_sample(demo_study):
    rna = Focus(("SAA-002",), DayWindow(90, 90), "sample SAA-002_M3_RNA")
    assert cv.focus_defaults(demo_study, rna) == {"layer": "rna", "window": "M3"}
    prot = replace(rna, label="sample SAA-002_M3_PROT")
    assert cv.focus_defaults(demo_study, prot) == {"layer": "proteomics", "window": "M3"}
    assert cv.focus_defaults(demo_study, Focus(("SAA-002",), DayWindow(20, 100))) == {
        "layer": "proteomics"}                      # days over two windows: no window
    assert cv.focus_defaults(demo_study, None) == {}

    params = cv.CompareParams(layer="rna", window="M3")
    heat = cv.heatmap(demo_study, params=params, focus=rna)
    rows = list(heat.fig.data[1].y)
    assert [r for r in rows if r.startswith("<b>")] == [r for r in rows if "SAA-002" in r]
    assert "marked" in heat.caption
    plain = cv.heatmap(demo_study, params=params)
    assert not any(str(r).startswith("<b>") for r in plain.fig.data[1].y)

    course = cv.course(demo_study, params=params, focus=rna)
    focus_traces = [t for t in course.fig.data if t.name == "focus: SAA-002"]
    assert len(focus_traces) == 1
    assert set(focus_traces[0].x) == set(course.data.filter(
        course.data["subject_id"] == "SAA-002")["day"].to_list())
    assert any(s.x0 <= 90 <= s.x1 for s in course.fig.layout.shapes if s.fillcolor == "#000000")
    note = cv.focus_note(demo_study, params=params, focus=rna)
    assert "SAA-002 is in group Responder" in note and "does not hold" not in note
    far = cv.focus_note(demo_study, params=replace(params, window="D28"), focus=rna)
    assert "does not hold the focus days" in far
    split = cv.focus_note(demo_study, params=SPLIT, focus=Focus(("SAA-003",), DayWindow(28, 28)))
    assert "SAA-003 is in group Group B" in split


def test_show_the_code_rebuilds_the_custom_split_volcano(demo_study, demo_dir, tmp_path):
    import shlex
    import subprocess
    import sys

    from tests.conftest import ROOT, package_env

    spec = cv.volcano(demo_study, cohort=Cohort(days="0:"), params=SPLIT)
    text = code.snippet(spec, demo_dir)
    assert "patients_a=('SAA-001', 'SAA-004', 'SAA-005')" in text
    script = tmp_path / "rebuild.py"
    script.write_text(text)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False, env=package_env())
    assert done.returncode == 0, done.stderr
    want = json.loads(spec.fig.to_json())
    assert json.loads((tmp_path / "volcano.json").read_text(encoding="utf-8")) == want
    (tmp_path / "volcano.json").unlink()
    args = shlex.split(code.command(spec, demo_dir))
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args[2:]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "volcano.json").read_text(encoding="utf-8")) == want
