"""Dump what every page shows on a study, and compare two dumps.

    python tools/dump_views.py [--out DIR] [--study DIR] [--pages overview,kinetics]
    python tools/dump_views.py --compare DIR_A DIR_B

The first form runs each page of app.py's PAGES headless (streamlit AppTest, as
tests/test_app_pages.py does) on the study (the demo unless --study), with the sidebar at its
defaults, and writes DIR/<page>/NN_<key>.json for each figure (the plotly JSON the browser gets)
and DIR/<page>/NN_<key>.csv for each table, then DIR/deck/NN_<key>.json for each slide of the
standard deck (`components.deck.standard_slides`). It works on the checkout it is run from
(the current directory, put first on the path with PYTHONPATH=.), so the same file dumps an
older checkout:

    cd /path/to/old && PYTHONPATH=. .venv/bin/python /path/to/new/tools/dump_views.py --out /tmp/dump-old

The second form lists, per file, what differs between two dumps: files only in one of them,
and for figures the JSON paths whose values differ (trace count, names, axis titles, data).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path.cwd()


def pages() -> list[str]:
    """The page files of app.py's navigation, in its order."""
    tree = ast.parse((ROOT / "app.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PAGES":
            return [row[1] for row in ast.literal_eval(node.value)]
    raise SystemExit("app.py has no PAGES list")


def _stem(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text).strip("_")[:60]


def _real_navigation() -> None:
    # the one AppTest patch (tools/apptest.py), loaded from beside this file: an older
    # checkout being dumped may not have it
    import importlib.util

    spec = importlib.util.spec_from_file_location("_apptest", Path(__file__).with_name(
        "apptest.py"))
    if spec is None or spec.loader is None:
        raise SystemExit(f"{Path(__file__).with_name('apptest.py')} is missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.real_navigation()


def _write_json(path: Path, spec: Any) -> None:
    path.write_text(json.dumps(spec, indent=1, sort_keys=True, default=str), encoding="utf-8")


def dump_page(page: str, out: Path, study: Path) -> int:
    from streamlit.runtime.state.common import user_key_from_element_id
    from streamlit.testing.v1 import AppTest

    os.environ["STUDY_DIR"] = str(study)
    os.environ.pop("STUDIES_ROOT", None)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    at.switch_page(page).run()
    folder = out / Path(page).stem
    folder.mkdir(parents=True, exist_ok=True)
    if at.exception:
        (folder / "EXCEPTION.txt").write_text("\n".join(e.value for e in at.exception))
    n = 0
    for el in at.get("plotly_chart"):
        n += 1
        key = user_key_from_element_id(el.proto.id) or "chart"
        _write_json(folder / f"{n:02d}_{_stem(key)}.json", json.loads(el.proto.spec))
    for el in list(at.dataframe) + list(at.table):
        n += 1
        key = getattr(el, "key", None) or el.type
        frame = el.value
        frame.to_csv(folder / f"{n:02d}_{_stem(str(key))}.csv", index=False)
    return n


def dump_deck(out: Path, study_dir: Path) -> int:
    from components import deck
    from data_loaders import load_study

    study = load_study(study_dir)
    folder = out / "deck"
    folder.mkdir(parents=True, exist_ok=True)
    slides = deck.standard_slides(study, on_skip=lambda m: print(f"  deck: {m}"))
    for n, slide in enumerate(slides, start=1):
        _write_json(folder / f"{n:02d}_{_stem(slide.key or slide.title)}.json",
                    {"title": slide.title, "caption": slide.caption,
                     "fig": json.loads(slide.fig.to_json())})
    return len(slides)


# ---- compare ----------------------------------------------------------------------------------
def _diff(a: Any, b: Any, path: str, out: list[str], limit: int = 12) -> None:
    if len(out) >= limit:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}/{k}: added")
            elif k not in b:
                out.append(f"{path}/{k}: removed")
            else:
                _diff(a[k], b[k], f"{path}/{k}", out, limit)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} -> {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{path}/{i}", out, limit)
    elif a != b:
        sa, sb = json.dumps(a, default=str), json.dumps(b, default=str)
        out.append(f"{path}: {sa[:70]} -> {sb[:70]}")


def _index(folder: Path) -> dict[str, Path]:
    """Files by "<page>/<key>.<ext>" (the running number left out, so an added figure does
    not shift every name after it); a repeated key keeps its order."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = path.name.split("_", 1)[-1] if path.name[:2].isdigit() else path.name
            rel = f"{path.parent.relative_to(folder)}/{name}"
            k, i = rel, 1
            while k in found:
                i += 1
                k = f"{rel}#{i}"
            found[k] = path
    return found


def compare(a_dir: Path, b_dir: Path) -> int:
    a, b = _index(a_dir), _index(b_dir)
    same = changed = 0
    for name in sorted(set(a) | set(b)):
        if name not in b:
            print(f"- {name}: only in {a_dir}")
            changed += 1
            continue
        if name not in a:
            print(f"+ {name}: only in {b_dir}")
            changed += 1
            continue
        ta, tb = a[name].read_text(), b[name].read_text()
        if ta == tb:
            same += 1
            continue
        changed += 1
        print(f"~ {name}")
        if name.endswith(".json"):
            lines: list[str] = []
            _diff(json.loads(ta), json.loads(tb), "", lines)
            for line in lines:
                print(f"    {line}")
        else:
            la, lb = ta.splitlines(), tb.splitlines()
            if la[:1] != lb[:1]:
                print(f"    columns: {la[:1]} -> {lb[:1]}")
            print(f"    rows: {len(la) - 1} -> {len(lb) - 1}")
            shown = 0
            for x, y in zip(la, lb, strict=False):
                if x != y and shown < 3:
                    print(f"    {x[:90]}\n    -> {y[:90]}")
                    shown += 1
    print(f"{same} identical, {changed} different")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "build" / "dump")
    p.add_argument("--study", type=Path, default=ROOT / "sample_data" / "demo")
    p.add_argument("--pages", default=None, help="comma-separated page stems (default all)")
    p.add_argument("--no-deck", action="store_true", help="leave out the standard deck")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = p.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    import importlib.util

    found = importlib.util.find_spec("components")
    if found is None or not Path(str(found.origin)).resolve().is_relative_to(ROOT.resolve()):
        print(f"error: the app imported here is not the checkout in {ROOT}; run this from the "
              "checkout to dump with PYTHONPATH=. in front of the command", file=sys.stderr)
        return 2
    _real_navigation()
    wanted = set(args.pages.split(",")) if args.pages else None
    for page in pages():
        if wanted is not None and Path(page).stem not in wanted:
            continue
        n = dump_page(page, args.out, args.study.resolve())
        print(f"{page}: {n} figures and tables")
    if not args.no_deck and wanted is None:
        print(f"deck: {dump_deck(args.out, args.study.resolve())} slides")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
