"""Architecture rules of DESIGN.md section 1, checked by reading imports."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# DESIGN.md s.1: only pages/, app.py, components/render.py and components/filters.py
NO_STREAMLIT = ["data_loaders", "analysis", "cli.py", "deploy", "sample_data",
                *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "components").rglob("*.py")
                        if p.name not in ("render.py", "filters.py"))]


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
