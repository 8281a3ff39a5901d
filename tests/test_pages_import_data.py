"""The Import page (AppTest, no browser): a folder -> editable mapping -> preview and report ->
a saved study; nothing written before Save; on a shared server only for study creators."""

from __future__ import annotations

import shutil

import polars as pl
import pytest

from components.access import Viewer, may_create_studies, study_creators
from data_loaders import load_study
from data_loaders.errors import StudyError
from data_loaders.importers import edits, uploads
from data_loaders.importers.plan import ImportSettings, propose
from tests.test_cli_import import make_export

PAGE = "pages/import_data.py"


def _widget(at, kind: str, key: str):
    return next(w for w in at.get(kind) if getattr(w, "key", None) == key)


def test_page_from_a_folder_to_a_saved_study(app_page, tmp_path):
    src = make_export(tmp_path)
    at = app_page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Import data"
    at.text_input(key="imp-path").input(str(src)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("data_editor")) == 2          # mapping and visit labels
    assert any("Preview" in h.value for h in at.subheader)
    target = tmp_path / "saved"
    at.text_input(key="imp-name").input(str(target)).run()
    assert not target.exists()                              # nothing written before Save
    at.button(key="imp-save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.success and "3 patients" in at.success[0].value
    study = load_study(target)
    assert not study.report.errors and study.measurements.height == 50
    at.button(key="imp-save").click().run()                 # a second save never overwrites
    assert any("never overwrites" in e.value for e in at.error)


def test_page_asks_instead_of_guessing(app_page, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "labs.csv").write_text("patient,day,Neutrofile\nP1,0,0.4\n", encoding="utf-8")
    at = app_page(PAGE)
    at.text_input(key="imp-path").input(str(src)).run()
    assert any("Neutrofile" in w.value for w in at.warning)
    assert not any("Preview" in h.value for h in at.subheader)


def test_edits_become_settings(tmp_path):
    src = make_export(tmp_path)
    prop = propose(src)
    rows = prop.rows()
    after = rows.with_columns(
        pl.when(pl.col("column") == "血小板计数").then(pl.lit("skip"))
        .otherwise(pl.col("maps_to")).alias("maps_to"),
        pl.when((pl.col("file") == "cytokines.csv") & (pl.col("column") == ""))
        .then(pl.lit("skip")).otherwise(pl.col("table")).alias("table"))
    settings = edits.settings_from_edits(ImportSettings(), rows, after)
    assert dict(settings.analytes) == {"血小板计数": "skip"}
    assert dict(settings.tables) == {"cytokines.csv": "skip"}
    again = propose(src, settings)
    kinds = {d.key: d.kind for d in again.items}
    assert kinds["cytokines.csv"] == "skip"
    cn = next(d for d in again.items if d.sheet == "血常规")
    assert "PLT" not in cn.options["analytes"].values()
    tp = edits.timepoint_rows(prop)
    assert dict(tp.iter_rows())["M3"] == 90
    moved = edits.settings_from_timepoints(
        ImportSettings(), tp, tp.with_columns(pl.when(pl.col("label") == "M3").then(91)
                                              .otherwise(pl.col("day")).alias("day")))
    assert dict(moved.timepoints) == {"M3": 91}
    with pytest.raises(ValueError, match="table"):
        edits.settings_from_edits(ImportSettings(), rows, rows.with_columns(
            pl.lit("nonsense").alias("table")))


def test_who_may_create_studies():
    ana = Viewer(email="ana@lab.org", groups=("cart-core",))
    assert not may_create_studies(ana, ())                        # no list: nobody
    assert not may_create_studies(None, ("ana@lab.org",))
    assert may_create_studies(ana, ("ana@lab.org",))
    assert may_create_studies(ana, ("@LAB.org",))
    assert may_create_studies(ana, ("group:cart-core",))
    assert not may_create_studies(ana, ("cart-core",))             # a group needs group:
    assert not may_create_studies(Viewer(email="bob@other.org"), ("@lab.org",))
    assert may_create_studies(None, ("*",))
    assert study_creators(" ana@lab.org, @x.org ,") == ("ana@lab.org", "@x.org")


def test_uploads_have_a_size_limit_and_safe_names():
    with pytest.raises(StudyError, match="over the limit"):
        uploads.stage_uploads([("a.csv", b"x" * (1024 * 1024 + 1))], limit_mb=1)
    with pytest.raises(StudyError, match="same name"):
        uploads.stage_uploads([("a.csv", b"1"), ("dir/a.csv", b"2")], limit_mb=1)
    with pytest.raises(StudyError):
        uploads.stage_uploads([("..", b"1")], limit_mb=1)
    folder = uploads.stage_uploads([("../../etc/labs.csv", b"a,b\n")], limit_mb=1)
    assert [p.name for p in folder.iterdir()] == ["labs.csv"]
    shutil.rmtree(folder)
    for bad in ("../x", "a/b", ".hidden", "", "x" * 65):
        with pytest.raises(StudyError):
            uploads.safe_study_name(bad)
    assert uploads.safe_study_name("trial-2025_v1") == "trial-2025_v1"


def test_server_page_refuses_users_who_may_not_create(app_page, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import DEMO, ROOT
    from tests.test_app_auth import AUTH

    root = tmp_path / "studies"
    root.mkdir()
    shutil.copytree(DEMO, root / "demo", ignore=shutil.ignore_patterns("*.h5ad", "flow"))
    monkeypatch.setenv("STUDIES_ROOT", str(root))
    for creators, allowed in (("ana@lab.org", True), ("bob@lab.org", False)):
        monkeypatch.setenv("STUDY_CREATORS", creators)
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.secrets["auth"] = AUTH
        at.user = {"is_logged_in": True, "email": "ana@lab.org", "email_verified": True}
        at.run()
        at.switch_page(PAGE).run()
        assert not at.exception, [e.value for e in at.exception]
        assert [t.value for t in at.title] == ["Import data"], [e.value for e in at.error]
        refused = any("may not create studies" in i.value for i in at.info)
        assert refused is not allowed


def test_a_study_made_on_a_server_is_open_to_its_creator_only(tmp_path):
    from components.access import may_open
    from data_loaders.importers.plan import write_study

    src = make_export(tmp_path)
    write_study(propose(src), tmp_path / "s", access=["ana@lab.org"])
    assert may_open(Viewer(email="ana@lab.org"), tmp_path / "s")
    assert not may_open(Viewer(email="bob@lab.org"), tmp_path / "s")
