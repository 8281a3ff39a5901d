"""What stands between patient data and whoever can reach the server (docs/security.md): the
proxy proves itself to the app, a server without a login serves nothing, a local study listens
on 127.0.0.1 only, Host and origin checks on the websocket, a Content-Security-Policy the app
works under, no third-party fetch, deep links, and the access log for views, downloads and
refusals. Real processes on loopback ports: nginx and streamlit from deploy/local.py, and
single app processes started with the shipped or rendered settings."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from deploy import local
from deploy import render as deploy_render
from deploy.local import BASE, USER, Site
from tests.deploy.conftest import get, open_browser

pytestmark = pytest.mark.deploy

if local.tools_missing():
    pytest.skip(f"deployment tests need {', '.join(local.tools_missing())} "
                "(apt-get install nginx apache2-utils openssl)", allow_module_level=True)

SESSION = re.compile(r"[0-9a-f]{12}")


def _wait(predicate, timeout: float = 20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def _heading(page, name: str, timeout: float = 45_000) -> None:
    page.get_by_role("heading", name=name).first.wait_for(timeout=timeout)


def _all_events(site: Site, event: str) -> list[dict]:
    return [r for app in site.apps.values() for r in app.events(event)]


# ---- single app processes with their own settings -----------------------------------------------
@pytest.fixture(scope="module")
def lone_apps(tmp_path_factory):
    """App processes without nginx: "oidc" (CART_AUTH=oidc, no secrets.toml), "server" (a
    studies root, no login configured) and "local" (the shipped .streamlit/config.toml, the
    demo study, as `make run` starts it)."""
    tmp = tmp_path_factory.mktemp("lone")
    studies = tmp / "studies"
    shutil.copytree(local.ROOT / "sample_data" / "demo", studies / "demo")
    cert, key = local.make_cert(tmp)
    out = local.render(tmp / "oidc", https_port=local.free_port(), http_port=local.free_port(),
                       cert=cert, key=key, htpasswd=None, upstreams=["127.0.0.1:9"],
                       auth="oidc")
    config = out / "streamlit"
    assert "auth" not in tomllib.loads((config / ".streamlit" / "secrets.toml").read_text())
    bare = tmp / "bare"           # the same settings without any secrets.toml
    (bare / ".streamlit").mkdir(parents=True)
    shutil.copy(config / ".streamlit" / "config.toml", bare / ".streamlit" / "config.toml")
    apps = {"oidc": local.start_app(config, studies, local.free_port(),
                                    env={"CART_AUTH": "oidc"}),
            "server": local.start_app(bare, studies, local.free_port())}
    port = local.free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("STUDIES_ROOT", "CART_AUTH", "DEID", "STUDY_DIR")}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py",
                             "--server.port", str(port)], cwd=local.ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    apps["local"] = local.follow(proc, port)
    # a local study opened to the network by hand, without CART_OPEN_NETWORK=1 (make run
    # OPEN=1): the app refuses to serve it
    port = local.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py",
                             "--server.port", str(port), "--server.address", "0.0.0.0"],
                            cwd=local.ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    apps["anywhere"] = local.follow(proc, port)
    try:
        for name, app in apps.items():
            base = "" if name in ("local", "anywhere") else BASE
            local.wait_healthy(f"http://127.0.0.1:{app.port}{base}/_stcore/health", app.proc,
                               app.lines)
        yield apps
    finally:
        local.stop(*(app.proc for app in apps.values()))


def _lone_url(apps, name: str) -> str:
    return f"http://127.0.0.1:{apps[name].port}{'' if name in ('local', 'anywhere') else BASE}/"


@pytest.mark.parametrize(("name", "says"), [
    ("oidc", "no [auth] section"),
    ("server", "no login is configured"),
    ("anywhere", "server.address is '0.0.0.0'"),
])
def test_server_without_a_login_serves_no_data(lone_apps, browser, name, says):
    """The OIDC variant without secrets.toml [auth], a studies root without any login, and a
    local study listening on every interface: the page says what to configure, shows no
    study, and the refusal is logged."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(_lone_url(lone_apps, name))
        _heading(page, "Not configured for patient data")
        page.get_by_text(says).first.wait_for(timeout=20_000)
        body = page.inner_text("body")
        assert "kinetics" not in body.lower()          # no menu of the pages folder
        assert says in body and "docs/security.md" in body
        assert "demo" not in body.lower().replace("docs/", "")
        assert "Overview" not in body and "Patients" not in body
        refusal = _wait(lambda: lone_apps[name].events("refusal"))
        assert refusal and says in refusal[-1]["reason"]
        assert SESSION.fullmatch(refusal[-1]["session"]) and refusal[-1]["client"]
        assert not lone_apps[name].views()
    finally:
        context.close()


def test_overview_deep_link_on_a_fresh_server(lone_apps, browser):
    """The first request to a fresh `make run` server is the documented /overview link."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(_lone_url(lone_apps, "local") + "overview?days=0:90")
        _heading(page, "Overview")
        page.get_by_text("Responders vs non-responders").first.wait_for(timeout=20_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=45_000)
        time.sleep(1.5)
        assert page.get_by_text("Page not found").count() == 0
        assert page.get_by_text("No study is loaded").count() == 0
        # and again, now that the server has left the pages-folder mode
        page.goto(_lone_url(lone_apps, "local") + "overview")
        _heading(page, "Overview")
        page.locator(".js-plotly-plot").first.wait_for(timeout=45_000)
        time.sleep(1.5)
        assert page.get_by_text("Page not found").count() == 0
    finally:
        context.close()


def _listening(port: int) -> set[str]:
    """Local addresses of sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            addr, p = fields[1].split(":")
            if int(p, 16) == port and fields[3] == "0A":      # 0A = LISTEN
                raw = bytes.fromhex(addr)
                if width == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def test_local_mode_listens_on_loopback_only(lone_apps):
    shipped = tomllib.loads((local.ROOT / ".streamlit" / "config.toml").read_text())
    assert shipped["server"]["address"] == "127.0.0.1"
    assert shipped["server"]["enableCORS"] and shipped["server"]["enableXsrfProtection"]
    assert set(shipped["server"]["allowedHosts"]) == {"localhost", "127.0.0.1", "::1"}
    assert shipped["client"]["disableDataExport"] is True
    assert _listening(lone_apps["local"].port) == {"127.0.0.1"}
    make = subprocess.run(["make", "-n", "run"], cwd=local.ROOT, capture_output=True,
                          text=True, check=True).stdout
    assert "--server.address 127.0.0.1" in make and "0.0.0.0" not in make
    opened = subprocess.run(["make", "-n", "run", "OPEN=1"], cwd=local.ROOT,
                            capture_output=True, text=True, check=True).stdout
    assert "WITHOUT A LOGIN" in opened and "--server.address 0.0.0.0" in opened
    assert "CART_OPEN_NETWORK=1" in opened


def _ws_handshake(port: int, path: str, host: str, origin: str | None = None) -> int:
    """HTTP status of a websocket upgrade to `path` with the given Host (and Origin)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
             "Sec-WebSocket-Protocol: streamlit"]
    if origin:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status = s.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status.split()[1])


def test_websocket_refuses_other_hosts_and_origins(lone_apps):
    """DNS rebinding (a page on evil.example resolving to 127.0.0.1) and cross-origin pages
    cannot open the app's websocket; the app's own address can."""
    port = lone_apps["local"].port
    own = f"127.0.0.1:{port}"
    assert _ws_handshake(port, "/_stcore/stream", own, f"http://{own}") == 101
    assert _ws_handshake(port, "/_stcore/stream", f"localhost:{port}") == 101
    assert _ws_handshake(port, "/_stcore/stream", f"evil.example:{port}",
                         f"http://evil.example:{port}") != 101
    assert _ws_handshake(port, "/_stcore/stream", own, "http://evil.example") != 101


# ---- the proxy proves itself -------------------------------------------------------------------
def test_forged_user_header_straight_to_the_app_port_is_refused(site, browser):
    """Another user of the host sends X-Remote-User to an app port, bypassing nginx: no data,
    and the refusal is logged with the client and session, not as that user."""
    upstream, app = next(iter(site.apps.items()))
    before = len(app.events("refusal"))
    context = browser.new_context(extra_http_headers={"X-Remote-User": "bob@lab.org",
                                                      "X-Cart-Proxy-Secret": "guess"})
    try:
        page = context.new_page()
        page.goto(f"http://{upstream}{BASE}/")
        _heading(page, "Sign in through the lab server")
        page.get_by_text("answers only through").first.wait_for(timeout=20_000)
        body = page.inner_text("body")
        assert "kinetics" not in body.lower()
        assert "demo" not in body.lower() and "Logged in" not in body
        refusal = _wait(lambda: app.events("refusal")[before:])
        assert refusal, app.lines[-20:]
        record = refusal[-1]
        assert record["user"] == "anonymous" and record["client"] == "127.0.0.1"
        assert SESSION.fullmatch(record["session"])
        assert record.get("claimed_user") in (None, "bob@lab.org")
        assert not [v for v in app.views() if v["user"] == "bob@lab.org"]
    finally:
        context.close()


def test_through_nginx_with_credentials_the_user_is_known(site, browser):
    context, page, _ = open_browser(browser, site)
    try:
        before = len(_all_events(site, "page_view"))
        page.goto(site.url("/"))
        _heading(page, "Overview")
        assert page.get_by_text(f"Logged in as {USER}").first.is_visible()
        views = _wait(lambda: _all_events(site, "page_view")[before:])
        assert views[-1]["user"] == USER and views[-1]["client"] == "127.0.0.1"
        assert SESSION.fullmatch(views[-1]["session"])
    finally:
        context.close()


def test_client_headers_cannot_pass_the_proxy_check(site, browser):
    """Through nginx, a client's own X-Remote-User / secret header are overwritten."""
    context, page, _ = open_browser(browser, site, headers={"X-Remote-User": "bob@lab.org",
                                                            "X-Cart-Proxy-Secret": "guess"})
    try:
        page.goto(site.url("/"))
        _heading(page, "Overview")
        assert page.get_by_text(f"Logged in as {USER}").first.is_visible()
        assert not [v for v in _all_events(site, "page_view") if v["user"] == "bob@lab.org"]
    finally:
        context.close()


@pytest.mark.parametrize("auth", ["basic", "oidc"])
def test_render_writes_the_secret_privately_and_never_prints_it(tmp_path, auth):
    res = subprocess.run([sys.executable, str(local.ROOT / "deploy" / "render.py"), "--out",
                          str(tmp_path), "--auth", auth, "--htpasswd", "/etc/htpasswd"],
                         capture_output=True, text=True, check=True)
    secrets_toml = tmp_path / "streamlit" / ".streamlit" / "secrets.toml"
    nginx_secret = tmp_path / "nginx" / "cart-explorer-secret.conf"
    secret = re.search(r'secret = "([0-9a-f]{64})"', secrets_toml.read_text()).group(1)
    assert f'X-Cart-Proxy-Secret "{secret}"' in nginx_secret.read_text()
    assert secret not in res.stdout + res.stderr
    assert secret not in (tmp_path / "nginx" / "cart-explorer.conf").read_text()
    for path in (secrets_toml, nginx_secret):
        assert path.stat().st_mode & 0o777 == 0o600
    again = tmp_path / "again"
    subprocess.run([sys.executable, str(local.ROOT / "deploy" / "render.py"), "--out",
                    str(again), "--auth", auth, "--htpasswd", "/etc/htpasswd"],
                   capture_output=True, check=True)
    assert secret not in (again / "streamlit" / ".streamlit" / "secrets.toml").read_text()


# ---- what the browser may load --------------------------------------------------------------------
def test_csp_inline_script_hash_matches_the_installed_streamlit():
    import streamlit

    html = (Path(streamlit.__file__).parent / "static" / "index.html").read_text()
    inline = re.findall(r"<script>(.*?)</script>", html, re.S)
    hashes = {"'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
              for s in inline}
    assert hashes == {deploy_render.STREAMLIT_INLINE_SCRIPT}


def test_csp_header_and_the_app_works_under_it(site, browser):
    """Every answer carries the policy; pages with tables and WebGL figures render under it,
    nothing is refused by it, and nothing is fetched from another host (favicon included)."""
    status, headers, _ = get(site, "/", auth=(USER, local.PASSWORD))
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'self'" in csp
    assert "object-src 'none'" in csp
    context, page, _ = open_browser(browser, site)
    violations: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text or "Refused to" in m.text else None)
    page.on("request", lambda r: foreign.append(r.url)
            if not r.url.startswith((site.https, "data:", "blob:")) else None)
    try:
        page.goto(site.url("/"))
        _heading(page, "Overview")
        page.locator(".js-plotly-plot").first.wait_for(timeout=45_000)
        page.goto(site.url("/immune_landscape"))
        _heading(page, "Immune landscape")
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        time.sleep(1)
        icon = page.evaluate("document.querySelector(\"link[rel~='icon']\")?.href || ''")
        assert icon.startswith(site.https), icon
        assert not violations, violations
        assert not foreign, foreign
    finally:
        context.close()


def test_deep_links_open_their_page(site, browser):
    """/overview (the default page, also served at the root) and another page by its path."""
    context, page, _ = open_browser(browser, site)
    try:
        for path, title in (("/overview", "Overview"), ("/data_quality", "Data & quality"),
                            ("/", "Overview")):
            page.goto(site.url(path))
            _heading(page, title)
            page.locator(".js-plotly-plot").first.wait_for(timeout=45_000)   # the run is done
            time.sleep(1.5)
            assert page.get_by_text("Page not found").count() == 0, path
    finally:
        context.close()


# ---- the access log ------------------------------------------------------------------------------
def test_downloads_and_refusals_are_logged_with_user_address_and_session(site, browser):
    context, page, _ = open_browser(browser, site)
    try:
        before_dl = len(_all_events(site, "download"))
        before_ref = len(_all_events(site, "refusal"))
        page.goto(site.url("/data_quality?study=nosuch"))
        _heading(page, "Data & quality")
        button = page.locator(".st-key-dq-inventory-csv button")
        button.wait_for(timeout=30_000)
        with page.expect_download(timeout=30_000) as info:
            button.click()
        assert info.value.suggested_filename == "demo_inventory.csv"
        downloads = _wait(lambda: _all_events(site, "download")[before_dl:])
        refusals = _wait(lambda: _all_events(site, "refusal")[before_ref:])
    finally:
        context.close()
    assert downloads and refusals
    dl, ref = downloads[-1], refusals[-1]
    assert (dl["user"], dl["client"], dl["study"], dl["file"]) == \
        (USER, "127.0.0.1", "demo", "demo_inventory.csv")
    assert (ref["user"], ref["client"], ref["study"]) == (USER, "127.0.0.1", "nosuch")
    assert SESSION.fullmatch(dl["session"]) and dl["session"] == ref["session"]


def _toolbar_labels(page) -> list[str]:
    table = page.locator("[data-testid='stDataFrame']").first
    table.wait_for(timeout=45_000)
    time.sleep(1)
    table.hover()
    page.locator("[data-testid='stElementToolbar'] button").first.wait_for(timeout=10_000)
    return page.locator("[data-testid='stElementToolbar'] button").evaluate_all(
        "els => els.map(e => e.getAttribute('aria-label') || e.title || e.innerText)")


def test_table_toolbars_offer_no_csv_export(site, lone_apps, browser):
    """Streamlit's own "Download as CSV" skips formula escaping and the access log: it is off
    in the server's and in the shipped local settings (the app's CSV buttons stay)."""
    context, page, _ = open_browser(browser, site)
    try:
        page.goto(site.url("/data_quality"))
        labels = _toolbar_labels(page)
        assert "Search" in labels and "Download as CSV" not in labels, labels
        assert page.locator(".st-key-dq-inventory-csv button").count() == 1
    finally:
        context.close()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(_lone_url(lone_apps, "local") + "data_quality")
        labels = _toolbar_labels(page)
        assert "Search" in labels and "Download as CSV" not in labels, labels
    finally:
        context.close()
