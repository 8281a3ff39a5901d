"""CAR-T multi-omics explorer: entry point.

    streamlit run app.py                      # the demo study
    streamlit run app.py -- --study DIR       # another study folder (or STUDY_DIR=DIR)
    STUDIES_ROOT=/srv/studies streamlit run app.py   # every study below a root (a lab server:
                                                     # serves nothing without a login,
                                                     # docs/security.md)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import RerunException, get_script_run_ctx

from components import access, render, safe, session, sidebar

_HERE = Path(__file__).resolve().parent

# a local icon file: an emoji or material icon as favicon makes the browser fetch an image from
# a third-party host
st.set_page_config(page_title="CAR-T explorer", page_icon=str(_HERE / "assets" / "favicon.png"),
                   layout="wide")

# (section, file, title, icon); the first page is the default.
PAGES = [
    ("Clinical", "pages/overview.py", "Overview", ":material/groups:"),
    ("Clinical", "pages/blood_counts.py", "Blood counts", ":material/bloodtype:"),
    ("Clinical", "pages/outcomes.py", "Outcomes", ":material/monitoring:"),
    ("Clinical", "pages/patient.py", "Patient", ":material/person:"),
    ("CAR-T", "pages/kinetics.py", "Kinetics", ":material/trending_up:"),
    ("CAR-T", "pages/safety.py", "Cytokines & safety", ":material/emergency:"),
    ("Omics", "pages/immune_landscape.py", "Immune landscape", ":material/scatter_plot:"),
    ("Omics", "pages/cytometry.py", "Cytometry", ":material/filter_alt:"),
    ("Omics", "pages/compare.py", "Responders vs non-responders", ":material/compare_arrows:"),
    ("Omics", "pages/clones.py", "Clones & repertoire", ":material/account_tree:"),
    ("Study", "pages/slides.py", "Slides", ":material/slideshow:"),
    ("Study", "pages/data_quality.py", "Data & quality", ":material/fact_check:"),
    ("Study", "pages/import_data.py", "Import data", ":material/upload_file:"),
]


def _navigation() -> st.navigation:
    sections: dict[str, list] = {}
    for i, (section, file, title, icon) in enumerate(PAGES):
        stem = Path(file).stem
        # the default page is served at the app root; its own path (/overview, the documented
        # link) is a hidden second entry of the same file
        sections.setdefault(section, []).append(
            st.Page(str(_HERE / file), title=title, icon=icon,
                    url_path=f"{stem}-home" if i == 0 else stem, default=i == 0))
    alias = st.Page(str(_HERE / PAGES[0][1]), title=PAGES[0][2], icon=PAGES[0][3],
                    url_path=Path(PAGES[0][1]).stem, visibility="hidden")
    sections[PAGES[0][0]].append(alias)
    page = st.navigation(sections)
    if page.url_path == alias.url_path:
        # the navigation highlights the page it shows, and the hidden entry has no link to
        # highlight: open the default page at the root, with the link's query string
        qp = st.query_params
        st.switch_page(sections[PAGES[0][0]][0],
                       query_params=[(k, v) for k in qp for v in qp.get_all(k)])
    return page


# ---- login, allow-list and access log (docs/security.md) ------------------------------------
def _secrets_section(name: str) -> Mapping | None:
    """secrets.toml `[name]` when present, None when absent, {} when secrets.toml is unreadable
    (which must not open the app without login)."""
    try:
        if st.secrets.load_if_toml_exists() and name in st.secrets:
            return st.secrets[name]
    except Exception:  # noqa: BLE001 - unreadable secrets: the app opens without them
        return {}
    return None


def _login_config() -> access.LoginConfig:
    return access.login_config(
        auth=_secrets_section("auth"), proxy=_secrets_section("proxy"),
        server=bool(os.environ.get("STUDIES_ROOT")), expected=os.environ.get("CART_AUTH", ""),
        trusted_user_headers=st.get_option("server.trustedUserHeaders"),
        address=_listen_address(),
        open_network=os.environ.get("CART_OPEN_NETWORK", "").strip() == "1")


def _listen_address() -> str | None:
    """server.address; "" when unset (Streamlit then listens on every interface) in a real
    server, None in a headless run without a connection (AppTest), where it means nothing."""
    address = st.get_option("server.address")
    if address:
        return str(address)
    return "" if _header_pairs() else None


def _session_tag() -> str:
    ctx = get_script_run_ctx()
    return access.session_tag(ctx.session_id if ctx is not None else None)


def _peer_address() -> str:
    # the websocket peer; Streamlit reports loopback connections as None
    address = st.context.ip_address
    return address if isinstance(address, str) and address else "127.0.0.1"


def _refuse(title: str, reason: str, *, shown: str, **fields: object) -> None:
    """Log the refusal once per session and reason, show `shown` and nothing else, stop."""
    if st.session_state.get("_refused") != reason:
        st.session_state["_refused"] = reason
        render.audit("refusal", reason=reason, **fields)

    def refusal_page() -> None:
        st.title(title)
        st.error(shown)

    # a hidden navigation of one page: no menu of the pages/ folder, every URL lands here
    st.navigation([st.Page(refusal_page, title=title, url_path="refused")],
                  position="hidden").run()
    st.stop()


def _login_page() -> None:
    st.title("CAR-T explorer")
    st.info("This server holds patient data. Log in with your institution's account.")
    auth = _secrets_section("auth") or {}
    # named providers are sub-tables with their own client_id ([auth.microsoft]);
    # client_kwargs and the like are sub-tables too but not providers
    providers = [k for k, v in auth.items() if isinstance(v, Mapping) and "client_id" in v]
    if "client_id" in auth or not providers:
        if st.button("Log in", key="auth-login", type="primary", icon=":material/login:"):
            st.login()
    for name in providers:
        if st.button(f"Log in with {name}", key=f"auth-login-{name}", icon=":material/login:"):
            st.login(name)


def _viewer(login: access.LoginConfig) -> access.Viewer | None:
    """Who is looking (None for a local study without login); refuses and stops otherwise."""
    session = _session_tag()
    if login.mode == "refuse":
        render.set_audit_identity(user=None, client=_peer_address(), session=session)
        _refuse("Not configured for patient data", login.problem, shown=(
            "This server serves no study data until a login is configured. "
            f"{login.problem} See docs/security.md."))
    if login.mode == "proxy":
        check = access.check_proxy(_header_pairs(), login)
        if check.viewer is None:
            render.set_audit_identity(user=None, client=_peer_address(), session=session)
            _refuse("Sign in through the lab server", check.problem,
                    claimed_user=check.claimed_user,
                    shown="This app answers only through the lab server's login page; "
                          "open it at the address your lab gave you.")
        render.set_audit_identity(user=check.viewer.label,
                                  client=check.client or _peer_address(), session=session,
                                  viewer=check.viewer)
        return check.viewer
    if login.mode == "oidc":
        if not st.user.get("is_logged_in", False):
            render.set_audit_identity(user=None, client=_peer_address(), session=session)
            st.navigation([st.Page(_login_page, title="Log in", url_path="login")],
                          position="hidden").run()
            st.stop()
        viewer = access.Viewer.from_claims(st.user.to_dict())
        client = access.proxy_address(_header_pairs(), login) or _peer_address()
        render.set_audit_identity(user=viewer.label, client=client, session=session,
                                  viewer=viewer)
        return viewer
    render.set_audit_identity(user=None, client=_peer_address(), session=session)
    return None


def _header_pairs() -> list[tuple[str, str]]:
    """Every header of the websocket handshake, repeated ones included."""
    headers = st.context.headers
    return [(name, value) for name in dict.fromkeys(headers)
            for value in headers.get_all(name)]


def _show_identity(login: access.LoginConfig, viewer: access.Viewer | None) -> None:
    if login.mode == "none":
        return
    with st.sidebar:
        shown = st.user.get("name") if login.mode == "oidc" else None
        st.caption(f"Logged in as **{safe.md(shown or (viewer or access.Viewer()).label)}**")
        if login.mode == "oidc" and st.button("Log out", key="auth-logout",
                                              icon=":material/logout:"):
            st.logout()


def _open_report_if_broken(ctx: session.PageContext, page: st.Page) -> None:
    """A study whose patients could not be read opens on its Data & quality report (once per
    study and session), not on an empty Overview."""
    study = ctx.study
    if not study.report.errors or study.subject_ids:
        return
    report = next(f for _, f, _, _ in PAGES if f.endswith("data_quality.py"))
    with st.sidebar:
        st.error(f"{len(study.report.errors)} problem(s) in this study's files; no patient "
                 "could be loaded. The Data & quality page says what to fix.")
    if page.title != "Data & quality" and \
            st.session_state.get("_report_opened") != study.cache_key:
        st.session_state["_report_opened"] = study.cache_key
        # keep ?study= (and the cohort): without it the next run opens the default study
        st.switch_page(str(_HERE / report), query_params=st.query_params.to_dict())


login = _login_config()
viewer = _viewer(login)
page = _navigation()
_show_identity(login, viewer)
# allow-lists apply whenever someone is logged in or the app serves a studies root
enforce = login.mode != "none" or bool(os.environ.get("STUDIES_ROOT"))
ctx = sidebar.sidebar(may_open=(lambda folder: access.may_open(viewer, folder))
                      if enforce else None, page=page.url_path)
if ctx is None:
    st.stop()
_open_report_if_broken(ctx, page)
if st.session_state.get("_logged_view") != (ctx.study.name, page.title):
    # one line per page view (not per widget rerun), to stdout for the service's journal
    st.session_state["_logged_view"] = (ctx.study.name, page.title)
    render.audit("page_view", study=ctx.study.name, page=page.title)
completed = False
try:
    page.run()
    completed = True
except RerunException:
    raise     # cut short: options the page did not reach yet stay in the URL
except BaseException:
    completed = True    # st.stop() or an error: the page drew what it draws
    raise
finally:
    sidebar.finish_url(completed=completed)
