"""pyproject.toml: the installable package matches the pinned requirements, lists every
package of the project, and nothing in the tree patches sys.path to find it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# folders with an __init__.py that are not part of the installed package
NOT_INSTALLED = {"tests", "tools"}


def _pins(name: str) -> list[str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return [s for s in (line.split("#")[0].strip() for line in lines)
            if s and not s.startswith("-r")]


def test_dependencies_are_the_requirements_pins():
    assert PROJECT["project"]["dependencies"] == _pins("requirements.txt")
    assert PROJECT["project"]["optional-dependencies"]["dev"] == _pins("requirements-dev.txt")


def test_every_package_is_installed():
    include = PROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    listed = {pattern.rstrip("*") for pattern in include}
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_INSTALLED
    assert listed == packages
    modules = set(PROJECT["tool"]["setuptools"]["py-modules"])
    assert modules == {"cli"} and (ROOT / "cli.py").is_file()
    assert PROJECT["project"]["scripts"]["cart-explorer"] == "cli:main"


def test_no_module_patches_sys_path():
    pattern = re.compile(r"sys\.path\.(insert|append)\(")
    hits = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
            if ".venv" not in p.parts and "build" not in p.parts
            and pattern.search(p.read_text(encoding="utf-8", errors="replace"))]
    assert hits == []


def test_make_installs_the_package():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(BIN)/pip install -q -e ." in makefile
