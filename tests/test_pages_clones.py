"""The Clones & repertoire page's depth-matched metrics, clones across time and receptors per
cell (AppTest on the demo and on the real MuData file)."""

from __future__ import annotations

import shutil

import pytest

PAGE = "pages/clones.py"


def _texts(at) -> str:
    return " ".join(str(m.value) for m in (*at.markdown, *at.caption, *at.info, *at.subheader))


def test_clones_page_on_demo(app_page):
    at = app_page(PAGE, timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    text = _texts(at)
    assert "Clones across time" in text
    assert "Rarefaction:" in text and "seeded subsamplings" in text
    assert "Fisher exact" in text
    tables = [d.value for d in at.dataframe]
    assert any("share_ratio" in t.columns or "n_responders" in t.columns for t in tables)
    at.toggle(key="cln-rarefy").set_value(False).run()
    assert not at.exception
    assert "not depth-matched" in _texts(at)
    # the demo's T cells carry receptors: clones come from single CD8 cells by default
    assert len(at.selectbox(key="cln-source").options) == 3
    assert at.selectbox(key="cln-source").value == "cells_cd8"
    assert at.selectbox(key="cln-track-tp").options == ["D28", "M3"]
    assert "Receptors per cell" in _texts(at)
    fate = next(d.value for d in at.dataframe if "median_responders" in d.value.columns)
    m3 = fate[fate["timepoint"] == "M3"].iloc[0]
    assert (m3["n_responders"], m3["n_non_responders"]) == (3, 2)
    assert m3["median_responders"] < 0.3 < 0.7 < m3["median_non_responders"]
    at.selectbox(key="cln-source").set_value("tcr").run()
    assert not at.exception
    assert at.selectbox(key="cln-track-tp").options == ["D14", "D28", "M3", "M6", "M12"]
    assert at.selectbox(key="cln-track-tp").value == "D28"
    at.selectbox(key="cln-track-tp").set_value("M3").run()
    assert not at.exception
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "reference vs M3" in specs and "Sankey" in specs.replace("sankey", "Sankey")


def test_clones_page_on_real_h5mu(shared_data, tmp_path, app_page):
    folder = tmp_path / "wu"
    folder.mkdir()
    shutil.copy(shared_data / "scrna_tcr" / "wu2020_200.h5mu", folder)
    at = app_page(PAGE, study=folder, timeout=180)
    assert not at.exception, [e.value for e in at.exception]
    text = _texts(at)
    assert "Receptors per cell" in text
    assert "Clonotype = identical CDR3 amino acids" in text
    cells = next(d.value for d in at.dataframe if "clone_size" in d.value.columns)
    assert len(cells) == 99


@pytest.mark.slow
def test_car_section_of_the_landscape(app_page, demo_dir, tmp_path):
    study = tmp_path / "demo"
    shutil.copytree(demo_dir, study)
    at = app_page("pages/immune_landscape.py", study=study, timeout=240)
    assert not at.exception, [e.value for e in at.exception]
    text = _texts(at)
    assert "two-component Gaussian mixture" in text
    assert "Wilcoxon signed-rank" in text and "centred log-ratio" in text
    markers = next(d.value for d in at.dataframe if "mean_car_pos" in d.value.columns)
    assert "CD7" in set(markers["gene"])
    assert not any(b.key == "il-car-save" for b in at.button)     # nothing to save yet
    at.number_input(key="il-car-cut").set_value(3.0).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "fixed threshold" in _texts(at)
    at.button(key="il-car-save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    toml = (study / "study.toml").read_text()
    assert 'car_threshold_method = "fixed"' in toml and "car_threshold = 3.0" in toml
    assert "[study]" in toml                                       # the rest is kept
    at.selectbox(key="il-ct-against").set_value("with Pre-infusion").run()
    assert not at.exception
    assert "same patients" in _texts(at)
