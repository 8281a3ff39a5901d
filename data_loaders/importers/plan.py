"""From an export (a folder or a file) to a study folder: propose, then write.

One job: proposing a new study from an export and writing it.

`propose(src, settings)` inspects every file and decides what each is; it reads and never
writes. The proposal lists each decision (`rows()`, the mapping the CLI prints and the Import
page edits), the notes that explain them and the questions that must be answered before a
study can be written (an ambiguous date order, a numeric column that names no analyte, ...).
`write_study(proposal, out)` copies the files into a new study folder, writes a `study.toml`
that records every choice (the `[import]` settings and one `[[sources]]` entry per sheet or
format file) and loads it once to validate. An existing study is never overwritten.

The same export with the same settings gives the same study.toml byte for byte; a new export
of the same sources with the recorded settings (`settings_from_config`) gives the same study.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from data_loaders.analytes import catalogue_with
from data_loaders.errors import StudyError
from data_loaders.importers.detect import Detected, detect_path, table_choice

if TYPE_CHECKING:
    from data_loaders.study import Study

__all__ = ["ImportSettings", "Proposal", "propose", "write_study", "study_toml",
           "settings_from_file", "new_study_folder",
           "settings_from_config", "ImportError_"]

_FORMAT_SOURCES = ("sdtm", "olink", "airr", "10x_vdj", "maf")


class ImportError_(StudyError):  # noqa: N801 - the builtin ImportError means something else
    """The export cannot become a study as it is (an open question, an existing target)."""


@dataclass(frozen=True)
class ImportSettings:
    """The choices a user makes (CLI options, Import page edits, or an earlier study.toml)."""

    day_first: bool | None = None
    analytes: tuple[tuple[str, str], ...] = ()     # header or name -> analyte, or "skip"
    columns: tuple[tuple[str, str], ...] = ()      # header -> role (subject_id, date, ...)
    timepoints: tuple[tuple[str, int], ...] = ()   # visit label -> study day
    tables: tuple[tuple[str, str], ...] = ()       # "file" or "file#sheet" -> table or "skip"
    day_from: str | None = None                    # "date", "visit" or "day" for every sheet
    tissue: str | None = None
    options: tuple[tuple[str, Any], ...] = ()      # format reader options (e.g. sample_id)
    single_cell: tuple[tuple[str, Any], ...] = ()  # [single_cell] entries (e.g. sample_id)

    def with_(self, **changes: Any) -> ImportSettings:
        return replace(self, **changes)

    def merged(self, **given: Any) -> ImportSettings:
        """These choices with `given` on top (cli.py import's options over an earlier
        study.toml): pairs (analytes, columns, timepoints, tables, options, single_cell) are
        merged by name, the given value winning; a single choice replaces when given."""
        changes: dict[str, Any] = {}
        for name, value in given.items():
            if name in _PAIR_FIELDS:
                changes[name] = tuple({**dict(getattr(self, name)), **dict(value)}.items())
            elif value is not None and value != "":
                changes[name] = value
        return replace(self, **changes)

    def as_toml(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.day_first is not None:
            out["day_first"] = self.day_first
        if self.day_from:
            out["day_from"] = self.day_from
        if self.tissue:
            out["tissue"] = self.tissue
        for name in ("analytes", "columns", "timepoints", "tables", "options", "single_cell"):
            value = getattr(self, name)
            if value:
                out[name] = dict(value)
        return out


_PAIR_FIELDS = ("analytes", "columns", "timepoints", "tables", "options", "single_cell")


def settings_from_file(path: str | Path) -> ImportSettings:
    """The choices of an earlier import: its study.toml, or the study folder holding one."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "study.toml"
    try:
        return settings_from_config(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise StudyError(f"cannot reuse its mapping: {exc}", file=str(path),
                         fix="give the study.toml of an earlier import") from None


def new_study_folder(out: str | Path) -> Path:
    """`out` as the folder a new study goes to; an import never overwrites a study."""
    path = Path(out).expanduser()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise StudyError(f"{path}: exists already; an import never overwrites a study "
                         "(choose a new folder)")
    return path


def settings_from_config(config: dict[str, Any]) -> ImportSettings:
    """The settings an earlier import recorded in its study.toml `[import]` table."""
    imp = config.get("import", {}) or {}
    return ImportSettings(
        day_first=imp.get("day_first"), day_from=imp.get("day_from"), tissue=imp.get("tissue"),
        analytes=tuple((imp.get("analytes") or {}).items()),
        columns=tuple((imp.get("columns") or {}).items()),
        timepoints=tuple((k, int(v)) for k, v in (imp.get("timepoints") or {}).items()),
        tables=tuple((imp.get("tables") or {}).items()),
        options=tuple((imp.get("options") or {}).items()),
        single_cell=tuple((imp.get("single_cell") or {}).items()))


@dataclass
class Proposal:
    source: Path
    settings: ImportSettings
    items: list[Detected] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    single_cell: dict[str, Any] | None = None
    patients_from: list[str] = field(default_factory=list)   # patients derived from ids

    @property
    def ready(self) -> bool:
        return not self.questions

    def rows(self) -> pl.DataFrame:
        """One row per decision: file, sheet, what, column -> maps to (and unit)."""
        out = []
        for d in self.items:
            what = d.table or d.kind
            layout = d.options.get("layout", "")
            out.append((d.path, d.sheet or "", d.kind, what, layout, "", "", ""))
            for role, header in (d.options.get("columns") or {}).items():
                out.append((d.path, d.sheet or "", d.kind, what, layout, header, role, ""))
            for header, analyte in (d.options.get("analytes") or {}).items():
                out.append((d.path, d.sheet or "", d.kind, what, layout, header, analyte,
                            (d.options.get("units") or {}).get(header, "")))
        return pl.DataFrame(out, schema=["file", "sheet", "kind", "table", "layout", "column",
                                         "maps_to", "unit"], orient="row")

    def text(self) -> str:
        """The mapping as printed by `cli.py import`."""
        lines = [f"import from {self.source}"]
        for d in self.items:
            where = d.key
            if d.kind == "skip":
                lines.append(f"  {where}: left out ({'; '.join(d.notes) or 'not read'})")
                continue
            what = d.table if d.kind in ("sheet", "rna_counts") else d.kind
            layout = d.options.get("layout")
            lines.append(f"  {where}: {what}" + (f" ({layout})" if layout else ""))
            for role, header in (d.options.get("columns") or {}).items():
                lines.append(f"      {header!s:28s} -> {role}")
            units = d.options.get("units") or {}
            for header, analyte in (d.options.get("analytes") or {}).items():
                unit = units.get(header)
                lines.append(f"      {header!s:28s} -> {analyte}" + (f" [{unit}]" if unit else ""))
            if d.options.get("timepoints"):
                pairs = ", ".join(f"{k}={v}" for k, v in d.options["timepoints"].items())
                lines.append(f"      visit labels -> days: {pairs}")
            lines += [f"      note: {n}" for n in d.notes]
        if self.single_cell:
            lines.append(f"  single-cell: {self.single_cell.get('file')}")
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"QUESTION: {q}" for q in self.questions]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# propose
# --------------------------------------------------------------------------------------------
def _is_store(p: Path) -> bool:
    """A folder that is one input: an AnnData zarr store or a 10x matrix folder."""
    return p.is_dir() and (p.name.lower().endswith(".zarr") or any(
        (p / f).exists() for f in ("matrix.mtx.gz", "matrix.mtx", ".zgroup", "zarr.json")))


def _root(src: Path) -> Path:
    return src if src.is_dir() and not _is_store(src) else src.parent


def _files(src: Path) -> list[Path]:
    """Every input below `src` in sorted order; a zarr store or 10x matrix folder is one."""
    if src.is_file() or _is_store(src):
        return [src]
    out: list[Path] = []
    for p in sorted(src.iterdir()):
        if p.name.startswith(".") or (p.is_dir() and (p / "study.toml").is_file()):
            continue     # hidden files, and study folders (an earlier import's output)
        out.extend([p] if _is_store(p) or p.is_file() else _files(p))
    return out


def propose(src: str | Path, settings: ImportSettings | None = None, *,
            catalogue_extra: dict[str, dict] | None = None) -> Proposal:
    """Inspect every file of `src` (a folder or one file) and decide what each is."""
    src = Path(src).expanduser()
    if not src.exists():
        raise ImportError_("does not exist", file=str(src), fix="give an export folder or file")
    settings = settings or ImportSettings()
    root = _root(src)
    prop = Proposal(source=src, settings=settings)
    catalogue = catalogue_with(catalogue_extra or {})
    tables = dict(settings.tables)
    for path in _files(src):
        for det in detect_path(root, path, catalogue=catalogue,
                               chosen_analytes=dict(settings.analytes),
                               chosen_columns=dict(settings.columns), tables=tables):
            if table_choice(tables, det.key, det.path) == "skip" and det.kind != "skip":
                det = Detected(det.path, "skip", sheet=det.sheet, notes=["left out (--table)"])
            prop.items.append(det)
    _single_cell(root, prop)
    _days_and_patients(prop, settings)
    _fill_options(prop, settings)
    for d in prop.items:
        prop.questions.extend(d.questions)
    if not any(d.kind != "skip" for d in prop.items):
        prop.questions.append(f"{src}: no file this import can read")
    return prop


def _single_cell(root: Path, prop: Proposal) -> None:
    cells = [d for d in prop.items if d.kind == "single_cell"]
    if not cells:
        return
    if len(cells) > 1:
        names = ", ".join(d.path for d in cells)
        prop.questions.append(f"several single-cell files ({names}); a study holds one: leave "
                              f"the others out with --table \"FILE=skip\"")
        return
    try:
        from data_loaders.importers.single_cell import propose_single_cell
    except ImportError:
        prop.questions.append(f"{cells[0].path}: single-cell files cannot be imported by this "
                              "installation (data_loaders.importers.single_cell is missing)")
        return
    found = dict(propose_single_cell(root / cells[0].path))
    given = dict(prop.settings.single_cell)
    for f in found.pop("findings", []) or []:
        if isinstance(f, str):
            f = {"severity": "note", "message": f}
        text = str(f.get("message", ""))
        if f.get("fix"):
            text += f"; {f['fix']}"
        if f.get("options"):
            text += f" (found: {', '.join(map(str, f['options']))})"
        if f.get("severity") == "error" and not given:
            prop.questions.append(f"{cells[0].path}: {text}; give it with --single-cell KEY=VALUE")
        else:
            cells[0].notes.append(("checked again on validation: " if f.get("severity") ==
                                   "error" else "") + text)
    found.update(given)
    found["file"] = f"sources/{cells[0].path}"
    prop.single_cell = found


def _days_and_patients(prop: Proposal, settings: ImportSettings) -> None:
    """Where study days come from, and whether a patients table must be derived."""
    sheets = [d for d in prop.items if d.kind == "sheet"]
    patients = [d for d in sheets if d.table == "patients"]
    has_infusion = any("infusion_date" in (d.options.get("columns") or {}) for d in patients)
    for d in sheets:
        cols = d.options.get("columns") or {}
        if d.table == "patients" or not (set(cols) & {"date", "visit", "day"}):
            continue
        day_from = settings.day_from
        if day_from is None:
            if "day" in cols:
                day_from = "day"
            elif "date" in cols and (has_infusion or "visit" not in cols):
                day_from = "date"
            else:
                day_from = "visit"
        if day_from == "date" and "date" in cols and not has_infusion:
            d.questions.append(f"{d.key}: days come from dates, but no patients table gives "
                               "infusion_date; add a patients file with infusion_date, or take "
                               "days from visit labels (--day-from visit)")
        if day_from == "visit" and "date" in cols:
            d.notes.append("study days from the visit labels (no infusion_date for the dates);"
                           " dates kept")
        d.options["day_from"] = day_from
    sdtm = any(d.kind == "sdtm" for d in prop.items)    # DM gives the patients
    if not patients and not sdtm and any(d.subjects for d in sheets):
        ids = sorted({s for d in sheets for s in d.subjects})
        prop.patients_from = ids
        prop.notes.append(f"no patients table: patients.csv is made from the {len(ids)} patient "
                          "id(s) in the sheets")


def _fill_options(prop: Proposal, settings: ImportSettings) -> None:
    """Day-first and timepoint choices, per sheet, recorded where the loader applies them."""
    from data_loaders.importers.dates import inspect_dates
    from data_loaders.timepoints import label_day

    overrides = dict(settings.timepoints)
    for d in prop.items:
        if d.kind != "sheet" or d.frame is None:
            continue
        cols = d.options.get("columns") or {}
        need = [c for r, c in cols.items() if r in ("date", "end_date", "infusion_date")]
        labels = [c for r, c in cols.items() if r in ("visit", "day")]
        if not need and not labels:
            continue
        frame = d.frame
        for col in need:
            info = inspect_dates(frame.get_column(col).to_list())
            if info.conflict:
                d.questions.append(f"{d.key}: column {col!r} mixes day-first and month-first "
                                   f"dates ({info.evidence})")
            elif info.ambiguous:
                if settings.day_first is None:
                    example = next(v for v in frame.get_column(col).to_list() if v)
                    d.questions.append(f"{d.key}: dates in {col!r} such as {example!r} can be "
                                       "read day-first or month-first; say which: --day-first "
                                       "or --month-first")
                else:
                    d.options["day_first"] = settings.day_first
                    d.notes.append(f"dates in {col!r} read "
                                   + ("day-first" if settings.day_first else "month-first")
                                   + " (as chosen)")
            elif info.day_first is not None and settings.day_first is not None and \
                    info.day_first != settings.day_first:
                d.questions.append(f"{d.key}: dates in {col!r} were said to be "
                                   + ("day-first" if settings.day_first else "month-first")
                                   + f", but {info.evidence} can only be "
                                   + ("day-first" if info.day_first else "month-first")
                                   + "; check the export")
            elif info.day_first is not None:
                d.options["day_first"] = info.day_first
                d.notes.append(f"dates in {col!r} are "
                               + ("day-first" if info.day_first else "month-first")
                               + f" ({info.evidence} decides)")
            if info.bad:
                d.notes.append(f"{col!r} has values that are no date: "
                               + ", ".join(repr(b) for b in info.bad[:3]))
        if d.options.get("day_from") in ("visit", "day"):
            tp: dict[str, int] = {}
            unknown = []
            for col in labels:
                for lab in frame.get_column(col).drop_nulls().unique(maintain_order=True):
                    day = label_day(lab, overrides=overrides)
                    if day is None:
                        unknown.append(lab)
                    elif not str(lab).lstrip("+-").isdigit():
                        tp[str(lab)] = day
            if tp:
                d.options["timepoints"] = dict(sorted(tp.items(), key=lambda kv: (kv[1], kv[0])))
            if unknown:
                d.questions.append(f"{d.key}: visit label(s) {', '.join(map(repr, unknown[:6]))}"
                                   f" name no study day; give them: --timepoint \"{unknown[0]}"
                                   "=DAY\"")
        if settings.tissue and d.table == "measurements":
            d.options["tissue"] = settings.tissue


# --------------------------------------------------------------------------------------------
# write
# --------------------------------------------------------------------------------------------
def study_toml(prop: Proposal, *, title: str, access: list[str] | None = None
               ) -> dict[str, Any]:
    """The study.toml of the proposal: [study], [import] (the settings and source), one
    [[sources]] entry per sheet or format file, [tables.rna_counts], [single_cell]."""
    config: dict[str, Any] = {"study": {"title": title}}
    imp = {"source": prop.source.name, **prop.settings.as_toml()}
    config["import"] = imp
    sources: list[dict[str, Any]] = []
    general = {k: v for k, v in prop.settings.options if "." not in k}

    def fmt_options(fmt: str) -> dict[str, Any]:
        # "--option olink.control_sample_types=[]" is for the Olink reader only
        own = {k.split(".", 1)[1]: v for k, v in prop.settings.options
               if k.startswith(f"{fmt}.")}
        return {**general, **own}
    sdtm_dirs: list[str] = []
    rna: list[str] = []
    for d in prop.items:
        rel = f"sources/{d.path}"
        if d.kind == "sheet":
            sources.append({"format": "sheet", "path": rel, "options": d.options})
        elif d.kind == "sdtm":
            folder = str(Path(rel).parent)
            if folder not in sdtm_dirs:
                sdtm_dirs.append(folder)
                sources.append({"format": "sdtm", "path": folder,
                                "options": fmt_options("sdtm")})
        elif d.kind in _FORMAT_SOURCES:
            opts = {**d.options, **fmt_options(d.kind)}
            sources.append({"format": d.kind, "path": rel, "options": opts})
        elif d.kind == "rna_counts":
            rna.append(rel)
    if prop.patients_from:
        config["tables"] = {"patients": {"files": ["patients.csv"]}}
    if rna:
        config.setdefault("tables", {})["rna_counts"] = {"files": rna}
    if sources:
        config["sources"] = sources
    if prop.single_cell:
        config["single_cell"] = prop.single_cell
    if access:
        config["access"] = {"emails": list(access)}
    return config


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst)
        return
    try:
        os.link(src, dst)        # same file system: no second copy of a large file
    except OSError:
        shutil.copy2(src, dst)


def build(prop: Proposal, folder: Path, *, title: str, access: list[str] | None = None
          ) -> None:
    """Write the study files of `prop` into `folder` (which must be empty or absent)."""
    import tomli_w

    root = _root(prop.source)
    folder.mkdir(parents=True, exist_ok=True)
    copied = set()
    for d in prop.items:
        if d.kind == "skip" or d.path in copied:
            continue
        copied.add(d.path)
        _copy(root / d.path, folder / "sources" / d.path)
    if prop.patients_from:
        pl.DataFrame({"subject_id": prop.patients_from}).write_csv(folder / "patients.csv")
    text = tomli_w.dumps(study_toml(prop, title=title, access=access))
    header = "# study.toml written by `python cli.py import`; every choice of the import is here\n"
    (folder / "study.toml").write_text(header + text, encoding="utf-8")
    fcs = [d.path for d in prop.items if d.kind == "fcs"]
    if fcs:
        prop.notes.append(f"{len(fcs)} FCS file(s) copied to sources/; list them in samples "
                          "(assay flow_fcs, column file) to gate them")


def write_study(prop: Proposal, out: str | Path, *, title: str | None = None,
                access: list[str] | None = None) -> Study:
    """Write the proposal as a new study folder and load it once; returns the loaded Study.
    `access` (e-mails) becomes the study's `[access]` allow-list (a study made on a shared
    server is open to the one who made it until its owner lists others).

    Refuses open questions and an existing non-empty `out`. The study is assembled in a
    hidden folder next to `out` and moved into place at the end, so a failed import leaves
    nothing behind."""
    from data_loaders import load_study

    out = Path(out).expanduser()
    if not prop.ready:
        raise ImportError_("the import has open questions: " + "; ".join(prop.questions[:3]),
                           file=str(prop.source), fix="answer them with the options named")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ImportError_("exists already; an import never overwrites a study", file=str(out),
                           fix="choose a new folder name (or remove the old study yourself)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.importing-", dir=out.parent))
    try:
        build(prop, staging, title=title or out.name, access=access)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_study(out)


def preview(prop: Proposal, *, title: str = "preview") -> Study:
    """Load the tables the proposal would write, from a temporary folder that is removed again
    (nothing is written where the study will go). The single-cell file is not copied for a
    preview (it may be many gigabytes); its own proposal already checked it."""
    from data_loaders import load_study

    tables_only = replace(prop, single_cell=None,
                          items=[d for d in prop.items if d.kind != "single_cell"])
    with tempfile.TemporaryDirectory(prefix="cart-import-preview-") as tmp:
        build(tables_only, Path(tmp) / "study", title=title)
        return load_study(Path(tmp) / "study")
