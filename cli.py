"""Command line for the CAR-T explorer (no browser needed).

    python cli.py validate DIR                      report findings; exit 1 on errors
    python cli.py sample --out DIR --patients N --cells N [--seed S]
    python cli.py table --study DIR NAME [--format csv|parquet] [--out FILE] [--OPTION VALUE]
                                                    [--rule KEY=VALUE ...]  (rule settings)
    python cli.py tables                            list canonical and derived tables
    python cli.py compare --study DIR --layer LAYER --window WINDOW [--groups COLUMN] [--change-from-baseline]
    python cli.py embed --study DIR                 precompute embeddings for the Immune landscape
    python cli.py gate --study DIR [--workers N] [--force]   gate the FCS files (cached)
    python cli.py convert --study DIR [--out FOLDER_OR_URL]  chunked single-cell store (zarr)
    python cli.py import SRC --out STUDY [--dry-run] [--day-first] [--analyte COL=NAME]
                                                    an export folder or file -> a new study
    python cli.py import --from sdtm DIR --out STUDY [--option KEY=VALUE]   convert once
    python cli.py export --study DIR --out deck.pptx [--format pptx|pdf|zip] [--patients ID ...]
    python cli.py export --patient-profiles --study DIR --out profiles.pdf   # one page per patient

Each command registers itself in `COMMANDS` with the `command` decorator.
Every command has --help. Errors print one clear line, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from analysis.rules import RuleError
from analysis.vocab import RESPONSE_CRITERIA
from data_loaders import TABLE_NAMES, StudyError, load_study
from data_loaders.rules_file import rule_changes

if TYPE_CHECKING:
    from data_loaders import Study

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
    _echo(study.report.text(errors_only=args.quiet))
    print(f"{study.study_id}: {len(study.subject_ids)} patients; tables loaded: "
          f"{', '.join(study.loaded_tables) or 'none'}; {study.report.summary()}")
    return 0 if study.report.ok else 1


# ---- sample --------------------------------------------------------------------------------
def _sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder to write the study into")
    p.add_argument("--patients", type=int, default=5, help="number of patients (default 5)")
    p.add_argument("--cells", type=int, default=20000,
                   help="single-cell profiles in the .h5ad (default 20000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--sc-timepoints", default="Screening,D28,M3", type=_comma_list,
                   help="single-cell timepoints, comma-separated (default Screening,D28,M3; "
                        "any of Screening,D14,D28,M3,M6,M12)")


@command("sample", "write a seeded synthetic study shaped like NCT07139600", _sample_args)
def cmd_sample(args: argparse.Namespace) -> int:
    from sample_data.generate import generate_study

    if args.patients < 1 or args.cells < 0:
        return fail("--patients must be at least 1 and --cells not negative")
    try:
        out = generate_study(args.out, patients=args.patients, cells=args.cells, seed=args.seed,
                             sc_timepoints=args.sc_timepoints)
    except ValueError as exc:
        return fail(f"--sc-timepoints: {exc}")
    print(f"wrote {out}")
    return 0


# ---- de-identified output (table, export, compare) ------------------------------------------
def _deid_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deidentify", action=argparse.BooleanOptionalAction, default=None,
                   help="de-identified output as the shared server shows it: no dates, age "
                   "bands, no free text, only the data model's columns, pseudonyms for ids "
                   "that hold a date (default: DEID=1/0 when set, else on for a study below a "
                   "STUDIES_ROOT that the server de-identifies; see data_loaders/deid.py)")


def _open_study(args: argparse.Namespace) -> Study:
    from data_loaders.deid import deid_default, deidentify

    study = load_study(args.study)
    on = args.deidentify if args.deidentify is not None else deid_default(args.study)
    return deidentify(study) if on else study


# ---- table ---------------------------------------------------------------------------------
def _table_args(p: argparse.ArgumentParser) -> None:
    _deid_args(p)
    p.add_argument("name", help="a canonical table (patients, measurements, ...) or a derived "
                   "table (see: python cli.py tables)")
    p.add_argument("--study", required=True, help="study folder")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--out", help="file to write (default: standard output, CSV only)")
    p.add_argument("--rule", action="append", default=[], metavar="KEY=VALUE",
                   help="a rule setting for this run, as in study.toml [rules] (repeatable), "
                   "e.g. --rule retic_threshold=20; see docs/rules.md")


def _named(*, last: bool = True, toml: bool = False, day: bool = False,
           example: str = "NAME=VALUE") -> Callable[[str], tuple[str, object]]:
    """The argparse type of a repeatable NAME=VALUE option: (name, value), VALUE read as TOML
    when `toml`, as a whole study day when `day`; split at the last "=" (a column header may
    hold one) unless not `last`, where VALUE may be empty."""
    def parse(item: str) -> tuple[str, object]:
        key, sep, value = item.rpartition("=") if last else item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or (last and not value):
            raise argparse.ArgumentTypeError(f"{item!r}: write {example}")
        if day:
            try:
                return key, int(value)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{item!r}: the day must be a whole number (e.g. \"EOT=180\")") from None
        return key, _option_value(value) if toml else value

    return parse


def _comma_list(text: str) -> list[str]:
    """The argparse type of a comma-separated list."""
    return [t.strip() for t in text.split(",") if t.strip()]


def _derived_options(parser: argparse.ArgumentParser, name: str) -> None:
    from analysis.registry import derived_tables

    tables = derived_tables()
    # a canonical table with a derived twin (responses -> derived_responses) takes its options
    table = tables.get(name) if name not in TABLE_NAMES else tables.get(f"derived_{name}")
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
    from analysis.registry import study_table

    study = _open_study(args)
    try:
        frame = study_table(study, args.name, options=vars(args),
                            rule_changes=rule_changes(args.rule))
    except ValueError as err:
        return fail(str(err))
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
    from analysis.registry import table_listing

    _echo("\n".join(table_listing()))
    return 0


# ---- import --------------------------------------------------------------------------------


def _import_args(p: argparse.ArgumentParser) -> None:
    from data_loaders.importers.from_format import IMPORT_FORMATS

    p.add_argument("source", help="export folder or file (lab sheets, SDTM, Olink, AIRR, MAF, "
                   "single-cell, ...)")
    p.add_argument("--out", required=True, help="new study folder (never overwritten); with "
                   "--from, a study folder to add the converted tables to")
    p.add_argument("--from", dest="fmt", choices=IMPORT_FORMATS,
                   help="convert one file of this format only (see docs/formats.md); without "
                   "it every file is inspected and mapped (see docs/importing.md)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the proposed mapping and stop; nothing is written")
    order = p.add_mutually_exclusive_group()
    order.add_argument("--day-first", dest="day_first", action="store_const", const=True,
                       help="read ambiguous slash dates (03/04/2025) as day/month/year")
    order.add_argument("--month-first", dest="day_first", action="store_const", const=False,
                       help="read ambiguous slash dates as month/day/year")
    p.add_argument("--analyte", action="append", default=[], metavar="COLUMN=ANALYTE",
                   type=_named(),
                   help="what a column holds, e.g. \"中性粒细胞#=ANC\"; ANALYTE skip leaves it "
                   "out (repeatable)")
    p.add_argument("--column", action="append", default=[], metavar="COLUMN=ROLE",
                   type=_named(),
                   help="role of a column: subject_id, date, visit, day, time, tissue, "
                   "sample_id, infusion_date, or a canonical column; skip leaves it out")
    p.add_argument("--timepoint", action="append", default=[], metavar="LABEL=DAY",
                   type=_named(day=True),
                   help="study day of a visit label, e.g. \"EOT=180\" (repeatable)")
    p.add_argument("--table", action="append", default=[], metavar="FILE[#SHEET]=TABLE",
                   type=_named(),
                   help="table a file or sheet feeds (patients, measurements, events, ...) or "
                   "skip; FILE may be a pattern such as 'gating/*' (repeatable)")
    p.add_argument("--day-from", choices=("date", "visit", "day"),
                   help="where study days come from in every sheet that has several")
    p.add_argument("--tissue", help="tissue of every imported measurement (blood, marrow)")
    p.add_argument("--single-cell", action="append", default=[], metavar="KEY=VALUE",
                   type=_named(toml=True),
                   help="an entry of study.toml [single_cell] the file does not say, e.g. "
                   "sample_id=S1 subject_id=P1 day=0 for a 10x matrix (VALUE is TOML)")
    p.add_argument("--mapping", metavar="STUDY_TOML",
                   help="reuse the choices of an earlier import (its study.toml); options "
                   "given here win")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   type=_named(last=False, toml=True, example="KEY=VALUE"),
                   help="format reader option; VALUE is a TOML value, e.g. sample_id=S1 or "
                   "'treatments={XANOMELINE=\"infusion\"}' (repeatable)")


def _option_value(text: str) -> object:
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _echo(text: str) -> None:
    """`text` as lines on stdout; nothing when it is empty."""
    if text:
        print(text)


@command("import", "make a study from an export folder or file: detect, map, write study.toml "
         "(or convert one --from FORMAT file)", _import_args)
def cmd_import(args: argparse.Namespace) -> int:
    src = Path(args.source).expanduser()
    if not src.exists():
        return fail(f"{src}: does not exist")
    if args.fmt:
        return _import_format(args, src)
    return _import_export(args, src)


def _import_export(args: argparse.Namespace, src: Path) -> int:
    from data_loaders.errors import findings_text
    from data_loaders.importers.plan import (
        ImportSettings,
        new_study_folder,
        propose,
        settings_from_file,
        write_study,
    )

    out = Path(args.out).expanduser() if args.dry_run else new_study_folder(args.out)
    base = settings_from_file(args.mapping) if args.mapping else ImportSettings()
    settings = base.merged(
        day_first=args.day_first, day_from=args.day_from, tissue=args.tissue,
        analytes=args.analyte, columns=args.column, timepoints=args.timepoint,
        tables=args.table, options=args.option, single_cell=args.single_cell)
    proposal = propose(src, settings)
    print(proposal.text())
    if not proposal.ready:
        print(f"{len(proposal.questions)} question(s) to answer before the study can be "
              "written (options named above); nothing written", file=sys.stderr)
        return 2
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    study = write_study(proposal, out)
    print(f"wrote {out} (study.toml records every choice)")
    print(findings_text(study.report.findings, _validated(study), notes=False))
    return 0 if study.report.ok else 1


def _validated(study: Study) -> str:
    return (f"{study.study_id}: validation ({len(study.subject_ids)} patients; tables "
            f"{', '.join(study.loaded_tables) or 'none'})")


def _import_format(args: argparse.Namespace, src: Path) -> int:
    """`--from FORMAT`: convert one file once into canonical Parquet in the study folder."""
    from data_loaders.errors import findings_text
    from data_loaders.importers.from_format import import_format

    out = Path(args.out).expanduser()
    if args.dry_run:
        return fail("--dry-run applies to the export import (without --from)")
    done = import_format(src, out, fmt=args.fmt, options=dict(args.option))
    print(findings_text(done.report.findings, f"read {src.name} as {done.fmt}"))
    study = load_study(out)
    print(f"wrote {', '.join(done.written) or 'nothing'} to {out}")
    print(findings_text(study.report.findings, _validated(study), notes=False))
    return 0 if done.report.ok and study.report.ok else 1


# ---- export --------------------------------------------------------------------------------
def _export_args(p: argparse.ArgumentParser) -> None:
    from analysis.vocab import COLOUR_BY

    _deid_args(p)
    p.add_argument("--study", required=True, help="study folder")
    p.add_argument("--out", required=True,
                   help="file to write (deck.pptx, deck.pdf, deck.zip; with --view: NAME.json "
                   "(plotly JSON), .csv (the data), .html, .png, .svg or .pdf)")
    p.add_argument("--view", default=None, metavar="NAME",
                   help="instead of the deck: one view's figure or table, e.g. "
                   "outcomes.survival (the app's 'Show the code' gives the whole command)")
    p.add_argument("--params", default=None, metavar="JSON",
                   help="with --view: the view's parameters as JSON, e.g. "
                   "'{\"endpoint\": \"OS\"}' (fields left out take their defaults)")
    p.add_argument("--key", default=None, metavar="KEY",
                   help="with --view: which record of a view that makes several (e.g. "
                   "kin-er-crs_max_grade of kinetics.exposure)")
    p.add_argument("--format", choices=["pptx", "pdf", "zip"], default=None,
                   help="pptx (16:9 PowerPoint), pdf (one page per figure) or zip (SVG "
                   "files); default: from the --out suffix, else pptx")
    p.add_argument("--patients", nargs="+", default=[], metavar="ID",
                   help="only these patients (space or comma separated; default all)")
    p.add_argument("--groups", nargs="+", default=[], metavar="GROUP",
                   help="only these response groups (e.g. Responder)")
    p.add_argument("--days", default=None, metavar="LO:HI",
                   help="study day window, either side may be empty (e.g. 0:90)")
    p.add_argument("--colour-by", choices=list(COLOUR_BY), default=None,
                   help="colour per-patient figures by patient or by response group "
                   "(default: the study's [display] colour_patients_by)")
    p.add_argument("--title", default=None, help="title slide heading (default: study title)")
    p.add_argument("--no-title-slide", action="store_true", help="leave out the title slide")
    p.add_argument("--footer", action=argparse.BooleanOptionalAction, default=None,
                   help="provenance footer line on each figure (default: on for pdf/zip)")
    p.add_argument("--browser", default=None,
                   help="Chromium executable to draw with (default: CART_CHROMIUM, "
                   "BROWSER_PATH, else found on PATH)")
    p.add_argument("--patient-profiles", action="store_true",
                   help="instead of the deck: a PDF patient profile, one page per patient "
                   "(the Patient page's lanes and facts; --patients/--groups choose them)")
    p.add_argument("--criteria", choices=RESPONSE_CRITERIA, default="NIH",
                   help="response criteria of the patient profiles (default NIH)")


@command("export", "build the standard slide deck (PPTX, PDF or ZIP of SVGs) headless",
         _export_args)
def cmd_export(args: argparse.Namespace) -> int:
    from components import export, headless

    if args.params and not args.view:
        return fail("--params applies to --view")
    out = Path(args.out)
    try:
        study = _open_study(args)
        cohort = headless.cohort_of(study, patients=args.patients, groups=args.groups,
                                    days=args.days, colour_by=args.colour_by)
        if args.view:
            headless.write_view(study, cohort, out, view=args.view, params=args.params,
                                key=args.key, browser=args.browser)
        elif args.patient_profiles:
            headless.write_profiles(study, cohort, out, criteria=args.criteria,
                                    fmt=args.format, browser=args.browser)
        else:
            headless.write_deck(study, cohort, out, fmt=args.format, title=args.title,
                                title_slide=not args.no_title_slide, footer=args.footer,
                                browser=args.browser)
    except (ValueError, export.ExportUnavailable) as err:
        return fail(str(err))
    return 0


# ---- compare -------------------------------------------------------------------------------
def _compare_args(p: argparse.ArgumentParser) -> None:
    _deid_args(p)
    from analysis.differential import LAYERS

    p.add_argument("--study", required=True, help="study folder")
    p.add_argument("--layer", required=True, choices=list(LAYERS), help="feature layer")
    p.add_argument("--window", required=True,
                   help="baseline, D14, D28, M3, M6, M12 or start:end (days)")
    p.add_argument("--groups", default="response_group", metavar="COLUMN",
                   help="patients column to split by (default: responders vs non-responders)")
    p.add_argument("--group-a", help="value of COLUMN for group A (columns with > 2 values)")
    p.add_argument("--group-b", help="value of COLUMN for group B")
    p.add_argument("--change-from-baseline", action="store_true",
                   help="compare the change from each patient's baseline value")
    p.add_argument("--method", choices=["rank", "deseq2"], default="rank",
                   help="rna only: rank test on log-CPM (default) or DESeq2 on raw counts")
    p.add_argument("--all-columns", action="store_true",
                   help="also print group means/medians, log2 fold change, test, values")


@command("compare", "compare two patient groups for every feature of a layer in a day window "
         "(CSV sorted by p)", _compare_args)
def cmd_compare(args: argparse.Namespace) -> int:
    from analysis.differential import RESULT_COLUMNS, compare

    study = _open_study(args)
    if args.method == "deseq2":     # about a minute: the Compare page's DESeq2 job
        from analysis.cohort import Cohort
        from views import compare as cv

        rules = cv.rules(study)     # the Compare page's defaults: the same job, the same key
        res = _job(cv.run_comparison, study, cohort=Cohort(), desc="DESeq2", study=study,
                   params=cv.comparison_params(cv.CompareParams(
                       args.layer, args.window, args.groups, args.group_a, args.group_b,
                       change_from_baseline=args.change_from_baseline, method="deseq2",
                       fdr_across_windows=rules.fdr_across_windows,
                       defining_in_fdr=rules.defining_in_fdr)))
        if res is None:
            return 2
    else:
        res = compare(study, layer=args.layer, window=args.window, group_column=args.groups,
                      group_a=args.group_a, group_b=args.group_b,
                      change_from_baseline=args.change_from_baseline, method=args.method)
    if res.height == 0:
        return fail(f"no {args.layer} values for the two groups in window {args.window}")
    return _write(res if args.all_columns else res.select(RESULT_COLUMNS), "csv", None)


# ---- long computations as the pages' jobs (jobs/console.py: same key, same progress) ------
def _job(fn: Callable[..., Any], *args: Any, desc: str, **kwargs: Any) -> Any:
    """`fn` as the page's job (jobs.console.run); None after printing why it did not finish."""
    import jobs
    from jobs import console

    try:
        return console.run(fn, *args, desc=desc, **kwargs)
    except (jobs.JobFailed, jobs.JobCancelled) as exc:
        fail(str(exc))
        return None


def _markers_args(p: argparse.ArgumentParser) -> None:
    _deid_args(p)
    p.add_argument("--study", required=True, help="study folder")
    p.add_argument("--by", default="cell_type", metavar="COLUMN",
                   help="cell grouping: cell_type (default) or a cluster column of the "
                   "single-cell file's obs (leiden, seurat_clusters, ...)")
    p.add_argument("--top", type=int, default=25, help="genes per group (25)")
    p.add_argument("--out", help="CSV file to write (default: standard output)")
    p.add_argument("--force", action="store_true", help="recompute even when cached")


@command("markers", "marker genes of every cell type (or cluster) against all other cells over "
         "the whole single-cell store, as the Immune landscape's job (CSV)", _markers_args)
def cmd_markers(args: argparse.Namespace) -> int:
    from views import markers as mk

    study = _open_study(args)
    table = _job(mk.run_group_markers, study, params=mk.GroupMarkersParams(args.by, args.top),
                 study=study, desc="markers", rerun=args.force)
    return 2 if table is None else _write(table, "csv", args.out)


def _pseudobulk_args(p: argparse.ArgumentParser) -> None:
    from analysis.differential import WINDOWS

    p.add_argument("--study", required=True, help="study folder")
    p.add_argument("--cell-type", help="sum the cells of this cell type (or cluster label)")
    p.add_argument("--car-status", choices=["CAR+", "CAR-"], help="sum CAR+ or CAR- cells")
    p.add_argument("--design", choices=["groups", "paired"], default="groups",
                   help="groups: responders vs non-responders (default); paired: the window "
                   "vs baseline in patients with both")
    p.add_argument("--window", default="D28", choices=list(WINDOWS), help="day window (D28)")
    p.add_argument("--out", help="CSV file to write (default: standard output)")


@command("pseudobulk", "pseudobulk DESeq2 of the single-cell counts summed per sample (patient "
         "as the replicate), as the Immune landscape's job (CSV per gene)", _pseudobulk_args)
def cmd_pseudobulk(args: argparse.Namespace) -> int:
    from analysis.pseudobulk import CellSelection
    from views import landscape_pseudobulk as lp

    study = load_study(args.study)
    params = lp.cohort_params(study, cohort=None, window=args.window, design=args.design,
                              selection=CellSelection(args.cell_type, args.car_status))
    got = _job(lp.run_pseudobulk, study, params=params, study=study, desc="pseudobulk")
    return 2 if got is None else _write(got.table, "csv", args.out)


def _gene_store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, help="study folder")


@command("gene-store", "build the gene-column copy of the single-cell expression (colouring by "
         "gene, marker tests), as the Immune landscape's job; a converted store has its own",
         _gene_store_args)
def cmd_gene_store(args: argparse.Namespace) -> int:
    from views import landscape as lv

    study = load_study(args.study)
    if not study.has("single_cell"):
        return fail(f"{study.path}: no single-cell file")
    if lv.gene_store_ready(study):
        print(f"{study.path}: the gene-major copy is there already")
        return 0
    _job(lv.build_gene_store, study, study=study, desc="gene store")
    return 0 if lv.gene_store_ready(study) else 2


# ---- embed ---------------------------------------------------------------------------------
def _embed_args(p: argparse.ArgumentParser) -> None:
    _deid_args(p)       # the study as the server shows it: the page's job key
    p.add_argument("--study", required=True, help="study folder")
    p.add_argument("--n-top-genes", type=int, default=2000, help="highly variable genes (2000)")
    p.add_argument("--n-pcs", type=int, default=30, help="principal components (30)")
    p.add_argument("--n-neighbors", type=int, default=15, help="UMAP neighbours (15)")
    p.add_argument("--min-dist", type=float, default=0.3, help="UMAP min_dist (0.3)")
    p.add_argument("--method", choices=["umap", "pca"], default="umap")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--threads", type=int, default=0,
                   help="0 = all cores (default); 1 = single-threaded, exactly reproducible")
    p.add_argument("--force", action="store_true", help="recompute even when cached")
    p.add_argument("--no-flow", action="store_true",
                   help="skip the flow cytometry (FCS) events even when the study has them")


@command("embed", "precompute the single-cell (and flow) embeddings and the gene store the "
         "Immune landscape page reads", _embed_args)
def cmd_embed(args: argparse.Namespace) -> int:
    import jobs
    from analysis.embedding import EmbeddingParams
    from jobs import precompute

    params = EmbeddingParams(n_top_genes=args.n_top_genes, n_pcs=args.n_pcs,
                             n_neighbors=args.n_neighbors, min_dist=args.min_dist,
                             method=args.method, seed=args.seed, threads=args.threads)
    try:
        precompute.embed(_open_study(args), params=params, force=args.force,
                         flow=not args.no_flow)
    except (jobs.JobFailed, jobs.JobCancelled) as exc:
        return fail(str(exc))
    return 0


# ---- convert -------------------------------------------------------------------------------
def _convert_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, help="study folder")
    p.add_argument("--out", default=None,
                   help="where to write the store: a folder or an fsspec URL (default: "
                   "[single_cell] store of study.toml, else <file>.store.zarr beside the file)")


@command("convert", "write the study's single-cell data as a chunked AnnData zarr store with a "
         "cell-major and a gene-major copy (read lazily by the app, locally or from a URL)",
         _convert_args)
def cmd_convert(args: argparse.Namespace) -> int:
    from jobs import precompute

    precompute.convert(load_study(args.study), args.out)
    return 0


# ---- gate ----------------------------------------------------------------------------------
def _gate_args(p: argparse.ArgumentParser) -> None:
    _deid_args(p)       # the study as the server shows it: the page's job key
    p.add_argument("--study", required=True, help="study folder")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes of the local jobs cluster (default: server.toml "
                   "[jobs] workers, 2); with CART_JOBS=inline, local processes (default: "
                   "[flow] workers in study.toml, else the CPU cores)")
    p.add_argument("--force", action="store_true", help="gate again even when cached")


@command("gate", "apply the study's FlowJo workspace or Gating-ML file to its FCS files "
         "(in parallel, cached; the populations table and measurements then load from the "
         "cache)", _gate_args)
def cmd_gate(args: argparse.Namespace) -> int:
    from jobs import precompute

    run = precompute.gate(_open_study(args), workers=args.workers, force=args.force)
    return 0 if run.ok else 1


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
    except RuleError as err:
        return fail(str(err))
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, RuntimeError) as err:
        return fail(f"{type(err).__name__}: {err}")


if __name__ == "__main__":
    sys.exit(main())
