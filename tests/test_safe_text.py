"""Text from data and links shown as text (components/safe.py): markdown escaping, no live links
in figures, and the app run headless through app.py with hostile study titles, subject ids and
URL parameters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from components.safe import md, unlink, unlink_figure

ROOT = Path(__file__).resolve().parent.parent
LINK = "[click](https://evil.example/x)"
IMAGE = "![i](https://evil.example/pixel.png)"
AUTOLINK = "see https://evil.example and www.evil.example"
ANCHOR = "<a href='https://evil.example'>P9</a>"


def _plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


# ---- md --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [LINK, IMAGE, AUTOLINK, ":red[alarm] :material/warning:",
                                  "$x^2$", "# heading", "1. list", "> quote", "`code`",
                                  "**bold** _it_ ~~s~~", "<b>html</b>", "a | b", "P-01",
                                  "\\[already\\]"])
def test_md_escapes_every_markdown_construct(text):
    out = md(text)
    assert _plain(out) == text
    # no character that opens a construct is left unescaped
    unescaped = re.sub(r"\\.", "", out)
    assert not re.search(r"[\[\]<>!*_`~$|#@&+]|:[A-Za-z/]|^\s*(-|\d+[.)])", unescaped), out
    assert "https://" not in out and "www.evil" not in out


def test_md_leaves_plain_words_alone():
    assert md("lassoed cells: SAA-002, days 7..28 (n = 3)") == \
        "lassoed cells: SAA-002, days 7..28 (n = 3)"
    assert md("- item") == "\\- item" and md("12. x") == "12\\. x"


def test_md_of_line_breaks_and_none():
    assert md("a\n# b\r\nc") == "a \\# b c"
    assert md(None) == "" and md(5) == "5"


# ---- figures ---------------------------------------------------------------------------------------
def test_unlink_keeps_the_words():
    assert unlink(ANCHOR) == "P9"
    assert unlink('<A HREF="x" target="_blank">y</A > z') == "y z"
    assert unlink("<b>bold</b> a<br>b") == "<b>bold</b> a<br>b"      # other tags stay
    assert unlink("P1 <abbr>") == "P1 <abbr>"


def test_unlink_figure_everywhere_plotly_draws_text():
    fig = go.Figure([
        go.Scatter(x=["P1", ANCHOR], y=[1, 2], name=ANCHOR, text=[ANCHOR, "t"],
                   hovertext=np.array([ANCHOR, "h"], dtype=object),
                   customdata=np.array([[ANCHOR, 1], ["c", 2]], dtype=object)),
        go.Pie(labels=[ANCHOR, "b"], values=[1, 2]),
    ])
    fig.update_layout(title=f"Study {ANCHOR}", xaxis_title=ANCHOR, legend_title_text=ANCHOR)
    fig.add_annotation(text=ANCHOR, x=0, y=0)
    out = unlink_figure(fig)
    assert "<a" not in json.dumps(out.to_plotly_json(), default=str).lower()
    assert list(out.data[0].x) == ["P1", "P9"] and out.layout.title.text == "Study P9"
    assert "<a" in fig.data[0].name          # the original is not changed


def test_unlink_figure_without_links_is_the_same_object():
    fig = go.Figure(go.Scattergl(x=np.arange(1000), y=np.arange(1000),
                                 hovertext=np.array([f"P{i}" for i in range(1000)], dtype=object)))
    assert unlink_figure(fig) is fig


def test_exported_svg_has_no_link(monkeypatch):
    """The file path (PNG/SVG/PDF) gets the same treatment as the screen."""
    from components import export
    from components.export import server

    seen = {}

    def fake_call(spec, opts):
        seen["spec"] = spec
        return b"<svg/>"

    monkeypatch.setattr(server, "call", fake_call)
    fig = go.Figure(go.Bar(x=[ANCHOR], y=[1]), layout={"title": {"text": ANCHOR}})
    export.export_figure(fig, "svg")
    assert "<a" not in json.dumps(seen["spec"], default=str).lower()


# ---- the app -----------------------------------------------------------------------------------------
@pytest.fixture
def hostile_study(write_study) -> Path:
    ids = [IMAGE, "P2", ANCHOR]
    patients = "subject_id,age,sex\n" + "".join(f'"{i}",40,F\n' for i in ids)
    folder = write_study(patients=patients)
    (folder / "study.toml").write_text(f'[study]\ntitle = "{LINK} {AUTOLINK}"\n'
                                       'study_id = "NCT-**1**"\n')
    return folder


def _markdown_sources(at) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title",
                 "subheader", "header"):
        out += [e.value for e in getattr(at, kind)]
        out += [e.value for e in getattr(at.sidebar, kind)]
    out += [m.label for m in at.metric]
    return out


def _assert_literal(sources: list[str], payloads: list[str]) -> None:
    text = "\n".join(sources)
    for payload in payloads:
        assert payload not in text, payload
    hits = [s for s in sources if re.search(r"https://|(?<!\\)\]\(|(?<!\\)<a ", s)]
    assert not hits, hits


def test_link_in_study_parameter_shows_as_text(app_page):
    at = app_page(query={"study": LINK})
    assert not at.exception
    warning = at.sidebar.warning[0].value
    assert _plain(warning).startswith(f"Study refused: no study named {LINK!r}")
    _assert_literal(_markdown_sources(at), [LINK])


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/outcomes.py",
                                  "pages/data_quality.py"])
def test_hostile_title_and_subject_ids_show_as_text(app_page, hostile_study, page):
    at = app_page(page, study=hostile_study, query={"patients": f"{IMAGE},{ANCHOR}"})
    assert not at.exception
    sources = _markdown_sources(at)
    assert any("evil" in s for s in sources)            # the values are shown, escaped
    _assert_literal(sources, [LINK, IMAGE, AUTOLINK, "**1**"])
    charts = at.get("plotly_chart")
    assert charts or not page.endswith("overview.py")   # the swimmer plot names patients
    for chart in charts:
        assert "<a " not in json.dumps(json.loads(chart.proto.spec), ensure_ascii=False).lower()
        # no unlogged picture download from the plotly toolbar
        assert json.loads(chart.proto.config)["modeBarButtonsToRemove"] == ["toImage"]


def test_link_in_patient_parameter_shows_as_text(app_page):
    at = app_page("pages/patient.py", query={"patient": LINK})
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(_plain(w).startswith("The link sets the patient") and repr(LINK) in _plain(w)
               for w in warnings)
    _assert_literal(_markdown_sources(at), [LINK])
