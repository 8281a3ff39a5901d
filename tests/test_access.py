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
    check_proxy,
    event_line,
    list_studies,
    login_config,
    may_open,
    proxy_address,
    read_access,
    resolve_study,
    session_tag,
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


@pytest.mark.parametrize(("claims", "email", "groups", "label"), [
    ({"email": "ana@lab.org", "email_verified": True, "groups": ["a", "b"]}, "ana@lab.org",
     ("a", "b"), "ana@lab.org"),
    ({"email": "ana@lab.org", "email_verified": "true"}, "ana@lab.org", (), "ana@lab.org"),
    # an address the provider did not verify, or one in preferred_username / upn, admits no one
    ({"email": "ana@lab.org", "groups": ["a", "b"]}, None, ("a", "b"),
     "ana@lab.org (unverified)"),
    ({"email": "ana@lab.org", "email_verified": False}, None, (), "ana@lab.org (unverified)"),
    ({"preferred_username": "ana@lab.org", "roles": ["r"]}, None, ("r",),
     "ana@lab.org (unverified)"),
    ({"upn": "ana@lab.org", "groups": "a, b"}, None, ("a", "b"), "ana@lab.org (unverified)"),
    ({"preferred_username": "ana", "email_verified": True, "is_logged_in": True}, None, (),
     "ana (unverified)"),
    ({"sub": "12345"}, None, (), "12345 (unverified)"),
    ({}, None, (), "anonymous"),
])
def test_viewer_from_oidc_claims(claims, email, groups, label):
    viewer = Viewer.from_claims(claims)
    assert viewer.email == email and viewer.groups == groups
    assert viewer.label == label


def test_unverified_email_and_username_do_not_pass_an_allow_list(tmp_path):
    rule = read_access(_study(tmp_path, '[access]\nemails = ["ana@lab.org", "@lab.org"]\n'))
    assert rule.allows(Viewer.from_claims({"email": "ana@lab.org", "email_verified": True}))
    for claims in ({"email": "ana@lab.org"}, {"email": "ana@lab.org", "email_verified": "no"},
                   {"preferred_username": "ana@lab.org"}, {"upn": "eve@lab.org"}):
        assert not rule.allows(Viewer.from_claims(claims)), claims
    assert rule.allows(Viewer.from_proxy("ana@lab.org"))


# ---- login configuration and the proxy's proof ------------------------------------------------------
SECRET = "s" * 16 + "0123456789abcdef0123"


@pytest.mark.parametrize(("kwargs", "mode", "problem"), [
    ({}, "none", ""),
    ({"address": "0.0.0.0"}, "refuse", "open to the network"),
    ({"address": ""}, "refuse", "listens on every network interface"),
    ({"address": None}, "none", ""),
    ({"address": "0.0.0.0", "open_network": True}, "none", ""),
    ({"address": "::1"}, "none", ""),
    ({"address": "localhost"}, "none", ""),
    ({"server": True}, "refuse", "no login is configured"),
    ({"server": True, "auth": {"client_id": "x"}}, "oidc", ""),
    ({"server": True, "auth": {}}, "refuse", "[auth] cannot be read or is empty"),
    ({"server": True, "expected": "oidc"}, "refuse", "no [auth] section"),
    ({"expected": "oidc"}, "refuse", "no [auth] section"),
    ({"server": True, "proxy": {"secret": SECRET}}, "proxy", ""),
    ({"server": True, "proxy": {"secret": "short"}}, "refuse", "shorter than 32"),
    ({"server": True, "proxy": "x"}, "refuse", "not a table"),
    ({"server": True, "expected": "proxy", "auth": {"client_id": "x"}}, "refuse",
     "no [proxy] secret"),
    ({"server": True, "expected": "ldap"}, "refuse", "not known"),
    ({"auth": {"client_id": "x"}, "trusted_user_headers": {"X-Remote-User": "email"}},
     "refuse", "trustedUserHeaders"),
])
def test_login_config_fails_closed(kwargs, mode, problem):
    args = {"auth": None, "proxy": None, "server": False, **kwargs}
    config = login_config(**args)
    assert config.mode == mode
    assert problem in config.problem and bool(config.problem) == (mode == "refuse")


def test_login_config_never_shows_the_secret():
    config = login_config(auth=None, proxy={"secret": SECRET}, server=True)
    assert config.secret == SECRET and SECRET not in repr(config)


def _proxy() -> object:
    return login_config(auth=None, proxy={"secret": SECRET}, server=True)


def test_proxy_user_believed_only_with_the_secret():
    good = {"X-Cart-Proxy-Secret": SECRET, "X-Remote-User": "ana@lab.org",
            "X-Real-IP": "10.1.2.3"}
    check = check_proxy(good, _proxy())
    assert check.viewer == Viewer.from_proxy("ana@lab.org") and not check.problem
    assert check.client == "10.1.2.3"
    # header names are case-insensitive, as in HTTP
    assert check_proxy({k.lower(): v for k, v in good.items()}, _proxy()).viewer is not None


@pytest.mark.parametrize(("headers", "problem"), [
    ({"X-Remote-User": "bob@lab.org"}, "did not come through the proxy"),
    ({"X-Remote-User": "bob@lab.org", "X-Cart-Proxy-Secret": ""}, "does not match"),
    ({"X-Remote-User": "bob@lab.org", "X-Cart-Proxy-Secret": SECRET[:-1]}, "does not match"),
    ({"X-Remote-User": "bob@lab.org", "X-Cart-Proxy-Secret": SECRET + "x"}, "does not match"),
    ({"X-Cart-Proxy-Secret": SECRET}, "expected one"),
    ({"X-Cart-Proxy-Secret": SECRET, "X-Remote-User": "  "}, "expected one"),
    ([("X-Cart-Proxy-Secret", SECRET), ("X-Remote-User", "ana"), ("X-Remote-User", "bob")],
     "expected one"),
    ([("X-Cart-Proxy-Secret", "forged"), ("X-Cart-Proxy-Secret", SECRET),
      ("X-Remote-User", "bob")], "more than once"),
])
def test_forged_or_incomplete_proxy_headers_are_refused(headers, problem):
    check = check_proxy(headers, _proxy())
    assert check.viewer is None and problem in check.problem
    assert SECRET not in check.problem


def test_oidc_with_a_proxy_secret_proves_only_the_address():
    config = login_config(auth={"client_id": "x"}, proxy={"secret": SECRET}, server=True)
    assert config.mode == "oidc" and config.secret == SECRET
    good = {"X-Cart-Proxy-Secret": SECRET, "X-Real-IP": "10.1.2.3"}
    assert proxy_address(good, config) == "10.1.2.3"
    assert proxy_address({"X-Real-IP": "10.9.9.9"}, config) is None
    assert proxy_address({**good, "X-Cart-Proxy-Secret": "x" * 64}, config) is None
    assert proxy_address(good, login_config(auth={"client_id": "x"}, proxy=None,
                                            server=True)) is None
    assert login_config(auth={"client_id": "x"}, proxy={"secret": "short"},
                        server=True).mode == "refuse"


def test_refusal_keeps_the_claimed_name_apart():
    check = check_proxy({"X-Remote-User": "bob@lab.org" + "x" * 500}, _proxy())
    assert check.viewer is None and check.claimed_user.startswith("bob@lab.org")
    assert len(check.claimed_user) == 200


def test_session_tag_is_short_and_stable_and_not_the_id():
    tag = session_tag("0f3c1f0e-7a52-4f7d-9d39-0d3f7c8a9b10")
    assert len(tag) == 12 and tag == session_tag("0f3c1f0e-7a52-4f7d-9d39-0d3f7c8a9b10")
    assert tag not in "0f3c1f0e-7a52-4f7d-9d39-0d3f7c8a9b10" and session_tag(None) == "-"


# ---- access log ------------------------------------------------------------------------------------
def test_access_log_line_is_one_json_object():
    when = datetime(2025, 3, 1, 12, 30, 5, 250000, tzinfo=UTC)
    line = access_log_line(user="ana@lab.org", study="alpha", page="Kinetics", when=when,
                           client="10.1.2.3", session="abc123def456")
    assert "\n" not in line
    assert json.loads(line) == {"event": "page_view", "time": "2025-03-01T12:30:05.250Z",
                                "user": "ana@lab.org", "client": "10.1.2.3",
                                "session": "abc123def456", "study": "alpha",
                                "page": "Kinetics"}


def test_access_log_line_escapes_injected_newlines_and_defaults_user():
    line = access_log_line(user=None, study='x"\n{"user":"admin"}', page="P\r\nQ")
    assert "\n" not in line and "\r" not in line
    record = json.loads(line)
    assert record["user"] == "anonymous" and record["study"].startswith('x"\n')
    assert record["time"].endswith("Z") and record["client"] == record["session"] == "-"


def test_event_line_fields_cannot_overwrite_who():
    record = json.loads(event_line("download", user="ana", client="c", session="s",
                                   file="x.csv", **{"user_": 1}))
    assert record["event"] == "download" and record["user"] == "ana"
    assert record["file"] == "x.csv"
