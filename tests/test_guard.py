"""Limits checked before a file is read (data_loaders/guard.py) and loading in a worker process
with memory and time limits (data_loaders/worker.py)."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import h5py
import pytest

from data_loaders import StudyError, guard, load_study
from data_loaders.guard import Limits
from data_loaders.worker import WorkerSettings, load_failure, load_isolated, worker_settings

MEAS = "subject_id,day,analyte,value,unit\n"


def _messages(study) -> list[str]:
    return [f.message for f in study.report.findings]


def test_limits_from_server_then_study(tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIES_ROOT", raising=False)
    study = tmp_path / "s"
    study.mkdir()
    assert guard.limits_for(study, {}) == Limits()
    # locally a study may raise its own limits
    assert guard.limits_for(study, {"limits": {"max_columns": 10**6}}).max_columns == 10**6
    # below a server root it may only lower them
    (tmp_path / "server.toml").write_text("[limits]\nmax_columns = 1000\nmax_rows = 50\n")
    lim = guard.limits_for(study, {"limits": {"max_columns": 10**6, "max_rows": 10}})
    assert (lim.max_columns, lim.max_rows) == (1000, 10)
    with pytest.raises(StudyError, match="max_rows = 'many' is not a positive number"):
        guard.limits_for(study, {"limits": {"max_rows": "many"}})


def test_bad_limits_setting_is_a_finding(write_study):
    study = load_study(write_study(**{"study.toml": "[limits]\nmax_rows = -1\n"}))
    assert any("max_rows = -1 is not a positive number" in m for m in _messages(study))
    assert study.subject_ids == ["P1", "P2"]


def test_file_size_limit(write_study):
    folder = write_study(measurements=MEAS + "P1,0,ANC,0.4,10^9/L\n" * 60_000,
                         **{"study.toml": "[limits]\nmax_file_mb = 1\n"})
    study = load_study(folder)
    assert any(m.startswith("measurements.csv: is 1.1 MB, above the limit of 1.0 MB")
               for m in _messages(study)), _messages(study)
    assert study.subject_ids == ["P1", "P2"]


def test_row_limit_counts_lines_before_parsing(write_study):
    folder = write_study(measurements=MEAS + "P1,0,ANC,0.4,10^9/L\n" * 101,
                         **{"study.toml": "[limits]\nmax_rows = 100\n"})
    study = load_study(folder)
    assert "measurements.csv: has more than 100 rows; not read" in " ".join(_messages(study))
    ok = load_study(write_study(measurements=MEAS + "P1,0,ANC,0.4,10^9/L\n" * 100,
                                **{"study.toml": "[limits]\nmax_rows = 100\n"}))
    assert ok.measurements.height == 1 and ok.report.ok   # 100 identical rows: one kept


def test_column_limit_on_a_header_longer_than_one_read(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(3_000_000)) + "\n")   # ~24 MB header line
    with pytest.raises(StudyError, match="more than 50,000 columns"):
        guard.check_text_shape(path, "wide.csv")
    guard.check_text_shape(path, "wide.csv", limits=Limits(max_columns=4_000_000))


def test_gzip_stops_at_the_unpacked_limit(tmp_path):
    path = tmp_path / "m.csv.gz"
    path.write_bytes(gzip.compress(b"x" * (3 * 1024 * 1024)))
    with pytest.raises(StudyError, match=r"unpacks to more than 2.0 MB"):
        guard.read_gzip(path, "m.csv.gz", Limits(max_unpacked_mb=2))
    assert len(guard.read_gzip(path, "m.csv.gz", Limits(max_unpacked_mb=4))) == 3 * 1024 * 1024


def _xlsx(tmp_path: Path, sheet: bytes) -> Path:
    path = tmp_path / "book.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
    return path


def test_xlsx_declared_and_used_extent(tmp_path):
    head = b'<worksheet xmlns="x"><dimension ref="A1:C3"/><sheetData>'
    fine = _xlsx(tmp_path, head + b'<row r="1"><c r="A1"><v>1</v></c></row></sheetData>')
    guard.check_xlsx(fine, "book.xlsx")
    declared = _xlsx(tmp_path, b'<worksheet><dimension ref="A1:Z1000000"/></worksheet>')
    with pytest.raises(StudyError, match=r"declares 1,000,000 rows x 26 columns"):
        guard.check_xlsx(declared, "book.xlsx")
    far = _xlsx(tmp_path, head + b'<row r="900000"><c r="AAA900000"><v>1</v></c></row>'
                b"</sheetData></worksheet>")
    with pytest.raises(StudyError, match=r"uses cells up to 900,000 rows x 703 columns"):
        guard.check_xlsx(far, "book.xlsx")
    with pytest.raises(StudyError, match=r"unpacks to"):
        guard.check_xlsx(fine, "book.xlsx", Limits(max_unpacked_mb=1e-5))


def test_h5ad_shapes_against_obs(tmp_path):
    import anndata as ad
    import numpy as np
    import pandas as pd

    path = tmp_path / "a.h5ad"
    ad.AnnData(X=np.ones((4, 2), dtype=np.float32),
               obs=pd.DataFrame({"subject_id": ["P1"] * 4}, index=list("abcd")),
               obsm={"X_umap": np.zeros((4, 2))}).write_h5ad(path)
    with h5py.File(path, "r") as fh:
        assert guard.check_h5ad(fh, "a.h5ad") == 4
        with pytest.raises(StudyError, match="declares 4 cells in obs, above the limit of 3"):
            guard.check_h5ad(fh, "a.h5ad", Limits(max_cells=3))
    with h5py.File(path, "r+") as fh:
        del fh["obsm/X_umap"]
        fh["obsm"].create_dataset("X_umap", shape=(10**8, 2), dtype="f4", chunks=(1024, 2))
    with h5py.File(path, "r") as fh, pytest.raises(
            StudyError, match="obsm/X_umap declares 100,000,000 rows but obs has 4 cells"):
        guard.check_h5ad(fh, "a.h5ad")


# ---- the worker ------------------------------------------------------------------------------
def test_worker_settings_from_server_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIES_ROOT", str(tmp_path))
    (tmp_path / "server.toml").write_text("[worker]\nmemory_mb = 900\nseconds = 30\n")
    monkeypatch.delenv("CART_WORKER_MEMORY_MB", raising=False)
    monkeypatch.delenv("CART_LOAD_WORKER", raising=False)
    assert worker_settings() == WorkerSettings(True, 900, 30.0, 3)
    monkeypatch.setenv("CART_WORKER_MEMORY_MB", "1200")
    monkeypatch.setenv("CART_LOAD_WORKER", "0")
    assert worker_settings() == WorkerSettings(False, 1200, 30.0, 3)


def test_worker_loads_the_same_study(demo_dir, demo_study):
    study = load_isolated(demo_dir, settings=WorkerSettings(memory_mb=3000))
    assert load_failure(study) is None
    assert study.subject_ids == demo_study.subject_ids
    assert study.measurements.equals(demo_study.measurements)
    assert study.cache_key == demo_study.cache_key


def test_worker_missing_folder_raises_like_load_study(tmp_path):
    with pytest.raises(StudyError, match="is not a study folder"):
        load_isolated(tmp_path / "nope")


def test_worker_out_of_memory_names_the_file_and_loads_the_rest(write_study):
    """A file that the limits let through (the study raised them) but that needs more memory
    than a load may have: that file is left out, with a finding; every other table loads."""
    from tests.bad_inputs.make_corpus import wide_csv

    folder = write_study(events="subject_id,day,category\nP1,0,infusion\nP2,0,infusion\n",
                         **{"study.toml": "[limits]\nmax_columns = 2000000\n"})
    wide_csv(folder / "measurements.csv", columns=10**6)
    study = load_isolated(folder, settings=WorkerSettings(memory_mb=700))
    assert load_failure(study) is None
    hit = [f for f in study.report.errors if f.file == "measurements.csv"]
    assert hit and "ran out of memory (the limit for loading a study is 700 MB)" in \
        hit[0].problem, _messages(study)
    assert hit[0].fix
    assert study.events.height == 2 and study.subject_ids == ["P1", "P2"]


def test_worker_time_limit_gives_a_failed_study(demo_dir):
    """A limit of 0.01 s, no retry: a fresh interpreter cannot even import polars in that time,
    so the load always fails on time. (With 0.2 s and a retry that skips the file being read,
    a quiet machine finished the second attempt inside the limit.)"""
    study = load_isolated(demo_dir, settings=WorkerSettings(seconds=0.01, retries=0))
    failure = load_failure(study)
    assert failure is not None and "took too long (the limit is 0.01 s)" in failure.problem
    assert failure.fix and not study.subject_ids and study.path == demo_dir.resolve()
