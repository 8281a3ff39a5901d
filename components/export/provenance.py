"""Provenance of an exported file: study id, SHA-256 of the study files, cohort, page
parameters, rule settings, app name and version, date; enough to make the figure again."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.vocab import DayWindow

if TYPE_CHECKING:
    from analysis.cohort import Cohort
    from data_loaders import Study

__all__ = ["APP_NAME", "APP_VERSION", "params_dict", "Provenance"]

_ROOT = Path(__file__).resolve().parents[2]


def _app_identity() -> tuple[str, str]:
    """(name, version) from the source tree's pyproject.toml, else from the installed package."""
    try:
        project = tomllib.loads((_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        return str(project["name"]), str(project["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass
    try:
        return "cart-explorer", metadata.version("cart-explorer")
    except metadata.PackageNotFoundError:
        return "cart-explorer", "unknown"


APP_NAME, APP_VERSION = _app_identity()


def _plain(value: Any) -> Any:
    # dataclasses as dicts of their fields, a day window as a link writes it ("0:28", "D28")
    if isinstance(value, DayWindow):
        return value.as_json()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def params_dict(params: Any) -> dict[str, Any]:
    """A page's parameters (frozen dataclass, mapping or None) as a JSON-friendly dict."""
    if params is None:
        return {}
    params = _plain(params)
    if not isinstance(params, Mapping):
        return {"value": str(params)}
    return json.loads(json.dumps(dict(params), default=str))


def _study_rules(study: Study | None) -> dict[str, Any]:
    """The rule settings a study runs with (defaults and its study.toml [rules]); empty for
    objects that are not studies."""
    if study is None or not hasattr(study, "config"):
        return {}
    from analysis.rules import RuleError, rules_for

    try:
        return json.loads(json.dumps(rules_for(study).as_dict(), default=str))
    except RuleError as err:
        return {"error": str(err)}


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Provenance:
    """Where an exported figure came from, enough to make it again."""

    study_id: str = ""
    content_hash: str = ""
    cohort: str = "all patients"
    params: dict[str, Any] = field(default_factory=dict)
    figure: str = ""
    app: str = f"{APP_NAME} {APP_VERSION}"
    created: str = field(default_factory=_now)
    # the study's rule settings in force (analysis/rules.py), so a figure states its rules
    rules: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, study: Study, cohort: Cohort | None = None, *, params: Any = None,
           figure: str = "") -> Provenance:
        """From a Study and a Cohort (or its description)."""
        described = cohort.describe() if hasattr(cohort, "describe") else \
            (str(cohort) if cohort else "all patients")
        return cls(study_id=str(getattr(study, "study_id", "")),
                   content_hash=str(getattr(study, "content_hash", "")), cohort=described,
                   params=params_dict(params), figure=figure, rules=_study_rules(study))

    def for_figure(self, figure: str, params: Any = None) -> Provenance:
        return replace(self, figure=figure, params=params_dict(params))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=True, default=str)

    def footer(self) -> str:
        """One short line for the bottom of a figure."""
        parts = [self.study_id or "study", f"data {self.content_hash[:12]}" if
                 self.content_hash else "", self.cohort, self.app, self.created[:10]]
        return " · ".join(p for p in parts if p)
