"""CDISC SDTM domains (SAS transport .xpt or .csv) -> patients, measurements, events, responses.

One job: the SDTM reader (one mapping per domain: DM, LB and VS, AE, EX, CM, RS).

Mapping (SDTM Implementation Guide 3.x variable names):

- DM -> patients: USUBJID as subject_id, AGE, SEX, ACTARM (or ARM) as arm; the infusion date is
  RFXSTDTC (date of first exposure to study treatment) unless `infusion_date` says otherwise;
  DTHDTC -> death_day and RFPENDTC -> last_contact_day, both in days from the infusion.
- LB and VS -> measurements: --TESTCD mapped to canonical analytes (`canonical_analyte`, plus the
  `tests` option), --STRESN/--STRESU as value/unit (the loader converts units), --DY or --DTC.
- AE -> events: AEDECOD as term, AETOXGR as grade or else AESEV (MILD 1, MODERATE 2, SEVERE 3),
  AESTDY/AEENDY or AESTDTC/AEENDTC; CRS, ICANS and infections get their own category.
- EX -> events by EXTRT (`treatments` option: EXTRT -> infusion, lymphodepletion, ...), with
  EXDOSE/EXDOSU; a per-kg infusion dose fills patients.dose_per_kg.
- RS -> responses (RSTESTCD OVRLRESP by default; RSSTRESC CR/PR kept, SD/PD/NR as NR).
- CM -> events of category medication: CMTRT (the drug as recorded) with CMDOSE/CMDOSU appended
  as term, CMSTDY/CMENDY or CMSTDTC/CMENDTC; the drug class (product) comes from CMDECOD, else
  CMTRT, else CMCLAS (`medication_class`: tocilizumab, corticosteroid, ciclosporin, tpo_ra, g_csf,
  anti_infective, other). Records without a start day or date are reported and left out.

SDTM study days have no day 0: --DY 1 is the reference start date (RFSTDTC) and the day before
is -1. The project counts days from the infusion with day 0 = infusion day, so
day = (DY - 1 if DY >= 1 else DY) + (RFSTDTC - infusion_date). When the reference start is the
infusion the shift is 0; when it is not, days come from the --DTC dates relative to the infusion
date first. Whatever cannot be mapped (test codes, treatments, partial dates) is reported with
row counts and left out; nothing is dropped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from analysis.vocab import BLOOD, fold_tissue_expr
from data_loaders.analytes import Analyte, canonical_analyte
from data_loaders.errors import StudyError, ValidationReport
from data_loaders.formats import register_reader
from data_loaders.formats._common import file_label, find_column, numeric_or_report, text_frame
from data_loaders.raw import RawTable
from data_loaders.readers import read_table
from data_loaders.schema import medication_class_expr

__all__ = ["read_sdtm", "sdtm_dy_to_day", "sdtm_day_expr", "DOMAINS", "SEVERITY_GRADES"]

DOMAINS = ("dm", "lb", "vs", "ae", "ex", "rs", "cm")
SEVERITY_GRADES = {"MILD": 1, "MODERATE": 2, "SEVERE": 3}
_SUFFIXES = (".xpt", ".csv")
_REQUIRED = {
    "dm": ("USUBJID",),
    "lb": ("USUBJID", "LBTESTCD", "LBSTRESN", "LBSTRESU"),
    "vs": ("USUBJID", "VSTESTCD", "VSSTRESN", "VSSTRESU"),
    "ae": ("USUBJID", "AEDECOD"),
    "ex": ("USUBJID", "EXTRT"),
    "rs": ("USUBJID", "RSSTRESC"),
    "cm": ("USUBJID", "CMTRT"),
}
# EXTRT values recognised without options (case-insensitive regular expressions).
_DEFAULT_TREATMENTS = (
    (r"FLUDARABINE|CYCLOPHOSPHAMIDE|BENDAMUSTINE", "lymphodepletion"),
    (r"CAR[- ]?T|CLEUCEL|CEL$|CAR[- ]T CELLS", "infusion"),
    (r"FILGRASTIM|G-CSF|LENOGRASTIM", "growth_factor"),
)
# AE terms (AEDECOD, MedDRA preferred terms) with a category of their own.
_AE_CATEGORIES = {
    "CYTOKINE RELEASE SYNDROME": "crs",
    "IMMUNE EFFECTOR CELL-ASSOCIATED NEUROTOXICITY SYNDROME": "icans",
    "NEUROTOXICITY": "icans",
}
_INFECTION_SOC = "INFECTIONS AND INFESTATIONS"
_RESPONSES = {"CR": "CR", "COMPLETE RESPONSE": "CR", "PR": "PR", "PARTIAL RESPONSE": "PR",
              "NR": "NR", "NO RESPONSE": "NR", "SD": "NR", "STABLE DISEASE": "NR", "PD": "NR",
              "PROGRESSIVE DISEASE": "NR", "NE": "NE", "NOT EVALUABLE": "NE"}
_INFUSION_SOURCES = ("RFXSTDTC", "RFSTDTC", "EX")


def sdtm_dy_to_day(dy: int) -> int:
    """One SDTM study day (no day 0; 1 = reference date, -1 = the day before) -> days since the
    reference date (0 = reference date)."""
    if dy == 0:
        raise ValueError("SDTM study days have no day 0")
    return dy - 1 if dy >= 1 else dy


def sdtm_day_expr(dy: pl.Expr) -> pl.Expr:
    """`sdtm_dy_to_day` for a polars column (0, which SDTM never uses, stays 0)."""
    return pl.when(dy >= 1).then(dy - 1).otherwise(dy)


# --------------------------------------------------------------------------------------------
# the reader
# --------------------------------------------------------------------------------------------
@register_reader("sdtm")
def read_sdtm(path: Path, options: dict[str, Any], report: ValidationReport, *,
              label: str | None = None, catalogue: dict[str, Analyte] | None = None
              ) -> list[RawTable]:
    """Read an SDTM folder (dm, lb, vs, ae, ex, rs as .xpt or .csv) or one domain file.

    Options: infusion_date ("RFXSTDTC" | "RFSTDTC" | "EX"), treatments {EXTRT: category},
    tests {TESTCD: analyte}, ae_categories {AEDECOD: category}, response_tests [RSTESTCD].
    """
    files = _domain_files(path, report, label)
    if "dm" not in files:
        raise StudyError("has no DM domain (dm.xpt or dm.csv): patients and the reference "
                         "dates come from DM", file=label or path.name,
                         fix="put dm.xpt next to the other domains")
    frames: dict[str, tuple[pl.DataFrame, str, str]] = {}
    for dom, p in files.items():
        name = file_label(p, path if path.is_dir() else p, label)
        frame, fmt = _read_domain(p, name)
        missing = [c for c in _REQUIRED[dom] if c not in frame.columns]
        if missing:
            raise StudyError(f"is not an SDTM {dom.upper()} domain: required variable(s) "
                             f"{', '.join(missing)} missing; found: "
                             f"{', '.join(c for c in frame.columns if c != '_row')[:300]}",
                             file=name, fix=f"export {dom.upper()} with its standard variables")
        frames[dom] = (frame, name, fmt)

    opts = _Options(options, report, label or path.name)
    dm, dm_name, dm_fmt = frames["dm"]
    ex = frames.get("ex")
    ref = _reference_dates(dm, ex[0] if ex else None, opts, report, dm_name)
    out: list[RawTable] = []
    patients = _patients(dm, ref, report, dm_name, opts)
    if ex is not None:
        ex_events, doses = _exposure(ex[0], ref, report, ex[1], opts)
        if doses.height:
            patients = patients.join(doses, on="subject_id", how="left").with_columns(
                pl.col("dose_per_kg").cast(pl.String))
        out.append(RawTable("events", ex[1], ex_events, ex[2]))
    out.insert(0, RawTable("patients", dm_name, patients, dm_fmt))
    for dom in ("lb", "vs"):
        if dom in frames:
            frame, name, fmt = frames[dom]
            out.append(RawTable("measurements", name,
                                _findings(frame, dom, ref, report, name, opts, catalogue), fmt))
    if "ae" in frames:
        frame, name, fmt = frames["ae"]
        out.append(RawTable("events", name, _adverse_events(frame, ref, report, name, opts), fmt))
    if "cm" in frames:
        frame, name, fmt = frames["cm"]
        out.append(RawTable("events", name, _medications(frame, ref, report, name), fmt))
    if "rs" in frames:
        frame, name, fmt = frames["rs"]
        out.append(RawTable("responses", name, _responses(frame, ref, report, name, opts), fmt))
    return [r for r in out if r.frame.height]


class _Options:
    def __init__(self, options: dict[str, Any], report: ValidationReport, where: str) -> None:
        known = {"infusion_date", "treatments", "tests", "ae_categories", "response_tests"}
        unknown = sorted(set(options) - known)
        if unknown:
            report.add("warning", "study", where, f"unknown sdtm option(s): {', '.join(unknown)}",
                       fix=f"the sdtm reader takes: {', '.join(sorted(known))}")
        self.infusion = str(options.get("infusion_date", "RFXSTDTC")).upper()
        if self.infusion not in _INFUSION_SOURCES:
            raise StudyError(f"option infusion_date = {self.infusion!r} is not known",
                             file=where, fix=f"use one of {', '.join(_INFUSION_SOURCES)}")
        self.treatments = {str(k).upper(): str(v).lower()
                           for k, v in (options.get("treatments") or {}).items()}
        self.tests = {str(k).upper(): str(v) for k, v in (options.get("tests") or {}).items()}
        self.ae_categories = {str(k).upper(): str(v).lower()
                              for k, v in (options.get("ae_categories") or {}).items()}
        self.response_tests = [str(t).upper() for t in
                               (options.get("response_tests") or ["OVRLRESP"])]


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------
def _domain_files(path: Path, report: ValidationReport, label: str | None) -> dict[str, Path]:
    if path.is_file():
        dom = path.stem.lower()
        if dom not in DOMAINS or path.suffix.lower() not in _SUFFIXES:
            raise StudyError(f"is not a known SDTM domain file ({', '.join(DOMAINS)} as .xpt or "
                             ".csv)", file=label or path.name,
                             fix="point the source at the folder holding dm.xpt, lb.xpt, ...")
        return {dom: path}
    found: dict[str, Path] = {}
    ignored = []
    for p in sorted(path.iterdir()):
        if not p.is_file() or p.suffix.lower() not in _SUFFIXES + (".sas7bdat",):
            continue
        dom = p.stem.lower()
        if dom in DOMAINS and p.suffix.lower() in _SUFFIXES and dom not in found:
            found[dom] = p
        else:
            ignored.append(p.name)
    if ignored:
        report.add("note", "study", label or path.name,
                   f"SDTM file(s) not read (domain not mapped): {', '.join(ignored[:12])}"
                   + (" ..." if len(ignored) > 12 else ""),
                   fix=f"the sdtm reader maps {', '.join(d.upper() for d in DOMAINS)}")
    return found


def _read_domain(p: Path, name: str) -> tuple[pl.DataFrame, str]:
    """A domain as an all-text frame with upper-case variable names and `_row` = record number
    (XPT; first record = 1) or spreadsheet row (CSV; header = row 1)."""
    if p.suffix.lower() == ".xpt":
        import pyreadstat

        if p.stat().st_size % 80:
            # SAS transport v5 is written in 80-byte records; a partial record means a cut file.
            raise StudyError("is not a whole number of 80-byte XPT records; the file looks "
                             "truncated", file=name, fix="copy or export the file again")
        try:
            columns, _meta = pyreadstat.read_xport(str(p), output_format="dict")
        except Exception as exc:  # noqa: BLE001 - pyreadstat raises its own exception types
            msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else \
                type(exc).__name__
            raise StudyError(f"could not be read as SAS transport (XPT): {msg}", file=name,
                             fix="the file may be truncated; export it again as XPT v5 or CSV"
                             ) from None
        frame = pl.DataFrame(dict(columns))
        frame = frame.with_columns([_num_text(c) for c, t in frame.schema.items()
                                    if t.is_numeric()])
        frame = text_frame(frame).with_row_index("_row", offset=1)
        fmt = "sdtm-xpt"
    else:
        frame = read_table(p, name=name).frame.with_row_index("_row", offset=2)
        fmt = "sdtm-csv"
    frame = frame.with_columns(pl.col("_row").cast(pl.Int64))
    return frame.rename({c: c.upper() for c in frame.columns if c != "_row"}), fmt


def _num_text(col: str) -> pl.Expr:
    """Numbers as text without a spurious '.0' for whole values (63.0 -> '63')."""
    c = pl.col(col)
    return pl.when(c.is_finite() & (c == c.round()) & (c.abs() < 1e15)) \
        .then(c.cast(pl.Int64).cast(pl.String)).otherwise(c.cast(pl.String)).alias(col)


# --------------------------------------------------------------------------------------------
# reference dates and days
# --------------------------------------------------------------------------------------------
def _as_date(col: str) -> pl.Expr:
    """ISO 8601 date or datetime text -> Date; partial dates (YYYY, YYYY-MM) -> null."""
    return pl.col(col).str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False)


def _reference_dates(dm: pl.DataFrame, ex: pl.DataFrame | None, opts: _Options,
                     report: ValidationReport, name: str) -> pl.DataFrame:
    """subject_id, infusion_date, ref_start (RFSTDTC) and shift = ref_start - infusion_date."""
    cols = {"RFSTDTC": _as_date("RFSTDTC") if "RFSTDTC" in dm.columns else pl.lit(None, pl.Date),
            "RFXSTDTC": _as_date("RFXSTDTC") if "RFXSTDTC" in dm.columns
            else pl.lit(None, pl.Date)}
    ref = dm.select(pl.col("USUBJID").alias("subject_id"), cols["RFSTDTC"].alias("ref_start"),
                    cols["RFXSTDTC"].alias("first_exposure"))
    source = opts.infusion
    if source == "EX":
        first = _first_infusion(ex, opts) if ex is not None else None
        if first is None or first.height == 0:
            report.add("warning", "patients", name, "infusion_date = \"EX\" but no EX record is "
                       "mapped to category infusion; RFXSTDTC used instead",
                       fix="map the cell product in options.treatments (EXTRT = \"infusion\")")
            source = "RFXSTDTC"
        else:
            ref = ref.join(first, on="subject_id", how="left")
    if source == "RFXSTDTC":
        ref = ref.with_columns(pl.col("first_exposure").alias("infusion_date"))
    elif source == "RFSTDTC":
        ref = ref.with_columns(pl.col("ref_start").alias("infusion_date"))
    ref = ref.with_columns(
        (pl.col("ref_start") - pl.col("infusion_date")).dt.total_days().alias("shift"))
    shown = {"RFXSTDTC": "RFXSTDTC (first exposure to study treatment)",
             "RFSTDTC": "RFSTDTC (reference start)",
             "EX": "the first EX record mapped to infusion"}[source]
    n_none = ref.filter(pl.col("infusion_date").is_null()).height
    report.add("note", "patients", name,
               f"infusion_date taken from {shown}; SDTM study days (no day 0) converted to days "
               "from infusion: DY 1 -> day 0, DY -1 -> day -1"
               + (f"; {n_none} of {ref.height} subjects have no such date (e.g. screen "
                  "failures), so their records cannot be placed in time" if n_none else ""),
               fix="choose another reference with options.infusion_date (RFXSTDTC, RFSTDTC, EX)")
    shifted = ref.filter(pl.col("shift").is_not_null() & (pl.col("shift") != 0)).height
    if shifted:
        report.add("note", "patients", name,
                   f"for {shifted} subject(s) RFSTDTC differs from the infusion date: their days "
                   "come from the --DTC dates relative to the infusion (--DY shifted where no "
                   "date is given)")
    return ref.select("subject_id", "infusion_date", "shift")


def _first_infusion(ex: pl.DataFrame, opts: _Options) -> pl.DataFrame:
    cat = _treatment_categories(ex, opts)
    return (ex.with_columns(cat.alias("_cat"), _as_date("EXSTDTC").alias("_d")
                            if "EXSTDTC" in ex.columns else pl.lit(None, pl.Date).alias("_d"))
            .filter((pl.col("_cat") == "infusion") & pl.col("_d").is_not_null())
            .group_by(pl.col("USUBJID").alias("subject_id")).agg(pl.col("_d").min()
                                                                   .alias("infusion_date")))


def _days(frame: pl.DataFrame, ref: pl.DataFrame, dy: str, dtc: str) -> pl.Expr:
    """Expression for days from infusion, given the frame was joined with `ref`."""
    from_dy = (sdtm_day_expr(pl.col(dy).cast(pl.Float64, strict=False).round().cast(pl.Int64))
               + pl.col("shift")) if dy in frame.columns else pl.lit(None, pl.Int64)
    from_dtc = ((_as_date(dtc) - pl.col("infusion_date")).dt.total_days()
                if dtc in frame.columns else pl.lit(None, pl.Int64))
    return pl.when(pl.col("shift") == 0).then(pl.coalesce(from_dy, from_dtc)) \
        .otherwise(pl.coalesce(from_dtc, from_dy)).cast(pl.Int64)


def _with_days(frame: pl.DataFrame, ref: pl.DataFrame, prefix: str, report: ValidationReport,
               table: str, name: str, *, end: bool = False) -> pl.DataFrame:
    out = frame.join(ref, left_on="USUBJID", right_on="subject_id", how="left")
    out = out.with_columns(_days(out, ref, f"{prefix}DY" if not end else f"{prefix}STDY",
                                 f"{prefix}DTC" if not end else f"{prefix}STDTC").alias("day"))
    if end:
        out = out.with_columns(_days(out, ref, f"{prefix}ENDY", f"{prefix}ENDTC")
                               .alias("end_day"))
    dtc = f"{prefix}DTC" if not end else f"{prefix}STDTC"
    missing = out.filter(pl.col("day").is_null())
    if missing.height:
        no_ref = missing.filter(pl.col("infusion_date").is_null()).height
        partial = missing.filter(pl.col("infusion_date").is_not_null())
        if no_ref:
            report.add("warning", table, name,
                       f"{no_ref:,} record(s) of subjects without an infusion date left out",
                       rows=missing.filter(pl.col("infusion_date").is_null())
                       .get_column("_row").to_list(), column="USUBJID",
                       fix="give these subjects RFXSTDTC in DM or choose options.infusion_date")
        if partial.height:
            examples = ", ".join(repr(v) for v in partial.get_column(dtc).drop_nulls()
                                 .unique(maintain_order=True).head(3).to_list()) \
                if dtc in partial.columns else ""
            report.add("warning", table, name,
                       f"{partial.height:,} record(s) without a study day and without a complete "
                       f"{dtc} date" + (f" (e.g. {examples})" if examples else "")
                       + " left out", rows=partial.get_column("_row").to_list(), column=dtc,
                       fix=f"give {prefix}{'ST' if end else ''}DY or a full date YYYY-MM-DD")
    return out.filter(pl.col("day").is_not_null())


# --------------------------------------------------------------------------------------------
# domains
# --------------------------------------------------------------------------------------------
def _patients(dm: pl.DataFrame, ref: pl.DataFrame, report: ValidationReport, name: str,
              opts: _Options) -> pl.DataFrame:
    df = dm.join(ref, left_on="USUBJID", right_on="subject_id", how="left")
    cols = [pl.col("_row"), pl.col("USUBJID").alias("subject_id")]
    if "AGE" in df.columns:
        cols.append(pl.col("AGE").alias("age"))
        if "AGEU" in df.columns:
            other = df.filter(pl.col("AGEU").is_not_null() & (pl.col("AGEU") != "YEARS"))
            if other.height:
                report.add("warning", "patients", name, "AGE is not in YEARS for "
                           f"{other.height} subject(s); age left empty for them", column="AGEU",
                           rows=other.get_column("_row").to_list(), fix="give AGE in years")
                df = df.with_columns(pl.when(pl.col("AGEU").is_null() |
                                             (pl.col("AGEU") == "YEARS")).then(pl.col("AGE"))
                                     .alias("AGE"))
    if "SEX" in df.columns:
        cols.append(pl.when(pl.col("SEX").is_in(["M", "F"])).then(pl.col("SEX"))
                    .alias("sex"))
    cols.append(pl.col("infusion_date").dt.strftime("%Y-%m-%d").alias("infusion_date"))
    for var, out in (("DTHDTC", "death_day"), ("RFPENDTC", "last_contact_day")):
        if var in df.columns:
            cols.append((_as_date(var) - pl.col("infusion_date")).dt.total_days()
                        .cast(pl.String).alias(out))
    arm = find_column(df, ["ACTARM", "ARM"])
    if arm:
        cols.append(pl.col(arm).alias("arm"))
    return df.select(cols)


def _findings(frame: pl.DataFrame, dom: str, ref: pl.DataFrame, report: ValidationReport,
              name: str, opts: _Options, catalogue: dict[str, Analyte] | None) -> pl.DataFrame:
    p = dom.upper()
    code, label_col = f"{p}TESTCD", f"{p}TEST"
    counts = frame.group_by(code).agg(pl.len().alias("n"), pl.col("_row"),
                                      pl.col(label_col).first() if label_col in frame.columns
                                      else pl.lit(None, pl.String).alias(label_col)).sort(code)
    mapping: dict[str, str] = {}
    for rec in counts.iter_rows(named=True):
        cd = rec[code]
        if cd is None:
            continue
        target = opts.tests.get(cd.upper()) or cd
        canon = canonical_analyte(target, catalogue)
        if canon is not None:
            mapping[cd] = canon
            continue
        what = f"{code} {cd!r}" + (f" ({rec[label_col]})" if rec[label_col] else "")
        report.add("note", "measurements", name,
                   f"{what} is not mapped to a canonical analyte: {rec['n']:,} row(s) not loaded",
                   column=code, rows=rec["_row"],
                   fix=f"map it with options.tests = {{ {cd} = \"ANALYTE\" }} (declare a new "
                   "analyte in study.toml [analytes.NAME] with panel and unit)")
    df = frame.filter(pl.col(code).is_in(list(mapping)))
    if not df.height:
        return pl.DataFrame()
    value, unit = f"{p}STRESN", f"{p}STRESU"
    text_result = f"{p}STRESC"
    if text_result in df.columns:
        qualitative = df.filter(pl.col(value).is_null() & pl.col(text_result).is_not_null())
        if qualitative.height:
            ex = ", ".join(repr(v) for v in qualitative.get_column(text_result).unique(
                maintain_order=True).head(3).to_list())
            report.add("warning", "measurements", name,
                       f"{qualitative.height:,} result(s) have no numeric {value} (text results "
                       f"such as {ex}); left out", column=value,
                       rows=qualitative.get_column("_row").to_list(),
                       fix=f"give the numeric result in {value}")
            df = df.filter(~pl.col("_row").is_in(qualitative.get_column("_row").implode()))
    not_done = df.filter(pl.col(value).is_null())
    if not_done.height:
        report.add("note", "measurements", name,
                   f"{not_done.height:,} test(s) without a result (not done) left out",
                   column=value, rows=not_done.get_column("_row").to_list())
        df = df.filter(pl.col(value).is_not_null())
    df = numeric_or_report(df, value, report=report, table="measurements", file=name,
                           fix=f"{value} holds the standardised numeric result")
    df = _with_days(df, ref, p, report, "measurements", name)
    # Labs are blood unless --SPEC says otherwise; vital signs have no specimen.
    # The specimen is folded by analysis.vocab (serum and plasma are blood) like every tissue.
    tissue = pl.lit(BLOOD) if dom == "lb" else pl.lit(None, pl.String)
    spec = f"{p}SPEC"
    if spec in df.columns:
        tissue = fold_tissue_expr(spec).fill_null(pl.lit(BLOOD))
    dtc = f"{p}DTC"
    time = pl.col(dtc).str.slice(11, 5).replace("", None) if dtc in df.columns \
        else pl.lit(None, pl.String)
    return df.select(
        "_row", pl.col("USUBJID").alias("subject_id"), pl.col("day").cast(pl.String),
        pl.col(code).replace_strict(mapping, default=None).alias("analyte"),
        pl.col(value).cast(pl.String).alias("value"), pl.col(unit).alias("unit"),
        tissue.alias("tissue"), time.alias("time"))


def _adverse_events(frame: pl.DataFrame, ref: pl.DataFrame, report: ValidationReport,
                    name: str, opts: _Options) -> pl.DataFrame:
    df = _with_days(frame, ref, "AE", report, "events", name, end=True)
    term = pl.coalesce(pl.col("AEDECOD"), pl.col("AETERM")) if "AETERM" in df.columns \
        else pl.col("AEDECOD")
    df = df.with_columns(term.alias("term"))
    soc = find_column(df, ["AESOC", "AEBODSYS"])
    categories = {**_AE_CATEGORIES, **opts.ae_categories}
    cat = pl.col("term").str.to_uppercase().replace_strict(categories, default=None)
    if soc:
        cat = cat.fill_null(pl.when(pl.col(soc).str.to_uppercase() == _INFECTION_SOC)
                            .then(pl.lit("infection")))
    df = df.with_columns(cat.fill_null(pl.lit("adverse_event")).alias("category"))
    grade = pl.lit(None, pl.Int64)
    if "AETOXGR" in df.columns:
        grade = pl.col("AETOXGR").cast(pl.Float64, strict=False).cast(pl.Int64)
    if "AESEV" in df.columns:
        sev = pl.col("AESEV").str.to_uppercase().replace_strict(SEVERITY_GRADES, default=None,
                                                                return_dtype=pl.Int64)
        n_sev = df.filter(grade.is_null() & sev.is_not_null()).height
        if n_sev:
            report.add("note", "events", name,
                       f"grade taken from AESEV for {n_sev:,} adverse event(s) without AETOXGR: "
                       "MILD 1, MODERATE 2, SEVERE 3 (severity, not CTCAE grade)",
                       column="AESEV", fix="give AETOXGR (CTCAE grade) where it is known")
        grade = pl.coalesce(grade, sev)
    df = df.with_columns(grade.alias("grade"))
    # Several verbatim terms can code to one preferred term on one day: one event, worst grade.
    key = ["USUBJID", "day", "category", "term"]
    merged = df.group_by(key, maintain_order=True).agg(
        pl.col("_row").min(), pl.col("grade").max(), pl.col("end_day").max(),
        pl.len().alias("_n"))
    n_merged = df.height - merged.height
    if n_merged:
        report.add("note", "events", name,
                   f"{n_merged:,} adverse event record(s) repeat the same AEDECOD on the same day "
                   "for the same subject; merged into one event each (highest grade, latest end)",
                   rows=merged.filter(pl.col("_n") > 1).get_column("_row").to_list())
    return merged.sort("_row").select(
        "_row", pl.col("USUBJID").alias("subject_id"), pl.col("day").cast(pl.String),
        pl.col("end_day").cast(pl.String), "category", "term",
        pl.col("grade").cast(pl.String))


def _treatment_categories(ex: pl.DataFrame, opts: _Options) -> pl.Expr:
    trt = pl.col("EXTRT").str.to_uppercase().str.strip_chars()
    expr = trt.replace_strict(opts.treatments, default=None, return_dtype=pl.String)
    for pattern, category in _DEFAULT_TREATMENTS:
        expr = expr.fill_null(pl.when(trt.str.contains(pattern)).then(pl.lit(category)))
    return expr


def _exposure(ex: pl.DataFrame, ref: pl.DataFrame, report: ValidationReport, name: str,
              opts: _Options) -> tuple[pl.DataFrame, pl.DataFrame]:
    df = ex.with_columns(_treatment_categories(ex, opts).alias("category"))
    unmapped = df.filter(pl.col("category").is_null())
    for (trt,), grp in unmapped.group_by(["EXTRT"], maintain_order=True):
        report.add("note", "events", name,
                   f"EXTRT {trt!r} is not mapped to an event category: {grp.height:,} exposure "
                   "record(s) not loaded", column="EXTRT", rows=grp.get_column("_row").to_list(),
                   fix=f"map it with options.treatments = {{ \"{trt}\" = \"infusion\" }} (or "
                   "lymphodepletion, growth_factor, ...)")
    df = df.filter(pl.col("category").is_not_null())
    empty_doses = pl.DataFrame(schema={"subject_id": pl.String, "dose_per_kg": pl.Float64})
    if not df.height:
        return pl.DataFrame(), empty_doses
    df = _with_days(df, ref, "EX", report, "events", name, end=True)
    dose = pl.col("EXDOSE") if "EXDOSE" in df.columns else pl.lit(None, pl.String)
    unit = pl.col("EXDOSU") if "EXDOSU" in df.columns else pl.lit(None, pl.String)
    events = df.select(
        "_row", pl.col("USUBJID").alias("subject_id"), pl.col("day").cast(pl.String),
        pl.col("end_day").cast(pl.String), "category", pl.col("EXTRT").alias("term"),
        dose.alias("dose"), unit.alias("dose_unit"))
    doses = empty_doses
    if "EXDOSE" in df.columns and "EXDOSU" in df.columns:
        per_kg = df.filter((pl.col("category") == "infusion") &
                           pl.col("EXDOSU").str.to_lowercase().str.contains("/kg"))
        if per_kg.height:
            doses = per_kg.group_by(pl.col("USUBJID").alias("subject_id")).agg(
                pl.col("EXDOSE").cast(pl.Float64, strict=False).sum().alias("dose_per_kg"))
            units = ", ".join(per_kg.get_column("EXDOSU").unique().sort().to_list())
            report.add("note", "patients", name, f"dose_per_kg from EXDOSE of the infusion "
                       f"records ({units}; summed per subject)")
    return events, doses


def _medications(frame: pl.DataFrame, ref: pl.DataFrame, report: ValidationReport,
                 name: str) -> pl.DataFrame:
    """CM (concomitant/prior medications) -> events of category medication."""
    df = _with_days(frame, ref, "CM", report, "events", name, end=True)
    if not df.height:
        return pl.DataFrame()
    dose = [c for c in ("CMDOSE", "CMDOSU") if c in df.columns]
    term = pl.col("CMTRT").str.strip_chars()
    if dose:
        extra = pl.concat_str([pl.col(c) for c in dose], separator=" ", ignore_nulls=True)
        term = pl.when(extra.str.len_chars() > 0).then(pl.concat_str([term, extra],
                                                                     separator=" ")) \
            .otherwise(term)
    sources = [pl.col(c) for c in ("CMDECOD", "CMTRT", "CMCLAS") if c in df.columns]
    cls = pl.lit("other")
    for src in reversed(sources):
        # the first source whose text names a known class decides
        c = medication_class_expr(src.fill_null(""))
        cls = pl.when(c != "other").then(c).otherwise(cls)
    df = df.with_columns(term.alias("term"), cls.alias("product"))
    n_other = df.filter(pl.col("product") == "other").height
    if n_other:
        ex = ", ".join(repr(v) for v in df.filter(pl.col("product") == "other")
                       .get_column("CMTRT").unique(maintain_order=True).head(4).to_list())
        report.add("note", "events", name,
                   f"{n_other:,} medication record(s) of no recognised class (e.g. {ex}) "
                   "loaded with product \"other\"", column="CMTRT",
                   fix="give the class in a product column of an events file if it matters")
    return df.select(
        "_row", pl.col("USUBJID").alias("subject_id"), pl.col("day").cast(pl.String),
        pl.col("end_day").cast(pl.String), pl.lit("medication").alias("category"), "term",
        "product")


def _responses(frame: pl.DataFrame, ref: pl.DataFrame, report: ValidationReport, name: str,
               opts: _Options) -> pl.DataFrame:
    df = frame
    if "RSTESTCD" in df.columns:
        other = df.filter(~pl.col("RSTESTCD").str.to_uppercase().is_in(opts.response_tests))
        if other.height:
            codes = ", ".join(other.get_column("RSTESTCD").drop_nulls().unique().sort()
                              .head(8).to_list())
            report.add("note", "responses", name,
                       f"{other.height:,} RS record(s) of other tests ({codes}) not loaded as "
                       f"responses (only {', '.join(opts.response_tests)})", column="RSTESTCD",
                       fix="choose the tests with options.response_tests")
        df = df.filter(pl.col("RSTESTCD").str.to_uppercase().is_in(opts.response_tests))
    if not df.height:
        return pl.DataFrame()
    df = _with_days(df, ref, "RS", report, "responses", name)
    result = pl.coalesce(pl.col("RSSTRESC"), pl.col("RSORRES")) if "RSORRES" in df.columns \
        else pl.col("RSSTRESC")
    up = result.str.to_uppercase().str.strip_chars()
    df = df.with_columns(up.alias("_raw"),
                         up.replace_strict(_RESPONSES, default=None).fill_null(up)
                         .alias("response"))
    folded = df.filter(pl.col("_raw").is_in(["SD", "PD", "STABLE DISEASE",
                                             "PROGRESSIVE DISEASE"]))
    if folded.height:
        report.add("note", "responses", name,
                   f"{folded.height:,} response(s) recorded as SD or PD loaded as NR "
                   "(no response)", column="RSSTRESC")
    cols = ["_row", pl.col("USUBJID").alias("subject_id"), pl.col("day").cast(pl.String),
            "response"]
    if "RSCAT" in df.columns:
        cols.append(pl.col("RSCAT").alias("criteria"))
    if "RSEVAL" in df.columns:
        cols.append(pl.col("RSEVAL").alias("assessor"))
    return df.select(cols)

