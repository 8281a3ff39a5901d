"""Login (st.login / st.user), per-study allow-lists, study names from the URL and the access
log, run headless through app.py with AppTest (`at.secrets`, `at.user`)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"redirect_uri": "https://lab.example.org/oauth2callback",
        "cookie_secret": "test-cookie-secret", "client_id": "cart-explorer",
        "client_secret": "test-client-secret",
        "server_metadata_url": "https://idp.example.org/.well-known/openid-configuration"}
PATIENTS = "subject_id,age,sex\nP1,34,M\nP2,51,F\n"


SECRET = "0123456789abcdef" * 4


def _plain(text: str) -> str:
    """Markdown source with its backslash escapes undone: the text the user reads."""
    return re.sub(r"\\(.)", r"\1", text)


def _log(capsys) -> list[dict]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]


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
            query: dict | None = None, study: Path | None = None,
            headers: list[tuple[str, str]] | None = None):
        if study is not None:
            monkeypatch.setenv("STUDY_DIR", str(study))
        if headers is not None:
            # what the websocket handshake carried (AppTest has no connection of its own)
            from streamlit.runtime.context import ContextProxy, StreamlitHeaders

            monkeypatch.setattr(ContextProxy, "headers",
                                property(lambda self: StreamlitHeaders(headers)))
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
    monkeypatch.delenv("CART_AUTH", raising=False)
    monkeypatch.delenv("CART_OPEN_NETWORK", raising=False)
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
             user={"is_logged_in": True, "email": "ana@lab.org", "email_verified": True,
                   "name": "Ana Silva"})
    assert not at.exception
    assert set(_titles(at)) & _page_titles()
    assert "Logged in as **Ana Silva**" in [c.value for c in at.sidebar.caption]
    assert at.sidebar.button(key="auth-logout")
    line = [r for r in _log(capsys) if r["event"] == "page_view"]
    assert line and line[-1]["user"] == "ana@lab.org"
    assert re.fullmatch(r"[0-9a-f]{12}", line[-1]["session"]) and line[-1]["client"]
    at.sidebar.button(key="auth-logout").click().run()
    assert at.user == {"is_logged_in": False}
    at.run()  # a server sends the browser through /auth/logout to a fresh session
    assert at.button(key="auth-login") and not set(_titles(at)) & _page_titles()


def test_login_without_email_claim_still_offers_logout(app):
    at = app(secrets={"auth": AUTH}, user={"is_logged_in": True, "sub": "12345"})
    assert not at.exception
    assert "Logged in as **12345 (unverified)**" in [_plain(c.value)
                                                      for c in at.sidebar.caption]
    assert at.sidebar.button(key="auth-logout")


def test_without_auth_config_the_app_opens_directly(app):
    at = app(user={"is_logged_in": False})
    assert not at.exception
    assert set(_titles(at)) & _page_titles()
    assert not [b for b in at.button if b.key and b.key.startswith("auth-")]


# ---- allow-lists per study -------------------------------------------------------------------------
def test_allow_list_by_email(app, studies_root):
    at = app(secrets={"auth": AUTH}, user={"is_logged_in": True, "email": "ana@lab.org",
                                                   "email_verified": True})
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
    warnings = [_plain(w.value) for w in at.sidebar.warning]
    # the same words as for a study that does not exist: a refusal confirms nothing
    assert warnings == ["Study refused: no study named 'beta' is open to your account; "
                        "showing 'alpha'."]
    assert "Study alpha" in _plain(" ".join(c.value for c in at.sidebar.caption))


def test_server_without_login_serves_no_data(app, studies_root, capsys):
    """STUDIES_ROOT without [auth] or [proxy]: fail closed, say what to configure."""
    at = app()
    assert not at.exception
    assert _titles(at) == ["Not configured for patient data"]
    assert "no login is configured" in _plain(at.error[0].value)
    assert "docs/security.md" in at.error[0].value
    assert not at.dataframe and not at.sidebar.caption and not at.sidebar.multiselect
    refusals = [r for r in _log(capsys) if r["event"] == "refusal"]
    assert refusals and "no login is configured" in refusals[-1]["reason"]
    assert not [r for r in _log(capsys) if r["event"] == "page_view"]


def test_oidc_server_without_auth_section_serves_no_data(app, monkeypatch):
    """The OIDC variant (nginx asks for nothing): no secrets.toml [auth] means no data, even
    for a single study outside STUDIES_ROOT."""
    monkeypatch.setenv("CART_AUTH", "oidc")
    at = app(user={"is_logged_in": True, "email": "ana@lab.org", "email_verified": True})
    assert _titles(at) == ["Not configured for patient data"]
    assert "no [auth] section" in _plain(at.error[0].value)
    assert not at.dataframe and not at.sidebar.multiselect


@pytest.mark.parametrize("user", [{"email": "ana@lab.org"},
                                  {"email": "ana@lab.org", "email_verified": False},
                                  {"preferred_username": "ana@lab.org"}])
def test_unverified_email_does_not_open_a_restricted_study(app, studies_root, user):
    at = app(secrets={"auth": AUTH}, user={"is_logged_in": True, **user})
    assert not at.exception
    shown = _plain(" ".join(_study_options(at)))
    assert "Study alpha" in shown and "beta" not in shown
    assert "(unverified)" in shown


def test_no_permitted_study_says_so(app, studies_root, capsys):
    (studies_root / "alpha" / "study.toml").write_text('[access]\nemails = ["x@y.org"]\n')
    at = app(secrets={"auth": AUTH}, user={"is_logged_in": True, "email": "eve@lab.org"})
    assert not at.exception
    assert [e.value for e in at.sidebar.error] == [
        "Your account may not open any study on this server; ask a study's owner to add you "
        "to its [access] list."]
    assert not set(_titles(at)) & _page_titles()
    refusal = [r for r in _log(capsys) if r["event"] == "refusal"][-1]
    assert refusal["user"] == "eve@lab.org (unverified)" and "no study" in refusal["reason"]


def _proxy_headers(user: str = "ana@lab.org", secret: str = SECRET) -> list[tuple[str, str]]:
    return [("Host", "lab.example.org"), ("X-Cart-Proxy-Secret", secret),
            ("X-Remote-User", user), ("X-Real-IP", "10.1.2.3")]


def test_proven_proxy_user_names_the_viewer(app, studies_root, capsys):
    """nginx basic auth passes $remote_user in X-Remote-User together with the shared secret
    from secrets.toml [proxy]; only then is the user believed."""
    at = app(secrets={"proxy": {"secret": SECRET}}, headers=_proxy_headers())
    assert not at.exception
    assert _study_options(at) == ["alpha", "beta"]
    assert "Logged in as **ana@lab.org**" in [_plain(c.value) for c in at.sidebar.caption]
    assert not [b for b in at.button if b.key == "auth-logout"]   # the proxy owns the login
    view = [r for r in _log(capsys) if r["event"] == "page_view"][-1]
    assert (view["user"], view["study"], view["client"]) == ("ana@lab.org", "alpha", "10.1.2.3")


@pytest.mark.parametrize("headers", [
    [("X-Remote-User", "ana@lab.org")],                        # straight to the app port
    _proxy_headers(secret="0" * 64),                           # a guessed secret
    [],                                                        # nothing at all
])
def test_forged_proxy_user_is_refused_and_logged(app, studies_root, capsys, headers):
    at = app(secrets={"proxy": {"secret": SECRET}}, headers=headers)
    assert not at.exception
    assert _titles(at) == ["Sign in through the lab server"]
    assert not at.dataframe and not at.sidebar.caption and not at.sidebar.multiselect
    records = _log(capsys)
    assert not [r for r in records if r["event"] == "page_view"]
    refusal = [r for r in records if r["event"] == "refusal"][-1]
    assert refusal["user"] == "anonymous" and refusal["client"] and refusal["session"] != "-"
    assert SECRET not in json.dumps(records)


def test_trusted_user_headers_config_is_refused(app, studies_root):
    """server.trustedUserHeaders copies a header anyone can send into st.user: refuse."""
    from streamlit import config

    before = config.get_option("server.trustedUserHeaders")
    config.set_option("server.trustedUserHeaders", {"X-Remote-User": "email"})
    try:
        at = app(secrets={"auth": AUTH}, user={"email": "ana@lab.org", "is_logged_in": True})
    finally:
        config.set_option("server.trustedUserHeaders", before)
    assert _titles(at) == ["Not configured for patient data"]
    assert "trustedUserHeaders" in _plain(at.error[0].value)


def test_local_study_ignores_user_claims(app, capsys):
    at = app(user={"email": "ana@lab.org"})      # no [auth], no [proxy]: a local study
    assert not [c for c in at.sidebar.caption if c.value.startswith("Logged in")]
    line = [r for r in _log(capsys) if r["event"] == "page_view"]
    assert line[-1]["user"] == "anonymous"


# ---- study names from the URL ------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "reason"), [
    ("../outside", "is a path"),
    ("/etc", "absolute path"),
    ("%2e%2e%2foutside", "URL-encoded"),
    ("escape", "no study named 'escape' is open to your account"),   # a link out: said as
    ("nosuch", "no study named 'nosuch' is open to your account"),   # unknown
])
def test_study_names_from_url_are_refused(app, studies_root, name, reason):
    at = app(secrets={"auth": AUTH}, user={"is_logged_in": True, "email": "ana@lab.org", "email_verified": True},
             query={"study": name})
    assert not at.exception
    warnings = [_plain(w.value) for w in at.sidebar.warning]
    assert len(warnings) == 1 and warnings[0].startswith("Study refused:")
    assert reason in warnings[0] and warnings[0].endswith("showing 'alpha'.")
    shown = " ".join(str(df.value) for df in at.dataframe)
    assert "SECRET-1" not in shown


def test_unknown_study_for_a_single_local_study(app):
    at = app(query={"study": "../../etc"})
    assert [_plain(w.value) for w in at.sidebar.warning] == [
        "Study refused: no study named '../../etc' is open to your account; showing 'demo'."]


def test_server_default_is_deidentified(app, studies_root, monkeypatch):
    from components import session

    assert session.deid_mode()
    monkeypatch.setenv("DEID", "0")
    assert not session.deid_mode()
    monkeypatch.delenv("STUDIES_ROOT")
    monkeypatch.setenv("DEID", "1")
    assert session.deid_mode()
    monkeypatch.delenv("DEID")
    assert not session.deid_mode()


# ---- what the app opens on and what it logs -----------------------------------------------------------
def test_study_without_patients_opens_on_its_report(app, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "patients.csv").write_text("subject_id,age\n,abc\n")
    at = app(study=broken)
    assert not at.exception
    assert _titles(at) == ["Data & quality"]
    assert "no patient could be loaded" in " ".join(e.value for e in at.sidebar.error)
    assert at.metric[0].label == "Patients" and at.metric[0].value == "0"


def test_filter_changes_are_logged_once_each(app, capsys):
    at = app()
    _log(capsys)
    patient = at.sidebar.multiselect(key="f-patients").options[0]
    at.sidebar.multiselect(key="f-patients").select(patient).run()
    at.run()                                   # a rerun without a change writes nothing
    changes = [r for r in _log(capsys) if r["event"] == "filter_change"]
    assert len(changes) == 1
    assert changes[0]["patients"] == [patient] and changes[0]["study"] == "demo"
    assert changes[0]["days"] is None
    assert re.fullmatch(r"[0-9a-f]{12}", changes[0]["session"])


def test_oidc_behind_nginx_logs_the_address_nginx_proves(app, studies_root, capsys):
    user = {"is_logged_in": True, "email": "ana@lab.org", "email_verified": True}
    at = app(secrets={"auth": AUTH, "proxy": {"secret": SECRET}}, user=user,
             headers=[("X-Cart-Proxy-Secret", SECRET), ("X-Real-IP", "10.1.2.3")])
    assert not at.exception
    view = [r for r in _log(capsys) if r["event"] == "page_view"][-1]
    assert (view["user"], view["client"]) == ("ana@lab.org", "10.1.2.3")
    # an address header without the secret proves nothing
    at = app(secrets={"auth": AUTH, "proxy": {"secret": SECRET}}, user=user,
             headers=[("X-Real-IP", "10.6.6.6")])
    view = [r for r in _log(capsys) if r["event"] == "page_view"][-1]
    assert view["client"] == "127.0.0.1"
