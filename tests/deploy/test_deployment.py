"""The deploy/ recipe for real: two `streamlit run app.py` processes behind nginx (TLS with a
self-signed certificate, basic auth, cookie-sticky sessions), rendered from the repo's
templates by deploy/render.py into a temporary folder. Everything listens on free loopback
ports; nginx runs with a temporary prefix (pid, logs and temp files there)."""

from __future__ import annotations

import re
import subprocess
import time
import tomllib

import pytest

from deploy import local
from deploy.local import BASE, PASSWORD, USER, App, Site
from tests.deploy.conftest import get as _get
from tests.deploy.conftest import open_browser as _open

pytestmark = pytest.mark.deploy

if local.tools_missing():
    pytest.skip(f"deployment tests need {', '.join(local.tools_missing())} "
                "(apt-get install nginx apache2-utils openssl)", allow_module_level=True)


def _first_page_title() -> str:
    from tests.test_app_pages import PAGES

    return PAGES[0][1]


def test_without_credentials_the_app_answers_401(site):
    status, headers, _ = _get(site, "/")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic")
    assert _get(site, "/", auth=(USER, "wrong password"))[0] == 401
    assert _get(site, "/_stcore/stream")[0] == 401
    # the security headers come with every answer
    assert headers["Strict-Transport-Security"] and headers["X-Content-Type-Options"]


def test_health_check_needs_no_credentials(site):
    status, _, body = _get(site, "/_stcore/health")
    assert (status, body) == (200, b"ok")


def test_plain_http_redirects_to_https(site):
    status, headers, _ = _get(site, "/", url=f"{site.http}{BASE}/")
    assert status == 301
    assert headers["Location"] == f"{site.https}{BASE}/"


def test_page_and_static_assets_with_credentials(site):
    status, headers, body = _get(site, "/", auth=(USER, PASSWORD))
    assert status == 200 and b'<div id="root">' in body
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("cart_route=") and "Secure" in cookie and "HttpOnly" in cookie
    assets = re.findall(rb'(?:src|href)="\.?/?(static/[^"]+\.(?:js|css))"', body)
    assert assets, "the page names no static assets"
    route = cookie.split(";")[0]
    for asset in assets[:3]:
        status, headers, data = _get(site, f"/{asset.decode()}", auth=(USER, PASSWORD),
                                     cookie=route)
        assert status == 200 and len(data) > 1000, asset
        assert "javascript" in headers["Content-Type"] or "css" in headers["Content-Type"]


def _route_cookies(site: Site) -> dict[str, str]:
    """A cart_route cookie value for each app process (found by probing the health check)."""
    found: dict[str, str] = {}
    for i in range(200):
        value = f"probe{i:04d}"
        _, headers, _ = _get(site, "/_stcore/health", cookie=f"cart_route={value}")
        found.setdefault(headers["X-Upstream"], value)
        if len(found) == len(site.apps):
            return found
    raise AssertionError(f"200 cookies all went to {list(found)}")


def test_same_cookie_same_process(site):
    for upstream, value in _route_cookies(site).items():
        for _ in range(5):
            _, headers, _ = _get(site, "/_stcore/health", cookie=f"cart_route={value}")
            assert headers["X-Upstream"] == upstream


# ---- through a real browser ---------------------------------------------------------------------------
def _wait_for_app(page, title: str) -> None:
    page.get_by_role("heading", name=title).first.wait_for(timeout=45_000)


def _wait_view(app: App, before: int) -> None:
    deadline = time.time() + 20
    while len(app.views()) <= before and time.time() < deadline:
        time.sleep(0.1)


def test_sessions_stay_on_their_process_and_both_serve(site, browser):
    """One browser per process (by its route cookie), loaded side by side: both processes
    serve the page; each browser's requests and reloads stay on its own process."""
    title = _first_page_title()
    routes = _route_cookies(site)
    opened = {u: _open(browser, site, route) for u, route in routes.items()}
    try:
        before = {u: len(app.views()) for u, app in site.apps.items()}
        for _, page, _ in opened.values():
            page.goto(site.url("/"))
        for upstream, (_, page, _) in opened.items():
            _wait_for_app(page, title)
            _wait_view(site.apps[upstream], before[upstream])
        assert all(len(app.views()) > before[u] for u, app in site.apps.items()), \
            "a process served no page"
        for upstream, (_, page, upstreams) in opened.items():
            counts = {u: len(app.views()) for u, app in site.apps.items()}
            page.reload()
            _wait_for_app(page, title)
            _wait_view(site.apps[upstream], counts[upstream])
            assert len(site.apps[upstream].views()) > counts[upstream]
            assert {u: len(a.views()) for u, a in site.apps.items() if u != upstream} == \
                {u: n for u, n in counts.items() if u != upstream}, "a reload changed process"
            assert {u for u in upstreams if u} == {upstream}
    finally:
        for context, _, _ in opened.values():
            context.close()


def test_browser_loads_the_app_through_nginx(site, browser):
    """Page content only appears once the websocket through nginx works."""
    context, page, _ = _open(browser, site)
    try:
        page.goto(site.url("/"))
        title = _first_page_title()
        _wait_for_app(page, title)
        assert page.get_by_text(f"Logged in as {USER}").first.is_visible()
        views = [v for app in site.apps.values() for v in app.views()]
        assert any(v["user"] == USER and v["study"] == "demo" and v["page"] == title
                   for v in views), views
    finally:
        context.close()


def test_other_variants_pass_nginx_config_check(site, tmp_path):
    """ip_hash stickiness and the OIDC variant (no basic auth) are valid nginx too."""
    for sticky, auth in (("ip_hash", "oidc"), ("none", "basic")):
        out = local.render(tmp_path / f"{sticky}-{auth}", https_port=local.free_port(),
                           http_port=local.free_port(), cert=site.cert,
                           key=site.tmp / "key.pem", htpasswd=site.tmp / "htpasswd",
                           upstreams=["127.0.0.1:9"], sticky=sticky, auth=auth)
        conf = local.nginx_main(tmp_path, out / "nginx" / "cart-explorer.conf")
        res = subprocess.run(local.nginx_cmd(tmp_path, conf, "-t"), capture_output=True,
                             text=True)
        assert res.returncode == 0, res.stderr
        toml = (out / "streamlit" / ".streamlit" / "config.toml").read_text()
        assert "trustedUserHeaders =" not in toml and "disableDataExport = true" in toml
        site_conf = (out / "nginx" / "cart-explorer.conf").read_text()
        assert "Content-Security-Policy" in site_conf
        # only the basic-auth variant passes a user; both prove themselves with the secret
        assert ("$remote_user" in site_conf) == (auth == "basic")
        assert "cart-explorer-secret.conf;" in site_conf
        secrets_toml = tomllib.loads((out / "streamlit" / ".streamlit" / "secrets.toml")
                                     .read_text())
        assert len(secrets_toml["proxy"]["secret"]) == 64 and "auth" not in secrets_toml
