"""The checkout a benchmark runs from, and the test helpers some benchmarks reuse.

Benchmarks import the project as an installed package (`make` installs it with
`pip install -e .`; from a bare checkout run them with `PYTHONPATH=.`). The tests folder is not
part of the package, so its helpers are loaded from their files here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def test_helper(relpath: str) -> ModuleType:
    """The module at `relpath` under the checkout (e.g. "tests/conftest.py"), loaded by file."""
    path = ROOT / relpath
    name = "checkout_" + "_".join(Path(relpath).with_suffix("").parts)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
