"""The "Responders vs non-responders" and "Clones & repertoire" pages (AppTest): planted
differences on the demo, widget interactions, and studies that lack the omics."""

from __future__ import annotations

import json

import pytest

IFN = {"IFNG", "CXCL9", "CXCL10", "CXCL11"}
MEASUREMENTS = """subject_id,day,analyte,value,unit,panel
P1,-7,IFNG,10,pg/mL,cytokine
P1,28,IFNG,3,pg/mL,cytokine
P2,-7,IFNG,12,pg/mL,cytokine
P2,28,IFNG,20,pg/mL,cytokine
"""
RESPONSES = "subject_id,day,response\nP1,28,CR\nP2,28,NR\n"


def _table(at, key_col: str = "feature"):
    for df in at.dataframe:
        frame = df.value
        if key_col in frame.columns:
            return frame
    raise AssertionError("no result table")


def test_compare_page_shows_planted_differences(app_page):
    at = app_page("pages/compare.py")
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Responders vs non-responders"
    assert at.selectbox(key="cmp-layer").value == "proteomics"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["n Responder"] == "3" and metrics["n Non-responder"] == "2"
    ranked = _table(at)
    assert set(ranked["feature"].head(4)) == IFN
    assert {"n_group_a", "n_group_b", "effect", "p_value", "q_value"} <= set(ranked.columns)
    assert (ranked["effect"].head(4) < 0).all()
    assert any("smallest possible two-sided p is 0.2" in c.value for c in at.caption)

    # the drill-down follows the chosen feature, with one test per window
    at.selectbox(key="cmp-feature").set_value("CXCL10").run()
    assert not at.exception
    by_window = next(df.value for df in at.dataframe if "window" in df.value.columns)
    assert list(by_window["window"]) == ["baseline", "D14", "D28", "M3", "M6", "M12"]
    d28 = by_window[by_window["window"] == "D28"].iloc[0]
    assert d28["effect"] < 0 and d28["p_value"] == pytest.approx(0.2)

    at.selectbox(key="cmp-layer").set_value("tcr").run()
    at.selectbox(key="cmp-window").set_value("M3").run()
    assert not at.exception
    assert _table(at)["feature"].iloc[0] in ("top10_share", "clonality", "shannon")


def test_compare_page_custom_split_and_too_few(app_page):
    at = app_page("pages/compare.py")
    at.selectbox(key="cmp-groupby").set_value("custom split").run()
    at.multiselect(key="cmp-split-a").set_value(["SAA-001", "SAA-002"]).run()
    at.multiselect(key="cmp-split-b").set_value(["SAA-005"]).run()
    assert not at.exception
    assert any("No test is possible" in i.value for i in at.info)
    ranked = _table(at)
    assert ranked["p_value"].isna().all() and (ranked["n_group_b"] == 1).all()


def test_clones_page_on_demo(app_page):
    at = app_page("pages/clones.py")
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Clones & repertoire"
    assert not at.info
    at.toggle(key="cln-log").set_value(True).run()
    at.selectbox(key="cln-metric").set_value("top10_share").run()
    at.selectbox(key="cln-patient").set_value("SAA-005").run()
    assert not at.exception
    metrics = _table(at, "top10_share")
    assert set(metrics["subject_id"]) == {f"SAA-00{i}" for i in range(1, 6)}


def test_pages_explain_missing_omics(app_page, write_study):
    folder = write_study(measurements=MEASUREMENTS, responses=RESPONSES)
    at = app_page("pages/compare.py", study=folder)
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    for what in ("no proteomics table", "no bulk RNA counts", "no mutations table",
                 "no TCR table", "no single-cell file"):
        assert what in captions
    assert at.selectbox(key="cmp-layer").value == "measurements"
    assert any("fewer than 2 patients" in i.value for i in at.info)

    at = app_page("pages/clones.py", study=folder)
    assert not at.exception
    infos = " ".join(i.value for i in at.info)
    assert "No somatic mutation data" in infos and "No TCR repertoire data" in infos


def test_compare_page_with_nothing_to_compare(app_page, write_study):
    at = app_page("pages/compare.py", study=write_study())
    assert not at.exception
    assert any("Nothing to compare" in i.value for i in at.info)


@pytest.mark.slow
@pytest.mark.browser
def test_clicking_a_volcano_point_opens_its_trajectory(app_server, page):
    """Selection is what AppTest cannot do: click one point, the drill-down follows it."""
    page.goto(f"{app_server}/compare", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Responders vs non-responders").first.wait_for(
        timeout=45_000)
    plot = page.locator(".stPlotlyChart").first
    plot.locator(".scatterlayer .trace .points path").first.wait_for(timeout=45_000)
    # the grey trace (q > FDR) holds every demo feature; many share a p-value in a 3 vs 2
    # cohort, so click the point farthest from its neighbours (not the default feature)
    x, y, feature = page.evaluate("""() => {
        const gd = document.querySelector('.stPlotlyChart .js-plotly-plot');
        const t = gd._fullData.findIndex(d => d.customdata && d.customdata.length > 20);
        const d = gd._fullData[t], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const px = d.x.map(v => xa.l2p(v)), py = d.y.map(v => ya.l2p(v));
        let best = -1, far = -1;
        for (let i = 0; i < px.length; i++) {
            if (d.customdata[i] === 'IFNG') continue;
            let near = Infinity;
            for (let j = 0; j < px.length; j++) {
                if (j !== i) near = Math.min(near, Math.hypot(px[i] - px[j], py[i] - py[j]));
            }
            if (near > far) { far = near; best = i; }
        }
        gd.scrollIntoView({block: 'center'});
        const r = gd.getBoundingClientRect();
        return [r.left + xa._offset + px[best], r.top + ya._offset + py[best], d.customdata[best]];
    }""")
    page.mouse.click(x, y)
    from playwright.sync_api import expect

    box = page.get_by_test_id("stSelectbox").filter(has_text="Feature (or click a point")
    expect(box.locator("input")).to_have_value(feature, timeout=30_000)
    expect(page.locator(".gtitle", has_text=f"{feature}: every patient")).to_have_count(
        1, timeout=30_000)


def test_compare_page_with_a_sidebar_day_window(app_page):
    at = app_page("pages/compare.py", query={"days": "0:60"})
    assert not at.exception
    assert any("own window" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) >= 2


def test_compare_page_marks_group_defining_counts(app_page):
    """Measurements at D28 on the demo: ANC, PLT, HGB and RETIC define the response groups,
    so their rows say so and have no q; BH across all windows is a checkbox."""
    at = app_page("pages/compare.py")
    at.selectbox(key="cmp-layer").set_value("measurements").run()
    assert not at.exception, [e.value for e in at.exception]
    ranked = _table(at)
    defining = ranked[ranked["feature"].isin(["ANC", "PLT", "HGB", "RETIC"])]
    assert len(defining) and defining["note"].str.startswith("defines the groups").all()
    assert defining["q_value"].isna().all()
    assert any(c.value.startswith("Defines the groups: ") for c in at.caption)
    at.checkbox(key="cmp-fdr-windows").check().run()
    assert not at.exception
    assert any("FDR: BH across" in c.value for c in at.caption)
    assert any(e.label.startswith("Rules used (1 changed") for e in at.expander)


def test_compare_opened_from_a_patient_sample_honours_the_focus(app_page):
    """What the Patient page does on a click on a bulk-RNA sample (pages/patient.py: the focus
    from views.patient.sample_view, then switch_page): Compare opens on that sample's layer and
    window and marks its patient."""
    from components import session
    from views import patient as vp

    at = app_page("pages/patient.py")
    study = at.session_state[session.CONTEXT_KEY].study
    page, _, focus_fields, presets = vp.sample_view(study, "SAA-004_M3_RNA")
    assert page == "compare"
    at.session_state[session.FOCUS_KEY] = session.Focus(study_key=study.cache_key, **focus_fields)
    for key, value in presets.items():
        at.session_state[key] = value
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="cmp-layer").value == "rna"
    assert at.selectbox(key="cmp-window").value == "M3"
    note = next(i.value for i in at.info if i.value.startswith("Focus"))
    assert "SAA-004 is in group Non-responder" in note
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    heat = next(c for c in charts if "z-scored" in c["layout"]["title"]["text"])
    assert [y for y in heat["data"][1]["y"] if y.startswith("<b>")] == [
        y for y in heat["data"][1]["y"] if "SAA-004" in y]
    course = next(c for c in charts if "every timepoint" in c["layout"]["title"]["text"])
    assert any(t.get("name") == "focus: SAA-004" for t in course["data"])
    # the focus is applied once: the user's own choice is kept afterwards
    at.selectbox(key="cmp-window").set_value("D28").run()
    assert at.selectbox(key="cmp-window").value == "D28"
    assert any("does not hold the focus days" in i.value for i in at.info)


def test_a_link_with_a_focus_opens_the_linked_layer_and_window(app_page):
    """A link made on this page carries its layer and window and the focus it highlights; the
    recipient sees that layer and window, not the ones the focus alone would open."""
    focus = {"focus": "SAA-004", "focus-days": "90:90", "focus-label": "sample SAA-004 M3"}
    alone = app_page("pages/compare.py", query=focus)
    assert not alone.exception, [e.value for e in alone.exception]
    assert alone.selectbox(key="cmp-window").value == "M3"    # a focus alone opens its window
    layer = alone.selectbox(key="cmp-layer").value
    assert layer == "proteomics"
    alone.selectbox(key="cmp-window").set_value("D28").run()
    link = {k: alone.query_params[k] for k in alone.query_params}
    assert link["cmp-window"] in ("D28", ["D28"]) and link["cmp-layer"] in (layer, [layer])
    assert link["focus"] in ("SAA-004", ["SAA-004"])
    opened = app_page("pages/compare.py", query=link)
    assert not opened.exception, [e.value for e in opened.exception]
    assert opened.selectbox(key="cmp-window").value == "D28"
    assert opened.selectbox(key="cmp-layer").value == layer
    assert app_page("pages/compare.py", query={**focus, "cmp-window": "D28"}).selectbox(
        key="cmp-window").value == "D28"
