"""A study folder with FCS files and a gate file opens with populations and measurements
(data_loaders/flow.py through load_study)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from data_loaders import load_study
from data_loaders.flow import match_population
from tests import _flow_files as ff

FLOW_TOML = """
[flow]
gating = "flow/panel.wsp"
reference = "CD3+"
workers = 1

[flow.analytes]
".../CD3+/CAR+" = { analyte = "CAR_PCT", of = "CD3+" }
".../CD3+/CD7-" = "CD7NEG_T_PCT"
".../CD3-/NK" = { analyte = "NK_ABS", count = "ALC", of = "Lymphocytes" }
"""


@pytest.fixture
def gated_demo(tmp_path: Path, demo_dir: Path) -> Path:
    study = tmp_path / "study"
    shutil.copytree(demo_dir, study, ignore=shutil.ignore_patterns(".cache", "*.h5ad"))
    ff.write_workspace(study / "flow" / "panel.wsp",
                       [p.name for p in sorted((study / "flow").glob("*.fcs"))])
    toml = study / "study.toml"
    toml.write_text(toml.read_text() + FLOW_TOML)
    return study


def test_match_population():
    paths = ["/Lymphocytes", "/Lymphocytes/CD3+", "/Lymphocytes/CD3+/CAR+", "/B/CAR+"]
    assert match_population("/Lymphocytes/CD3+", paths) == "/Lymphocytes/CD3+"
    assert match_population(".../CD3+/CAR+", paths) == "/Lymphocytes/CD3+/CAR+"
    assert match_population("CD3+", paths) == "/Lymphocytes/CD3+"
    assert match_population("CAR+", paths) is None        # ambiguous
    assert match_population("NK", paths) is None


def test_study_with_workspace_has_populations_and_measurements(gated_demo):
    study = load_study(gated_demo)
    pops = study.populations
    assert pops.height == 10 * 6
    assert pops.get_column("sample_id").n_unique() == 10
    row = pops.filter((pl.col("sample_id") == "SAA-003_D28_FLOW")
                      & (pl.col("population") == "/Lymphocytes/CD3+/CAR+")).row(0, named=True)
    want = ff.expected_counts(gated_demo / "flow" / "SAA-003_D28.fcs", compensated=True)
    assert row["count"] == want["/Lymphocytes/CD3+/CAR+"]
    assert row["parent"] == "/Lymphocytes/CD3+" and row["subject_id"] == "SAA-003"
    assert row["day"] == 28
    assert row["pct_parent"] == pytest.approx(100 * row["count"] / want["/Lymphocytes/CD3+"])
    assert row["pct_reference"] == pytest.approx(row["pct_parent"])
    lymph = pops.filter(pl.col("population") == "/Lymphocytes")
    assert lymph.get_column("pct_reference").is_null().all()   # not under CD3+

    m = study.measurements.filter(pl.col("sample_id") == "SAA-003_D28_FLOW")
    car = m.filter(pl.col("analyte") == "CAR_PCT").row(0, named=True)
    assert car["value"] == pytest.approx(row["pct_parent"])
    assert car["panel"] == "immunophenotype" and car["tissue"] == "blood" and car["day"] == 28
    alc = study.measurements.filter((pl.col("subject_id") == "SAA-003") & (pl.col("day") == 28)
                                    & (pl.col("analyte") == "ALC")).get_column("value")[0]
    nk = m.filter(pl.col("analyte") == "NK_ABS").get_column("value")[0]
    assert nk == pytest.approx(want["/Lymphocytes/CD3-/NK"] / want["/Lymphocytes"] * alc * 1000)
    # the demo's typed values for the same days give way to the gated ones, with a warning
    assert study.measurements.filter((pl.col("subject_id") == "SAA-003") & (pl.col("day") == 28)
                                     & (pl.col("analyte") == "CAR_PCT")).height == 1
    assert any("replaced by the populations gated" in f.message for f in study.report.findings)
    # the Kinetics page reads CAR_PCT like any other series
    assert study.series(analytes=["CAR_PCT"], subjects=["SAA-003"]).filter(
        pl.col("day") == 28).get_column("value")[0] == pytest.approx(car["value"])


def test_a_corrupt_fcs_in_a_study_is_reported_and_the_others_gate(gated_demo):
    bad = gated_demo / "flow" / "SAA-002_D28.fcs"
    bad.write_bytes(bad.read_bytes()[:3000])
    study = load_study(gated_demo)
    errors = [f for f in study.report.findings if f.table == "flow" and f.severity == "error"]
    assert len(errors) == 1 and errors[0].file == "flow/SAA-002_D28.fcs"
    assert study.populations.get_column("sample_id").n_unique() == 9
    assert "SAA-002_D28_FLOW" not in study.populations.get_column("sample_id").to_list()


def test_gating_column_in_samples_and_missing_gate_file(gated_demo):
    samples = gated_demo / "samples.csv"
    df = pl.read_csv(samples)
    df = df.with_columns(pl.when(pl.col("sample_id") == "SAA-001_D28_FLOW")
                         .then(pl.lit("flow/missing.xml")).otherwise(None).alias("gating"))
    df.write_csv(samples)
    study = load_study(gated_demo)
    assert any(f.file == "flow/missing.xml" and f.severity == "error"
               for f in study.report.findings)
    assert study.populations.get_column("sample_id").n_unique() == 9


def test_unknown_analyte_in_mapping_is_an_error(gated_demo):
    toml = gated_demo / "study.toml"
    toml.write_text(toml.read_text().replace('"CD7NEG_T_PCT"', '"CD7_NEG_WHATEVER"'))
    study = load_study(gated_demo)
    assert any("CD7_NEG_WHATEVER" in f.message and f.severity == "error"
               for f in study.report.findings)
    assert study.measurements.filter(pl.col("analyte") == "CAR_PCT").height > 0


def test_gated_study_loads_from_cache_second_time(gated_demo):
    load_study(gated_demo)
    again = load_study(gated_demo)
    note = next(f for f in again.report.findings if f.problem.startswith("gated "))
    assert "10 from the cache" in note.problem


# ---- analysis/flow.py, the CLI and the Cytometry page on the gated demo ----------------------
def test_populations_table_and_reference(gated_demo):
    from analysis.flow import POPULATION_COLUMNS, gate_over_time, populations_table

    study = load_study(gated_demo)
    table = populations_table(study)
    assert tuple(table.columns[:7]) == POPULATION_COLUMNS
    lymph = populations_table(study, reference="Lymphocytes")
    row = lymph.filter((pl.col("sample_id") == "SAA-001_D28_FLOW")
                       & (pl.col("population") == "/Lymphocytes/CD3-/NK")).row(0, named=True)
    n_lymph = lymph.filter((pl.col("sample_id") == "SAA-001_D28_FLOW")
                           & (pl.col("population") == "/Lymphocytes")).get_column("count")[0]
    assert row["pct_reference"] == pytest.approx(100 * row["count"] / n_lymph)
    over = gate_over_time(study.populations, population="/Lymphocytes/CD3+/CAR+",
                          subject_id="SAA-001")
    assert over.get_column("day").to_list() == [-11, 28]
    assert over.get_column("pct_parent")[0] == 0.0 and over.get_column("pct_parent")[1] > 5


def test_cli_table_populations(gated_demo):
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, str(root / "cli.py"), "table", "populations",
                          "--study", str(gated_demo)], capture_output=True, text=True,
                         cwd=root, check=True).stdout
    lines = out.strip().splitlines()
    assert lines[0].startswith("sample_id,subject_id,day,population,parent,count,pct_parent")
    assert len(lines) == 1 + 60
    assert any(line.startswith("SAA-002_D28_FLOW,SAA-002,28,/Lymphocytes/CD3+/CAR+,"
                               "/Lymphocytes/CD3+,") for line in lines)
    gate = subprocess.run([sys.executable, str(root / "cli.py"), "gate", "--study",
                           str(gated_demo), "--workers", "2"], capture_output=True, text=True,
                          cwd=root)
    assert gate.returncode == 0, gate.stderr
    assert "gated 10 of 10 files" in gate.stdout


def test_cytometry_page_on_gated_study(app_page, gated_demo):
    at = app_page("pages/cytometry.py", study=gated_demo)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Cytometry"
    # populations trend, six gate plots of the first sample, the small multiples, FlowSOM x3
    assert len(at.get("plotly_chart")) == 1 + 6 + 1 + 3
    at.selectbox(key="cy-time-gate").select("/Lymphocytes/CD3+/CAR+").run()
    assert not at.exception
    multiples = at.get("plotly_chart")[7].proto.spec
    assert "Screening (day -11)" in multiples and "D28 (day 28)" in multiples
    at.selectbox(key="cy-som-pop").select("/Lymphocytes/CD3+").run()   # FlowSOM in a gate
    assert not at.exception, [e.value for e in at.exception]
    heat = json.loads(at.get("plotly_chart")[8].proto.spec)
    assert heat["layout"]["title"]["text"] == "Metacluster medians (/Lymphocytes/CD3+)"
    at.button(key="cy-regate-start").click().run()   # the gating job with its progress bar
    assert not at.exception, [e.value for e in at.exception]
    assert "10 of 10 FCS file(s) gated" in at.caption[0].value


def test_absolute_counts_from_beads_and_counts_as_events():
    from data_loaders.errors import ValidationReport
    from data_loaders.flow import AnalyteMap, FlowConfig, population_measurements

    pops = pl.DataFrame({
        "sample_id": ["S1"] * 3, "subject_id": ["P1"] * 3, "day": [7] * 3,
        "tissue": ["blood"] * 3, "population": ["/Beads", "/Lymph", "/Lymph/CD4"],
        "count": [1000, 8000, 2000], "parent_count": [10000, 10000, 8000],
        "n_events": [10000] * 3})
    cfg = FlowConfig(gating="g.xml", beads="Beads", beads_per_test=50000, volume_ul=50,
                     analytes=(AnalyteMap(".../Lymph/CD4", "CD4_ABS", count="beads"),
                               AnalyteMap("CD4", "CD4_EVENTS")))
    samples = pl.DataFrame({"sample_id": ["S1"], "volume_ul": ["100"]})
    rep = ValidationReport()
    rows = population_measurements(pops, cfg, units={"CD4_ABS": "cells/uL",
                                                     "CD4_EVENTS": "events"},
                                   counts=pl.DataFrame(schema={"subject_id": pl.String,
                                                               "day": pl.Int64,
                                                               "analyte": pl.String,
                                                               "value": pl.Float64}),
                                   samples=samples, report=rep)
    vals = dict(zip(rows.get_column("analyte").to_list(), rows.get_column("value").to_list(),
                    strict=True))
    # 2000 CD4 / 1000 beads x 50,000 beads per tube / 100 uL (the sample's own volume)
    assert vals["CD4_ABS"] == pytest.approx(2000 / 1000 * 50000 / 100)
    assert vals["CD4_EVENTS"] == 2000
    assert not rep.findings


def test_population_events_for_flowsom_within_a_gate(gated_demo):
    from data_loaders.flow import population_events

    study = load_study(gated_demo)
    ev = population_events(study, population="/Lymphocytes/CD3+", per_file=300)
    cd3 = study.populations.filter(pl.col("population") == "/Lymphocytes/CD3+")
    assert ev.n_total == cd3.get_column("count").sum()
    assert ev.frame.group_by("sample_id").len().get_column("len").max() == 300
    assert "CD3" in ev.markers and not ev.errors
    # every drawn event is CD3 bright (asinh(1000/150) = 2.6 is the gate, before spillover)
    assert ev.frame.get_column("CD3").min() > 2.0
    missing = population_events(study, population="/Nope", per_file=10)
    assert missing.frame.height == 0 and len(missing.errors) == 10


def test_missing_matrix_file_and_malformed_flow_table_are_findings(gated_demo):
    toml = gated_demo / "study.toml"
    text = toml.read_text()
    toml.write_text(text.replace('reference = "CD3+"', 'reference = "CD3+"\n'
                                 'compensation = "flow/missing.csv"'))
    study = load_study(gated_demo)
    assert any(f.file == "flow/missing.csv" and f.severity == "error"
               for f in study.report.findings)
    assert study.populations.height == 0
    assert study.measurements.filter(pl.col("analyte") == "ALC").height > 0   # the rest loads
    toml.write_text("flow = 3\n" + text.replace(FLOW_TOML, ""))
    study = load_study(gated_demo)
    assert any(f.problem == "[flow] must be a table" for f in study.report.findings)
