"""Run the deploy/ recipe on loopback ports without root: a self-signed certificate, an
htpasswd file, N `streamlit run app.py` processes and nginx with every file it writes in one
folder. The deployment tests (tests/deploy/) and the load test (benchmarks/load_test.py) use
it; it is also a quick way to try the recipe before installing it on a server:

    python -m deploy.local --processes 2     # the demo study; prints the URL, Ctrl-C stops
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "/explorer"
USER, PASSWORD = "alice", "correct horse battery staple"

__all__ = ["App", "Site", "tools_missing", "free_port", "make_cert", "make_htpasswd",
           "render", "nginx_main", "nginx_cmd", "start_app", "follow", "wait_healthy", "stop",
           "running_site", "BASE", "USER", "PASSWORD"]


def _which(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name,)
                                       if p.exists()), None)


NGINX, HTPASSWD, OPENSSL = _which("nginx"), _which("htpasswd"), _which("openssl")


def tools_missing() -> list[str]:
    """Names of the system tools this needs that are not installed."""
    return [n for n, p in (("nginx", NGINX), ("htpasswd", HTPASSWD), ("openssl", OPENSSL))
            if not p]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class App:
    """One app process and the lines it printed (the access log among them)."""

    proc: subprocess.Popen
    port: int
    lines: list[str] = field(default_factory=list)

    def events(self, event: str | None = None) -> list[dict]:
        """The access-log records (of one `event` kind when given); other lines are left
        out."""
        out = []
        for line in list(self.lines):
            if line.startswith('{"event":'):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if event is None or record.get("event") == event:
                    out.append(record)
        return out

    def views(self) -> list[dict]:
        """The page-view records of the access log."""
        return self.events("page_view")


@dataclass
class Site:
    https: str
    http: str
    tmp: Path
    cert: Path
    apps: dict[str, App]          # "127.0.0.1:PORT" -> app process
    nginx: subprocess.Popen

    def url(self, path: str = "/") -> str:
        return f"{self.https}{BASE}{path}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1 (two days)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def make_htpasswd(folder: Path, users: dict[str, str]) -> Path:
    path = folder / "htpasswd"
    for i, (user, password) in enumerate(users.items()):
        flags = "-bcB" if i == 0 else "-bB"
        subprocess.run([HTPASSWD, flags, str(path), user, password], check=True,
                       capture_output=True)
    return path


def render(out: Path, *, https_port: int, http_port: int, cert: Path, key: Path,
           htpasswd: Path | None, upstreams: list[str], sticky: str = "cookie",
           auth: str = "basic", extra: tuple[str, ...] = (
               "add_header X-Upstream $upstream_addr always;",)) -> Path:
    """deploy/render.py for loopback ports (X-Upstream names the serving process)."""
    cmd = [sys.executable, str(ROOT / "deploy" / "render.py"), "--out", str(out),
           "--server-name", "localhost", "--allowed-host", "localhost",
           "--allowed-host", "127.0.0.1", "--https-listen", f"127.0.0.1:{https_port}",
           "--http-listen", f"127.0.0.1:{http_port}", "--cert", str(cert), "--key", str(key),
           "--base-path", BASE, "--sticky", sticky, "--auth", auth,
           "--secret-conf", str(out / "nginx" / "cart-explorer-secret.conf")]
    for line in extra:
        cmd += ["--extra", line]
    if htpasswd:
        cmd += ["--htpasswd", str(htpasswd)]
    for u in upstreams:
        cmd += ["--upstream", u]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def nginx_main(tmp: Path, site_conf: Path) -> Path:
    """A main nginx.conf that keeps every file nginx writes inside `tmp`."""
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
        (tmp / d).mkdir(exist_ok=True)
    user = "user root;" if os.geteuid() == 0 else ""   # workers must read files under tmp
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/logs/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    include {site_conf};
}}
""")
    return conf


def nginx_cmd(tmp: Path, conf: Path, *extra: str) -> list[str]:
    return [NGINX, "-p", f"{tmp}/", "-e", f"{tmp}/logs/error.log", "-c", str(conf), *extra]


def start_app(config_dir: Path, studies: Path, port: int, *, env: dict | None = None) -> App:
    """`streamlit run app.py` in `config_dir` (its .streamlit/ settings) on `port`."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
           "--server.port", str(port)]
    full = {**os.environ, "STUDIES_ROOT": str(studies), "PYTHONUNBUFFERED": "1", **(env or {})}
    full.pop("STUDY_DIR", None)
    if "DEID" not in (env or {}):
        full.pop("DEID", None)
    proc = subprocess.Popen(cmd, cwd=config_dir, env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    return follow(proc, port)


def follow(proc: subprocess.Popen, port: int) -> App:
    """An App that collects the lines `proc` prints (stdout as text)."""
    app = App(proc, port)

    def pump() -> None:
        for line in proc.stdout:
            app.lines.append(line.strip())

    threading.Thread(target=pump, daemon=True).start()
    return app


def wait_healthy(url: str, proc: subprocess.Popen, log: list[str] | Path, *,
                 context: ssl.SSLContext | None = None, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    text = log.read_text(errors="replace") if isinstance(log, Path) and log.exists() else \
        "\n".join(log[-30:]) if isinstance(log, list) else ""
    raise RuntimeError(f"{url} did not answer (exit code {proc.poll()}):\n{text[-3000:]}")


def stop(*procs: subprocess.Popen) -> None:
    """Terminate every process, then wait for all of them together (kill after 5 s)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.time() + 5
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_site(tmp: Path, studies: Path, *, processes: int = 2,
                 env: dict | None = None) -> Iterator[Site]:
    """Certificate, htpasswd (USER/PASSWORD), rendered config, app processes and nginx."""
    cert, key = make_cert(tmp)
    htpasswd = make_htpasswd(tmp, {USER: PASSWORD})
    ports = [free_port() for _ in range(processes)]
    https_port, http_port = free_port(), free_port()
    upstreams = [f"127.0.0.1:{p}" for p in ports]
    out = render(tmp / "rendered", https_port=https_port, http_port=http_port, cert=cert,
                 key=key, htpasswd=htpasswd, upstreams=upstreams)
    # the service unit's CART_AUTH: basic auth at nginx, the user believed with its secret
    apps = {u: start_app(out / "streamlit", studies, p, env={"CART_AUTH": "proxy", **(env or {})})
            for u, p in zip(upstreams, ports, strict=True)}
    conf = nginx_main(tmp, out / "nginx" / "cart-explorer.conf")
    nginx = subprocess.Popen(nginx_cmd(tmp, conf), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        for u, app in apps.items():
            wait_healthy(f"http://{u}{BASE}/_stcore/health", app.proc, app.lines)
        site = Site(f"https://localhost:{https_port}", f"http://localhost:{http_port}", tmp,
                    cert, apps, nginx)
        wait_healthy(site.url("/_stcore/health"), nginx, tmp / "logs" / "error.log",
                     context=site.ssl_context())
        yield site
    finally:
        stop(nginx, *(app.proc for app in apps.values()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="run the deploy/ recipe on loopback ports")
    p.add_argument("--studies", type=Path,
                   help="STUDIES_ROOT (default: a copy of the demo study in the working folder)")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--dir", type=Path, help="working folder (default: a new temporary one)")
    args = p.parse_args(argv)
    missing = tools_missing()
    if missing:
        print(f"error: install {', '.join(missing)} (apt-get install nginx apache2-utils "
              "openssl)", file=sys.stderr)
        return 1
    import tempfile

    tmp = args.dir or Path(tempfile.mkdtemp(prefix="cart-deploy-"))
    tmp.mkdir(parents=True, exist_ok=True)
    studies = args.studies
    if studies is None:
        studies = tmp / "studies"
        shutil.copytree(ROOT / "sample_data" / "demo", studies / "demo", dirs_exist_ok=True)
    with running_site(tmp, studies.resolve(), processes=args.processes) as site:
        print(f"open {site.url('/')}  (user {USER!r}, password {PASSWORD!r}; "
              f"self-signed certificate {site.cert}); Ctrl-C stops")
        try:
            while all(a.proc.poll() is None for a in site.apps.values()):
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
