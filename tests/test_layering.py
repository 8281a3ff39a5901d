"""Architecture rules of DESIGN.md section 1, checked by reading imports."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# DESIGN.md s.1: only pages/, app.py and components/{render,session,sidebar}.py (and the jobs
# panel, the session memory cap and the chart zoom/pan events component)
UI_COMPONENTS = ("render.py", "session.py", "sidebar.py", "jobs_panel.py", "session_memory.py",
                 "chart_events.py")
NO_STREAMLIT = ["data_loaders", "analysis", "views", "jobs", "cli.py", "deploy", "sample_data",
                *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "components").rglob("*.py")
                        if p.parent.name != "components" or p.name not in UI_COMPONENTS)]


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (an import made for annotations only
    is no dependency at run time)."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and \
                node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in _runtime_nodes(tree):
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


def _module_imports(path: Path) -> set[str]:
    """Every module a file imports at run time, at any depth (function-level imports included),
    as dotted names; `from analysis import vocab` counts as analysis.vocab."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module in ("analysis", "data_loaders"):
                names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _beyond_vocab(path: Path) -> list[str]:
    """The analysis modules other than analysis.vocab and the data_loaders modules a file
    imports (DESIGN.md s.1: pages and figure factories import views, components and
    analysis.vocab only)."""
    return sorted(m for m in _module_imports(path)
                  if (m.startswith("analysis.") and m != "analysis.vocab")
                  or m == "data_loaders" or m.startswith("data_loaders."))


def test_pages_do_not_import_data_loaders():
    """DESIGN.md s.1: pages import views, components and analysis.vocab, not data_loaders."""
    offenders = sorted(str(f.relative_to(ROOT)) for f in _files("pages")
                       if "data_loaders" in _imports(f))
    assert not offenders, offenders


def test_pages_import_only_vocab_from_analysis():
    offenders = {str(f.relative_to(ROOT)): _beyond_vocab(f) for f in _files("pages")
                 if _beyond_vocab(f)}
    assert not offenders, f"pages importing analysis or data_loaders (use views/): {offenders}"


# ---- pages only read widgets into Params, call views and render (STYLE.md rule 1) -------------
# A page's data work (frame methods, loops that compute, comprehensions, reductions, reading the
# Study's tables) belongs in its views module. Exceptions, each with its reason; a page that is
# still being moved is listed whole (key "*").
PAGE_DATA_WORK_ALLOWED: dict[tuple[str, str], str] = {}
# what a frame or series does (polars and pandas); a page calling one does data work
DATA_METHODS = frozenset({
    "agg", "alias", "cast", "collect", "concat", "count", "drop", "drop_nulls", "explode",
    "fill_null", "filter", "from_pandas", "get_column", "group_by", "groupby", "head", "is_in",
    "item", "iter_rows", "iterrows", "join", "lazy", "max", "mean", "median", "melt", "min",
    "n_unique", "not_", "over", "pivot", "rename", "row", "rows", "sample", "select", "sort",
    "sort_values", "sum", "tail", "to_dict", "to_dicts", "to_list", "to_numpy", "to_pandas",
    "unique", "unpivot", "value_counts", "with_columns"})
DATA_ATTRIBUTES = frozenset({"height", "shape", "schema", "dtypes"})
DATA_LIBRARIES = frozenset({"polars", "pandas", "numpy", "pyarrow"})
REDUCTIONS = frozenset({"sorted", "sum", "set", "any", "all", "map", "filter", "frozenset"})
# what a page may ask of the Study itself: its identity and which tables it has
STUDY_ATTRIBUTES = frozenset({"name", "title", "study_id", "cache_key", "path", "has"})


def _draws(body: list[ast.stmt]) -> bool:
    """Whether statements call streamlit or components.render, or a widget method of a
    container (a column, a tab), or enter a container (`with col:`)."""
    import streamlit

    elements = set(dir(streamlit)) - DATA_METHODS
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, ast.With):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            root = node.func.value
            while isinstance(root, ast.Attribute | ast.Subscript | ast.Call):
                root = root.value if not isinstance(root, ast.Call) else root.func
            if isinstance(root, ast.Name) and root.id in ("st", "render") or \
                    node.func.attr in elements:
                return True
    return False


def _page_data_work(path: Path) -> list[tuple[int, str]]:
    """(line, what) for each piece of data work in a page file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""]
            found += [(node.lineno, f"import {m}") for m in mods
                      if m.split(".")[0] in DATA_LIBRARIES]
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            found.append((node.lineno, "comprehension"))
        elif isinstance(node, ast.While):
            found.append((node.lineno, "while loop"))
        elif isinstance(node, ast.For) and not _draws(node.body):
            found.append((node.lineno, "loop that draws nothing"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in REDUCTIONS:
            found.append((node.lineno, f"{node.func.id}()"))
        elif isinstance(node, ast.Attribute):
            if node.attr in DATA_ATTRIBUTES:
                found.append((node.lineno, f".{node.attr}"))
            base = node.value
            is_study = isinstance(base, ast.Name) and base.id == "study" or \
                isinstance(base, ast.Attribute) and base.attr == "study"
            if is_study and node.attr not in STUDY_ATTRIBUTES:
                found.append((node.lineno, f"study.{node.attr}"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in DATA_METHODS:
            found.append((node.lineno, f".{node.func.attr}()"))
    return sorted(set(found))


def _unexcused_data_work(path: Path) -> list[str]:
    rel = str(path.relative_to(ROOT))
    if (rel, "*") in PAGE_DATA_WORK_ALLOWED:
        return []
    return [f"{rel}:{line}: {what}" for line, what in _page_data_work(path)
            if (rel, what) not in PAGE_DATA_WORK_ALLOWED]


@pytest.mark.parametrize("path", _files("pages"), ids=lambda p: p.name)
def test_pages_do_no_data_work(path):
    """A page reads widgets into Params, calls views and shows what they return (STYLE.md
    rule 1): defaults, parsing, group-bys, table shaping and messages computed from data live
    in views/. Exceptions are listed in PAGE_DATA_WORK_ALLOWED with their reason."""
    assert not _unexcused_data_work(path), (
        "data work in a page (move it to its views module, or list it with a reason in "
        f"PAGE_DATA_WORK_ALLOWED): {_unexcused_data_work(path)}")


def test_page_data_work_allowances_are_still_needed():
    """An allowance whose page no longer does that work goes (an owner who finishes a pending
    page removes its entry)."""
    stale = []
    for (rel, what), reason in PAGE_DATA_WORK_ALLOWED.items():
        assert reason.strip(), f"{rel} {what}: an allowance names its reason"
        found = {w for _, w in _page_data_work(ROOT / rel)} if (ROOT / rel).exists() else set()
        if not found if what == "*" else what not in found:
            stale.append((rel, what))
    assert not stale, f"allowances no longer needed (remove them): {stale}"


def test_the_page_check_finds_data_work(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import polars as pl\nimport streamlit as st\n"
        "rows = [r for r in study.patients.iter_rows(named=True)]\n"
        "n = study.measurements.filter(pl.col('day') > 0).height\n"
        "for r in rows:\n    total = r['value']\n"
        "for r in rows:\n    st.write(r)\n"
        "best = sorted(rows)\n"
        "st.title(study.title)\n")
    assert _page_data_work(probe) == [
        (1, "import polars"), (3, ".iter_rows()"), (3, "comprehension"),
        (3, "study.patients"), (4, ".filter()"), (4, ".height"), (4, "study.measurements"),
        (5, "loop that draws nothing"), (9, "sorted()")]


def test_figures_import_neither_analysis_nor_data_loaders():
    """Figure factories take frames and return go.Figure (DESIGN.md s.1); the vocabulary is
    the one analysis module they may read."""
    offenders = {str(f.relative_to(ROOT)): _beyond_vocab(f)
                 for f in _files("components/figures") if _beyond_vocab(f)}
    assert not offenders, f"figure modules importing analysis or data_loaders: {offenders}"


# ---- analysis opens no file ------------------------------------------------------------------
FILE_MODULES = {"h5py", "flowio", "flowkit", "anndata", "zarr", "tomllib", "pyarrow",
                "fcsparser", "readfcs", "openpyxl", "xlsxwriter", "pydicom", "gzip", "zipfile",
                "shutil", "tempfile", "pickle", "joblib"}
# calls that read or write a file: open() and Path.open/read_*/write_*, polars/numpy/pandas
# readers and writers
FILE_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "read_csv",
              "read_parquet", "read_ipc", "read_excel", "read_json", "read_ndjson",
              "scan_csv", "scan_parquet", "scan_ipc", "write_csv", "write_parquet",
              "write_ipc", "write_json", "sink_parquet", "load", "save", "savez", "loadtxt",
              "savetxt", "genfromtxt", "read_h5ad", "read_zarr", "File", "mkdir", "unlink",
              "touch", "glob", "rglob", "iterdir"}


def _file_access(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""]
            found += [f"import {m}" for m in mods if m.split(".")[0] in FILE_MODULES]
        elif isinstance(node, ast.Call):
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else \
                fn.attr if isinstance(fn, ast.Attribute) else ""
            if name in FILE_CALLS:
                found.append(f"line {node.lineno}: {name}()")
    return found


@pytest.mark.parametrize("path", _files("analysis"), ids=lambda p: p.name)
def test_analysis_opens_no_file(path):
    """Analysis gets frames and arrays from the Study and its stores (DESIGN.md s.1): no file
    library, no open(), no reader or writer calls."""
    rel = str(path.relative_to(ROOT))
    assert not _file_access(path), f"{rel} opens files: {_file_access(path)}"


def test_the_file_access_check_finds_file_access(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import h5py\nimport polars as pl\n\ndef f(p):\n"
                     "    return pl.read_csv(p), open(p).read(), p.read_text()\n")
    assert sorted(_file_access(probe)) == ["import h5py", "line 5: open()",
                                           "line 5: read_csv()", "line 5: read_text()"]


# ---- typed first parameters (scanpy's tests/test_package_structure.py) -----------------------
# Views and analysis functions that still take an untyped or `Any` study (the modules are
# being rewritten); none may join.
UNTYPED_FIRST_PARAMETER: set[str] = set()


def _public_functions(package: str) -> list[tuple[str, object]]:
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    out = []
    for mod in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        m = importlib.import_module(mod.name)
        for name in getattr(m, "__all__", []):
            fn = getattr(m, name, None)
            if inspect.isfunction(fn) and fn.__module__ == m.__name__:
                out.append((f"{mod.name}.{name}", fn))
    return out


@pytest.mark.parametrize("package", ["analysis", "views"])
def test_public_functions_have_a_typed_first_parameter(package):
    """Data first, typed (STYLE.md rule 4): the first parameter of every public analysis and
    view function is annotated, and a study is always `Study` (never `Any`)."""
    bad, checked = [], 0
    for qual, fn in _public_functions(package):
        if qual.rsplit(".", 1)[0] in UNTYPED_FIRST_PARAMETER:
            continue
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if not params:
            continue
        first = params[0]
        checked += 1
        ann = first.annotation
        if ann is inspect.Parameter.empty or ann == "Any":
            bad.append(f"{qual}({first.name})")
        elif first.name == "study" and ann != "Study":
            bad.append(f"{qual}(study: {ann})")
    assert checked > 20 and not bad, f"untyped first parameter: {bad}"


def test_no_study_typed_any_anywhere():
    """A parameter named `study`, `cohort` or `focus` is never `Any` or unannotated, in any
    module (ruff's ANN rules see that an annotation exists, ANN401 is off: this sees that a
    study is a Study, a cohort a Cohort and a focus a Focus, not `Any`)."""
    bad = []
    for f in [ROOT / "cli.py", ROOT / "app.py", *_files("analysis"), *_files("views"),
              *_files("components"), *_files("data_loaders"), *_files("pages")]:
        rel = str(f.relative_to(ROOT))
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                    if a.arg in ("study", "cohort", "focus"):
                        ann = ast.unparse(a.annotation) if a.annotation else ""
                        if ann in ("", "Any", "object"):
                            bad.append(f"{rel}:{node.lineno} {node.name}({a.arg}: {ann or '?'})")
    assert not bad, bad


# ---- a span of study days is one DayWindow ---------------------------------------------------
DAY_BOUNDS = {"day_min", "day_max"}
DAY_SPANS = {"days", "shade", "day_window"}      # names that hold a span of study days
PROJECT_CODE = ["cli.py", "app.py", "analysis", "views", "components", "data_loaders", "pages",
                "jobs", "deploy", "tools", "benchmarks", "sample_data", "tests"]


def _day_bounds(path: Path) -> list[str]:
    """Where a file holds a span of study days as two names instead of one
    analysis.vocab.DayWindow: a field, parameter, keyword argument, attribute or dict key
    named day_min / day_max, or a `days` / `shade` field typed as a tuple."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                    continue
                if item.target.id in DAY_BOUNDS:
                    found.append(f"line {item.lineno}: field {node.name}.{item.target.id}")
                elif item.target.id in DAY_SPANS and "tuple" in ast.unparse(item.annotation):
                    found.append(f"line {item.lineno}: field {node.name}.{item.target.id} is a "
                                 "tuple of days (use DayWindow)")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            a = node.args
            found += [f"line {node.lineno}: parameter {arg.arg}"
                      for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]
                      if arg.arg in DAY_BOUNDS]
        elif isinstance(node, ast.Call):
            found += [f"line {node.lineno}: argument {k.arg}=" for k in node.keywords
                      if k.arg in DAY_BOUNDS]
        elif isinstance(node, ast.Attribute) and node.attr in DAY_BOUNDS:
            found.append(f"line {node.lineno}: attribute .{node.attr}")
        elif isinstance(node, ast.Dict):
            found += [f"line {node.lineno}: key {k.value!r}" for k in node.keys
                      if isinstance(k, ast.Constant) and k.value in DAY_BOUNDS]
    return found


def test_a_span_of_days_is_one_day_window():
    """DESIGN.md s.1: a day window is defined once (analysis.vocab.DayWindow, with its one
    "lo:hi" parser); no Params, Cohort, Focus, figure or function carries it as a
    day_min/day_max pair."""
    bad = {}
    for f in [p for rel in PROJECT_CODE for p in _files(rel)]:
        rel = str(f.relative_to(ROOT))
        if rel != "analysis/vocab.py" and (found := _day_bounds(f)):
            bad[rel] = found
    assert not bad, bad


def test_the_day_window_check_finds_day_bounds(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("class P:\n    day_min: int | None = None\n"
                     "def f(x, *, day_max=None):\n    return x.day_min\n"
                     "g(day_min=1)\nF = {'day_max': 2}\nday_max = 3  # a local name is fine\n"
                     "class Q:\n    shade: tuple[int, int] | None = None\n"
                     "    days: DayWindow = DayWindow()\n")
    found = _day_bounds(probe)
    assert len(found) == 6, found
    assert any("Q.shade is a tuple" in x for x in found)
    assert any("field P.day_min" in x for x in found) and any("key 'day_max'" in x for x in found)


# ---- the vocabulary is written once ----------------------------------------------------------
VOCAB_STRINGS = {"Responder": "vocab.RESPONDER", "Non-responder": "vocab.NON_RESPONDER",
                 "Not evaluable": "vocab.NOT_EVALUABLE"}
VOCAB_CODE = {'.split(":", 1)': "vocab.DayWindow.parse (the one lo:hi parser)",
              '== "blood"': "vocab.is_blood / vocab.fold_tissue"}
# files still holding what the vocabulary defines (being rewritten by their owners)
VOCAB_PENDING: set[str] = set()


def _retyped_vocabulary(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
                  and n.body and isinstance(n.body[0], ast.Expr)
                  and isinstance(n.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                id(node) not in docstrings and node.value in VOCAB_STRINGS:
            found.append(f"line {node.lineno}: {node.value!r} (use {VOCAB_STRINGS[node.value]})")
        elif isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            if {"D28", "M3", "M6", "M12"} <= keys:
                found.append(f"line {node.lineno}: landmarks (use vocab.LANDMARKS or "
                             "vocab.WINDOWS)")
        elif isinstance(node, ast.Tuple | ast.List):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if items[:4] == ["CR", "PR", "NR", "NE"]:
                found.append(f"line {node.lineno}: response categories (use "
                             "vocab.RESPONSE_CATEGORIES)")
    text = path.read_text(encoding="utf-8")
    found += [f"{code} (use {use})" for code, use in VOCAB_CODE.items() if code in text]
    return found


def test_vocabulary_is_not_retyped():
    """Group names, landmarks, response categories, the "lo:hi" parser and "which tissue is
    blood" live in analysis/vocab.py (DESIGN.md s.1) and are imported, never retyped."""
    bad = {}
    for f in [ROOT / "cli.py", ROOT / "app.py", *_files("analysis"), *_files("views"),
              *_files("components"), *_files("data_loaders"), *_files("pages")]:
        rel = str(f.relative_to(ROOT))
        if rel != "analysis/vocab.py" and rel not in VOCAB_PENDING and \
                (found := _retyped_vocabulary(f)):
            bad[rel] = found
    assert not bad, bad


def test_the_vocabulary_check_finds_retyped_names(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('"""Responder vs Non-responder."""\nGROUPS = ("Responder", "x")\n'
                     'L = {"D28": 28, "M3": 90, "M6": 180, "M12": 365}\n'
                     'C = ["CR", "PR", "NR", "NE"]\nlo, hi = "1:2".split(":", 1)\n')
    found = _retyped_vocabulary(probe)
    assert len(found) == 4 and any("'Responder'" in f for f in found), found


# ---- tests and markers -----------------------------------------------------------------------
# Test files that test the application as a whole rather than one module.
CROSS_CUTTING_TESTS = {
    "test_layering.py": "these architecture rules", "test_docs.py": "the user documentation",
    "test_fuzz.py": "every reader on generated hostile input",
    "test_bad_inputs.py": "every reader on the corpus in tests/bad_inputs",
    "test_real_study.py": "the real public files of ../shared/data",
    "test_scale.py": "every layer at 200 patients and 300k cells",
    "test_pyproject.py": "the package metadata in pyproject.toml",
    "test_clinical_edges.py": "the clinical rules (baseline, response, recovery, ICAHT, "
                              "survival) together on hand-made edge-case studies",
}


def _module_names() -> tuple[set[str], set[str]]:
    """(every module and package, named by its path from any folder down: "formats_sdtm",
    "sdtm"; the modules that are files, not packages)."""
    names, files = set(), set()
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT)
        if rel.parts[0] in (".venv", "tests") or "site-packages" in rel.parts:
            continue
        parts = [x for x in rel.with_suffix("").parts if x != "__init__"]
        suffixes = {"_".join(parts[i:]) for i in range(len(parts))}
        names |= suffixes
        if p.name != "__init__.py":
            files |= suffixes
    return names, files


def test_test_files_are_named_after_the_module_they_test():
    """tests/test_<module>.py, or test_<module>_<aspect>.py for a module that is a file, the
    module named by its path from any folder down (test_formats_sdtm.py:
    data_loaders/formats/sdtm.py; test_pages_kinetics.py: pages/kinetics.py; not
    test_pages_car_t.py); real-browser tests are test_browser_<page or concern>.py (STYLE.md
    rule 13)."""
    modules, files = _module_names()
    bad = []
    for t in sorted((ROOT / "tests").glob("test_*.py")):
        name = t.stem.removeprefix("test_")
        if t.name in CROSS_CUTTING_TESTS or name.startswith("browser_"):
            continue
        if name in modules or any(name.startswith(f"{m}_") for m in files):
            continue
        bad.append(t.name)
    assert not bad, f"test files not named after a module: {bad}"


def _declared_markers() -> set[str]:
    import tomllib

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {m.split(":")[0].strip() for m in cfg["tool"]["pytest"]["ini_options"]["markers"]}


def _used_markers() -> set[str]:
    used = set()
    for t in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(t.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "mark" and isinstance(node.value.value, ast.Name) \
                    and node.value.value.id == "pytest":
                used.add(node.attr)
    return used


def test_declared_markers_are_used():
    """Every marker declared in pyproject.toml marks tests (`-m "not slow"` must skip
    something real), and no test uses an undeclared one (--strict-markers says so too)."""
    declared, used = _declared_markers(), _used_markers()
    builtin = {"parametrize", "skip", "skipif", "xfail", "usefixtures", "filterwarnings"}
    assert declared <= used, f"declared but unused markers: {sorted(declared - used)}"
    assert used - builtin <= declared, sorted(used - builtin - declared)
    quick = (ROOT / "Makefile").read_text(encoding="utf-8").split("test-quick:", 1)[1]
    assert '-m "not slow and not browser and not deploy"' in quick.split("\n\n", 1)[0]


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
        m = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
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


def test_readers_do_not_import_the_loader():
    """The format readers and importers hand RawTables (data_loaders.raw) to the loader, which
    calls them: they never import data_loaders.loader back (no import cycle)."""
    offenders = {str(f.relative_to(ROOT)) for f in [*_files("data_loaders/formats"),
                                                   *_files("data_loaders/importers")]
                 if any(m.startswith("data_loaders.loader") for m in _module_imports(f))}
    assert not offenders, sorted(offenders)


# ---- module size (STYLE.md rule 3) -----------------------------------------------------------
MODULE_LINES = 400


def _long_modules() -> dict[str, int]:
    out = {}
    for folder in ("analysis", "views", "components", "data_loaders"):
        for f in _files(folder):
            n = len(f.read_text(encoding="utf-8").splitlines())
            if n > MODULE_LINES:
                out[str(f.relative_to(ROOT))] = n
    return out


def test_long_modules_do_one_job():
    """No module in analysis/, views/, components/ or data_loaders/ over ~400 lines unless its
    docstring says the one job it does (a line "One job: ..."); several jobs make a package."""
    bad = []
    for rel, n in sorted(_long_modules().items()):
        doc = ast.get_docstring(ast.parse((ROOT / rel).read_text(encoding="utf-8"))) or ""
        if not re.search(r"^One job\b", doc, re.MULTILINE):
            bad.append(f"{rel} ({n} lines)")
    assert not bad, f"long modules that do not say their one job (split them): {bad}"


# ---- one home for the small-cohort tests and FDR --------------------------------------------
STATS_CALLS = {"mannwhitneyu", "ranksums", "wilcoxon", "fisher_exact", "multipletests",
               "false_discovery_control", "permutation_test", "spearmanr"}


def test_small_cohort_tests_and_fdr_live_in_analysis_stats():
    """DESIGN.md s.1: analysis/stats.py holds the Mann-Whitney, Fisher, Spearman and
    Benjamini-Hochberg code every page uses (one p for the same patients everywhere)."""
    bad = []
    for f in [ROOT / "cli.py", *_files("analysis"), *_files("views"), *_files("components"),
              *_files("data_loaders"), *_files("jobs"), *_files("pages")]:
        rel = str(f.relative_to(ROOT))
        if rel == "analysis/stats.py":
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("statsmodels.stats.multitest"):
                bad.append(f"{rel}:{node.lineno} imports {node.module}")
            elif isinstance(node, ast.Call):
                fn = node.func
                name = fn.id if isinstance(fn, ast.Name) else \
                    fn.attr if isinstance(fn, ast.Attribute) else ""
                if name in STATS_CALLS:
                    bad.append(f"{rel}:{node.lineno} {name}()")
    assert not bad, f"tests or FDR outside analysis/stats.py: {bad}"


def test_no_private_names_imported_across_modules():
    """A helper another module needs is public (or moves): no `from x import _name` between
    the project's modules (ruff's SLF001 catches `module._name`)."""
    import subprocess

    tops = {"analysis", "data_loaders", "components", "views", "pages", "jobs", "cli", "app",
            "sample_data", "tools", "benchmarks", "deploy"}
    bad = []
    files = subprocess.run(["git", "ls-files", "*.py"], capture_output=True, text=True,
                           cwd=ROOT, check=True).stdout.split()
    for rel in files:
        if rel.startswith("tests/"):
            continue
        for node in ast.walk(ast.parse((ROOT / rel).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and \
                    node.module.split(".")[0] in tops:
                bad += [f"{rel}:{node.lineno} {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad
