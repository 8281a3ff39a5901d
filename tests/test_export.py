"""Figure files: PNG/SVG/PDF round trips with provenance, the presentation template, WebGL
traces in vector files, CSV escaping, and a clear message when Chromium is missing."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest

from analysis.vocab import DayWindow
from components import export

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def prov() -> export.Provenance:
    return export.Provenance(study_id="STUDY-Ü1", content_hash="ab" * 32,
                             cohort="patients P1, P2; days 0..28",
                             params={"analyte": "ANC", "log_y": True}, figure="ANC over time")


def _line_fig() -> go.Figure:
    return go.Figure(
        [go.Scatter(x=[0, 7, 14, 28], y=[0.1, 0.4, 1.2, 2.5], mode="lines+markers", name="P1",
                    line={"color": "#E69F00", "width": 1}),
         go.Scatter(x=[0, 7, 14, 28], y=[0.2, 0.3, 0.5, 0.9], mode="lines", name="P2")],
        layout={"template": "cart", "title": "ANC", "xaxis_title": "Day",
                "yaxis_title": "ANC (10^9/L)"})


# ---- CSV ----------------------------------------------------------------------------------------
def test_csv_escapes_formula_cells_but_not_numbers():
    frame = pl.DataFrame({"text": ["=1+1", "+cmd", "-x", "@SUM(A1)", "\tTab", "plain", None],
                          "n": [-1.5, 2.0, -3.0, 0.0, 1.0, 5.0, None]})
    rows = export.csv_bytes(frame).decode().splitlines()
    assert rows[1:6] == ["'=1+1,-1.5", "'+cmd,2.0", "'-x,-3.0", "'@SUM(A1),0.0", "'\tTab,1.0"]
    assert rows[6] == "plain,5.0"


# ---- provenance --------------------------------------------------------------------------------
def test_provenance_of_study_names_hash_cohort_and_version(demo_study):
    from analysis.cohort import Cohort

    cohort = Cohort(subjects=(demo_study.subject_ids[0],), days=DayWindow(0, 28))
    p = export.Provenance.of(demo_study, cohort, params={"x": (1, 2)}, figure="F")
    assert p.study_id == demo_study.study_id
    assert p.content_hash == demo_study.content_hash and len(p.content_hash) == 64
    assert p.cohort == cohort.describe() and "days 0..28" in p.cohort
    assert p.params == {"x": [1, 2]}
    assert p.app == f"{export.APP_NAME} {export.APP_VERSION}" and export.APP_VERSION != "unknown"
    assert demo_study.study_id in p.footer() and p.content_hash[:12] in p.footer()


def test_params_dict_accepts_dataclasses():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class P:
        analyte: str = "IL6"
        window: tuple[int, int] = (0, 28)

    assert export.params_dict(P()) == {"analyte": "IL6", "window": [0, 28]}
    assert export.params_dict(None) == {}


def test_params_dict_writes_day_windows_as_links_do():
    from analysis.vocab import WINDOWS
    from views import code
    from views import patient as vp

    p = vp.PatientParams("SAA-001", days=DayWindow(None, 60), shade=WINDOWS["D28"])
    written = export.params_dict(p)
    assert written["days"] == ":60" and written["shade"] == "D28"
    assert code.params_from(vp.timeline, written) == p     # the file alone makes it again
    odd = DayWindow(0, 10, label="first ten days")
    assert export.params_dict({"w": odd})["w"] == {"lo": 0, "hi": 10, "label": "first ten days",
                                                   "centre": 5.0}
    assert DayWindow(**export.params_dict({"w": odd})["w"]) == odd


def test_png_text_chunks_round_trip_latin1_and_utf8():
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (3, 2), "white").save(buf, format="PNG")
    png = export.png_add_text(buf.getvalue(), {"Source": "plain", "provenance": "Δ cohort ü"})
    assert export.png_text(png) == {"Source": "plain", "provenance": "Δ cohort ü"}
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        assert im.size == (3, 2) and im.text["provenance"] == "Δ cohort ü"
    with pytest.raises(ValueError, match="not a PNG"):
        export.png_add_text(b"GIF89a", {"a": "b"})


# ---- presentation template ---------------------------------------------------------------------
def test_presentation_template_changes_a_copy_only():
    fig = _line_fig()
    before = fig.to_dict()
    out = export.presentation_figure(fig, footer="STUDY · data abc")
    assert fig.to_dict() == before
    assert out.layout.font.size >= 18 and out.layout.title.font.size >= 26
    assert out.layout.paper_bgcolor == "white" and out.layout.plot_bgcolor == "white"
    assert all(t.line.width >= 3 for t in out.data)
    band = go.Figure([go.Scatter(x=[0, 1, 1, 0], y=[0, 0, 1, 1], fill="toself", line_width=0),
                      go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line_width=0.5, fill="tonexty")])
    assert [t.line.width for t in export.presentation_figure(band).data] == [0, 0.5]
    assert out.layout.xaxis.tickfont.size >= 16
    assert any(a.text == "STUDY · data abc" for a in out.layout.annotations)
    assert len(fig.layout.annotations) == 0


# ---- files (need Chromium) ---------------------------------------------------------------------
def test_png_has_slide_size_at_2x_and_provenance(export_ready, prov):
    from PIL import Image

    png = export.export_figure(_line_fig(), "png", provenance=prov)
    assert export.png_size(png) == (2560, 1440)
    with Image.open(io.BytesIO(png)) as im:
        im.verify()
    text = export.png_text(png)
    meta = json.loads(text["provenance"])
    assert meta["study_id"] == "STUDY-Ü1" and meta["content_hash"] == "ab" * 32
    assert meta["cohort"] == prov.cohort and meta["params"] == {"analyte": "ANC", "log_y": True}
    assert meta["app"].startswith(export.APP_NAME) and meta["created"][:4].isdigit()
    assert text["Title"] == "ANC over time"


def test_png_size_follows_arguments(export_ready):
    png = export.export_figure(_line_fig(), "png", width=400, height=300, scale=1)
    assert export.png_size(png) == (400, 300)


def test_svg_parses_and_contains_the_traces_and_metadata(export_ready, prov):
    svg = export.export_figure(_line_fig(), "svg", provenance=prov, footer=True)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg" and root.get("viewBox") == "0 0 1280 720"
    traces = [g for g in root.iter(f"{SVG_NS}g") if "trace" in (g.get("class") or "").split()]
    assert len(traces) == 2
    assert any("js-line" in (p.get("class") or "") for g in traces for p in g.iter())
    meta = next(root.iter(f"{SVG_NS}metadata"))
    record = json.loads("".join(meta.itertext()))
    assert record["study_id"] == "STUDY-Ü1" and record["figure"] == "ANC over time"
    texts = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG_NS}text"))
    assert "STUDY-Ü1" in texts and "ab" * 6 in texts  # the footer line
    assert svg.startswith(b"<!-- STUDY-")


def test_pdf_has_one_page_and_provenance(export_ready, prov):
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(export.export_figure(_line_fig(), "pdf", provenance=prov)))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert float(box.width) / float(box.height) == pytest.approx(16 / 9, rel=0.01)
    info = reader.metadata
    assert json.loads(info["/Provenance"])["content_hash"] == "ab" * 32
    assert "STUDY-Ü1" in info["/Subject"] and info["/Creator"].startswith(export.APP_NAME)


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown figure format"):
        export.export_figure(_line_fig(), "gif")


# ---- WebGL traces in vector files ----------------------------------------------------------------
def _gl_fig(n: int, *, seed: int = 1) -> go.Figure:
    rng = np.random.default_rng(seed)
    # every point in the upper-right quarter of fixed 0..10 axes
    return go.Figure(go.Scattergl(x=rng.uniform(6, 9.5, n), y=rng.uniform(6, 9.5, n),
                                  mode="markers", name="cells",
                                  marker={"size": 4, "color": "#D55E00"}),
                     layout={"template": "cart", "xaxis_range": [0, 10],
                             "yaxis_range": [0, 10], "showlegend": True})


def test_small_webgl_becomes_vector_scatter(export_ready):
    fig = _gl_fig(40)
    out = export.rasterize_webgl(fig)
    assert [t.type for t in out.data] == ["scatter"] and fig.data[0].type == "scattergl"
    root = ET.fromstring(export.export_figure(fig, "svg", template=False))
    points = [p for p in root.iter(f"{SVG_NS}path") if "point" in (p.get("class") or "")]
    assert len(points) == 40


def test_large_webgl_is_rasterised_under_the_axes(export_ready):
    fig = _gl_fig(30_000)
    out = export.rasterize_webgl(fig, width=640, height=360, scale=1)
    assert [t.type for t in out.data] == ["scatter"]          # legend placeholder
    assert out.data[0].name == "cells" and list(out.data[0].x) == [None]
    (img,) = out.layout.images
    assert img.source.startswith("data:image/png;base64,") and img.xref == "x domain"
    assert tuple(out.layout.xaxis.range) == (0, 10) and img.layer == "below"
    svg = export.export_figure(fig, "svg", width=640, height=360, scale=1, template=False)
    images = list(ET.fromstring(svg).iter(f"{SVG_NS}image"))
    assert len(images) == 1


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_large_webgl_pdf_shows_points_where_the_axes_say(export_ready, tmp_path):
    from PIL import Image

    pdf = export.export_figure(_gl_fig(30_000), "pdf", width=640, height=360, scale=1,
                               template=False)
    (tmp_path / "f.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "72", "-png", "-singlefile", str(tmp_path / "f.pdf"),
                    str(tmp_path / "f")], check=True)
    im = np.asarray(Image.open(tmp_path / "f.png").convert("RGB")).astype(int)
    orange = (abs(im[..., 0] - 0xD5) < 40) & (abs(im[..., 1] - 0x5E) < 40) & \
        (abs(im[..., 2] - 0x00) < 60)
    ys, xs = np.nonzero(orange)
    assert xs.size > 2000, "the rasterised points are missing from the PDF"
    h, w = orange.shape
    # upper-right quarter of the data range -> right half and upper half of the page
    assert xs.min() > w * 0.45 and ys.max() < h * 0.55


# ---- without Chromium ----------------------------------------------------------------------------
def test_missing_chromium_says_what_to_install(monkeypatch):
    monkeypatch.setenv("CART_CHROMIUM", "/nonexistent/chromium")
    assert export.find_browser() is None
    reason = export.export_unavailable_reason()
    assert "apt-get install chromium" in reason and "/nonexistent/chromium" in reason
    with pytest.raises(export.ExportUnavailable, match="apt-get install chromium"):
        export.start_export_server()


def test_cli_export_fails_with_the_install_hint(monkeypatch, capsys, demo_dir, tmp_path):
    from cli import main

    monkeypatch.setenv("CART_CHROMIUM", "/nonexistent/chromium")
    code = main(["export", "--study", str(demo_dir), "--out", str(tmp_path / "d.pptx")])
    assert code != 0
    assert "apt-get install chromium" in capsys.readouterr().err
    assert not (tmp_path / "d.pptx").exists()


def test_app_page_without_chromium_runs_and_names_the_package(app_page, monkeypatch):
    monkeypatch.setenv("CART_CHROMIUM", "/nonexistent/chromium")
    at = app_page("pages/data_quality.py")
    assert not at.exception
    figure_files = [b.proto for b in at.get("download_button")
                    if b.proto.label in ("PNG", "SVG", "PDF")]
    assert len(figure_files) >= 3
    assert all(p.disabled and "apt-get install chromium" in p.help for p in figure_files)
    assert any("apt-get install chromium" in c.value for c in at.caption)
    csv = [b.proto for b in at.get("download_button") if b.proto.label == "Data (CSV)"]
    assert csv and not any(p.disabled for p in csv)  # the data is still downloadable


def test_app_page_offers_figure_files_when_chromium_is_there(app_page):
    if export.find_browser() is None:
        pytest.skip(export.export_unavailable_reason())
    at = app_page("pages/data_quality.py")
    assert not at.exception
    files = {b.proto.label: b.proto for b in at.get("download_button")
             if "dq-availability" in b.proto.id}
    assert {"PNG", "SVG", "PDF", "Data (CSV)"} <= set(files)
    assert not files["PNG"].disabled and files["PNG"].deferred_file_id
    assert at.session_state["_figure_registry"]["dq-availability"].title


def test_presentation_template_shrinks_y_titles_that_would_not_fit():
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=4, cols=1)
    fig.update_yaxes(title_text="Absolute neutrophil count (10^9/L)", row=1, col=1)
    fig.update_yaxes(title_text="HGB", row=2, col=1)
    out = export.presentation_figure(fig, height=570)
    assert out.layout.yaxis.title.font.size < 18
    assert out.layout.yaxis2.title.font.size == 18
    assert fig.layout.yaxis.title.font.size is None


def test_csv_writes_nested_columns_as_text():
    from components.export import csv_bytes

    df = pl.DataFrame({"genes": [["IFI27", "MX1"], ["=HYPERLINK"]],
                       "counts": [{"n": 1, "label": "a"}, {"n": 2, "label": "b"}]})
    lines = csv_bytes(df).decode().splitlines()
    assert lines[1].startswith("IFI27; MX1,")
    assert lines[2].startswith("'=HYPERLINK,")
    assert '""n"":2' in lines[2]
