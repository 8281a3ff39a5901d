"""views/cytometry.py: one record per gate plot and per FlowSOM figure (so "Show the code"
rebuilds each), the option lists the page offers, and the cohort narrowing them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from analysis.cohort import Cohort
from data_loaders import load_study
from tests.conftest import ROOT
from tests.test_flow import gated_demo  # noqa: F401 - the gated study fixture
from views import code
from views import cytometry as cy


def test_gate_plots_one_record_per_gate(gated_demo):  # noqa: F811
    study = load_study(gated_demo)
    ids = cy.gated_samples(study)
    assert ids and cy.gated_samples(study, cohort=Cohort(subjects=("SAA-001",))) == [
        s for s in ids if s.startswith("SAA-001")]
    gates = cy.gate_names(study, sample_id=ids[0])
    specs = [cy.gate_plot(study, params=cy.GatePlotParams(ids[0], g)) for g in gates]
    assert [s.title for s in specs] == gates
    assert all(s.view == "views.cytometry.gate_plot" for s in specs)
    with pytest.raises(KeyError, match="no gate"):
        cy.gate_plot(study, params=cy.GatePlotParams(ids[0], "/nowhere"))
    names = cy.population_names(study)
    trend = cy.population_trend(study)
    assert trend.title == f"{names[-1]} over time"
    assert set(cy.timeline_gates(study)) <= set(names)


def test_flowsom_records_share_one_run_and_rebuild(demo_study, demo_dir, tmp_path):
    setup = cy.flowsom_setup(demo_study, per_sample=500)
    params = cy.FlowSomViewParams(setup.markers[:4], n_metaclusters=5, per_sample=500)
    heat = cy.flowsom_medians(demo_study, params=params)
    bars = cy.flowsom_abundance(demo_study, params=params)
    groups = cy.flowsom_by_group(demo_study, params=params)
    assert (heat.key, bars.key, groups.key) == ("cy-som-heat", "cy-som-bars", "cy-som-groups")
    assert bars.data.get_column("cell_type").n_unique() <= 5
    script = tmp_path / "rebuild.py"
    script.write_text(code.snippet(heat, demo_dir), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "cy-som-heat.json").read_text(encoding="utf-8"))
    assert written == json.loads(heat.fig.to_json())
