"""Every clinical rule setting of a study in one frozen record, with its default and its source.

A study states its own settings in `study.toml`:

    [rules]
    retic_threshold = 20      # classic Camitta / Chinese consensus (manual count)
    ti_window = 56
    plt_support_days = 7

`rules_for(study)` reads that table once (unknown keys and wrong types are reported, never
ignored silently) and every derived table, page, CLI table and export takes its settings from the
returned `Rules`. `Rules.toml_snippet()` gives the text that reproduces a set of settings, and
`Rules.rows()` the table a page shows under "Rules used". docs/rules.md lists every field with
the same defaults and sources (a test keeps the two in step).

Fields are grouped by the rule that uses them; the `metadata` of each field holds its help text
and its source, so the docs, the pages and the CLI read one description.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["Rules", "RuleError", "DEFAULT_RULES", "rules_for", "rules_from_config", "rule_fields"]


def _f(default: Any, help: str, source: str) -> Any:
    return field(default=default, metadata={"help": help, "source": source})


@dataclass(frozen=True)
class Rules:
    # ---- severity and response (analysis/response.py) ---------------------------------------
    retic_threshold: float = _f(
        60.0, "RETIC below this (x10^9/L) counts towards severe (modified Camitta)",
        "BSH guideline (Killick et al., Br J Haematol 2016;172:187): < 60 automated count; "
        "classic Camitta 1976 and the Chinese consensus (2017): < 20 manual count")
    ti_window: int = _f(
        56, "transfusion independence: days with no RBC or platelet transfusion up to an "
        "assessment", "BSH 2016 / Killick; NIH trials (Townsley, NEJM 2017) use 8 weeks")
    count_window: int = _f(
        7, "an assessment takes the count nearest its day within +/- this many days",
        "project convention (visit windows of +/- 1 week in SAA trials)")

    # Section marker: other rule groups add their fields below, each with help and source.

    # ---- helpers ----------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One row per setting: name, value, default, help, source (for 'Rules used')."""
        out = []
        for f in fields(self):
            out.append({"setting": f.name, "value": _show(getattr(self, f.name)),
                        "default": _show(f.default), "help": f.metadata.get("help", ""),
                        "source": f.metadata.get("source", "")})
        return out

    def changed(self) -> dict[str, Any]:
        """The settings that differ from the defaults."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != f.default}

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def toml_snippet(self, *, only_changed: bool = False,
                     names: Iterable[str] | None = None) -> str:
        """The `[rules]` table of study.toml that reproduces these settings (all of them, the
        changed ones, or the named ones)."""
        values = self.changed() if only_changed else self.as_dict()
        if names is not None:
            values = {n: values[n] for n in names if n in values}
        lines = ["[rules]"] + [f"{k} = {_toml(v)}" for k, v in values.items()]
        return "\n".join(lines) + "\n"

    def with_(self, **changes: Any) -> Rules:
        """A copy with some settings changed (a page's widgets, a CLI option); checked."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return rules_from_config({**self.as_dict(), **changes}, source="option")


class RuleError(ValueError):
    """A [rules] setting in study.toml that is unknown or of the wrong type."""


def _show(v: Any) -> str:
    if isinstance(v, tuple | list):
        return ", ".join(map(str, v))
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={x}" for k, x in v.items())
    return str(v)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f'"{k}" = {_toml(x)}' for k, x in v.items()) + " }"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def rule_fields() -> dict[str, Any]:
    """Field objects by name (type, default, help, source), for docs and CLI options."""
    return {f.name: f for f in fields(Rules)}


def _coerce(name: str, value: Any, default: Any, source: str) -> Any:
    def bad(kind: str) -> RuleError:
        return RuleError(f"{source} [rules] {name} = {value!r}: expected {kind} "
                         f"(default {_toml(default)})")

    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a whole number")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a text value")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple):
            raise bad("a list")
        return tuple(value)
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise bad("a table")
        return dict(value)
    return value


def rules_from_config(config: Mapping[str, Any], *, source: str = "study.toml") -> Rules:
    """Rules from a `[rules]` mapping; raises RuleError naming the setting and what is wanted."""
    known = rule_fields()
    unknown = sorted(set(config) - set(known))
    if unknown:
        raise RuleError(f"{source} [rules]: unknown setting(s) {', '.join(unknown)}; "
                        f"known settings are {', '.join(known)}")
    values = {k: _coerce(k, v, known[k].default, source) for k, v in config.items()}
    return replace(DEFAULT_RULES, **values)


DEFAULT_RULES = Rules()


def rules_for(study: Any) -> Rules:
    """The study's rules: defaults overridden by study.toml `[rules]`. A bad table raises
    RuleError; the loader reports it as a finding when the study is opened."""
    config = getattr(study, "config", None) or {}
    table = config.get("rules", {}) or {}
    if not isinstance(table, Mapping):
        raise RuleError("study.toml: [rules] must be a table")
    return rules_from_config(table)
