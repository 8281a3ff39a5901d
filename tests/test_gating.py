"""Gate files applied to FCS files (data_loaders/formats/gating.py, data_loaders/flow.py).

Truth: the ISAC Gating-ML 2.0 compliance files (../shared/data/gating, gates for
fcs/data1.fcs, one truth file of 0/1 per gate) and, for FlowJo workspaces and Gating-ML on the
demo's FCS files, counts computed with numpy in tests/_flow_files.py.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from data_loaders.formats.gate_plots import gate_view
from data_loaders.formats.gating import GateJob, gate_file, gate_files
from tests import _flow_files as ff

DEMO_FLOW = Path(__file__).resolve().parent.parent / "sample_data" / "demo" / "flow"
# the truth files name two gates differently from the gate ids in their Gating-ML files
TRUTH_NAME = {"ParRectangle1": "ParQuadRect", "myEllipse2": None}


def _truth(shared: Path, gate: str) -> np.ndarray | None:
    name = TRUTH_NAME.get(gate, gate)
    path = shared / "gating" / "truth" / f"Results_{name}.txt"
    return np.loadtxt(path).astype(bool) if name and path.is_file() else None


def _gml_files(shared: Path) -> list[Path]:
    return sorted(p for p in (shared / "gating" / "gml").glob("*.xml")
                  if p.name != "gml_range_gate_attr_testing.xml")  # not schema-valid on purpose


def test_every_compliance_gate_counts_as_its_truth_file(shared_data):
    fcs = shared_data / "fcs" / "data1.fcs"
    checked: dict[str, int] = {}
    kinds = set()
    for gml in _gml_files(shared_data):
        res = gate_file(GateJob(str(fcs), str(gml)))
        assert res.ok, res.error
        assert res.n_events == 13367
        for pop in res.populations:
            truth = _truth(shared_data, pop.gate)
            if truth is None:
                continue
            assert pop.count == int(truth.sum()), (gml.name, pop.path)
            checked[pop.gate] = pop.count
            kinds.add(pop.gate_type)
    truth_files = {p.stem.removeprefix("Results_")
                   for p in (shared_data / "gating" / "truth").glob("Results_*.txt")}
    covered = {TRUTH_NAME.get(g, g) for g in checked}
    assert truth_files <= covered, truth_files - covered
    assert {"rectangle", "polygon", "ellipsoid", "quadrant", "boolean"} <= kinds
    # transformed (ScaleRange*, asinh/logicle/hyperlog/log) and compensated (*c, matrix files)
    assert {"ScaleRange1", "ScaleRange4c", "ScaleRange8c", "Rectangle3", "RatRange1a"} <= \
        set(checked)


def test_all_gates_file_percent_of_parent_from_counts(shared_data):
    from data_loaders.flow import populations_frame

    fcs = shared_data / "fcs" / "data1.fcs"
    job = GateJob(str(fcs), str(shared_data / "gating" / "gml" / "gml_all_gates.xml"))
    res = gate_file(job)
    rows = pl.DataFrame({"sample_id": ["S1"], "subject_id": ["P1"], "day": [0],
                         "timepoint": ["D0"], "tissue": ["blood"]})
    pops = populations_frame(rows, [job], [res])
    assert pops.height == len(res.populations) >= 49
    truth = {g: _truth(shared_data, g) for g in pops.get_column("gate").to_list()}
    for r in pops.iter_rows(named=True):
        t = truth[r["gate"]]
        assert t is not None and r["count"] == int(t.sum())
        parent_gate = r["parent"].rsplit("/", 1)[-1]
        parent_n = 13367 if r["parent"] == "/" else int(truth[parent_gate].sum())
        assert r["parent_count"] == parent_n
        assert r["pct_parent"] == pytest.approx(100 * r["count"] / parent_n)
    child = pops.filter(pl.col("gate") == "ScalePar1").row(0, named=True)
    assert child["parent"] == "/ScaleRect1" and child["pct_parent"] == pytest.approx(
        100 * 558 / 809)


def test_gate_view_membership_equals_truth(shared_data):
    fcs = shared_data / "fcs" / "data1.fcs"
    gml = shared_data / "gating" / "gml" / "gml_poly1_gate.xml"
    view = gate_view(GateJob(str(fcs), str(gml)), "/Polygon1", max_points=20000)
    truth = _truth(shared_data, "Polygon1")
    assert view.count == int(truth.sum()) and view.parent_count == 13367
    assert view.x_values.size == 13367 and int(view.inside.sum()) == view.count
    assert view.shape["kind"] == "polygon" and len(view.shape["x"]) >= 3
    assert (view.x, view.y) == ("FL2-H", "FL3-H")


def test_corrupt_and_wrong_panel_files_are_reported_and_the_rest_gate(shared_data, tmp_path):
    good = shared_data / "fcs" / "data1.fcs"
    broken = tmp_path / "broken.fcs"
    broken.write_bytes(good.read_bytes()[:5000])
    other_panel = shared_data / "fcs" / "test_comp_example.fcs"
    gml = str(shared_data / "gating" / "gml" / "gml_rect1_gate.xml")
    jobs = [GateJob(str(good), gml, label="a.fcs"), GateJob(str(broken), gml, label="broken.fcs"),
            GateJob(str(other_panel), gml, label="other.fcs"),
            GateJob(str(tmp_path / "gone.fcs"), gml, label="gone.fcs"),
            GateJob(str(good), gml, label="b.fcs")]
    res = gate_files(jobs, workers=2)
    assert [r.label for r in res] == ["a.fcs", "broken.fcs", "other.fcs", "gone.fcs", "b.fcs"]
    assert res[0].ok and res[4].ok and res[0].populations[0].count == 252
    assert "broken.fcs" in res[1].error and "cannot be read as an FCS file" in res[1].error
    assert res[2].channel == "SSC-H" and "'SSC-H'" in res[2].error and "panel" in res[2].error
    assert "not found" in res[3].error


def test_results_are_cached_by_content_and_gate_file(shared_data, tmp_path):
    fcs = tmp_path / "d.fcs"
    shutil.copy(shared_data / "fcs" / "data1.fcs", fcs)
    gml = tmp_path / "g.xml"
    shutil.copy(shared_data / "gating" / "gml" / "gml_rect1_gate.xml", gml)
    cache = tmp_path / "cache"
    seen: list[tuple[int, int]] = []
    first = gate_files([GateJob(str(fcs), str(gml))], cache_dir=cache,
                       progress=lambda d, t, _: seen.append((d, t)))
    assert not first[0].cached and seen[-1] == (1, 1)
    again = gate_files([GateJob(str(fcs), str(gml))], cache_dir=cache)
    assert again[0].cached and again[0].populations == first[0].populations
    gml.write_text(gml.read_text().replace('gating:min="20"', 'gating:min="40"'))
    changed = gate_files([GateJob(str(fcs), str(gml))], cache_dir=cache)
    assert not changed[0].cached
    assert changed[0].populations[0].count != first[0].populations[0].count


def test_off_by_one_file_is_compensated_from_its_own_spill_keyword(shared_data, tmp_path):
    from data_loaders.formats.gating import compensation_matrix, read_sample

    fcs = shared_data / "fcs" / "test_comp_example.fcs"
    sample, notes = read_sample(fcs)
    assert any("off by one" in n for n in notes)
    matrix, note = compensation_matrix(sample, "fcs")
    assert "SPILL" in note and len(matrix.detectors) == 14
    assert matrix.detectors[0] == "Ax488-A" and np.allclose(matrix.matrix, np.eye(14))
    gml = tmp_path / "cd3.xml"
    gml.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<gating:Gating-ML {ff._NS}>'
        '<gating:RectangleGate gating:id="CD3pos"><gating:dimension '
        'gating:compensation-ref="uncompensated" gating:min="1000"><data-type:fcs-dimension '
        'data-type:name="PE-Cy7-A"/></gating:dimension></gating:RectangleGate>'
        '</gating:Gating-ML>\n')
    plain = gate_file(GateJob(str(fcs), str(gml)))
    comp = gate_file(GateJob(str(fcs), str(gml), compensation="fcs"))
    assert plain.ok and comp.ok, (plain.error, comp.error)
    raw = sample.get_events(source="raw")[:, sample.pnn_labels.index("PE-Cy7-A")]
    assert plain.populations[0].count == int((raw >= 1000).sum())
    # an identity matrix: the compensated count is the same, and the note names the keyword
    assert comp.populations[0].count == plain.populations[0].count
    assert any("SPILL" in n for n in comp.notes)


def test_spillover_keyword_compensation_changes_counts(tmp_path):
    """A file whose $SPILLOVER says FITC spills 15% into PE: gating compensated from the
    keyword gives the numpy truth of compensated events."""
    import flowio

    from data_loaders.formats.fcs import read_fcs

    src = read_fcs(DEMO_FLOW / "SAA-001_Screening.fcs")
    m = ff.spill_matrix()
    spill = ",".join([str(len(ff.DETECTORS)), *ff.DETECTORS, *(f"{v:g}" for v in m.ravel())])
    out = tmp_path / "spill.fcs"
    with out.open("wb") as fh:
        flowio.create_fcs(fh, src.events.ravel().tolist(), list(src.channels),
                          opt_channel_names=list(src.markers),
                          metadata_dict={"SPILLOVER": spill})
    gml = ff.write_gatingml(tmp_path / "panel.xml")
    plain = {p.path: p.count for p in gate_file(GateJob(str(out), str(gml))).populations}
    comp = {p.path: p.count for p in
            gate_file(GateJob(str(out), str(gml), compensation="fcs")).populations}
    want = {ff.gml_path(k): v for k, v in ff.expected_counts(out, compensated=True).items()}
    assert comp == want
    assert plain == {ff.gml_path(k): v for k, v in
                     ff.expected_counts(out, compensated=False).items()}
    assert plain != comp


@pytest.mark.parametrize("name", ["SAA-001_Screening.fcs", "SAA-003_D28.fcs"])
def test_flowjo_workspace_on_demo_files(tmp_path, name):
    wsp = ff.write_workspace(tmp_path / "panel.wsp", [p.name for p in sorted(
        DEMO_FLOW.glob("*.fcs"))])
    res = gate_file(GateJob(str(DEMO_FLOW / name), str(wsp)))
    assert res.ok, res.error
    got = {p.path: p.count for p in res.populations}
    assert got == ff.expected_counts(DEMO_FLOW / name, compensated=True)
    assert got != ff.expected_counts(DEMO_FLOW / name, compensated=False)
    parents = {p.path: p.parent for p in res.populations}
    assert parents["/Lymphocytes/CD3+/CAR+"] == "/Lymphocytes/CD3+"
    assert parents["/Lymphocytes"] == ""


def test_workspace_gates_a_file_it_does_not_hold_with_the_group_tree(tmp_path):
    wsp = ff.write_workspace(tmp_path / "panel.wsp", ["SAA-001_D28.fcs"])
    res = gate_file(GateJob(str(DEMO_FLOW / "SAA-002_D28.fcs"), str(wsp)))
    assert res.ok and any("SAA-001_D28.fcs" in n for n in res.notes)
    assert {p.path: p.count for p in res.populations} == ff.expected_counts(
        DEMO_FLOW / "SAA-002_D28.fcs", compensated=True)


def test_matrix_file_compensation(tmp_path):
    gml = ff.write_gatingml(tmp_path / "panel.xml")
    comp = tmp_path / "comp.csv"
    m = ff.spill_matrix()
    comp.write_text(",".join(ff.DETECTORS) + "\n" + "\n".join(
        ",".join(f"{v:g}" for v in row) for row in m) + "\n")
    fcs = DEMO_FLOW / "SAA-002_Screening.fcs"
    res = gate_file(GateJob(str(fcs), str(gml), compensation=str(comp)))
    assert res.ok, res.error
    assert {p.path: p.count for p in res.populations} == {
        ff.gml_path(k): v for k, v in ff.expected_counts(fcs, compensated=True).items()}
    assert any("comp.csv" in n for n in res.notes)


def test_workspace_sample_found_by_its_file_uri(tmp_path):
    names = ["SAA-001_D28.fcs", "SAA-002_D28.fcs"]
    wsp = ff.write_workspace(tmp_path / "panel.wsp", names, labels=["Tube 1", "Tube 2"])
    res = gate_file(GateJob(str(DEMO_FLOW / "SAA-002_D28.fcs"), str(wsp)))
    assert res.ok and not res.notes
    assert {p.path: p.count for p in res.populations} == ff.expected_counts(
        DEMO_FLOW / "SAA-002_D28.fcs", compensated=True)


def test_a_worker_that_dies_fails_only_its_file(shared_data, tmp_path):
    good = shared_data / "fcs" / "data1.fcs"
    die = tmp_path / "die.fcs"
    shutil.copy(good, die)
    gml = str(shared_data / "gating" / "gml" / "gml_rect1_gate.xml")
    jobs = [GateJob(str(good), gml, label=f"{i}.fcs") for i in range(4)]
    jobs.insert(2, GateJob(str(die), gml, label="die.fcs"))
    res = gate_files(jobs, workers=2, fn=ff.gate_or_die)
    assert [r.label for r in res] == ["0.fcs", "1.fcs", "die.fcs", "2.fcs", "3.fcs"]
    assert "ended abruptly" in res[2].error
    assert all(r.ok and r.populations[0].count == 252 for i, r in enumerate(res) if i != 2)


def test_workers_start_under_a_script_main_as_streamlit_sets_it(shared_data, tmp_path,
                                                               monkeypatch):
    """Streamlit (and AppTest) runs the app as a module named __main__ with the script's
    __file__ and no __spec__. A multiprocessing child runs the parent's __main__ from that file
    first, so with the app script as main every worker died before gating ("ended abruptly").
    Here the stand-in script raises when run: both files must still gate (252 events each)."""
    import types

    script = tmp_path / "app_script.py"
    script.write_text("raise SystemExit('the app script must not run in a gating worker')\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    good = shared_data / "fcs" / "data1.fcs"
    gml = str(shared_data / "gating" / "gml" / "gml_rect1_gate.xml")
    jobs = [GateJob(str(good), gml, label=f"{i}.fcs") for i in range(2)]
    res = gate_files(jobs, workers=2)
    assert [r.error for r in res] == ["", ""]
    assert [r.populations[0].count for r in res] == [252, 252]
    assert sys.modules["__main__"] is fake_main
