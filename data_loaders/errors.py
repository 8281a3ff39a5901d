"""Validation findings and the project's one error type.

Loaders never stop at the first problem: every finding goes into a `ValidationReport` with the
table, file, spreadsheet row (header = row 1), column, what is wrong and what to do. A table with
errors keeps its good rows; the report says which rows were left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

__all__ = ["Finding", "StudyError", "ValidationReport", "Severity", "findings_text"]

Severity = Literal["error", "warning", "note"]

# How many row numbers a finding lists before it says "and N more".
_ROWS_SHOWN = 8


class StudyError(Exception):
    """A study file or folder cannot be used; the message names file, row, column and the fix."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None, fix: str | None = None) -> None:
        self.file, self.row, self.column, self.fix = file, row, column, fix
        parts = [p for p in (file, f"row {row}" if row is not None else None,
                             f"column {column!r}" if column else None) if p]
        where = ", ".join(parts)
        text = f"{where}: {message}" if where else message
        if fix:
            text += f"; {fix}"
        super().__init__(text)
        self.problem = message


@dataclass(frozen=True)
class Finding:
    """One problem or note. `rows` are spreadsheet rows (header is row 1); `n_rows` counts all."""

    severity: Severity
    table: str
    file: str
    problem: str
    fix: str = ""
    column: str | None = None
    rows: tuple[int, ...] = ()
    n_rows: int = 0

    @property
    def where(self) -> str:
        parts = [self.file]
        if self.rows:
            shown = ", ".join(str(r) for r in self.rows[:_ROWS_SHOWN])
            more = self.n_rows - min(len(self.rows), _ROWS_SHOWN)
            label = "row" if self.n_rows == 1 else "rows"
            parts.append(f"{label} {shown}" + (f" and {more:,} more" if more > 0 else ""))
        if self.column:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.problem}"
        return f"{text}; {self.fix}" if self.fix else text


@dataclass
class ValidationReport:
    """Findings collected while a study loads. Append with `add`; read with `errors`, `to_frame`."""

    findings: list[Finding] = field(default_factory=list)

    def add(self, severity: Severity, table: str, file: str, problem: str, *, fix: str = "",
            column: str | None = None, rows: Iterable[int] = ()) -> None:
        rows = list(rows)
        self.findings.append(Finding(severity, table, file, problem, fix, column,
                                     tuple(rows[:_ROWS_SHOWN]), len(rows)))

    def add_error(self, err: StudyError, *, table: str, file: str) -> None:
        self.add("error", table, err.file or file, err.problem, fix=err.fix or "",
                 column=err.column, rows=[err.row] if err.row is not None else [])

    def extend(self, other: ValidationReport) -> None:
        self.findings.extend(other.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def for_table(self, table: str) -> list[Finding]:
        return [f for f in self.findings if f.table == table]

    def to_frame(self) -> pl.DataFrame:
        """One row per finding, errors first; `rows` as text so the frame is CSV-friendly."""
        order = {"error": 0, "warning": 1, "note": 2}
        recs = sorted(self.findings, key=lambda f: (order[f.severity], f.table, f.file))
        return pl.DataFrame(
            {
                "severity": [f.severity for f in recs],
                "table": [f.table for f in recs],
                "file": [f.file for f in recs],
                "rows": [", ".join(map(str, f.rows)) + (" ..." if f.n_rows > len(f.rows) else "")
                         for f in recs],
                "n_rows": [f.n_rows or None for f in recs],
                "column": [f.column or "" for f in recs],
                "problem": [f.problem for f in recs],
                "what_to_do": [f.fix for f in recs],
            },
            schema={"severity": pl.String, "table": pl.String, "file": pl.String,
                    "rows": pl.String, "n_rows": pl.Int64, "column": pl.String,
                    "problem": pl.String, "what_to_do": pl.String},
        )

    def summary(self) -> str:
        e, w = len(self.errors), len(self.warnings)
        n = len(self.findings) - e - w
        return f"{e} error(s), {w} warning(s), {n} note(s)"

    def text(self, *, errors_only: bool = False) -> str:
        """One line per finding, "SEVERITY [table] where: problem; fix" (cli.py validate)."""
        return _lines(f for f in self.findings if f.severity == "error" or not errors_only)


def _lines(findings: Iterable[Finding]) -> str:
    return "\n".join(f"{f.severity.upper():8s} [{f.table}] {f.message}" for f in findings)


def findings_text(findings: Iterable[Finding], label: str, *, notes: bool = True) -> str:
    """One line per finding (without notes unless `notes`), then "label: N error(s), M other
    finding(s)" (what cli.py import prints after reading or writing a study)."""
    shown = [f for f in findings if notes or f.severity != "note"]
    n_err = sum(f.severity == "error" for f in shown)
    tail = f"{label}: {n_err} error(s), {len(shown) - n_err} other finding(s)"
    return "\n".join(x for x in (_lines(shown), tail) if x)
