"""Rule settings as text: written into a study's study.toml `[rules]` table (the Immune landscape page's
"save this CAR cut"): the other tables and settings of the file are kept; the new values are
checked by analysis.rules before anything is written. TOML comments are not kept (the file is
rewritten by tomli-w), which the page says before saving; or given as KEY=VALUE for one
run (`cli.py table --rule`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["save_rule_settings", "rule_changes"]


def save_rule_settings(folder: str | Path, settings: Mapping[str, Any]) -> Path:
    """Set `settings` in `folder`/study.toml [rules] (the file is created when missing);
    raises analysis.rules.RuleError for an unknown setting or a wrong type, ValueError when
    study.toml cannot be read. Returns the path written."""
    import tomli_w

    from analysis.rules import rules_from_config

    path = Path(folder) / "study.toml"
    config: dict[str, Any] = {}
    if path.is_file():
        try:
            config = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path.name}: not valid TOML ({exc}); fix it before saving "
                             "settings") from exc
    rules = dict(config.get("rules", {}) or {})
    rules.update(settings)
    rules_from_config(rules)                 # refuse before writing
    config["rules"] = rules
    path.write_text(tomli_w.dumps(config), encoding="utf-8")
    return path


def rule_changes(items: Iterable[str]) -> dict[str, Any]:
    """Settings given as "KEY=VALUE", VALUE as in study.toml (a TOML value, e.g.
    `retic_threshold=20`, `criteria="BSH"`; a bare word is read as text) -> {key: value}
    for `Rules.with_`, which checks them; raises RuleError for an item without "="."""
    from analysis.rules import RuleError

    changes: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RuleError(f"--rule {item!r}: write KEY=VALUE, e.g. retic_threshold=20")
        try:
            changes[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            changes[key.strip()] = value.strip()
    return changes
