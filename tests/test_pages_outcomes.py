"""AppTest runs of the Outcomes page on the demo: ORR, survival, landmarks and table headers."""

from __future__ import annotations


def _texts(at, kind: str) -> str:
    return " ".join(str(e.value) for e in getattr(at, kind))


def _frames(at) -> str:
    return " ".join(df.value.to_string() for df in at.dataframe)


def test_outcomes_on_demo(app_page):
    at = app_page("pages/outcomes.py")
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Outcomes"
    assert "Best" in _frames(at)
    at.multiselect(key="out-endpoint").set_value(["OS_HSCT_CENSORED"]).run()
    assert "sensitivity analysis" in _texts(at, "caption")
    at.multiselect(key="out-endpoint").set_value(["PFS"]).run()
    assert "Definition. PFS: the first of progression" in _texts(at, "caption")
    # two endpoints: one curve each; the split by response needs one endpoint
    at.multiselect(key="out-endpoint").set_value(["OS", "PFS"]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.toggle(key="out-by-group").disabled
    km = at.session_state["_figure_registry"]["out-km"]
    assert km.params.endpoints == ("OS", "PFS")
    assert {t.legendgroup or t.name for t in km.fig.data} >= {"OS", "PFS"}
    at.multiselect(key="out-endpoint").set_value(["PFS"]).run()
    assert any("Rules used" in e.label for e in at.expander)
    at.toggle(key="out-by-group").set_value(True).run()
    at.radio(key="out-source").set_value("recorded").run()
    assert not at.exception, [e.value for e in at.exception]
    # the default split is the landmark analysis (day 90): groups by response up to it
    assert "Landmark analysis at day 90 (recorded responses)" in _texts(at, "caption")
    assert "Response by day 90" in _frames(at)
    at.radio(key="out-split").set_value("best").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Responder" in _frames(at)

def test_orr_table_headers_are_labels_even_where_the_page_sets_a_format(app_page):
    """The ORR table formats orr/ci_low/ci_high as percent through its own column config; the
    header must still be the label ("95% CI low"), and response categories keep capitals (CR,
    not "Cr"). The CSV keeps the column names."""
    import json

    at = app_page("pages/outcomes.py")
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["ci_low"]["label"] == "95% CI low"
    assert columns["ci_low"]["type_config"]["format"] == "percent"
    assert columns["cr"]["label"] == "CR" and columns["nr"]["label"] == "NR"
