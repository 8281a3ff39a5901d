"""CAR-T multi-omics explorer: entry point.

    streamlit run app.py                      # the demo study
    streamlit run app.py -- --study DIR       # another study folder (or STUDY_DIR=DIR)
    STUDIES_ROOT=/srv/studies streamlit run app.py   # every study below a root (lab server)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import streamlit as st

from components import access, filters

st.set_page_config(page_title="CAR-T explorer", page_icon=":material/biotech:", layout="wide")

_HERE = Path(__file__).resolve().parent

# (section, file, title, icon); the first page is the default.
PAGES = [
    ("Clinical", "pages/overview.py", "Overview", ":material/groups:"),
    ("Clinical", "pages/blood_counts.py", "Blood counts", ":material/bloodtype:"),
    ("Clinical", "pages/outcomes.py", "Outcomes", ":material/monitoring:"),
    ("CAR-T", "pages/kinetics.py", "Kinetics", ":material/trending_up:"),
    ("CAR-T", "pages/safety.py", "Cytokines & safety", ":material/emergency:"),
    ("Omics", "pages/immune_landscape.py", "Immune landscape", ":material/scatter_plot:"),
    ("Omics", "pages/compare.py", "Responders vs non-responders", ":material/compare_arrows:"),
    ("Omics", "pages/clones.py", "Clones & repertoire", ":material/account_tree:"),
    ("Study", "pages/slides.py", "Slides", ":material/slideshow:"),
    ("Study", "pages/data_quality.py", "Data & quality", ":material/fact_check:"),
]


def _navigation() -> st.navigation:
    sections: dict[str, list] = {}
    for section, file, title, icon in PAGES:
        sections.setdefault(section, []).append(
            st.Page(str(_HERE / file), title=title, icon=icon, url_path=Path(file).stem))
    return st.navigation(sections)


# ---- login, allow-list and access log (deploy/README.md) ------------------------------------
def _auth_section() -> Mapping | None:
    """secrets.toml `[auth]` (OIDC via st.login) when configured, else None."""
    try:
        if st.secrets.load_if_toml_exists() and "auth" in st.secrets:
            return st.secrets["auth"]
    except Exception:  # an unreadable secrets file must not open the app without login
        return {}
    return None


def _login_page() -> None:
    st.title("CAR-T explorer")
    st.info("This server holds patient data. Log in with your institution's account.")
    auth = _auth_section() or {}
    # named providers are sub-tables with their own client_id ([auth.microsoft]);
    # client_kwargs and the like are sub-tables too but not providers
    providers = [k for k, v in auth.items() if isinstance(v, Mapping) and "client_id" in v]
    if "client_id" in auth or not providers:
        if st.button("Log in", key="auth-login", type="primary", icon=":material/login:"):
            st.login()
    for name in providers:
        if st.button(f"Log in with {name}", key=f"auth-login-{name}", icon=":material/login:"):
            st.login(name)


def _viewer(auth: Mapping | None) -> access.Viewer | None:
    """Who is looking: OIDC claims, or the user a trusted proxy names in a header mapped by
    `server.trustedUserHeaders` (nginx basic auth; safe only when streamlit listens on
    127.0.0.1 behind that proxy, which overwrites the header)."""
    if auth is None and not _proxy_identity():
        return None
    viewer = access.Viewer.from_claims(st.user.to_dict())
    return viewer if viewer.email or viewer.groups else None


def _proxy_identity() -> bool:
    return bool(st.get_option("server.trustedUserHeaders"))


auth = _auth_section()
if auth is not None and not st.user.get("is_logged_in", False):
    st.navigation([st.Page(_login_page, title="Log in", url_path="login")],
                  position="hidden").run()
    st.stop()
viewer = _viewer(auth)
page = _navigation()
if auth is not None or viewer is not None:
    with st.sidebar:
        st.caption(f"Logged in as **{st.user.get('name') or (viewer or access.Viewer()).label}**")
        if auth is not None and st.button("Log out", key="auth-logout",
                                          icon=":material/logout:"):
            st.logout()
# allow-lists apply on a server (login, trusted proxy user or STUDIES_ROOT), not to a local study
enforce = auth is not None or _proxy_identity() or bool(os.environ.get("STUDIES_ROOT"))
ctx = filters.sidebar(may_open=(lambda folder: access.may_open(viewer, folder))
                      if enforce else None)
if ctx is None:
    st.stop()
if st.session_state.get("_logged_view") != (ctx.study.name, page.title):
    # one line per page view (not per widget rerun), to stdout for the service's journal
    st.session_state["_logged_view"] = (ctx.study.name, page.title)
    # one write call per line: sessions run in threads and print() would interleave
    sys.stdout.write(access.access_log_line(user=viewer.label if viewer else None,
                                            study=ctx.study.name, page=page.title) + "\n")
    sys.stdout.flush()
page.run()
