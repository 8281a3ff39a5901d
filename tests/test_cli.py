"""The command line: validate, table, tables, sample."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_validate_demo_exits_zero(demo_dir):
    r = cli("validate", str(demo_dir))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 error(s)" in r.stdout


def test_validate_broken_measurements_exits_nonzero_and_names_row(write_study):
    folder = write_study(measurements="subject_id,day,analyte,value,unit\n"
                         "P1,0,ANC,0.5,10^9/L\nP1,7,HGB,9,mmol/M\n")
    r = cli("validate", str(folder))
    assert r.returncode == 1
    assert "measurements.csv, row 3, column 'unit'" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_validate_missing_folder_is_one_line_error(tmp_path):
    r = cli("validate", str(tmp_path / "absent"))
    assert r.returncode == 2 and r.stderr.startswith("error:")
    assert "Traceback" not in r.stderr


def test_table_canonical_to_stdout_and_parquet(write_study, tmp_path):
    folder = write_study(measurements="subject_id,day,analyte,value,unit\nP1,0,NEUT,400,/uL\n")
    r = cli("table", "--study", str(folder), "measurements")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("subject_id,day,analyte,value,unit")
    assert "P1,0,ANC,0.4,10^9/L" in r.stdout
    out = tmp_path / "m.parquet"
    r = cli("table", "--study", str(folder), "measurements", "--format", "parquet", "--out",
            str(out))
    assert r.returncode == 0 and pl.read_parquet(out).height == 1


def test_table_unknown_name(write_study):
    r = cli("table", "--study", str(write_study()), "nonsense")
    assert r.returncode == 2 and "unknown table 'nonsense'" in r.stderr


def test_every_command_has_help():
    r = cli("--help")
    assert r.returncode == 0
    commands = [c for c in ("validate", "sample", "table", "tables") if c in r.stdout]
    assert len(commands) == 4
    for c in commands:
        assert cli(c, "--help").returncode == 0


def test_sample_writes_a_valid_study(tmp_path):
    out = tmp_path / "cohort"
    r = cli("sample", "--out", str(out), "--patients", "6", "--cells", "2000", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert cli("validate", str(out)).returncode == 0


# ---- cli.py parses and calls ---------------------------------------------------------------
# calls that reshape or walk a table: data work, which lives in analysis, views, jobs or
# data_loaders (a `.select(columns)` of what to print and an `.height` check are output)
FRAME_WORK = {"filter", "with_columns", "group_by", "agg", "join", "pivot", "iter_rows", "rows",
              "map_elements", "sort", "unique", "n_unique", "get_column", "to_list", "explode",
              "concat", "unpivot", "partition_by"}
COMMAND_LINES = 30     # a command: read args, call, print what came back, return a code


def _cli_functions() -> dict:
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parent.parent / "cli.py").read_text("utf-8"))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _commands_and_helpers(funcs: dict) -> list:
    """The functions registered with @command and the cli.py functions they call."""
    import ast

    todo = [f for f in funcs.values() if any(
        isinstance(d, ast.Call) and getattr(d.func, "id", "") == "command"
        for d in f.decorator_list)]
    seen: dict = {}
    while todo:
        fn = todo.pop()
        if fn.name in seen:
            continue
        seen[fn.name] = fn
        todo += [funcs[c.func.id] for c in ast.walk(fn) if isinstance(c, ast.Call)
                 and isinstance(c.func, ast.Name) and c.func.id in funcs
                 and c.func.id not in ("fail", "command")]
    return list(seen.values())


def _data_work(fn: object) -> list[str]:
    """What in a cli.py function is more than parsing and calling: loops, comprehensions,
    nested callbacks, table operations, a body longer than COMMAND_LINES."""
    import ast

    found = []
    for node in (n for stmt in fn.body for n in ast.walk(stmt)):
        if isinstance(node, ast.For | ast.AsyncFor | ast.While):
            found.append(f"line {node.lineno}: a loop")
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            found.append(f"line {node.lineno}: a comprehension")
        elif isinstance(node, ast.FunctionDef | ast.Lambda) and node is not fn:
            found.append(f"line {node.lineno}: a nested function")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in FRAME_WORK | {"join"} and \
                not isinstance(node.func.value, ast.Constant):    # ", ".join(...) is text
            found.append(f"line {node.lineno}: .{node.func.attr}()")
    n = fn.end_lineno - fn.body[0].lineno + 1
    if n > COMMAND_LINES:
        found.append(f"{n} lines")
    return found


def test_cli_commands_only_parse_and_call():
    """DESIGN.md s.1: cli.py is thin. Every command (and the cli.py helpers it calls) reads
    its arguments, calls data_loaders / analysis / views / jobs / components and prints what
    they return; the work itself (loops over data, progress wiring, table shaping) lives in
    those modules, where the pages can call it too."""
    helpers = _commands_and_helpers(_cli_functions())
    assert len(helpers) >= 15      # every command is found
    bad = {f.name: found for f in helpers if (found := _data_work(f))}
    assert not bad, f"cli.py commands doing more than parsing and calling: {bad}"


def test_the_check_sees_data_work():
    import ast

    probe = ast.parse('''
def cmd_x(args):
    study = load_study(args.study)
    rows = [r for r in study.patients.iter_rows()]
    for r in rows:
        print(r)
    def step(p):
        pass
    return study.measurements.filter(x).height
''').body[0]
    found = " ".join(_data_work(probe))
    assert "a loop" in found and "a comprehension" in found and "nested function" in found
    assert ".iter_rows()" in found and ".filter()" in found
