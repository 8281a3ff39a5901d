"""Rule settings: one record, read from study.toml [rules], accepted by every CLI table that
depends on it (`--rule KEY=VALUE`), documented field by field in docs/rules.md."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from analysis.registry import derived_tables
from analysis.rules import DEFAULT_RULES, RuleError, rule_fields, rules_from_config

ROOT = Path(__file__).resolve().parent.parent


def test_choices_are_checked():
    assert rules_from_config({"count_tie": "later"}).count_tie == "later"
    with pytest.raises(RuleError, match="count_tie.*choose one of"):
        rules_from_config({"count_tie": "nearest"})
    with pytest.raises(RuleError, match="unknown setting"):
        rules_from_config({"retic_cutoff": 20})


def test_every_field_has_help_and_source():
    for name, f in rule_fields().items():
        assert f.metadata.get("help"), name
        assert f.metadata.get("source"), name
        assert not isinstance(f.default, list | dict), f"{name}: mutable default"


def test_cli_rule_option_changes_a_derived_table(demo_dir, capsys):
    """Reticulocytes decide SAA-001's D28 severity: ANC 1.78 (not severe), PLT 16 (severe),
    RETIC 28.1. With the cut-off at 60, RETIC < 60 is a second severe criterion, so D28 is NR;
    with 20 (classic Camitta), 28.1 >= 20 and only PLT is severe, so D28 is no longer NR."""
    import cli

    def d28(*extra: str) -> str:
        assert cli.main(["table", "--study", str(demo_dir), "responses", "--criteria", "NIH",
                         "--days", "28", *extra]) == 0
        rows = capsys.readouterr().out.splitlines()
        return next(r for r in rows if r.startswith("SAA-001,28,")).split(",")[2]

    assert d28() == "NR"
    assert d28("--rule", "retic_threshold=20") != "NR"


def test_cli_rule_errors_are_one_line(demo_dir, capsys):
    import cli

    assert cli.main(["table", "--study", str(demo_dir), "recovery", "--rule", "bogus=1"]) == 2
    assert "unknown setting(s) bogus" in capsys.readouterr().err
    assert cli.main(["table", "--study", str(demo_dir), "patients", "--rule",
                     "ti_window=2"]) == 2
    assert "does not depend on rule settings" in capsys.readouterr().err
    assert cli.main(["table", "--study", str(demo_dir), "recovery", "--rule", "ti_window"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_study_toml_rules_reach_derived_tables(write_study):
    """A study that states ti_window = 10: a transfusion 20 days before the assessment is
    outside the window, so BSH transfusion independence holds (PR); the default 56 d window
    would include it (NR)."""
    from data_loaders import load_study

    meas = ("subject_id,day,analyte,value,unit\nP1,-10,ANC,0.3,10^9/L\nP1,-10,PLT,10,10^9/L\n"
            "P1,90,ANC,0.9,10^9/L\nP1,90,PLT,40,10^9/L\n"
            "P1,90,RETIC,80,10^9/L\nP1,90,HGB,95,g/L\n")
    events = "subject_id,day,category,product\nP1,70,transfusion,RBC\n"
    table = derived_tables()["derived_responses"]
    plain = load_study(write_study(measurements=meas, events=events))
    assert table(plain, criteria="BSH", days="90")["category"][0] == "NR"
    study = load_study(write_study(measurements=meas, events=events,
                                   **{"study.toml": "[rules]\nti_window = 10\n"}))
    r = table(study, criteria="BSH", days="90").row(0, named=True)
    assert r["category"] == "PR", r["rule"]
    # an explicit option still wins over the study's setting
    assert table(study, criteria="BSH", days="90", ti_window=56)["category"][0] == "NR"


def test_every_rule_dependent_table_takes_rules():
    uses = {n for n, t in derived_tables().items() if t.uses_rules}
    assert {"derived_responses", "best_response", "orr", "recovery",
            "response_comparison"} <= uses


def test_docs_list_every_rule_with_its_default():
    """docs/rules.md has one table row per setting: `name` | default | ... ; the defaults are
    the code's."""
    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\|\s*`([a-z0-9_]+)`\s*\|\s*([^|]+?)\s*\|", text, re.M))
    fields = rule_fields()
    missing = sorted(set(fields) - set(rows))
    assert not missing, f"docs/rules.md lacks {missing}"
    unknown = sorted(set(rows) - set(fields))
    assert not unknown, f"docs/rules.md lists settings the code does not have: {unknown}"
    for name, f in fields.items():
        shown = rows[name].strip("` ")
        assert shown == DEFAULT_RULES.rows()[list(fields).index(name)]["default"] or \
            shown == str(f.default).lower(), f"{name}: docs say {shown}, code {f.default}"


def test_rules_rows_cover_every_field():
    rows = pl.DataFrame(DEFAULT_RULES.rows())
    assert rows["setting"].to_list() == list(rule_fields())


def test_export_provenance_carries_the_rules(write_study):
    """A study stating retic_threshold = 20: every exported file's provenance says so."""
    from components.export import Provenance
    from data_loaders import load_study

    study = load_study(write_study(**{"study.toml": "[rules]\nretic_threshold = 20\n"}))
    prov = Provenance.of(study)
    assert prov.rules["retic_threshold"] == 20.0
    assert '"retic_threshold": 20.0' in prov.to_json()
    assert set(prov.rules) == set(rule_fields())


def test_cli_baseline_follows_the_screening_window(demo_dir, capsys):
    """Demo screening visits are on days -14..-10 and lymphodepletion starts on day -5. With
    the default 30-day window the screening counts are baseline (SAA-001: SAA); with a 4-day
    window (days -9..-6) there is no baseline count, so severity is NE."""
    import cli

    def sev(*extra: str) -> str:
        assert cli.main(["table", "--study", str(demo_dir), "baseline", *extra]) == 0
        out = capsys.readouterr().out.splitlines()
        header = out[0].split(",")
        row = next(r for r in out if r.startswith("SAA-001,"))
        return row.split(",")[header.index("severity")]

    assert sev() == "SAA"
    assert sev("--rule", "screening_window=4") == "NE"
