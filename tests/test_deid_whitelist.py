"""De-identification as a whitelist: a study full of identifiers (dates in every form, ids that
embed dates, names and wards in event terms, MRN, initials, birth year, text ages, consent
dates, extra single-cell obs columns) shows none of them on any page, in any table download,
in the CLI's output or in an exported deck, once de-identified."""

from __future__ import annotations

import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from components.export import csv_bytes
from data_loaders import TABLE_NAMES, load_study
from data_loaders.deid import deid_default, deidentify, scrub_dates

ROOT = Path(__file__).resolve().parent.parent
S1, S2, S3 = "S_H01_2025-03-05_PB", "S_H02_20250410_BM", "S_H03_2025-05-02_PB"
PATIENTS = """subject_id,age,sex,diagnosis,infusion_date,prior_therapy,mrn,initials,birth_year,age_text,consent_date
H01_2025-03-05,34,M,SAA,2025-03-05,"hATG + CsA, Dr Smith",MRN0012345,J.S.,1961,thirty-four,12/03/2025
H02_20250410,71,F,vSAA,2025-04-10,CsA,MRN0098765,A.B.,1954,seventy-one,25MAR2025
H03_2025-05-02,45,F,SAA,2025-05-02,,MRN0055555,K.L.,1980,forty-five,10 Apr 2025
"""
MEASUREMENTS = f"""subject_id,day,analyte,value,unit,sample_id,draw_date,collected
H01_2025-03-05,-3,ANC,0.3,10^9/L,{S1},45721,2025-03-02T10:00
H01_2025-03-05,7,ANC,0.9,10^9/L,{S1},45728,2025-03-12T10:00
H01_2025-03-05,28,ANC,1.6,10^9/L,{S1},45749,2025-04-02T09:30
H02_20250410,-3,ANC,0.1,10^9/L,{S2},45754,2025-04-07T08:00
H02_20250410,28,ANC,0.4,10^9/L,{S2},45785,2025-05-08T08:00
H03_2025-05-02,-3,PLT,12,10^9/L,{S3},45776,2025-04-29T11:15
H03_2025-05-02,28,PLT,60,10^9/L,{S3},45807,2025-05-30T11:15
"""
EVENTS = """subject_id,day,category,term,grade,product,notes
H01_2025-03-05,0,infusion,CD7 CAR-T,,,
H01_2025-03-05,3,crs,"Cytokine release syndrome per Dr Smith, Ward 7",2,,called 12/03/2025
H01_2025-03-05,5,adverse_event,Neutropenia (seen 25MAR2025),3,,
H02_20250410,0,infusion,CD7 CAR-T,,,
H02_20250410,1,medication,Tocilizumab 8 mg/kg on 10 Apr 2025,,tocilizumab,
H02_20250410,8,adverse_event,"Fall at home, Ward 7",1,,
H03_2025-05-02,0,infusion,CD7 CAR-T,,,
"""
RESPONSES = """subject_id,day,response,assessor
H01_2025-03-05,28,PR,Dr Smith
H02_20250410,28,NR,Dr Jones
H03_2025-05-02,28,CR,Dr Smith
"""
SAMPLES = f"""sample_id,subject_id,day,timepoint,tissue,assay
{S1},H01_2025-03-05,28,D28 (2025-04-02),blood,rna
{S2},H02_20250410,28,D28 10 Apr 2025,marrow,rna
{S3},H03_2025-05-02,28,D28,blood,rna
"""
RNA = f"gene,{S1},{S2},{S3}\nIFI27,10,200,5\nMX1,3,40,1\n"
TOML = '''[study]
title = "Leaky study 12/03/2025"
'''
# What must not be seen anywhere once de-identified (exact ages are checked apart).
FORBIDDEN = ("2025-03", "2025-04", "2025-05", "20250410", "12/03/2025", "25MAR2025",
             "10 Apr 2025", "T10:00", "Smith", "Jones", "Ward 7", "MRN00", "J.S.", "A.B.",
             "K.L.", "thirty-four", "seventy-one", "forty-five", "H01_", "H02_", "H03_",
             "consent", "birth_year", "initials", "Fall at home", "Dr ")
# in tables (not figures, whose numbers could contain them by chance): birth years, serials
FORBIDDEN_CELLS = ("1961", "1954", "1980", "45721", "45754")
AGES = {34, 71, 45}


def _h5ad(path: Path) -> None:
    import anndata as ad
    import pandas as pd

    n = 30
    subj = np.array(["H01_2025-03-05", "H02_20250410", "H03_2025-05-02"] * 10)
    sample = np.array([S1, S2, S3] * 10)
    obs = pd.DataFrame({"subject_id": subj, "sample_id": sample, "day": [28] * n,
                        "cell_type": ["CD8 T", "NK", "B"] * 10,
                        "mrn": ["MRN0012345", "MRN0098765", "MRN0055555"] * 10,
                        "collection_date": ["2025-04-02", "10 Apr 2025", "25MAR2025"] * 10,
                        "ward": ["Ward 7"] * n, "n_genes": np.arange(n)},
                       index=[f"{s}_AAAC{i:03d}-1" for i, s in enumerate(sample)])
    a = ad.AnnData(X=np.random.default_rng(0).poisson(3, size=(n, 4)).astype(np.float32),
                   obs=obs, var=pd.DataFrame(index=["CD3E", "CD8A", "NKG7", "MS4A1"]),
                   obsm={"X_umap": np.random.default_rng(1).normal(size=(n, 2))})
    a.write_h5ad(path)


@pytest.fixture(scope="module")
def leaky_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("leaky") / "leaky"
    folder.mkdir()
    for name, text in (("patients.csv", PATIENTS), ("measurements.csv", MEASUREMENTS),
                       ("events.csv", EVENTS), ("responses.csv", RESPONSES),
                       ("samples.csv", SAMPLES), ("rna_counts.csv", RNA),
                       ("study.toml", TOML)):
        (folder / name).write_text(text, encoding="utf-8")
    _h5ad(folder / "single_cell.h5ad")
    return folder


@pytest.fixture(scope="module")
def leaky(leaky_dir):
    study = load_study(leaky_dir)
    assert study.subject_ids and study.has("single_cell"), study.report.to_frame()
    return study


def _leaks(text: str, *, cells: bool = False) -> list[str]:
    words = FORBIDDEN + (FORBIDDEN_CELLS if cells else ())
    found = [w for w in words if w in text]
    if scrub_dates(text) != text:
        found.append("date: " + _date_hits(text)[0])
    return found


def _date_hits(text: str) -> list[str]:
    from data_loaders.deid import _DATE_RE

    return [text[max(0, m.start() - 40):m.end() + 10] for m in _DATE_RE.finditer(text)]


def test_leak_scanner_has_teeth(leaky):
    identified = "\n".join(csv_bytes(leaky.table(t)).decode() for t in TABLE_NAMES)
    assert set(_leaks(identified, cells=True)) >= {"Smith", "MRN00", "J.S.", "H01_"}
    assert _leaks("seen 25MAR2025") and _leaks("D28 10 Apr 2025") and _leaks("x 12.03.25")
    assert not _leaks("ANC 0.9 on day 28, [date]")


@pytest.mark.parametrize("text", ["2025-03-05", "2025-03-05T10:00", "12/03/2025", "3/12/25",
                                  "12.03.2025", "25MAR2025", "25-Mar-2025", "10 Apr 2025",
                                  "10th April 2025", "April 10, 2025", "March 2025",
                                  "20250305", "H01_2025-03-05", "S3_20250305_PB"])
def test_every_date_form_is_scrubbed(text):
    assert "[date]" in scrub_dates(text) and not re.search(r"\d{4}-\d|\d{8}", scrub_dates(text))


@pytest.mark.parametrize("text", ["CD7 CAR-T", "10^9/L", "copies/ug gDNA", "D28", "M12",
                                  "PIGA", "IL6", "2025", "1.5", "grade 3", "Cluster 12",
                                  "e07dddfd3d2e4a1c85e3", "a4dec12f", "b1mar99",
                                  '"0dec63d9cb3c4e95"'])
def test_ordinary_values_are_left_alone(text):
    assert scrub_dates(text) == text


def test_tables_hold_no_identifier(leaky):
    deid = deidentify(leaky)
    for name in TABLE_NAMES:
        text = csv_bytes(deid.table(name)).decode()
        assert not _leaks(text, cells=True), (name, _leaks(text, cells=True))
    assert set(deid.patients.columns) <= {"subject_id", "age", "age_band", "sex", "diagnosis",
                                          "dose_per_kg", "weight_kg", "prior_therapy",
                                          *leaky.patients.columns} - {"mrn", "initials",
                                                                      "birth_year", "age_text",
                                                                      "consent_date",
                                                                      "infusion_date"}
    assert deid.events.get_column("term").to_list() == [
        "CD7 CAR-T", "Cytokine release syndrome", "Neutropenia", "CD7 CAR-T", "Tocilizumab",
        None, "CD7 CAR-T"]
    assert deid.events.get_column("product").to_list()[4] == "tocilizumab"
    assert deid.measurements.get_column("day").to_list() == \
        leaky.measurements.get_column("day").to_list()
    assert not _leaks(deid.title + deid.study_id + repr(deid.config))
    assert not _leaks(csv_bytes(deid.report.to_frame()).decode())


def test_pseudonyms_are_stable_and_consistent(leaky, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", "one")
    a, b = deidentify(leaky), deidentify(leaky)
    assert a.subject_ids == b.subject_ids and all(re.fullmatch(r"P-[A-Z2-7]{7}", s)
                                                  for s in a.subject_ids)
    ids = set(a.subject_ids)
    for name in ("measurements", "events", "responses", "samples"):
        assert set(a.table(name).get_column("subject_id").to_list()) <= ids, name
    samples = set(a.samples.get_column("sample_id").to_list())
    assert samples == set(a.measurements.get_column("sample_id").to_list())
    assert samples == set(a.rna_counts.columns) - {"gene"}
    obs = a.single_cell
    assert set(obs.canonical("subject_id").to_list()) == ids
    assert set(obs.canonical("sample_id").to_list()) == samples
    assert all(not _leaks(c) for c in obs.cell_names)
    assert set(a.obs["subject_id"]) == ids
    monkeypatch.setenv("DEID_SECRET", "two")
    assert set(deidentify(leaky).subject_ids).isdisjoint(ids)   # the key decides


def test_secret_kept_in_the_study_without_a_server_secret(leaky, leaky_dir, monkeypatch):
    monkeypatch.delenv("DEID_SECRET", raising=False)
    monkeypatch.delenv("STUDIES_ROOT", raising=False)
    first = deidentify(leaky).subject_ids
    key = (leaky_dir / ".deid_secret").read_bytes()
    assert len(key) == 64 and oct((leaky_dir / ".deid_secret").stat().st_mode)[-3:] == "600"
    assert deidentify(leaky).subject_ids == first


def test_single_cell_obs_is_whitelisted(leaky):
    store = deidentify(leaky).single_cell
    assert set(store.obs_columns) == {"subject_id", "sample_id", "day", "cell_type", "n_genes"}
    for col in ("mrn", "collection_date", "ward"):
        with pytest.raises(KeyError):
            store.obs_column(col)
    obs = deidentify(leaky).obs
    assert not {"mrn", "collection_date", "ward"} & set(obs.columns)
    assert not _leaks(obs.to_csv(), cells=True)
    adata = deidentify(leaky).adata
    assert not {"mrn", "ward"} & set(adata.obs.columns)
    assert not _leaks("".join(adata.obs_names))


def test_safe_obs_column_is_kept(leaky):
    from dataclasses import replace

    study = replace(leaky, config={**leaky.config, "deid": {"safe_columns": ["obs.ward"]}})
    store = deidentify(study).single_cell
    assert "ward" in store.obs_columns


# ---- every page, downloads, CLI and export ----------------------------------------------------
def _rendered(at) -> tuple[str, str]:
    """(text of every element the run sent, CSV of every dataframe: what its download holds)."""
    from tests.test_deid import _rendered_text

    frames = "\n".join(df.value.to_csv(index=False) for df in at.dataframe)
    return _rendered_text(at), frames


def test_every_page_shows_no_identifier(leaky_dir, monkeypatch, real_navigation):
    from streamlit.testing.v1 import AppTest

    from tests.test_app_pages import PAGES
    from tests.test_deid import _leak

    monkeypatch.setenv("STUDY_DIR", str(leaky_dir))
    monkeypatch.setenv("DEID", "1")
    monkeypatch.delenv("STUDIES_ROOT", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception
    for file, _title in PAGES:
        at.switch_page(file).run()
        assert not at.exception, (file, [e.value for e in at.exception])
        text, frames = _rendered(at)
        assert not _leaks(text), (file, _leaks(text))
        assert not _leaks(frames, cells=True), (file, _leaks(frames, cells=True))
        assert _leak(text + frames, AGES) is None, (file, _leak(text + frames, AGES))
        if file.endswith("compare.py"):
            choices = at.selectbox(key="cmp-groupby").options
            assert not {"mrn", "initials", "birth_year", "age_text", "consent_date"} & \
                set(choices), choices


def test_cli_tables_deidentified_below_a_server_root(leaky_dir, tmp_path, monkeypatch, capsys):
    """`cli.py table` run by hand on the server (no DEID in the shell): the STUDIES_ROOT's
    server.toml says the server de-identifies, so the CLI does too; --no-deidentify and
    DEID=0 turn it off on purpose."""
    import shutil

    import cli
    from analysis.registry import derived_tables

    root = tmp_path / "root"
    study = root / "leaky"
    shutil.copytree(leaky_dir, study)
    (root / "server.toml").write_text("[deid]\nenabled = true\n")
    monkeypatch.delenv("DEID", raising=False)
    monkeypatch.delenv("STUDIES_ROOT", raising=False)
    assert deid_default(study)
    made = 0
    for name in [*TABLE_NAMES, *derived_tables()]:
        code = cli.main(["table", name, "--study", str(study)])
        out = capsys.readouterr()
        # a derived table this tiny study cannot make (too few patients) says so in one line
        assert code == 0 or out.err.startswith("error:"), (name, out.err)
        text = out.out + out.err
        assert not _leaks(text, cells=True), (name, _leaks(text, cells=True))
        made += code == 0
    assert made >= len(TABLE_NAMES) + len(derived_tables()) // 2, made
    assert cli.main(["table", "patients", "--study", str(study), "--no-deidentify"]) == 0
    assert "MRN0012345" in capsys.readouterr().out
    monkeypatch.setenv("DEID", "0")
    assert not deid_default(study)
    monkeypatch.setenv("DEID", "1")
    assert cli.main(["table", "patients", "--study", str(leaky_dir)]) == 0
    assert not _leaks(capsys.readouterr().out, cells=True)


def test_cli_export_deck_deidentified(export_ready, leaky_dir, tmp_path, monkeypatch, capsys):
    import cli

    monkeypatch.delenv("DEID", raising=False)
    out = tmp_path / "deck.zip"
    assert cli.main(["export", "--study", str(leaky_dir), "--out", str(out),
                     "--deidentify", "--footer"]) == 0
    with zipfile.ZipFile(out) as zf:
        texts = {n: zf.read(n).decode("utf-8", "replace") for n in zf.namelist()}
    assert texts
    # the day the deck was made (provenance footer and metadata) is no patient's date
    today = re.compile(datetime.now(UTC).date().isoformat() + r"(?:T[\d:.]+Z?)?")
    for name, text in texts.items():
        text = today.sub("", text)
        assert not _leaks(name + text), (name, _leaks(name + text))
    assert any("Leaky study [date]" in t for t in texts.values())
    capsys.readouterr()


def test_gated_populations_follow_the_same_rules(leaky):
    from dataclasses import replace

    import polars as pl

    from data_loaders.flow import POPULATION_SCHEMA

    pops = pl.DataFrame({"sample_id": [S1], "subject_id": ["H01_2025-03-05"], "day": [28],
                         "timepoint": ["D28 (2025-04-02)"], "population": ["CD3+"],
                         "gate_file": ["gates_2025-04-02.xml"], "operator": ["Dr Smith"]})
    pops = pl.concat([pl.DataFrame(schema=POPULATION_SCHEMA), pops], how="diagonal_relaxed")
    deid = deidentify(replace(leaky, populations=pops))
    assert "operator" not in deid.populations.columns
    # the same pseudonyms as the samples table: the pair is one of its rows
    pair = deid.populations.select("sample_id", "subject_id").row(0)
    assert pair in deid.samples.select("sample_id", "subject_id").rows()
    assert pair[0].startswith("S-") and pair[1].startswith("P-")
    assert not _leaks(csv_bytes(deid.populations).decode(), cells=True)


def test_key_that_cannot_be_kept_is_reported(leaky, monkeypatch):
    from data_loaders import deid

    monkeypatch.delenv("DEID_SECRET", raising=False)
    monkeypatch.setattr(deid, "_secret", lambda path: (b"k" * 64, False))
    study = deidentify(leaky)
    assert any("change when the server restarts" in f.problem and "DEID_SECRET" in f.fix
               for f in study.report.warnings)
