"""Dates as lab exports write them -> ISO dates, with the ambiguous cases asked, never guessed.

Accepted forms (a column may mix them, e.g. Excel datetime cells and typed text):
- ISO `2025-01-03` (with or without a time, `2025-01-03 08:30:00`, `2025-01-03T08:30`);
- `2025/01/03`, `2025.01.03`, `20250103`, `2025年1月3日`;
- `03.01.2025` (dotted dates are day-first, as in German and Russian reports);
- `03/01/2025`, `03-01-2025`: day-first or month-first. A column decides itself when one of its
  values has a first part above 12 (day-first) or a second part above 12 (month-first); when
  neither, the column is ambiguous and needs the explicit setting `day_first`;
- Excel serial day numbers (`45660` = 2025-01-03; 1900 date system, origin 1899-12-30);
- SAS / SDTM `03JAN2025` and `03-Jan-2025`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

__all__ = ["DateColumn", "inspect_dates", "parse_date", "looks_like_dates"]

_TIME = re.compile(r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(\s*[AaPp][Mm])?$")
_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_CN = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$")
_DOT = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_SLASH = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})$")
_SERIAL = re.compile(r"^\d{4,6}(\.\d+)?$")
_SAS = re.compile(r"^(\d{1,2})-?([A-Za-z]{3})-?(\d{4})$")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec"), start=1)}
_EXCEL_ORIGIN = date(1899, 12, 30)
# Excel serials accepted as dates: 1960-01-01 .. 2099-12-31 (a lab value column is not a date)
_SERIAL_RANGE = (21916, 73050)


@dataclass
class DateColumn:
    """What a column of date cells holds, and the setting it needs."""

    forms: dict[str, int] = field(default_factory=dict)   # form -> number of cells
    day_first: bool | None = None       # decided from the values (None: not needed or unknown)
    ambiguous: bool = False             # slash dates none of which decides the order
    conflict: bool = False              # both a day >12 first and a day >12 second
    evidence: str = ""                  # the value that decided day_first
    bad: list[str] = field(default_factory=list)          # values that are no date at all
    n: int = 0

    @property
    def needs_setting(self) -> bool:
        return self.ambiguous


def _strip(text: str) -> str:
    return _TIME.sub("", text.strip())


def _form(text: str) -> str | None:
    t = _strip(text)
    if _ISO.match(t):
        return "iso" if "-" in t else "ymd"
    if _COMPACT.match(t) and 1900 <= int(t[:4]) <= 2100:
        return "ymd"
    if _CN.match(t):
        return "ymd"
    if _DOT.match(t):
        return "dmy_dot"
    if _SLASH.match(t):
        return "slash"
    if (m := _SAS.match(t)) and m.group(2).lower() in _MONTHS:
        return "sas"
    if _SERIAL.match(t) and _SERIAL_RANGE[0] <= float(t) <= _SERIAL_RANGE[1]:
        return "excel"
    return None


def inspect_dates(values: list[str | None]) -> DateColumn:
    """Classify the distinct non-empty values of a date column."""
    col = DateColumn()
    first_big = second_big = ""
    for v in dict.fromkeys(x for x in values if x is not None and str(x).strip()):
        text = str(v)
        col.n += 1
        form = _form(text)
        if form is None:
            if len(col.bad) < 5:
                col.bad.append(text)
            continue
        col.forms[form] = col.forms.get(form, 0) + 1
        if form == "slash":
            a, b, _ = _SLASH.match(_strip(text)).groups()
            if int(a) > 12 and not first_big:
                first_big = text
            if int(b) > 12 and not second_big:
                second_big = text
    if "slash" in col.forms:
        if first_big and second_big:
            col.conflict = True
            col.evidence = f"{first_big} and {second_big}"
        elif first_big:
            col.day_first, col.evidence = True, first_big
        elif second_big:
            col.day_first, col.evidence = False, second_big
        else:
            col.ambiguous = True
    return col


def parse_date(text: str | None, *, day_first: bool | None = None) -> date | None:
    """One cell -> date, or None when it is empty, no date, or slash-ambiguous without
    `day_first`."""
    if text is None:
        return None
    t = _strip(str(text))
    if not t:
        return None
    try:
        if m := _ISO.match(t) or _COMPACT.match(t) or _CN.match(t):
            y, mo, d = (int(g) for g in m.groups())
            return date(y, mo, d)
        if m := _DOT.match(t):
            d, mo, y = (int(g) for g in m.groups())
            return date(y, mo, d)
        if m := _SLASH.match(t):
            a, b, y = (int(g) for g in m.groups())
            if day_first is None:
                if a > 12:
                    return date(y, b, a)
                if b > 12:
                    return date(y, a, b)
                return None
            return date(y, b, a) if day_first else date(y, a, b)
        if (m := _SAS.match(t)) and m.group(2).lower() in _MONTHS:
            return date(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
        if _SERIAL.match(t) and _SERIAL_RANGE[0] <= float(t) <= _SERIAL_RANGE[1]:
            return _EXCEL_ORIGIN + timedelta(days=int(float(t)))
    except ValueError:       # 2025-02-30 and the like
        return None
    return None


def looks_like_dates(values: list[str | None], *, min_share: float = 0.8) -> bool:
    """True when most distinct non-empty values are dates (Excel serials alone do not count:
    a column of numbers between 21916 and 73050 is more likely a count than a date)."""
    col = inspect_dates(values[:2000])
    if col.n == 0:
        return False
    dated = sum(n for f, n in col.forms.items() if f != "excel")
    return dated / col.n >= min_share
