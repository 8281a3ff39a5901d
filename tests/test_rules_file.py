"""Rule settings written into study.toml [rules] (the Immune landscape's CAR cut)."""

from __future__ import annotations

import tomllib

import pytest

from analysis.rules import RuleError
from data_loaders.rules_file import save_rule_settings


def test_settings_are_merged_and_the_rest_kept(tmp_path):
    (tmp_path / "study.toml").write_text('[study]\nid = "S"\n\n[rules]\nti_window = 28\n')
    save_rule_settings(tmp_path, {"car_threshold_method": "fixed", "car_threshold": 2.5})
    got = tomllib.loads((tmp_path / "study.toml").read_text())
    assert got["study"] == {"id": "S"}
    assert got["rules"] == {"ti_window": 28, "car_threshold_method": "fixed",
                            "car_threshold": 2.5}


def test_a_bad_setting_writes_nothing(tmp_path):
    text = '[study]\nid = "S"\n'
    (tmp_path / "study.toml").write_text(text)
    with pytest.raises(RuleError, match="car_threshold_method"):
        save_rule_settings(tmp_path, {"car_threshold_method": "guess"})
    with pytest.raises(RuleError, match="unknown"):
        save_rule_settings(tmp_path, {"car_cutoff": 1.0})
    assert (tmp_path / "study.toml").read_text() == text


def test_missing_file_is_created_and_broken_file_refused(tmp_path):
    save_rule_settings(tmp_path, {"car_threshold": 1.0})
    assert tomllib.loads((tmp_path / "study.toml").read_text())["rules"] == {
        "car_threshold": 1.0}
    (tmp_path / "study.toml").write_text("[study\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        save_rule_settings(tmp_path, {"car_threshold": 1.0})
