"""AppTest runs of the Overview page on the demo."""

from __future__ import annotations


def _frames(at) -> str:
    return " ".join(df.value.to_string() for df in at.dataframe)


def test_overview_on_demo(app_page):
    at = app_page("pages/overview.py")
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Overview"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Patients"] == "5" and metrics["ORR (best)"].startswith("60%")
    assert "Responder (n=3)" in _frames(at)
    at.radio(key="ov-sort").set_value("response").run()
    assert not at.exception


def test_every_assay_link_names_a_page_of_the_app():
    """The availability matrix links each assay to its page (views.overview.assay_pages); a
    link to a page the navigation lacks would raise on the page."""
    import ast
    from pathlib import Path

    from analysis.quality import ASSAY_PAGES

    root = Path(__file__).resolve().parent.parent
    tree = ast.parse((root / "app.py").read_text(encoding="utf-8"))
    pages = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                 and getattr(n.targets[0], "id", "") == "PAGES")
    files = {row[1] for row in pages}
    assert set(ASSAY_PAGES.values()) <= files, set(ASSAY_PAGES.values()) - files


def test_fcs_samples_link_to_the_cytometry_page(demo_study):
    """An FCS sample in the availability matrix opens the page that gates and shows FCS files
    (Cytometry: populations, gate plots, FlowSOM), not the Immune landscape."""
    from views import overview as vo

    links = vo.assay_pages(vo.availability(demo_study))
    assert links["flow_fcs"] == "pages/cytometry.py"


def test_overview_links_fcs_to_cytometry_in_the_app(app_page):
    at = app_page("pages/overview.py")
    assert not at.exception
    links = {p.proto.label: p.proto.page for p in at.get("page_link")}
    assert links["flow_fcs →"].endswith("cytometry"), links
