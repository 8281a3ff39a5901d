"""Architecture rules of DESIGN.md section 1, checked by reading imports."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# DESIGN.md s.1: only pages/, app.py and components/{render,session,sidebar}.py (the old
# import path components/filters.py while it remains, and the jobs panel)
UI_COMPONENTS = ("render.py", "session.py", "sidebar.py", "filters.py", "jobs_panel.py")
NO_STREAMLIT = ["data_loaders", "analysis", "views", "jobs", "cli.py", "deploy", "sample_data",
                *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "components").rglob("*.py")
                        if p.parent.name != "components" or p.name not in UI_COMPONENTS)]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def _files(rel: str) -> list[Path]:
    p = ROOT / rel
    return [p] if p.is_file() else sorted(p.rglob("*.py"))


@pytest.mark.parametrize("rel", NO_STREAMLIT)
def test_no_streamlit_outside_ui_layer(rel):
    offenders = [str(f.relative_to(ROOT)) for f in _files(rel) if "streamlit" in _imports(f)]
    assert not offenders, f"streamlit imported in {offenders}"


@pytest.mark.parametrize("rel", ["data_loaders", "analysis"])
def test_no_plotly_in_data_and_analysis(rel):
    offenders = [str(f.relative_to(ROOT)) for f in _files(rel) if "plotly" in _imports(f)]
    assert not offenders, f"plotly imported in {offenders}"


def test_only_render_calls_plotly_chart():
    hits = [str(f.relative_to(ROOT)) for f in [ROOT / "app.py", *_files("pages"),
                                                 *_files("components")]
            if "st.plotly_chart(" in f.read_text(encoding="utf-8")]
    assert hits == ["components/render.py"]


def test_public_analysis_functions_take_keyword_only_options():
    """Data first, then keyword-only options (STYLE.md rule 3)."""
    import importlib
    import pkgutil

    import analysis

    bad = []
    for mod in pkgutil.iter_modules(analysis.__path__):
        m = importlib.import_module(f"analysis.{mod.name}")
        for name in getattr(m, "__all__", []):
            fn = getattr(m, name)
            if not inspect.isfunction(fn):
                continue
            params = list(inspect.signature(fn).parameters.values())
            positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                          p.POSITIONAL_OR_KEYWORD)]
            if len(positional) > 2:
                bad.append(f"analysis.{mod.name}.{name}")
    assert not bad, f"more than two positional parameters: {bad}"


def test_pages_do_not_import_data_loaders():
    """DESIGN.md s.1: pages import views, components and analysis.vocab, not data_loaders."""
    offenders = sorted(str(f.relative_to(ROOT)) for f in _files("pages")
                       if "data_loaders" in _imports(f))
    assert not offenders, offenders


def test_views_join_analysis_and_figures_without_ui_or_files():
    """A view module composes analysis and figure factories: no streamlit, no file access,
    no data loading beyond what the Study holds."""
    for f in _files("views"):
        names = _imports(f)
        assert "streamlit" not in names, f
        text = f.read_text(encoding="utf-8")
        assert "open(" not in text and "read_csv(" not in text, f
        assert not (names & {"h5py", "anndata", "flowio"}), f


def test_view_functions_take_study_then_keyword_only_options():
    """f(study: Study, *, cohort, params, focus=None): the same call shape for every view."""
    import importlib

    import views

    checked = 0
    for path in _files("views"):
        if path.name in ("__init__.py", "spec.py"):
            continue
        m = importlib.import_module(f"views.{path.stem}")
        for name in getattr(m, "__all__", []):
            fn = getattr(m, name)
            if not inspect.isfunction(fn):
                continue
            sig = inspect.signature(fn)
            if sig.return_annotation not in ("FigureSpec", "TableSpec"):
                continue
            params = list(sig.parameters.values())
            assert params[0].name == "study" and params[0].annotation == "Study", name
            rest = {p.name: p for p in params[1:]}
            assert all(p.kind == p.KEYWORD_ONLY for p in rest.values()), name
            assert {"cohort", "params", "focus"} <= set(rest), name
            checked += 1
    assert checked >= 4 and views.__doc__
