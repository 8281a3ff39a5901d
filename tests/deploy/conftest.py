"""The running deployment (deploy/local.py: nginx with TLS and basic auth in front of two app
processes on loopback ports) shared by the deployment tests, and small HTTP / browser helpers."""

from __future__ import annotations

import base64
import shutil
import urllib.error
import urllib.request

import pytest

from deploy import local
from deploy.local import PASSWORD, USER, Site


@pytest.fixture(scope="package")
def site(tmp_path_factory) -> Site:
    tmp = tmp_path_factory.mktemp("deploy")
    studies = tmp / "studies"
    shutil.copytree(local.ROOT / "sample_data" / "demo", studies / "demo")
    with local.running_site(tmp, studies, processes=2) as running:
        yield running


def get(site: Site, path: str, *, auth: tuple[str, str] | None = None,
        cookie: str | None = None, url: str | None = None,
        headers: dict[str, str] | None = None):
    """(status, headers, body) over TLS verified against the test certificate; no redirects."""
    req = urllib.request.Request(url or site.url(path))
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    if cookie:
        req.add_header("Cookie", cookie)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    ctx = site.ssl_context()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), NoRedirect)
    try:
        with opener.open(req, timeout=20) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def open_browser(browser, site: Site, route: str | None = None, *, credentials: bool = True,
                 headers: dict[str, str] | None = None):
    """(context, page, upstreams seen) for a browser through nginx with USER's credentials."""
    context = browser.new_context(
        ignore_https_errors=True, viewport={"width": 1400, "height": 900}, accept_downloads=True,
        http_credentials={"username": USER, "password": PASSWORD} if credentials else None,
        extra_http_headers=headers)
    if route:
        context.add_cookies([{"name": "cart_route", "value": route, "url": site.url("/")}])
    page = context.new_page()
    upstreams: list[str] = []
    page.on("response", lambda r: upstreams.append(r.headers.get("x-upstream", "")))
    return context, page, upstreams
