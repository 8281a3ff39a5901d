""""Show the code" (views.code): the Python snippet and the `cli.py export --view` command a
record offers make the same figure or table again when run in a fresh process."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass

import polars as pl
import pytest

from analysis.cohort import Cohort
from analysis.vocab import DayWindow
from tests.conftest import ROOT, package_env
from views import code
from views import kinetics as kv
from views.spec import FigureSpec, recipe


def _run(args: list[str], cwd: object) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False, env=package_env())


def _same_figure(path: object, spec: FigureSpec) -> None:
    written = json.loads(open(path, encoding="utf-8").read())
    assert written == json.loads(spec.fig.to_json())


@pytest.fixture(scope="module")
def model_spec(demo_study):
    cohort = Cohort(subjects=tuple(demo_study.subject_ids[:3]))
    return kv.model_figure(demo_study, cohort=cohort,
                           params=kv.KineticModelParams(min_quantified=4))


def test_recipe_stamps_view_and_cohort(model_spec, demo_study):
    assert model_spec.view == "views.kinetics.model_figure"
    assert model_spec.cohort == Cohort(subjects=tuple(demo_study.subject_ids[:3]))


def test_snippet_rebuilds_the_figure(model_spec, demo_dir, tmp_path):
    text = code.snippet(model_spec, demo_dir)
    assert "from views.kinetics import KineticModelParams, model_figure" in text
    assert "params=KineticModelParams(min_quantified=4)" in text
    script = tmp_path / "rebuild.py"
    script.write_text(text)
    done = _run([sys.executable, str(script)], tmp_path)
    assert done.returncode == 0, done.stderr
    _same_figure(tmp_path / "kin-model.json", model_spec)


def test_command_rebuilds_the_figure_and_its_data(model_spec, demo_dir, tmp_path):
    line = code.command(model_spec, demo_dir)
    assert "--view kinetics.model_figure" in line and "--patients" in line
    args = shlex.split(line)
    assert args[:3] == ["python", "cli.py", "export"]
    done = _run([sys.executable, str(ROOT / "cli.py"), *args[2:]], tmp_path)
    assert done.returncode == 0, done.stderr
    _same_figure(tmp_path / "kin-model.json", model_spec)
    csv = code.command(model_spec, demo_dir, out=str(tmp_path / "data.csv"))
    done = _run([sys.executable, str(ROOT / "cli.py"), *shlex.split(csv)[2:]], tmp_path)
    assert done.returncode == 0, done.stderr
    written = pl.read_csv(tmp_path / "data.csv")
    assert written.height == model_spec.data.height
    assert written.columns == model_spec.data.columns


def test_command_rebuilds_a_table(demo_study, demo_dir, tmp_path):
    spec = kv.model_table(demo_study, cohort=Cohort(days=DayWindow(0, 90)),
                          params=kv.KineticModelParams())
    line = code.command(spec, demo_dir)
    assert "--days=0:90" in line and line.endswith(".csv")
    done = _run([sys.executable, str(ROOT / "cli.py"), *shlex.split(line)[2:]], tmp_path)
    assert done.returncode == 0, done.stderr
    written = pl.read_csv(tmp_path / "kin-model-table.csv")
    assert written.height == spec.data.height


@dataclass(frozen=True)
class _Nested:
    lo: float = 0.0
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Params:
    gene: str = "IL6"
    window: _Nested = _Nested()
    shown: frozenset[str] = frozenset()
    limit: float | None = None


@recipe
def _view(study: object, *, cohort: Cohort | None = None, params: _Params) -> None:
    return None


def test_params_round_trip_through_json():
    params = _Params(gene="CD7", window=_Nested(lo=1.5, names=("a", "b")),
                     shown=frozenset({"x", "y"}), limit=2)
    assert code.params_from(_view, code.params_json(params)) == params
    assert code.params_json(_Params()) == "{}"
    with pytest.raises(code.CodeError, match="no field"):
        code.params_from(_view, '{"genes": "x"}')
    with pytest.raises(code.CodeError, match="not JSON"):
        code.params_from(_view, "{gene")


def test_day_windows_and_closed_vocabularies_in_params_json():
    from views import clones as vc
    from views import patient as vp

    p = vp.PatientParams("SAA-001", days=DayWindow(None, 60), shade=DayWindow(7, 28))
    text = code.params_json(p)
    assert json.loads(text) == {"subject_id": "SAA-001", "days": ":60", "shade": "7:28"}
    assert code.params_from(vp.timeline, text) == p
    # a window may be written by its name, as a link and --days take it
    named = code.params_from(vp.timeline, '{"subject_id": "P", "shade": "D28"}')
    assert named.shade == DayWindow(21, 35, label="D28")
    assert json.loads(code.params_json(named))["shade"] == "D28"
    with pytest.raises(code.CodeError, match="unknown window 'day 7'"):
        code.params_from(vp.timeline, '{"subject_id": "P", "shade": "day 7"}')
    # a value outside a Literal is named with the choices, never passed on as it is
    with pytest.raises(code.CodeError, match="'Camitta' is not one of 'NIH', 'BSH'"):
        code.params_from(vp.timeline, '{"subject_id": "P", "criteria": "Camitta"}')
    with pytest.raises(code.CodeError, match="'hill' is not one of"):
        code.params_from(vc.clone_alluvial, '{"reference": "hill"}')
    assert code.params_from(vc.clone_alluvial, '{"reference": "baseline"}').reference == \
        "baseline"


def test_snippet_writes_day_windows_as_python(model_spec):
    from views import patient as vp

    spec = FigureSpec(key="k", title="t", fig=None, data=None,
                      params=vp.PatientParams("SAA-001", shade=DayWindow(7, 28)),
                      view="views.patient.timeline", cohort=Cohort(days=DayWindow(0, 90)))
    text = code.snippet(spec, "sample_data/demo")
    assert "cohort=Cohort(days=DayWindow(0, 90))" in text
    assert "PatientParams(subject_id='SAA-001', shade=DayWindow(7, 28))" in text
    assert "from analysis.vocab import DayWindow" in text
    assert "--days=0:90" in code.command(spec, "sample_data/demo")


def test_unknown_views_say_which_exist():
    with pytest.raises(code.CodeError, match="model_figure"):
        code.resolve("kinetics.nothing")
    with pytest.raises(code.CodeError, match="no view module"):
        code.resolve("nowhere.at_all")


def test_every_page_figure_offers_the_code(app_page):
    """render.show puts "Show the code" under each record: the snippet names the view and
    the command is `cli.py export --view`."""
    at = app_page("pages/outcomes.py")
    assert not at.exception
    expanders = [e for e in at.expander if e.label == "Show the code"]
    assert len(expanders) >= 2
    codes = [c.value for e in expanders for c in e.code]
    assert any("from views.outcomes import" in c and "orr_figure(" in c for c in codes)
    assert any(c.startswith("python cli.py export --study") and "--view outcomes.orr_figure"
               in c for c in codes)


def _specs(study):
    from views import blood_counts as vbc
    from views import patient as vp
    from views import safety as sv

    rules = vbc.study_rules(study).with_(ti_window=30)
    return [
        vbc.baseline_view(study, cohort=Cohort(groups=("Responder",)),
                          params=vbc.TableParams(rules)),
        sv.patient_cytokines(study, params=sv.PatientCytokineParams(patient="SAA-002",
                                                                     days=DayWindow(-5, 40))),
        vp.timeline(study, params=vp.PatientParams(subject_id="SAA-003",
                                                   lanes=("counts", "car_qpcr"),
                                                   shade=DayWindow(7, 28))),
        vp.slide(study, params=vp.PatientParams(subject_id="SAA-003")),
        kv.exposure(study, params=kv.ExposureParams(nca=kv.NcaParams(auc_end=14),
                                                    parameter="auc_0_14"))[1],
        sv.adverse_events(study, params=sv.AdverseEventParams(categories=("infection",),
                                                              min_grade=2)),
    ]


def test_command_and_snippet_rebuild_records_of_many_views(demo_study, demo_dir, tmp_path,
                                                          monkeypatch):
    """Rule settings inside Params, a focus window, the slide layout, one record of a view
    that makes several, a table: the command and the snippet make each again."""
    from cli import main
    from components.export import csv_bytes

    monkeypatch.chdir(tmp_path)
    for spec in _specs(demo_study):
        is_fig = getattr(spec, "fig", None) is not None
        out = tmp_path / ("out.json" if is_fig else "out.csv")
        assert main(shlex.split(code.command(spec, demo_dir, out=str(out)))[2:]) == 0, spec.view
        if is_fig:
            _same_figure(out, spec)
        else:
            assert out.read_bytes() == csv_bytes(spec.data), spec.view
        ns: dict = {}
        exec(code.snippet(spec, demo_dir), ns)
        again = ns["spec"]
        assert again.key == spec.key and again.view == spec.view
        if is_fig:
            assert json.loads(again.fig.to_json()) == json.loads(spec.fig.to_json())
        else:
            assert again.data.equals(spec.data)
