"""Visit and timepoint labels -> study day (day 0 = CAR-T infusion).

Labs write the time of a sample as a label: `Baseline`, `Screening`, `D0`, `D14`, `Day 28`,
`day+28`, `W4`, `Week 4`, `M3`, `Month 6`, `Y1`, `pre`, `第28天`. `label_day` turns one label
into a day with the default table below; a study's own map (study.toml, e.g.
`[single_cell.timepoints]` or the import's timepoint table) overrides it label by label.
A label that names no day (`post`, `relapse`, `EOT`) gives None: callers report it and ask for
a mapping, they never guess.

Defaults (a setting; change them per study):
- Screening -14, Baseline -7, lymphodepletion (LD) -5, pre-infusion (pre) -1, infusion 0;
- days as given (`D-5` = -5); weeks x 7; months x 30 (12 months = 365 days, so M12 = 365,
  M24 = 730, as the reference study's visit schedule); years x 365.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["DEFAULT_NAMED_DAYS", "label_day", "timepoint_days", "normalise_label"]

# Named visits (folded: lower case, no spaces, dashes or underscores)
DEFAULT_NAMED_DAYS: dict[str, int] = {
    "screening": -14, "screen": -14, "scr": -14, "筛选": -14, "筛查": -14,
    "baseline": -7, "bl": -7, "基线": -7,
    "lymphodepletion": -5, "ld": -5, "清淋": -5,
    "pre": -1, "preinfusion": -1, "pretreatment": -1, "precart": -1, "pret": -1,
    "infusion": 0, "回输": 0, "输注": 0,
}

_UNITS = {"d": 1, "day": 1, "days": 1, "天": 1, "w": 7, "wk": 7, "week": 7, "weeks": 7,
          "周": 7, "m": 30, "mo": 30, "month": 30, "months": 30, "月": 30, "个月": 30,
          "y": 365, "yr": 365, "year": 365, "years": 365, "年": 365}
# "D28", "Day 28", "day+28", "d-5", "W4", "Week 4", "M3", "Month 6", "Y1"
_PREFIX = re.compile(r"^(?P<unit>days?|d|weeks?|wk|w|months?|mo|m|years?|yr|y)"
                     r"\s*[_.]?\s*(?P<sign>[+-])?\s*(?P<n>\d+(?:\.\d+)?)$")
# "28 days", "4 weeks", "28d", "3m"
_SUFFIX = re.compile(r"^(?P<sign>[+-])?(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>days?|d|weeks?|wk|w|"
                     r"months?|mo|m|years?|yr|y)$")
# "第28天", "第4周", "第3个月", "第1年"
_CHINESE = re.compile(r"^第?\s*(?P<sign>[+-])?(?P<n>\d+)\s*(?P<unit>天|周|个月|月|年)$")


def normalise_label(label: str) -> str:
    """The folded form used to look a label up: lower case, trimmed, inner spaces, dashes
    and underscores removed (`Pre-infusion` -> `preinfusion`)."""
    return re.sub(r"[\s_\-]+", "", str(label).strip().lower())


def _days(n: float, unit: str) -> int:
    per = _UNITS[unit]
    if per == 30 and n % 12 == 0:
        return int(round(n / 12 * 365))
    return int(round(n * per))


def label_day(label: object, *, overrides: Mapping[str, int] | None = None) -> int | None:
    """The study day a timepoint label stands for, or None when it names none.

    `overrides` maps labels (as written, matched after folding) to days and wins over the
    defaults. A bare integer (`28`, `-5`) is a day."""
    if label is None:
        return None
    text = str(label).strip()
    if not text or text.lower() in ("nan", "none", "na", "n/a"):
        return None
    if overrides:
        folded = {normalise_label(k): v for k, v in overrides.items()}
        key = normalise_label(text)
        if key in folded:
            value = folded[key]
            return None if value is None else int(value)
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    low = text.lower().replace("＋", "+")
    key = normalise_label(low)
    if key in DEFAULT_NAMED_DAYS:
        return DEFAULT_NAMED_DAYS[key]
    for pattern in (_PREFIX, _SUFFIX):
        m = pattern.match(re.sub(r"\s+", " ", low))
        if m:
            n = float(m.group("n"))
            return _days(-n if m.group("sign") == "-" else n, m.group("unit"))
    m = _CHINESE.match(text.replace(" ", ""))
    if m:
        n = float(m.group("n"))
        return _days(-n if m.group("sign") == "-" else n, m.group("unit"))
    return None


def timepoint_days(labels: Iterable[object], *, overrides: Mapping[str, int] | None = None
                   ) -> dict[str, int | None]:
    """Each distinct label -> its day (None when unresolved), in first-seen order."""
    out: dict[str, int | None] = {}
    for lab in labels:
        if lab is None:
            continue
        key = str(lab)
        if key not in out:
            out[key] = label_day(key, overrides=overrides)
    return out
