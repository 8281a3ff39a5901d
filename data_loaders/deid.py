"""A de-identified copy of a `Study` for a shared server: a whitelist, not a blacklist.

One job: the de-identified copy of a Study (columns, dates, ages, free text, pseudonyms and the
validation report).

Follows the HIPAA Safe Harbor method (45 CFR 164.514(b)(2)): no element of a date except the
year is shown, ages are 5-year bands with every age of 90 or more pooled as "90+", and free
text is not shown because it holds names, wards and dates. Study days relative to infusion
stay: they are what every page plots and they identify no one.

- Columns: only the columns of the data model (`data_loaders.schema.TABLES`, DESIGN.md
  section 2) are kept, plus those the study declares safe:

      [deid]
      safe_columns = ["patients.site", "batch"]   # "table.column", or "column" in every table;
                                                  # "obs.column" for single-cell obs
      safe_terms = ["Engraftment syndrome"]       # more event terms to keep (see below)
      free_text = ["samples.timepoint"]           # model columns to blank as well

  Everything else (MRN, initials, birth year, text ages, consent dates, notes, ...) is dropped.
  The older `[deidentify] free_text` is read too.
- Free text in the model is blanked (patients.prior_therapy, responses.assessor) or reduced to
  the controlled vocabulary: an event term is kept when it is, or starts with, a known term
  ("Tocilizumab 8 mg/kg" -> "Tocilizumab"; "Neutropenia per Dr Smith" -> "Neutropenia"), else
  blanked; event products keep the known product classes only.
- Dates: date columns are removed; in every text that is kept, dates in any common form
  (2025-03-05, 2025-03-05T10:00, 12/03/2025, 12.03.25, 25MAR2025, 25-Mar-2025, 10 Apr 2025,
  April 10, 2025, March 2025, 20250305) become "[date]". The same for the title, study id,
  validation report, file names and study.toml text.
- Ids: when any subject or sample id embeds a date (H01_2025-03-05), every subject and sample
  id becomes a stable pseudonym (P-XXXXXXX, S-XXXXXXX: a keyed hash, HMAC-SHA256, with a
  secret of the server or the study; see `deid_secret`), the same in every table, in the RNA
  matrix's sample columns, in the validation report and in single-cell obs; cell ids that
  carry them are rewritten the same way.
- Single-cell obs: only the columns the store maps to canonical names (subject, sample, day,
  timepoint, cell type, tissue, CAR status, clonotype), cluster and QC columns, and declared
  safe ones are offered (`DeidentifiedStore`), with the same id and date rules.

The result is a new, read-only `Study` (`dataclasses.replace`); its `cache_key` differs from
the identified study's, so no cached result is ever shared between the two.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, time
from pathlib import Path
from typing import Any

import polars as pl

from data_loaders import guard
from data_loaders.errors import ValidationReport
from data_loaders.schema import TABLES
from data_loaders.study import TABLE_NAMES, Study

__all__ = ["deidentify", "age_band", "DATE_PATTERN", "DATE_PATTERNS", "scrub_dates",
           "deid_default", "deid_secret", "Pseudonyms", "FREE_TEXT_COLUMNS", "KNOWN_TERMS",
           "OBS_SAFE_COLUMNS"]

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|"
          r"aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_CLOCK = r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
# Dates as files, tools and people write them (case-insensitive). Digits next to letters
# count as a boundary so that ids such as H01_2025-03-05 and S3_20250305_PB are caught.
DATE_PATTERNS: tuple[str, ...] = (
    r"(?<!\d)\d{4}[-/.]\d{1,2}[-/.]\d{1,2}" + _CLOCK + r"(?!\d)",           # 2025-03-05T10:00
    r"(?<!\d)\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})" + _CLOCK + r"(?!\d)",  # 12/03/2025
    # 25MAR2025, 10 Apr 2025; not inside a word or a hex id ("a4dec12")
    r"(?<![a-z0-9])\d{1,2}(?:st|nd|rd|th)?[\s\-/.]*" + _MONTH
    + r"\.?[\s\-/.,]*\d{2,4}(?![a-z0-9])",
    _MONTH + r"\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}(?!\d)",              # April 10, 2025
    r"(?<![a-z])" + _MONTH + r"\.?[\s\-/,]+\d{4}(?!\d)",                     # March 2025
    r"(?<!\d)(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d)",  # 20250305
)
DATE_PATTERN = "(?:" + "|".join(DATE_PATTERNS) + ")"
_DATE_RE = re.compile(DATE_PATTERN, re.IGNORECASE)
# Every date above has four digits in a row, or two digit groups around a separator, or a
# month name: text without any of these holds no date (checked by polars, no look-around).
_MAYBE_DATE = (r"\d{4}|\d[-/.]\d|(?i)(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)")
_DATE_MARK = "[date]"

# Free text inside the model: blanked whatever it holds.
FREE_TEXT_COLUMNS: dict[str, tuple[str, ...]] = {"patients": ("prior_therapy",),
                                                 "responses": ("assessor",)}
# Derived columns the loader adds beside the model's (kept).
_DERIVED: dict[str, tuple[str, ...]] = {}

# The controlled vocabulary of event terms: CTCAE v5 terms seen after CAR-T, ASTCT syndromes,
# the study's treatments and transplant/progression wording (compared case-insensitively; a
# term that starts with one of them is reduced to it).
KNOWN_TERMS: tuple[str, ...] = (
    "Cytokine release syndrome", "CRS", "ICANS",
    "Immune effector cell-associated neurotoxicity syndrome", "IEC-HS",
    "Haemophagocytic lymphohistiocytosis", "Hemophagocytic lymphohistiocytosis", "HLH",
    "Neutropenia", "Febrile neutropenia", "Thrombocytopenia", "Anaemia", "Anemia",
    "Lymphopenia", "Leukopenia", "Pancytopenia", "Neutrophil count decreased",
    "Platelet count decreased", "White blood cell decreased", "Lymphocyte count decreased",
    "Infection", "Pneumonia", "Sepsis", "Septic shock", "Bacteraemia", "Bacteremia",
    "Fungal infection", "Aspergillosis", "CMV reactivation", "CMV infection",
    "EBV reactivation", "Herpes zoster", "Urinary tract infection",
    "Upper respiratory infection", "Lung infection", "Catheter related infection",
    "Fever", "Hypotension", "Hypoxia", "Headache", "Fatigue", "Nausea", "Vomiting", "Diarrhea",
    "Diarrhoea", "Rash", "Mucositis oral", "Mucositis", "Hypokalemia", "Hypokalaemia",
    "Hypophosphatemia", "Hypophosphataemia", "Hypomagnesemia", "Hypomagnesaemia",
    "Hyponatremia", "Alanine aminotransferase increased", "Aspartate aminotransferase increased",
    "Blood bilirubin increased", "Creatinine increased", "Acute kidney injury",
    "Tumour lysis syndrome", "Tumor lysis syndrome", "Encephalopathy", "Seizure", "Tremor",
    "Confusion", "Aphasia", "Bleeding", "Haemorrhage", "Hemorrhage", "Epistaxis",
    "Allergic reaction", "Infusion related reaction", "Transfusion reaction",
    "Graft versus host disease", "GVHD", "Engraftment failure", "Graft failure",
    "CAR-T", "CD7 CAR-T", "CAR-T infusion", "CAR T", "Fludarabine/cyclophosphamide",
    "Fludarabine", "Cyclophosphamide", "Lymphodepletion",
    "RBC transfusion", "PLT transfusion", "Platelet transfusion", "Red cell transfusion",
    "G-CSF", "Filgrastim", "Pegfilgrastim", "Lenograstim", "Tocilizumab", "Siltuximab",
    "Anakinra", "Dexamethasone", "Methylprednisolone", "Prednisolone", "Prednisone",
    "Hydrocortisone", "Ciclosporin", "Cyclosporine", "Eltrombopag", "Romiplostim",
    "Hetrombopag", "Avatrombopag", "hATG", "rATG", "ATG", "Aciclovir", "Acyclovir",
    "Valaciclovir", "Ganciclovir", "Valganciclovir", "Foscarnet", "Letermovir",
    "Posaconazole", "Voriconazole", "Fluconazole", "Caspofungin", "Levofloxacin",
    "Ciprofloxacin", "Meropenem", "Piperacillin/tazobactam", "Piperacillin-tazobactam",
    "Vancomycin", "Co-trimoxazole", "Cotrimoxazole", "IVIG", "Immunoglobulin",
    "Allogeneic HSCT", "HSCT", "Haploidentical HSCT", "Stem cell transplant", "Death",
    "Progression", "Disease progression", "Relapse", "Clonal evolution to MDS",
    "Clonal evolution to AML", "Clonal evolution", "MDS", "AML", "PNH",
)
_KNOWN_PRODUCTS = ("RBC", "PLT", "tocilizumab", "corticosteroid", "ciclosporin", "tpo_ra",
                   "g_csf", "anti_infective", "other")

# Single-cell obs columns that are kept besides the canonical ones: clusters and QC metrics.
OBS_SAFE_COLUMNS = frozenset({"leiden", "louvain", "clusters", "cluster", "seurat_clusters",
                       "n_genes", "n_genes_by_counts", "total_counts", "n_counts", "ncount_rna",
                       "nfeature_rna", "pct_counts_mt", "percent_mt", "percent.mt",
                       "pct_counts_ribo", "doublet_score", "predicted_doublet", "phase",
                       "s_score", "g2m_score"})

_BAND = 5
_TOP = 90


def age_band(age: float | None) -> str | None:
    """5-year band of an age in years: 37 -> "35-39", 90 and over -> "90+"; None stays None."""
    if age is None or age != age or age < 0:  # None, NaN, negative
        return None
    if age >= _TOP:
        return f"{_TOP}+"
    lo = int(age // _BAND) * _BAND
    return f"{lo}-{lo + _BAND - 1}"


def scrub_dates(text: Any) -> Any:
    """`text` with every date replaced by "[date]" (non-text is returned as it is)."""
    return _DATE_RE.sub(_DATE_MARK, text) if isinstance(text, str) else text


# ---- is this a de-identifying server, and its secret ------------------------------------------
def deid_default(study_dir: str | Path | None = None) -> bool:
    """Whether output is de-identified: `DEID=1`/`DEID=0` when set; else `[deid] enabled` of
    the server.toml that applies to `study_dir`; else on below a STUDIES_ROOT (a shared server,
    also when the CLI is run there by hand: the study's parent holds a server.toml), off for a
    local study."""
    flag = os.environ.get("DEID", "").strip().lower()
    if flag in ("1", "true", "yes", "on"):
        return True
    if flag in ("0", "false", "no", "off"):
        return False
    section = guard.server_config(study_dir).get("deid", {})
    if isinstance(section, Mapping) and isinstance(section.get("enabled"), bool):
        return section["enabled"]
    return guard.server_root(study_dir) is not None


def deid_secret(study_dir: str | Path) -> bytes:
    """The key of the pseudonyms (see `_secret`)."""
    return _secret(study_dir)[0]


def _secret(study_dir: str | Path) -> tuple[bytes, bool]:
    """(key, kept) of the pseudonyms: `DEID_SECRET` from the environment, else server.toml
    `[deid] secret`, else a random key kept in the study folder (`.deid_secret`, created on
    first use), else in the user's cache folder. Never derived from the data alone, so a
    pseudonym cannot be turned back into an id that embeds a date by trying every date."""
    env = os.environ.get("DEID_SECRET")
    if env:
        return env.encode(), True
    section = guard.server_config(study_dir).get("deid", {})
    if isinstance(section, Mapping) and section.get("secret"):
        return str(section["secret"]).encode(), True
    root = Path(study_dir).resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cart-explorer"
    for path in (root / ".deid_secret",
                 cache / "deid" / hashlib.blake2b(str(root).encode(), digest_size=8).hexdigest()):
        try:
            if path.is_file():
                return path.read_bytes().strip(), True
            path.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_hex(32).encode()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key)
            return key, True
        except OSError:
            continue
    return secrets.token_hex(32).encode(), False   # nowhere to keep it: this process only


@dataclass(frozen=True)
class Pseudonyms:
    """Original id -> pseudonym for subjects and samples (empty: ids are shown as they are)."""

    subjects: Mapping[str, str]
    samples: Mapping[str, str]
    key_kept: bool = True      # False: the key lives in this process only

    @property
    def active(self) -> bool:
        return bool(self.subjects or self.samples)

    @property
    def pairs(self) -> tuple[list[str], list[str]]:
        """(originals, pseudonyms), longest original first (for replacing inside other ids)."""
        items = sorted({**self.samples, **self.subjects}.items(), key=lambda kv: -len(kv[0]))
        return [k for k, _ in items], [v for _, v in items]

    def text(self, value: Any) -> Any:
        """Ids replaced inside `value`, then its dates."""
        if not isinstance(value, str):
            return value
        if self.active:
            for orig, new in zip(*self.pairs, strict=True):
                if orig in value:
                    value = value.replace(orig, new)
        return scrub_dates(value)

    def series(self, s: pl.Series) -> pl.Series:
        """A text column with ids replaced inside it (longest first, in one vectorised pass)
        and its dates. Dates are matched with Python's regex engine (the patterns need
        look-around), only on the distinct values that a cheap pre-filter cannot clear."""
        s = s.cast(pl.String)
        if self.active:
            originals, new = self.pairs
            s = s.str.replace_many(originals, new, leftmost=True)
        maybe = s.str.contains(_MAYBE_DATE).fill_null(False)
        if not maybe.any():
            return s
        uniq = s.filter(maybe).unique().to_list()
        mapping = {v: scrub_dates(v) for v in uniq}
        changed = {k: v for k, v in mapping.items() if k != v}
        if not changed:
            return s
        return s.replace(changed)


def _pseudonym(key: bytes, study: str, kind: str, value: str, prefix: str, n: int = 7) -> str:
    digest = hmac.new(key, f"{study}|{kind}|{value}".encode(), hashlib.sha256).digest()
    return f"{prefix}-{base64.b32encode(digest).decode()[:n]}"


def _pseudonyms(study: Study, samples_extra: Iterable[str] = ()) -> Pseudonyms:
    subjects = [str(s) for s in study.patients.get_column("subject_id").drop_nulls().to_list()]
    for name in ("measurements", "events", "responses", "samples"):
        frame = study.table(name)
        if "subject_id" in frame.columns:
            subjects += frame.get_column("subject_id").drop_nulls().cast(pl.String).to_list()
    samples = [str(s) for s in samples_extra]
    frames = [study.table(n) for n in ("samples", "proteomics", "mutations", "tcr",
                                        "measurements")]
    if isinstance(getattr(study, "populations", None), pl.DataFrame):
        frames.append(study.populations)
    for frame in frames:
        if "sample_id" in frame.columns:
            samples += frame.get_column("sample_id").drop_nulls().cast(pl.String).to_list()
    samples += [c for c in study.rna_counts.columns if c != "gene"]
    subjects, samples = sorted(set(subjects)), sorted(set(samples))
    if not any(_DATE_RE.search(v) for v in (*subjects, *samples)):
        return Pseudonyms({}, {})
    key, kept = _secret(study.path)
    out = []
    for kind, ids, prefix in (("subject", subjects, "P"), ("sample", samples, "S")):
        n, mapping = 7, {}
        while True:   # lengthen on the (rare) collision so that two ids never merge
            mapping = {v: _pseudonym(key, study.path.name, kind, v, prefix, n) for v in ids}
            if len(set(mapping.values())) == len(mapping):
                break
            n += 2
        out.append(mapping)
    return Pseudonyms(out[0], out[1], kept)


# ---- settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Settings:
    safe: frozenset[str]          # "table.column" or "column"
    blank: frozenset[str]         # "table.column" or "column"
    terms: tuple[str, ...]

    def is_safe(self, table: str, column: str) -> bool:
        return column in self.safe or f"{table}.{column}" in self.safe

    def is_blank(self, table: str, column: str) -> bool:
        return (column in self.blank or f"{table}.{column}" in self.blank
                or column in FREE_TEXT_COLUMNS.get(table, ()))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    return [str(v).strip() for v in value if str(v).strip()] if isinstance(value, list) else []


def _settings(config: Mapping[str, Any], free_text: Iterable[str] | None) -> _Settings:
    sections = [config.get(k, {}) for k in ("deid", "deidentify")] if isinstance(
        config, Mapping) else []
    sections = [s for s in sections if isinstance(s, Mapping)]
    safe = {c for s in sections for c in _strings(s.get("safe_columns", []))}
    blank = set(free_text) if free_text is not None else \
        {c for s in sections for c in _strings(s.get("free_text", []))}
    terms = tuple(t for s in sections for t in _strings(s.get("safe_terms", [])))
    return _Settings(frozenset(safe), frozenset(blank), terms + KNOWN_TERMS)


# ---- the study --------------------------------------------------------------------------------
def deidentify(study: Study, *, free_text: Iterable[str] | None = None) -> Study:
    """`study` reduced to what may be shown on a shared server (see the module docstring).

    `free_text` names more columns to blank ("column" in every table, or "table.column"); by
    default they come from study.toml `[deid] free_text` (or `[deidentify] free_text`).
    """
    settings = _settings(study.config, free_text)
    store = getattr(study, "single_cell", None)
    extra_samples = _store_samples(store)
    ids = _pseudonyms(study, extra_samples)
    tables = {name: _table(name, study.table(name), settings, ids) for name in TABLE_NAMES}
    populations = getattr(study, "populations", None)
    if isinstance(populations, pl.DataFrame):   # gated flow cytometry (data_loaders/flow.py)
        tables["populations"] = _table("populations", populations, settings, ids)
    changes: dict[str, Any] = dict(
        tables,
        title=ids.text(study.title),
        study_id=ids.text(study.study_id),
        config=_scrub_any(study.config, ids),
        report=_scrub_report(study.report, ids, settings, _key_note(ids)),
        sources=tuple(replace(s, file=ids.text(s.file)) for s in study.sources),
        fingerprint=f"{study.fingerprint}+deid",
    )
    if store is not None:
        from data_loaders.deid_store import DeidentifiedStore

        changes["single_cell"] = DeidentifiedStore(store, ids=ids,
                                                   safe=_obs_safe(settings))
    return replace(study, **changes)


def _store_samples(store: Any) -> list[str]:
    if store is None:
        return []
    try:
        s = store.canonical("sample_id")
    except Exception:  # noqa: BLE001 - an unreadable column: no ids from it
        return []
    return [] if s is None else s.drop_nulls().cast(pl.String).unique().to_list()


def _obs_safe(settings: _Settings) -> frozenset[str]:
    return frozenset(c.split(".", 1)[1] for c in settings.safe if c.startswith("obs.")) | \
        frozenset(c for c in settings.safe if "." not in c)


def _table(table: str, frame: pl.DataFrame, settings: _Settings, ids: Pseudonyms
           ) -> pl.DataFrame:
    if table == "rna_counts":   # a matrix: the gene column and one column per sample
        if not ids.active:
            return frame
        return frame.rename({c: ids.samples.get(c, ids.text(c)) for c in frame.columns
                             if c != "gene"})
    if table in TABLES:
        columns = dict(TABLES[table].columns)
    else:   # populations: the gating table's own schema
        from data_loaders.flow import POPULATION_SCHEMA

        columns = {c: "str" for c in POPULATION_SCHEMA}
    model = set(columns) | set(_DERIVED.get(table, ()))
    schema = frame.schema
    keep = [c for c in frame.columns
            if (c in model or settings.is_safe(table, c))
            and schema[c] not in (pl.Date, pl.Datetime) and not isinstance(schema[c], pl.Datetime)
            and columns.get(c) != "date"]
    out = frame.select(keep)
    exprs: list[pl.Expr | pl.Series] = []
    for c in keep:
        t = schema[c]
        if settings.is_blank(table, c):
            exprs.append(pl.lit(None, dtype=t).alias(c))
        elif c == "age" or (c.startswith("age_") or c.endswith("_age")) and t.is_numeric():
            exprs += [_age_band_expr(c).alias(f"{c}_band"), pl.lit(None, dtype=t).alias(c)]
        elif c == "subject_id" and ids.subjects:
            exprs.append(pl.col(c).replace_strict(ids.subjects, default=None,
                                                  return_dtype=pl.String).alias(c))
        elif c == "sample_id" and ids.samples:
            exprs.append(pl.col(c).replace_strict(ids.samples, default=None,
                                                  return_dtype=pl.String).alias(c))
        elif table == "events" and c == "term":
            exprs.append(_vocabulary_expr(c, settings.terms))
        elif table == "events" and c == "product":
            exprs.append(_product_expr(c))
        elif t == pl.String:
            exprs.append(ids.series(frame.get_column(c)).alias(c))
    return out.with_columns(exprs) if exprs else out


def _vocabulary_expr(column: str, terms: tuple[str, ...]) -> pl.Expr:
    """A term reduced to the longest known term it is or starts with (before a space, comma,
    bracket, digit or dash), else null."""
    ordered = sorted({t.casefold(): t for t in terms}.items(), key=lambda kv: -len(kv[0]))
    low = pl.col(column).str.strip_chars().str.to_lowercase()
    expr = pl.lit(None, dtype=pl.String)
    for folded, term in reversed(ordered):   # the longest match wins: it is applied last
        prefix = re.escape(folded)
        expr = pl.when(low.str.contains(f"^{prefix}(?:$|[\\s,;:(/\\-\\d])")) \
            .then(pl.lit(term)).otherwise(expr)
    return expr.alias(column)


def _product_expr(column: str) -> pl.Expr:
    known = {p.casefold(): p for p in _KNOWN_PRODUCTS}
    low = pl.col(column).str.strip_chars().str.to_lowercase()
    return low.replace_strict(known, default=None, return_dtype=pl.String).alias(column)


def _age_band_expr(column: str) -> pl.Expr:
    age = pl.col(column).cast(pl.Float64)
    lo = ((age / _BAND).floor() * _BAND).cast(pl.Int64)
    band = lo.cast(pl.String) + pl.lit("-") + (lo + _BAND - 1).cast(pl.String)
    return (pl.when(age.is_null() | age.is_nan() | (age < 0)).then(pl.lit(None, pl.String))
            .when(age >= _TOP).then(pl.lit(f"{_TOP}+"))
            .otherwise(band))


def _scrub_any(value: Any, ids: Pseudonyms) -> Any:
    if isinstance(value, str):
        return ids.text(value)
    if isinstance(value, Mapping):
        return {k: _scrub_any(v, ids) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub_any(v, ids) for v in value)
    if isinstance(value, (date, time)):  # TOML date and datetime values
        return _DATE_MARK
    return value


_EXTRA = "extra column(s) kept as they are:"


def _key_note(ids: Pseudonyms) -> list[Any]:
    if not ids.active or ids.key_kept:
        return []
    from data_loaders.errors import Finding

    return [Finding("warning", "study", "study.toml", "ids that hold a date are shown as "
                    "pseudonyms whose key could not be kept: they change when the server "
                    "restarts", fix="set DEID_SECRET in the server's environment or [deid] "
                    "secret in STUDIES_ROOT/server.toml")]


def _scrub_report(report: ValidationReport, ids: Pseudonyms, settings: _Settings,
                  extra: list[Any]) -> ValidationReport:
    out = list(extra)
    for f in report.findings:
        if f.problem.startswith(_EXTRA):
            # the loader kept them; here they are not shown, and neither are their names
            names = [n.strip(" .") for n in f.problem[len(_EXTRA):].split(",")]
            hidden = [n for n in names if n and not settings.is_safe(f.table, n)]
            if not hidden:
                continue
            f = replace(f, problem=f"{len(hidden)}{'+' if f.problem.endswith('...') else ''} "
                        "column(s) outside the data model are not shown (de-identified)",
                        fix="declare columns that hold nothing identifying in study.toml "
                        f"[deid] safe_columns, e.g. \"{f.table}.COLUMN\"")
        out.append(replace(f, file=ids.text(f.file), problem=ids.text(f.problem),
                           fix=ids.text(f.fix), column=ids.text(f.column)))
    return ValidationReport(findings=out)
