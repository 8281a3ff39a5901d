"""A de-identified copy of a `Study` for a shared server.

Follows the spirit of the HIPAA Safe Harbor method (45 CFR 164.514(b)(2)): no element of a date
is shown (study days relative to infusion stay, they are what every page plots), ages are shown
as 5-year bands with every age of 90 or more pooled as "90+", and free-text fields are hidden
because they can hold names, places and dates.

- Every date or datetime column of every table is removed (patients.infusion_date, any
  date/end_date kept from the source files); text columns named like a date ("visit_date") are
  removed too, and date strings (YYYY-MM-DD, YYYY/MM/DD) inside other text are replaced by
  "[date]". The same applies to the validation report, source file names and study.toml text.
- Exact ages are removed: `age` (and columns named `age_*` / `*_age`) keeps its numeric type
  with every value null, and `age_band` (`<column>_band`) holds the band, e.g. "35-39". The
  canonical column keeps its type so analyses that summarise `age` still run (and find none).
- Free text is blanked (the column stays, every value null): patients.prior_therapy, columns
  named like notes or comments in any table, and whatever the study lists:

      [deidentify]
      free_text = ["referral_letter", "events.narrative"]   # "column" or "table.column"

  Coded terms (events.term, category, grade, response, gene, ...) are kept.

The result is a new, read-only `Study` (`dataclasses.replace`); its `cache_key` differs from
the identified study's, so no cached result is ever shared between the two.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, time
from typing import Any

import polars as pl

from data_loaders.errors import ValidationReport
from data_loaders.schema import TABLES
from data_loaders.study import TABLE_NAMES, Study

__all__ = ["deidentify", "age_band", "DATE_PATTERN", "FREE_TEXT_COLUMNS", "FREE_TEXT_NAMES"]

# Dates as files and tools write them: 2025-02-21, 2025/02/21, 2025-02-21T08:30 ...
DATE_PATTERN = r"\b\d{4}[-/]\d{1,2}[-/]\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_DATE_RE = re.compile(DATE_PATTERN)
_DATE_MARK = "[date]"

# Free text in the canonical model (table -> columns).
FREE_TEXT_COLUMNS: dict[str, tuple[str, ...]] = {"patients": ("prior_therapy",)}
# Column names that hold free text in whatever table they appear (extra columns are kept).
FREE_TEXT_NAMES = frozenset({"note", "notes", "comment", "comments", "remark", "remarks",
                             "narrative", "free_text", "description", "details"})

_AGE_NAME = re.compile(r"^(age|age_.+|.+_age)$")
_DATE_NAME = re.compile(r"(^|_)(date|datetime|dob|birth_?date|date_of_birth)($|_)")
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


def deidentify(study: Study, *, free_text: Iterable[str] | None = None) -> Study:
    """`study` without dates, exact ages or free text (see the module docstring).

    `free_text` adds columns to blank ("column" in every table, or "table.column"); by default
    they come from study.toml `[deidentify] free_text`.
    """
    extra = list(free_text) if free_text is not None else _configured_free_text(study.config)
    tables = {name: _deid_table(name, study.table(name), extra) for name in TABLE_NAMES}
    return replace(
        study,
        **tables,
        title=_scrub(study.title),
        study_id=_scrub(study.study_id),
        config=_scrub_any(study.config),
        report=_scrub_report(study.report),
        sources=tuple(replace(s, file=_scrub(s.file)) for s in study.sources),
        fingerprint=f"{study.fingerprint}+deid",
    )


def _configured_free_text(config: Mapping[str, Any]) -> list[str]:
    section = config.get("deidentify", {}) if isinstance(config, Mapping) else {}
    value = section.get("free_text", []) if isinstance(section, Mapping) else []
    if isinstance(value, str):
        value = [value]
    return [str(v).strip() for v in value if str(v).strip()] if isinstance(value, list) else []


def _free_text_columns(table: str, columns: list[str], extra: list[str]) -> set[str]:
    wanted = set(FREE_TEXT_COLUMNS.get(table, ()))
    for item in extra:
        tab, _, col = item.rpartition(".")
        if not tab or tab == table:
            wanted.add(col)
    wanted |= {c for c in columns if c.lower() in FREE_TEXT_NAMES}
    return wanted & set(columns)


def _deid_table(table: str, frame: pl.DataFrame, extra: list[str]) -> pl.DataFrame:
    spec = TABLES.get(table)
    required = set(spec.required) if spec else {"gene"}
    schema = frame.schema
    drop = [c for c, t in schema.items()
            if t in (pl.Date, pl.Datetime) or isinstance(t, pl.Datetime)
            or (t == pl.String and c not in required and _DATE_NAME.search(c.lower()))]
    hidden = _free_text_columns(table, frame.columns, extra) - set(drop)
    ages = [c for c, t in schema.items() if c not in drop and c not in hidden
            and _AGE_NAME.match(c.lower()) and t.is_numeric()]
    text = [c for c, t in schema.items() if t == pl.String and c not in drop
            and c not in hidden]
    out = frame.drop(drop)
    exprs = [pl.lit(None, dtype=pl.String).alias(c) for c in hidden]
    exprs += [_age_band_expr(c).alias(f"{c}_band") for c in ages]
    exprs += [pl.lit(None, dtype=schema[c]).alias(c) for c in ages]
    exprs += [pl.col(c).str.replace_all(DATE_PATTERN, _DATE_MARK) for c in text]
    return out.with_columns(exprs) if exprs else out


def _age_band_expr(column: str) -> pl.Expr:
    age = pl.col(column).cast(pl.Float64)
    lo = ((age / _BAND).floor() * _BAND).cast(pl.Int64)
    band = lo.cast(pl.String) + pl.lit("-") + (lo + _BAND - 1).cast(pl.String)
    return (pl.when(age.is_null() | age.is_nan() | (age < 0)).then(pl.lit(None, pl.String))
            .when(age >= _TOP).then(pl.lit(f"{_TOP}+"))
            .otherwise(band))


def _scrub(text: str) -> str:
    return _DATE_RE.sub(_DATE_MARK, text) if isinstance(text, str) else text


def _scrub_any(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, Mapping):
        return {k: _scrub_any(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub_any(v) for v in value)
    if isinstance(value, (date, time)):  # TOML date and datetime values
        return _DATE_MARK
    return value


def _scrub_report(report: ValidationReport) -> ValidationReport:
    return ValidationReport(findings=[
        replace(f, file=_scrub(f.file), problem=_scrub(f.problem), fix=_scrub(f.fix))
        for f in report.findings])

