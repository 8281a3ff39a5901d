"""components.sidebar: page options and the cohort in the query string. A value round-trips
(widget -> URL -> a fresh session's widget); a link naming something the study lacks says so."""

from __future__ import annotations

import ast
import json

import pytest

from analysis.vocab import DayWindow


# ---- linked widgets in a run -------------------------------------------------------------------
def _options_page():
    import streamlit as st

    from components import sidebar

    sidebar.begin_url(page="t")
    try:
        genes = ["CD7", "CD3E", "GZMB"]
        st.selectbox("Gene", genes, key=sidebar.linked("t-gene", options=genes))
        st.toggle("Log", value=True, key=sidebar.linked("t-log", kind=bool))
        st.slider("Days", -30, 365, (0, 28),
                  key=sidebar.linked("t-days", kind=int, shape="range", bounds=(-30, 365)))
        st.multiselect("Analytes", ["IL6", "IFNG", "IL10"], default=["IL6"],
                       key=sidebar.linked("t-an", options=["IL6", "IFNG", "IL10"],
                                          shape="many"))
    finally:
        sidebar.finish_url(completed=True)


def _run(query: dict[str, str | list[str]] | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_options_page, default_timeout=30)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def _qp(at, key):
    value = at.query_params.get(key)
    return value if isinstance(value, list) else [value]


def test_page_options_are_written_and_read_back():
    at = _run()
    assert not at.exception
    at.selectbox(key="t-gene").set_value("GZMB").run()
    at.toggle(key="t-log").set_value(False).run()
    at.slider(key="t-days").set_value((7, 90)).run()
    at.multiselect(key="t-an").set_value(["IFNG", "IL10"]).run()
    assert _qp(at, "t-gene") == ["GZMB"]
    assert _qp(at, "t-log") == ["0"]
    assert _qp(at, "t-days") == ["7", "90"]
    assert _qp(at, "t-an") == ["IFNG", "IL10"]
    # a fresh session opened with that query string shows the same view
    again = _run({k: at.query_params[k] for k in at.query_params})
    assert not again.exception
    assert again.selectbox(key="t-gene").value == "GZMB"
    assert again.toggle(key="t-log").value is False
    assert again.slider(key="t-days").value == (7, 90)
    assert again.multiselect(key="t-an").value == ["IFNG", "IL10"]
    assert not again.warning


def test_options_at_their_default_stay_out_of_the_link():
    """A link holds only what differs from the page's defaults (short), and still reopens the
    same view; an option set back to its default leaves the link again."""
    at = _run()
    assert not at.exception
    assert not any(k.startswith("t-") for k in at.query_params), dict(at.query_params)
    at.selectbox(key="t-gene").set_value("GZMB").run()
    at.multiselect(key="t-an").set_value(["IL6", "IL10"]).run()
    assert set(at.query_params) == {"t-gene", "t-an"}
    again = _run({k: at.query_params.get_all(k) if hasattr(at.query_params, "get_all")
                  else at.query_params[k] for k in at.query_params})
    assert again.selectbox(key="t-gene").value == "GZMB"
    assert again.multiselect(key="t-an").value == ["IL6", "IL10"]
    assert again.toggle(key="t-log").value is True and again.slider(key="t-days").value == (0, 28)
    at.selectbox(key="t-gene").set_value("CD7").run()      # back to the default
    assert "t-gene" not in at.query_params and "t-an" in at.query_params
    # a link that spells out a default opens the same view; what a link set stays in the
    # links made from it (the page's own default for it was never seen in that session)
    spelled = _run({"t-log": "1", "t-days": ["0", "28"]})
    assert not spelled.exception and not spelled.warning
    assert spelled.toggle(key="t-log").value is True
    assert set(spelled.query_params) == {"t-log", "t-days"}
    spelled.selectbox(key="t-gene").set_value("CD3E").run()
    spelled.selectbox(key="t-gene").set_value("CD7").run()
    assert "t-gene" not in spelled.query_params


def _preset_page():
    import streamlit as st

    from components import sidebar

    sidebar.begin_url(page="t")
    try:
        layers = ["rna", "proteomics", "cytokines"]
        key = sidebar.linked("t-layer", options=layers)     # a link's layer first, then
        st.session_state.setdefault(key, "proteomics")      # the page's own default
        st.selectbox("Layer", layers, key=key)
    finally:
        sidebar.finish_url(completed=True)


def test_a_value_the_page_chose_itself_stays_in_the_link():
    """The widget's default (its first choice here) is not the page's: a link that left out
    "rna" would reopen on "proteomics", so values of such options always stay in the link."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_preset_page, default_timeout=30).run()
    assert at.selectbox(key="t-layer").value == "proteomics"
    at.selectbox(key="t-layer").set_value("rna").run()
    assert at.query_params.get("t-layer") in ("rna", ["rna"])
    again = AppTest.from_function(_preset_page, default_timeout=30)
    again.query_params["t-layer"] = "rna"
    assert again.run().selectbox(key="t-layer").value == "rna"


def test_a_link_naming_what_is_missing_says_so():
    at = _run({"t-gene": "NOPE", "t-days": ["0", "900"], "t-an": ["IFNG", "TNFA"],
               "t-colour": "red"})
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "'NOPE'" in text and "900" in text and "'TNFA'" in text
    assert "t-colour" in text            # an option no page has
    assert at.selectbox(key="t-gene").value == "CD7"          # the default, said above
    assert at.slider(key="t-days").value == (0, 365)          # clamped, said above
    assert at.multiselect(key="t-an").value == ["IFNG"]
    # once the user picks another gene, the gene's note goes; the unknown option is named once
    at.selectbox(key="t-gene").set_value("CD3E").run()
    text = " ".join(w.value for w in at.warning)
    assert "'NOPE'" not in text and "t-colour" not in text and "900" in text


# ---- the cohort ------------------------------------------------------------------------------
def test_cohort_link_naming_unknown_patients_says_so(app_page, demo_study):
    first = demo_study.subject_ids[0]
    at = app_page("pages/data_quality.py", query={"patients": f"{first},NOPE-9",
                                                   "groups": "Martians", "days": "-900:90"})
    assert not at.exception
    text = " ".join(w.value for w in at.sidebar.warning)
    assert "NOPE-9" in text and "Martians" in text and "-900" in text
    assert at.multiselect(key="f-patients").value == [first]
    n = len(demo_study.subject_ids)
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert f"1 of {n} patients" in captions
    at.multiselect(key="f-patients").set_value([]).run()
    assert f"{n} of {n} patients" in " ".join(c.value for c in at.sidebar.caption)
    assert "NOPE-9" not in " ".join(w.value for w in at.sidebar.warning)


@pytest.mark.parametrize(("days", "slider", "shown"), [
    ("0:28", (0, 28), "days 0..28"), (":90", None, "days ..90"), ("D28", (21, 35), "days 21..35"),
    ("0-28", None, "all days")])
def test_cohort_days_from_a_link(app_page, days, slider, shown):
    """Links keep their days=lo:hi form (a window name also works); what is not a window is
    named, not silently dropped."""
    at = app_page("pages/data_quality.py", query={"days": days})
    assert not at.exception
    lo, hi = at.slider(key="f-days").value
    if slider is not None:
        assert (lo, hi) == slider
    assert shown in " ".join(c.value for c in at.sidebar.caption)
    if days == "0-28":
        assert "'0-28' (not a window lo\\:hi)" in " ".join(w.value for w in at.sidebar.warning)
    else:
        assert _qp(at, "days") == [f"{'' if days == ':90' else lo}:{hi}"]


def test_a_link_naming_a_value_outside_a_closed_vocabulary_says_so(app_page):
    """A Literal option (the data-quality severities) rejects what it does not hold, by name."""
    at = app_page("pages/data_quality.py", query={"dq-severity": ["error", "fatal"]})
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "'fatal' (not among the choices here)" in text and "not applied" in text
    assert at.pills(key="dq-severity").value == ["error"]


# ---- every page option is in the URL -----------------------------------------------------------
WIDGETS = {"selectbox", "radio", "multiselect", "slider", "select_slider", "number_input",
           "text_input", "text_area", "checkbox", "toggle", "segmented_control", "pills",
           "data_editor", "date_input", "file_uploader"}
# widgets whose value a link cannot carry, and why
NOT_IN_URL = {
    "pages/import_data.py": "files and folders being imported, not a view of a study",
    "il-sig-gmt": "an uploaded file",
    "il-set-name": "the name a selection of cells is kept under (session only)",
    "il-sets-pick": "cell sets kept in this session",
    "il-two-a": "cell sets kept in this session",
    "il-two-b": "cell sets kept in this session",
    "slides-table": "the figures of this session and the standard deck, ticked and ordered",
}


def test_every_page_option_is_linked():
    """Each widget a page reads into its Params is linked to the URL (sidebar.linked), so a
    shared link reopens the same view; the few that cannot be are listed with the reason."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    missing = []
    for page in sorted((root / "pages").glob("*.py")):
        rel = str(page.relative_to(root))
        if rel in NOT_IN_URL:
            continue
        tree = ast.parse(page.read_text(encoding="utf-8"))

        def is_linked(node: ast.AST) -> bool:
            return isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "linked"

        linked_names = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign)
                        and is_linked(n.value) for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") in WIDGETS):
                continue
            key = next((k.value for k in node.keywords if k.arg == "key"), None)
            if is_linked(key) or (isinstance(key, ast.Name) and key.id in linked_names):
                continue
            name = key.value if isinstance(key, ast.Constant) else ast.unparse(key) \
                if key is not None else "(no key)"
            if name not in NOT_IN_URL:
                missing.append(f"{rel}:{node.lineno} {node.func.attr} {name}")
    assert not missing, f"page options not in the URL (wrap the key in sidebar.linked): {missing}"


# where each widget takes its default: (position among the arguments, keyword)
DEFAULT_ARG = {"selectbox": (2, "index"), "radio": (2, "index"), "multiselect": (2, "default"),
               "slider": (3, "value"), "number_input": (3, "value"),
               "select_slider": (2, "value"), "checkbox": (1, "value"), "toggle": (1, "value"),
               "text_input": (1, "value"), "text_area": (1, "value"),
               "segmented_control": (2, "default"), "pills": (2, "default"),
               "date_input": (1, "value"), "_choose": (4, "index")}
# linked options whose default is not written as a code constant but still is one, and why
CODE_DEFAULTS = {
    "f'kin-blq-{pos}'": "kv.BLQ_DEFAULTS, a code constant, unpacked in the loop",
}


def _is_code_constant(node: ast.AST) -> bool:
    """Literals, UPPER_CASE names (module constants), `list(CONSTANT)` and
    `CONSTANT.index(CONSTANT)`."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_is_code_constant(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp):
        return _is_code_constant(node.operand)
    if isinstance(node, ast.Name):
        return node.id.isupper()
    if isinstance(node, ast.Attribute):
        return node.attr.isupper()
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in ("list", "tuple") and not node.keywords:
        return all(map(_is_code_constant, node.args))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr == "index" and not node.keywords:
        return _is_code_constant(node.func.value) and all(map(_is_code_constant, node.args))
    return False


def test_every_option_with_a_default_from_the_study_stays_in_the_link():
    """A linked option whose default the page computes (from study.toml's [rules], the data)
    is marked `study_default=True`, so links always carry it: left out, the same link would
    reopen with whatever the study's default is by then (a Blood counts link made at a
    transfusion-free window of 56 d would show responses at 28 d after the rule changed)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    unmarked = []
    for page in sorted((root / "pages").glob("*.py")):
        rel = str(page.relative_to(root))
        if rel in NOT_IN_URL:
            continue
        tree = ast.parse(page.read_text(encoding="utf-8"))

        def is_linked(node: ast.AST | None) -> bool:
            return isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "linked"

        linked_calls = {t.id: n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                        and is_linked(n.value) for t in n.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name not in DEFAULT_ARG:
                continue
            kw = {k.arg: k.value for k in node.keywords}
            if name == "_choose":          # pages/immune_landscape.py: a linked selectbox
                key = ast.unparse(node.args[3])
                marked = kw.get("study_default")
            else:
                call = kw.get("key")
                if isinstance(call, ast.Name):
                    call = linked_calls.get(call.id)
                if not is_linked(call):
                    continue
                key = ast.unparse(call.args[0])
                marked = next((k.value for k in call.keywords if k.arg == "study_default"), None)
            pos, word = DEFAULT_ARG[name]
            default = kw.get(word, node.args[pos] if len(node.args) > pos else None)
            if default is None or _is_code_constant(default) or key in CODE_DEFAULTS:
                continue
            if not (isinstance(marked, ast.Constant) and marked.value is True):
                unmarked.append(f"{rel}:{node.lineno} {key} (default {ast.unparse(default)})")
    assert not unmarked, ("linked options with a default from the study, not marked "
                          f"sidebar.linked(..., study_default=True): {unmarked}")


def test_every_page_says_what_the_cohort_filter_applies_to():
    """Each page names what on it the cohort's patients and day window apply to (or why the
    day window does not), in its `session.context(applies=...)` call."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    silent = []
    for page in sorted((root / "pages").glob("*.py")):
        tree = ast.parse(page.read_text(encoding="utf-8"))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and getattr(n.func, "attr", "") == "context"]
        if not calls:
            continue    # a page that shows no study (the Import page)
        said = [k.value for c in calls for k in c.keywords if k.arg == "applies"]
        if not said or not all(isinstance(v, ast.Constant) and "day" in v.value for v in said):
            silent.append(page.name)
    assert not silent, f"pages that do not say what the cohort filter (and its days) apply to: " \
        f"{silent}"


def test_the_sidebar_shows_what_the_filter_applies_to_here(app_page):
    at = app_page("pages/outcomes.py")
    assert not at.exception
    said = " ".join(c.value for c in at.sidebar.caption)
    assert "On this page the cohort filter applies to patients; not the day window" in said


def test_the_focus_travels_in_the_link(app_page):
    """A focus made on one page (cells lassoed, a sample clicked) is written to the URL; a
    fresh session opened with it highlights the same patients and days."""
    at = app_page("pages/blood_counts.py", query={"focus": "SAA-002,NOPE-1",
                                                   "focus-days": "14:28",
                                                   "focus-label": "cells lassoed"})
    assert not at.exception
    from components.session import FOCUS_KEY

    focus = at.session_state[FOCUS_KEY]
    assert (focus.subjects, focus.days, focus.label) == \
        (("SAA-002",), DayWindow(14, 28), "cells lassoed")
    opened = app_page(query={"focus": "SAA-002,NOPE-1"})     # said on the page it opens
    assert any("NOPE-1" in w.value for w in opened.sidebar.warning)
    assert any("cells lassoed: SAA-002, days 14..28" in i.value for i in at.info)
    assert _qp(at, "focus") == ["SAA-002"] and _qp(at, "focus-days") == ["14:28"]
    at.button(key="bc-clear-focus").click().run()
    assert at.session_state[FOCUS_KEY] is None
    assert "focus" not in at.query_params


def test_colour_by_response_group_from_the_link(app_page):
    from components.theme import GROUP_COLORS

    at = app_page("pages/kinetics.py", query={"colour": "response_group"})
    assert not at.exception
    assert at.radio(key="f-colour").value == "response_group"
    assert at.query_params.get("colour") in ("response_group", ["response_group"])
    colours = {t.get("line", {}).get("color") for chart in at.get("plotly_chart")
               for t in json.loads(chart.proto.spec)["data"] if t.get("name", "").startswith("SAA")}
    colours.discard(None)
    assert colours and colours <= set(GROUP_COLORS.values())
    at.radio(key="f-colour").set_value("patient").run()
    assert "colour" not in at.query_params


def test_a_link_with_an_unknown_colour_choice_says_so(app_page):
    at = app_page("pages/kinetics.py", query={"colour": "rainbow"})
    assert not at.exception
    assert "rainbow" in " ".join(w.value for w in at.sidebar.warning)
    assert at.radio(key="f-colour").value == "patient"
