"""Login (st.login / st.user), per-study allow-lists, study names from the URL and the access
log, run headless through app.py with AppTest (`at.secrets`, `at.user`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"redirect_uri": "https://lab.example.org/oauth2callback",
        "cookie_secret": "test-cookie-secret", "client_id": "cart-explorer",
        "client_secret": "test-client-secret",
        "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration"}
PATIENTS = "subject_id,age,sex\nP1,34,M\nP2,51,F\n"


def _titles(at) -> list[str]:
    return [t.value for t in at.title]


def _page_titles() -> set[str]:
    from tests.test_app_pages import PAGES

    return {title for _, title in PAGES}


@pytest.fixture
def app(monkeypatch, real_navigation):
    """app(user=..., secrets=..., query=..., study=DIR) -> a run AppTest of app.py."""
    from streamlit.testing.v1 import AppTest

    def run(*, user: dict | None = None, secrets: dict | None = None,
            query: dict | None = None, study: Path | None = None):
        if study is not None:
            monkeypatch.setenv("STUDY_DIR", str(study))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        for k, v in (secrets or {}).items():
            at.secrets[k] = v
        if user is not None:
            at.user = user
        for k, v in (query or {}).items():
            at.query_params[k] = v
        return at.run()

    monkeypatch.setenv("STUDY_DIR", str(ROOT / "sample_data" / "demo"))
    monkeypatch.delenv("STUDIES_ROOT", raising=False)
    monkeypatch.delenv("AUTH_USER_HEADER", raising=False)
    monkeypatch.delenv("DEID", raising=False)
    return run


@pytest.fixture
def studies_root(tmp_path, monkeypatch) -> Path:
    """alpha (open), beta (ana@lab.org only), gamma (group cart-core), escape -> outside."""
    root = tmp_path / "studies"
    acl = {"alpha": None, "beta": '[access]\nemails = ["ana@lab.org"]\n',
           "gamma": '[access]\ngroups = ["cart-core"]\n'}
    for name, toml in acl.items():
        (root / name).mkdir(parents=True)
        (root / name / "patients.csv").write_text(PATIENTS)
        text = f'[study]\ntitle = "Study {name}"\n' + (toml or "")
        (root / name / "study.toml").write_text(text)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "patients.csv").write_text("subject_id\nSECRET-1\n")
    os.symlink(outside, root / "escape")
    monkeypatch.setenv("STUDIES_ROOT", str(root))
    return root


def _study_options(at) -> list[str]:
    try:
        return list(at.selectbox(key="f-study").options)
    except KeyError:  # one study: no picker, its title is in the sidebar caption
        return [c.value for c in at.sidebar.caption]


# ---- login ----------------------------------------------------------------------------------------
def test_logged_out_user_sees_only_the_login(app):
    at = app(secrets={"auth": AUTH}, user={"is_logged_in": False})
    assert not at.exception
    assert at.button(key="auth-login")
    assert not set(_titles(at)) & _page_titles()
    assert not at.dataframe and not at.sidebar.multiselect
    for file in ("pages/data_quality.py", "pages/overview.py"):
        if (ROOT / file).exists():
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(file)


def test_missing_login_claim_counts_as_logged_out(app):
    # AppTest's default user has an e-mail but no is_logged_in: never let that in
    at = app(secrets={"auth": AUTH})
    assert at.button(key="auth-login") and not at.sidebar.multiselect


def test_named_providers_get_one_button_each(app):
    auth = {k: AUTH[k] for k in ("redirect_uri", "cookie_secret")}
    auth |= {"google": {k: AUTH[k] for k in ("client_id", "client_secret",
                                             "server_metadata_url")},
             "microsoft": {k: AUTH[k] for k in ("client_id", "client_secret",
                                                "server_metadata_url")}}
    at = app(secrets={"auth": auth}, user={"is_logged_in": False})
    keys = {b.key for b in at.button}
    assert keys == {"auth-login-google", "auth-login-microsoft"}


def test_client_kwargs_is_not_a_provider(app):
    auth = {**AUTH, "client_kwargs": {"scope": "openid profile email"}}
    at = app(secrets={"auth": auth}, user={"is_logged_in": False})
    assert {b.key for b in at.button} == {"auth-login"}


def test_page_script_run_alone_shows_no_data(monkeypatch):
    """A page reached without app.py (no login, no sidebar) refuses instead of loading."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "data_quality.py"), default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": False}
    at.run()
    assert [e.value for e in at.error] == ["No study is loaded; open the app through app.py."]
    assert not at.dataframe and not at.metric


def test_logged_in_user_sees_pages_name_and_logout(app, capsys):
    at = app(secrets={"auth": AUTH},
             user={"is_logged_in": True, "email": "ana@lab.org", "name": "Ana Silva"})
    assert not at.exception
    assert set(_titles(at)) & _page_titles()
    assert "Logged in as **Ana Silva**" in [c.value for c in at.sidebar.caption]
    assert at.sidebar.button(key="auth-logout")
    line = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert line and line[-1]["user"] == "ana@lab.org" and line[-1]["event"] == "page_view"
    at.sidebar.button(key="auth-logout").click().run()
    assert at.user == {"is_logged_in": False}
    at.run()  # a server sends the browser through /auth/logout to a fresh session
    assert at.button(key="auth-login") and not set(_titles(at)) & _page_titles()


def test_login_without_email_claim_still_offers_logout(app):
    at = app(secrets={"auth": AUTH}, user={"is_logged_in": True, "sub": "12345"})
    assert not at.exception
    assert "Logged in as **anonymous**" in [c.value for c in at.sidebar.caption]
    assert at.sidebar.button(key="auth-logout")


def test_without_auth_config_the_app_opens_directly(app):
    at = app(user={"is_logged_in": False})
    assert not at.exception
    assert set(_titles(at)) & _page_titles()
    assert not [b for b in at.button if b.key and b.key.startswith("auth-")]


# ---- allow-lists per study -------------------------------------------------------------------------
def test_allow_list_by_email(app, studies_root):
    at = app(secrets={"auth": AUTH}, user={"is_logged_in": True, "email": "ana@lab.org"})
    assert not at.exception
    assert _study_options(at) == ["alpha", "beta"]


def test_allow_list_by_group(app, studies_root):
    at = app(secrets={"auth": AUTH},
             user={"is_logged_in": True, "email": "bob@lab.org", "groups": ["cart-core"]})
    assert _study_options(at) == ["alpha", "gamma"]


def test_study_in_url_not_on_the_allow_list_is_refused(app, studies_root):
    at = app(secrets={"auth": AUTH}, user={"is_logged_in": True, "email": "bob@lab.org"},
             query={"study": "beta"})
    assert not at.exception
    warnings = [w.value for w in at.sidebar.warning]
    assert warnings == ["Study refused: 'beta' is not open to your account; showing 'alpha'."]
    assert "Study alpha" in " ".join(c.value for c in at.sidebar.caption)


def test_server_without_identity_hides_restricted_studies(app, studies_root):
    at = app()
    assert not at.exception
    assert any("Study alpha" in c.value for c in at.sidebar.caption)   # only alpha is open
    assert not at.sidebar.warning


def test_no_permitted_study_says_so(app, studies_root):
    (studies_root / "alpha" / "study.toml").write_text('[access]\nemails = ["x@y.org"]\n')
    at = app(secrets={"auth": AUTH}, user={"is_logged_in": True, "email": "eve@lab.org"})
    assert not at.exception
    assert [e.value for e in at.sidebar.error] == [
        "Your account may not open any study on this server; ask a study's owner to add you "
        "to its [access] list."]
    assert not set(_titles(at)) & _page_titles()


def test_proxy_user_header_names_the_viewer(app, studies_root, capsys):
    """nginx basic auth passes $remote_user in X-Remote-User; server.trustedUserHeaders maps it
    into st.user (AppTest's `user` stands for what the server read from the header)."""
    from streamlit import config

    before = config.get_option("server.trustedUserHeaders")
    config.set_option("server.trustedUserHeaders", {"X-Remote-User": "email"})
    try:
        at = app(user={"email": "ana@lab.org"})
    finally:
        config.set_option("server.trustedUserHeaders", before)
    assert not at.exception
    assert _study_options(at) == ["alpha", "beta"]
    assert "Logged in as **ana@lab.org**" in [c.value for c in at.sidebar.caption]
    assert not [b for b in at.button if b.key == "auth-logout"]   # the proxy owns the login
    line = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert line[-1]["user"] == "ana@lab.org" and line[-1]["study"] == "alpha"


def test_without_proxy_header_config_the_user_claim_is_ignored(app, studies_root, capsys):
    at = app(user={"email": "ana@lab.org"})      # no [auth], no trustedUserHeaders
    assert not [c for c in at.sidebar.caption if c.value.startswith("Logged in")]
    line = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert line[-1]["user"] == "anonymous"


# ---- study names from the URL ------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "reason"), [
    ("../outside", "is a path"),
    ("/etc", "absolute path"),
    ("%2e%2e%2foutside", "URL-encoded"),
    ("escape", "outside the studies root"),
    ("nosuch", "no study named 'nosuch'"),
])
def test_study_names_from_url_are_refused(app, studies_root, name, reason):
    at = app(secrets={"auth": AUTH}, user={"is_logged_in": True, "email": "ana@lab.org"},
             query={"study": name})
    assert not at.exception
    warnings = [w.value for w in at.sidebar.warning]
    assert len(warnings) == 1 and warnings[0].startswith("Study refused:")
    assert reason in warnings[0] and warnings[0].endswith("showing 'alpha'.")
    shown = " ".join(str(df.value) for df in at.dataframe)
    assert "SECRET-1" not in shown


def test_unknown_study_for_a_single_local_study(app):
    at = app(query={"study": "../../etc"})
    assert [w.value for w in at.sidebar.warning] == [
        "Study refused: no study named '../../etc' on this server; showing 'demo'."]


def test_server_default_is_deidentified(app, studies_root, monkeypatch):
    from components import filters

    assert filters.deid_mode()
    monkeypatch.setenv("DEID", "0")
    assert not filters.deid_mode()
    monkeypatch.delenv("STUDIES_ROOT")
    monkeypatch.setenv("DEID", "1")
    assert filters.deid_mode()
    monkeypatch.delenv("DEID")
    assert not filters.deid_mode()
