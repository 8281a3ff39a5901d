"""AppTest of the Immune landscape's single-cell depth: violin and dot plots, signature
colouring with a colourbar in units, signatures per patient, and the pseudobulk test run on
request (then read back from the disk cache)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

PAGE = "pages/immune_landscape.py"
DEMO = Path(__file__).resolve().parent.parent / "sample_data" / "demo"


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


@pytest.mark.slow
def test_depth_sections_on_demo(app_page, tmp_path):
    study = tmp_path / "demo"
    shutil.copytree(DEMO, study, ignore=shutil.ignore_patterns(".cache"))
    at = app_page(PAGE, study=study, timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    heads = [h.value for h in at.header]
    assert {"Genes and scores by cell type", "Pseudobulk by patient (DESeq2)",
            "Signatures per patient"} <= set(heads)
    kinds = [{t.get("type") for t in c["data"]} for c in _charts(at)]
    assert {"violin"} in kinds
    sig_table = next(d.value for d in at.dataframe if "cliffs_delta" in d.value.columns)
    assert "TYPE_I_IFN_SCORE_RICE2013" in set(sig_table["signature"])

    at.text_input(key="il-sig-typed").input("ISG15, MX1 IFIT3").run()
    sig_table = next(d.value for d in at.dataframe if "cliffs_delta" in d.value.columns)
    assert "typed genes" in set(sig_table["signature"])
    at.selectbox(key="il-color").set_value("Signature score").run()
    at.selectbox(key="il-sig-colour").set_value("typed genes").run()
    at.toggle(key="il-labels").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    emb = _charts(at)[0]
    bar = emb["data"][0]["marker"]["colorbar"]["title"]["text"]
    assert bar.startswith("typed genes") and "mean z-score" in bar
    assert {a["text"] for a in emb["layout"]["annotations"]} >= {"CD8 TEM", "NK"}

    at.selectbox(key="il-pb-type").set_value("CD8 TEM").run()
    at.button(key="il-pb-start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "log2fc" in d.value.columns)
    assert list(table.columns[:6]) == ["gene", "n_a", "n_b", "base_mean", "log2fc", "lfc_se"]
    assert table["n_a"].iloc[0] == 3 and table["n_b"].iloc[0] == 2
    assert table["p_value"].is_monotonic_increasing
    assert any(f.name.startswith("pseudobulk-") for f in (study / ".cache").iterdir())
    at.run()                                  # read back from the cache: no button
    assert not any(b.key == "il-pb-start" for b in at.button)
    assert any("log2fc" in d.value.columns for d in at.dataframe)


@pytest.mark.slow
def test_raster_embedding_on_the_page_draws_the_window_zoomed_to(app_page, tmp_path):
    """Above the study's raster_above (lowered in study.toml to below the demo's 20,000 cells)
    the page draws the raster; a zoomed window with few cells (raster_points_below) is drawn as
    points on those axes, and "Show every cell" returns to the raster of every cell."""
    study = tmp_path / "demo"
    shutil.copytree(DEMO, study, ignore=shutil.ignore_patterns(".cache"))
    with (study / "study.toml").open("a", encoding="utf-8") as fh:
        fh.write("\n[rules]\nraster_above = 1000\nraster_points_below = 2000\n")
    at = app_page(PAGE, study=study, timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    first = _charts(at)[0]
    assert len(first["layout"]["images"]) == 1
    assert first["layout"]["images"][0]["source"].startswith("data:image/png;base64,")
    assert first["layout"]["dragmode"] == "zoom"
    assert any("drawn as a raster" in c.value for c in at.caption)
    assert at.button(key="il-window-reset").disabled
    at.session_state["il-window"] = ((0.0, 1.0), (0.0, 1.0))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    zoomed = _charts(at)[0]
    assert not zoomed["layout"].get("images")          # few cells in the window: points
    assert zoomed["layout"]["xaxis"]["range"] == [0.0, 1.0]
    assert any("as points" in c.value for c in at.caption)
    assert not at.button(key="il-window-reset").disabled
    at.button(key="il-window-reset").click().run()
    assert len(_charts(at)[0]["layout"]["images"]) == 1
    assert "il-window" not in at.session_state


@pytest.mark.slow
def test_a_kept_cell_set_can_be_forgotten(app_page):
    from views import landscape as lv

    at = app_page(PAGE, study=DEMO, timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    at.session_state["il-sets"] = {"A": (lv.RNA, (0, 1, 2)), "B": (lv.RNA, (3, 4))}
    at.run()
    assert not any(b.key == "il-set-forget" for b in at.button)     # none chosen yet
    at.selectbox(key="il-sets-pick").set_value("A").run()
    at.button(key="il-set-forget").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert list(at.session_state["il-sets"]) == ["B"]
    assert at.selectbox(key="il-sets-pick").options == ["-", "B"]
    assert at.selectbox(key="il-sets-pick").value == "-"


@pytest.mark.slow
def test_a_refused_selection_clears_the_previous_one_and_its_focus(app_page, monkeypatch):
    from views import landscape as lv
    from views import landscape_selection as lsel

    at = app_page(PAGE, study=DEMO, timeout=300)
    assert not at.exception, [e.value for e in at.exception]
    at.session_state["il-selection"] = (lv.RNA, (0, 1, 2))
    at.run()
    assert at.session_state["_focus"] is not None                  # the old selection's
    # the chart reports a lasso of every cell, more than the session may hold
    monkeypatch.setattr(lsel, "selected_cells", lambda event: tuple(range(20_000)))
    monkeypatch.setenv("CART_SESSION_MEMORY_MB", "0.4")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(w.value.startswith("Not kept: the selection of 20,000") for w in at.warning)
    assert any("No selection is active now" in i.value for i in at.info)
    assert "il-selection" not in at.session_state
    assert at.session_state["_focus"] is None
    assert not any(b.key == "il-clear" for b in at.button)          # no old summary
