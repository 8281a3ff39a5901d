"""analysis.registry.study_table: one answer to "the table called NAME" for the command line:
recorded tables, derived tables with options and rule changes, and the derived twin of a
recorded table."""

from __future__ import annotations

import pytest

from analysis.registry import derived_tables, study_table
from analysis.rules import rules_for


def test_recorded_table_is_the_studys_own(demo_study):
    assert study_table(demo_study, "patients").equals(demo_study.patients)
    # options that are not given (None) do not turn a recorded table into its twin
    assert study_table(demo_study, "responses", options={"criteria": None}).equals(
        demo_study.responses)


def test_an_option_turns_a_recorded_table_into_its_derived_twin(demo_study):
    twin = derived_tables()["derived_responses"]
    got = study_table(demo_study, "responses", options={"criteria": "BSH", "out": "x.csv"})
    assert got.equals(twin(demo_study, criteria="BSH"))
    assert not got.equals(demo_study.responses)


def test_rule_changes_reach_the_derived_table(demo_study):
    changed = rules_for(demo_study).with_(retic_threshold=20)
    twin = derived_tables()["derived_responses"]
    got = study_table(demo_study, "derived_responses", rule_changes={"retic_threshold": 20})
    assert got.equals(twin(demo_study, rules=changed))


def test_what_cannot_be_answered_says_why(demo_study):
    with pytest.raises(ValueError, match="unknown table 'nonsense'; choose one of: patients"):
        study_table(demo_study, "nonsense")
    with pytest.raises(ValueError, match="patients is a recorded table and does not depend"):
        study_table(demo_study, "patients", rule_changes={"retic_threshold": 20})
    plain = next(t for t in derived_tables().values() if not t.uses_rules)
    with pytest.raises(ValueError, match=f"{plain.name} does not depend on rule settings"):
        study_table(demo_study, plain.name, rule_changes={"retic_threshold": 20})
