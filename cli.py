"""Command line for the CAR-T explorer (no browser needed).

    python cli.py validate DIR                      report findings; exit 1 on errors
    python cli.py sample --out DIR --patients N --cells N [--seed S]
    python cli.py table --study DIR NAME [--format csv|parquet] [--out FILE] [--OPTION VALUE]
    python cli.py tables                            list canonical and derived tables

Each command registers itself in `COMMANDS` with the `command` decorator.
Every command has --help. Errors print one clear line, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl

from data_loaders import TABLE_NAMES, StudyError, load_study

# name -> (help, add_arguments(parser), run(args) -> exit code)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]
            ) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = (help, add_arguments, fn)
        return fn
    return deco


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


# ---- validate ------------------------------------------------------------------------------
def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="study folder")
    p.add_argument("--quiet", action="store_true", help="print errors only")


@command("validate", "validate a study folder; exit 1 when there are errors", _validate_args)
def cmd_validate(args: argparse.Namespace) -> int:
    study = load_study(args.study)
    rep = study.report
    for f in rep.findings:
        if args.quiet and f.severity != "error":
            continue
        print(f"{f.severity.upper():8s} [{f.table}] {f.message}")
    print(f"{study.study_id}: {len(study.subject_ids)} patients; tables loaded: "
          f"{', '.join(study.loaded_tables) or 'none'}; {rep.summary()}")
    return 0 if rep.ok else 1


# ---- sample --------------------------------------------------------------------------------
def _sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder to write the study into")
    p.add_argument("--patients", type=int, default=5, help="number of patients (default 5)")
    p.add_argument("--cells", type=int, default=20000,
                   help="single-cell profiles in the .h5ad (default 20000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")


@command("sample", "write a seeded synthetic study shaped like NCT07139600", _sample_args)
def cmd_sample(args: argparse.Namespace) -> int:
    from sample_data.generate import generate_study

    if args.patients < 1 or args.cells < 0:
        return fail("--patients must be at least 1 and --cells not negative")
    out = generate_study(args.out, patients=args.patients, cells=args.cells, seed=args.seed)
    print(f"wrote {out}")
    return 0


# ---- table ---------------------------------------------------------------------------------
def _table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="a canonical table (patients, measurements, ...) or a derived "
                   "table (see: python cli.py tables)")
    p.add_argument("--study", required=True, help="study folder")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--out", help="file to write (default: standard output, CSV only)")


def _derived_options(parser: argparse.ArgumentParser, name: str) -> None:
    from analysis.registry import derived_tables

    table = derived_tables().get(name)
    if table is None:
        return
    for opt, spec in table.options.items():
        flag = "--" + opt.replace("_", "-")
        kw: dict = {"dest": opt, "default": None, "help": f"{spec.help} (default {spec.default})"}
        if spec.type is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = spec.type
            if spec.choices:
                kw["choices"] = list(spec.choices)
        parser.add_argument(flag, **kw)


@command("table", "write a canonical or derived table as CSV or Parquet", _table_args)
def cmd_table(args: argparse.Namespace) -> int:
    from analysis.registry import derived_tables

    study = load_study(args.study)
    if args.name in TABLE_NAMES:
        frame = study.table(args.name)
    else:
        tables = derived_tables()
        if args.name not in tables:
            names = ", ".join([*TABLE_NAMES, *tables])
            return fail(f"unknown table {args.name!r}; choose one of: {names}")
        opts = {k: getattr(args, k) for k in tables[args.name].options if hasattr(args, k)}
        frame = tables[args.name](study, **opts)
    return _write(frame, args.format, args.out)


def _write(frame: pl.DataFrame, fmt: str, out: str | None) -> int:
    from components.export import csv_bytes

    if fmt == "parquet":
        if not out:
            return fail("--format parquet needs --out FILE")
        frame.write_parquet(out)
    elif out:
        Path(out).write_bytes(csv_bytes(frame))
    else:
        sys.stdout.buffer.write(csv_bytes(frame))
        sys.stdout.flush()
    if out:
        print(f"wrote {frame.height} rows to {out}", file=sys.stderr)
    return 0


@command("tables", "list the canonical and derived tables", lambda p: None)
def cmd_tables(args: argparse.Namespace) -> int:
    from analysis.registry import derived_tables
    from data_loaders.schema import RNA_SPEC, TABLES

    for name in TABLE_NAMES:
        spec = RNA_SPEC if name == "rna_counts" else TABLES[name]
        print(f"{name:18s} {spec.description}")
    for name, t in derived_tables().items():
        opts = " ".join(f"--{o.replace('_', '-')}" for o in t.options)
        print(f"{name:18s} {t.description}" + (f"  [{opts}]" if opts else ""))
    return 0


# ---- main ----------------------------------------------------------------------------------
def build_parser(table_name: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python cli.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        if name == "table" and table_name:
            _derived_options(p, table_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # a derived table's own options (e.g. --criteria) are known once its name is
    first, _ = build_parser().parse_known_args(argv) if argv[:1] == ["table"] and not (
        {"-h", "--help"} & set(argv)) else (None, None)
    args = build_parser(getattr(first, "name", None)).parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except StudyError as err:
        return fail(str(err))
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, RuntimeError) as err:
        return fail(f"{type(err).__name__}: {err}")


if __name__ == "__main__":
    sys.exit(main())
