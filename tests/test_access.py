"""Study names under STUDIES_ROOT, per-study allow-lists and the access-log line (no streamlit)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.access import (
    AccessError,
    AccessRule,
    Viewer,
    access_log_line,
    list_studies,
    may_open,
    read_access,
    resolve_study,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """studies/{alpha, beta, .hidden, notes.txt, inner -> alpha, escape -> ../secret}."""
    base = tmp_path / "studies"
    for name in ("alpha", "beta", ".hidden"):
        (base / name).mkdir(parents=True)
        (base / name / "patients.csv").write_text("subject_id\nP1\n")
    (base / "notes.txt").write_text("not a study")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "patients.csv").write_text("subject_id\nX\n")
    os.symlink(base / "alpha", base / "inner")
    os.symlink(secret, base / "escape")
    return base


def test_list_studies_only_folders_inside_the_root(root):
    studies = list_studies(root)
    assert sorted(studies) == ["alpha", "beta", "inner"]
    assert studies["inner"] == (root / "alpha").resolve()
    assert all(p.is_relative_to(root.resolve()) for p in studies.values())


def test_list_studies_of_a_missing_root_is_empty(tmp_path):
    assert list_studies(tmp_path / "nowhere") == {}


def test_resolve_known_study(root):
    assert resolve_study("beta", root) == (root / "beta").resolve()


@pytest.mark.parametrize(("name", "reason"), [
    ("..", "is a path"),
    ("../secret", "is a path"),
    ("alpha/../../secret", "is a path"),
    ("..\\secret", "is a path"),
    ("/etc", "absolute path"),
    ("/etc/passwd", "absolute path"),
    ("C:\\Windows", "absolute path"),
    ("%2e%2e%2fsecret", "URL-encoded"),
    ("%2E%2E", "URL-encoded"),
    ("%252e%252e%252fsecret", "URL-encoded"),
    ("..%2fsecret", "URL-encoded"),
    ("%2Fetc", "URL-encoded"),
    ("escape", "outside the studies root"),
    ("gamma", "no study named"),
    (".hidden", "no study named"),
    ("notes.txt", "no study named"),
    ("", "no study name"),
    ("beta\x00", "NUL"),
])
def test_resolve_refuses_with_a_clear_reason(root, name, reason):
    with pytest.raises(AccessError, match=reason):
        resolve_study(name, root)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(
    st.text(max_size=24),
    st.lists(st.sampled_from(["..", "/", "%2e", "%2f", "%25", "alpha", "beta", "\\", "."]),
             max_size=8).map("".join)))
def test_resolve_never_leaves_the_root(root, name):
    try:
        folder = resolve_study(name, root)
    except AccessError as err:
        assert str(err)
        return
    assert name in ("alpha", "beta", "inner")
    assert folder.is_relative_to(root.resolve())


# ---- allow-lists ---------------------------------------------------------------------------------
def _study(tmp_path: Path, toml: str | None) -> Path:
    folder = tmp_path / "s"
    folder.mkdir(exist_ok=True)
    if toml is not None:
        (folder / "study.toml").write_text(toml)
    return folder


def test_no_study_toml_or_no_access_table_is_open(tmp_path):
    assert read_access(_study(tmp_path, None)) == AccessRule()
    assert not read_access(_study(tmp_path, '[study]\ntitle = "x"\n')).restricted
    assert may_open(None, tmp_path / "s")


def test_emails_domains_and_groups(tmp_path):
    folder = _study(tmp_path, '[access]\nemails = ["Ana@Lab.org", "@partner.org"]\n'
                              'groups = ["cart-core"]\n')
    rule = read_access(folder)
    assert rule.restricted and rule.emails == {"ana@lab.org", "@partner.org"}
    assert rule.allows(Viewer("ana@lab.org"))
    assert rule.allows(Viewer("ANA@LAB.ORG"))
    assert rule.allows(Viewer("someone@partner.org"))
    assert rule.allows(Viewer("bob@other.org", groups=("cart-core",)))
    assert not rule.allows(Viewer("bob@other.org", groups=("other",)))
    assert not rule.allows(Viewer("bob@lab.org"))
    assert not rule.allows(Viewer(None))
    assert not rule.allows(None)
    assert not may_open(Viewer("eve@partner.org.evil.com"), folder)


def test_empty_allow_list_admits_nobody(tmp_path):
    rule = read_access(_study(tmp_path, "[access]\nemails = []\n"))
    assert rule.restricted and not rule.allows(Viewer("ana@lab.org", groups=("x",)))


def test_broken_toml_with_access_table_fails_closed(tmp_path):
    rule = read_access(_study(tmp_path, '[access]\nemails = ["ana@lab.org"\n'))
    assert rule.restricted and "not valid TOML" in rule.problem
    assert not rule.allows(Viewer("ana@lab.org"))


def test_broken_toml_without_access_table_stays_open(tmp_path):
    # the loader reports the broken file on the Data & quality page; the study stays reachable
    assert not read_access(_study(tmp_path, "[study\ntitle = 1\n")).restricted


def test_access_that_is_not_a_table_fails_closed(tmp_path):
    rule = read_access(_study(tmp_path, 'access = "everyone"\n'))
    assert rule.restricted and not rule.allows(Viewer("ana@lab.org"))


@pytest.mark.parametrize(("claims", "email", "groups"), [
    ({"email": "ana@lab.org", "groups": ["a", "b"]}, "ana@lab.org", ("a", "b")),
    ({"preferred_username": "ana@lab.org", "roles": ["r"]}, "ana@lab.org", ("r",)),
    ({"upn": "ana@lab.org", "groups": "a, b"}, "ana@lab.org", ("a", "b")),
    ({"preferred_username": "ana", "is_logged_in": True}, None, ()),
    ({"email": "alice"}, "alice", ()),                 # a proxy's basic-auth user name
    ({}, None, ()),
])
def test_viewer_from_oidc_claims(claims, email, groups):
    viewer = Viewer.from_claims(claims)
    assert viewer.email == email and viewer.groups == groups
    assert viewer.label == (email or "anonymous")


# ---- access log ------------------------------------------------------------------------------------
def test_access_log_line_is_one_json_object():
    when = datetime(2025, 3, 1, 12, 30, 5, 250000, tzinfo=UTC)
    line = access_log_line(user="ana@lab.org", study="alpha", page="Kinetics", when=when)
    assert "\n" not in line
    assert json.loads(line) == {"event": "page_view", "time": "2025-03-01T12:30:05.250Z",
                                "user": "ana@lab.org", "study": "alpha", "page": "Kinetics"}


def test_access_log_line_escapes_injected_newlines_and_defaults_user():
    line = access_log_line(user=None, study='x"\n{"user":"admin"}', page="P\r\nQ")
    assert "\n" not in line and "\r" not in line
    record = json.loads(line)
    assert record["user"] == "anonymous" and record["study"].startswith('x"\n')
    assert record["time"].endswith("Z")
