"""Render the shared-server files from the templates next to this script.

    python deploy/render.py --out /tmp/cart-deploy --server-name lab.example.org \\
        --cert /etc/ssl/certs/cart.pem --key /etc/ssl/private/cart.key \\
        --base-path /explorer --upstream 127.0.0.1:8501 --upstream 127.0.0.1:8502 \\
        --auth basic --htpasswd /etc/nginx/cart-explorer.htpasswd

writes, into --out:
    nginx/cart-explorer.conf          the nginx site (http{} context)
    streamlit/.streamlit/config.toml  the app's settings (copy the .streamlit folder into
                                      --config-dir, next to secrets.toml for OIDC)
    systemd/cart-explorer@.service    one app process per port (instance name = port), with
                                      MemoryHigh/MemoryMax
    systemd/cart-explorer-scheduler.service, cart-explorer-worker@.service
                                      the jobs' Dask scheduler and worker processes
                                      (--jobs scheduler; deploy/README.md "Jobs")
    systemd/cart-explorer-recycle.service, .timer
                                      restart an app process above --recycle-mb, gently
    systemd/cart-explorer.target      the group the app and jobs units are PartOf (restart
                                      or stop them together)
  and (mode 0600, a new random secret on every run, never printed):
    nginx/cart-explorer-secret.conf   the header nginx adds to prove itself (to --secret-conf)
    streamlit/.streamlit/secrets.toml [proxy] secret: the app believes the user name (basic)
                                      and the client address nginx sends only with it; for
                                      OIDC append [auth] to this file

Placeholders are {{NAME}}; nginx's own $variables pass through untouched. A placeholder left
without a value is an error, so a template and this script cannot drift apart silently.
Standard library only: runs with the system python3 on a fresh server.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = {
    "nginx/cart-explorer.conf": HERE / "nginx" / "cart-explorer.conf.template",
    "streamlit/.streamlit/config.toml": HERE / "streamlit" / "config.toml.template",
    "systemd/cart-explorer@.service": HERE / "systemd" / "cart-explorer@.service.template",
    "systemd/cart-explorer-scheduler.service":
        HERE / "systemd" / "cart-explorer-scheduler.service.template",
    "systemd/cart-explorer-worker@.service":
        HERE / "systemd" / "cart-explorer-worker@.service.template",
    "systemd/cart-explorer-recycle.service":
        HERE / "systemd" / "cart-explorer-recycle.service.template",
    "systemd/cart-explorer-recycle.timer":
        HERE / "systemd" / "cart-explorer-recycle.timer.template",
    "systemd/cart-explorer.target": HERE / "systemd" / "cart-explorer.target.template",
}
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
SECRET_HEADER = "X-Cart-Proxy-Secret"     # components/access/login.py PROXY_SECRET_HEADER
# Streamlit's index.html has one inline script (`window.prerenderReady = false`); its hash
# lets the Content-Security-Policy forbid every other inline script. tests/deploy checks it
# against the installed streamlit, so an upgrade that changes it fails loudly.
STREAMLIT_INLINE_SCRIPT = "'sha256-THxz9J9+wf7rhwR2YkXJoSZ13UCmYyC+3lNDv2+8ugA='"
# 'unsafe-eval': plotly's WebGL traces (Scattergl, the immune landscape) compile their shaders
# with regl, which builds functions with Function(); without it those figures stay blank.
CSP = ("default-src 'self'; "
       f"script-src 'self' {STREAMLIT_INLINE_SCRIPT} 'unsafe-eval'; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
       "connect-src 'self'; worker-src 'self' blob:; frame-src 'self'; "
       "frame-ancestors 'self'; object-src 'none'; base-uri 'self'; form-action 'self'")


def render(text: str, values: dict[str, str]) -> str:
    """Fill every {{NAME}} in `text`; a name without a value raises KeyError."""
    missing = sorted({m for m in _PLACEHOLDER.findall(text) if m not in values})
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def values_from(args: argparse.Namespace) -> dict[str, str]:
    base = "/" + args.base_path.strip("/") if args.base_path.strip("/") else ""
    https_port = args.https_listen.rsplit(":", 1)[-1].split()[0]
    policy = {"cookie": "hash $cart_route_key consistent;", "ip_hash": "ip_hash;",
              "none": ""}[args.sticky]
    auth = ""
    if args.auth == "basic":
        if not args.htpasswd:
            raise SystemExit("--auth basic needs --htpasswd FILE (made with htpasswd -B)")
        auth = (f'    auth_basic "{args.realm}";\n'
                f"    auth_basic_user_file {args.htpasswd};")
    if args.auth == "basic":
        identity = ("        proxy_set_header X-Remote-User $remote_user;\n"
                    f"        include {args.secret_conf};")
    else:   # OIDC: the app logs users in; the secret proves only the client's address
        identity = ('        proxy_set_header X-Remote-User "";\n'
                    f"        include {args.secret_conf};")
    hosts = args.allowed_host or [args.server_name]
    host, _, port = args.scheduler.rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"--scheduler {args.scheduler!r}: give HOST:PORT (127.0.0.1:8786)")
    conns = f" max_conns={args.sessions_per_process}" if args.sessions_per_process else ""
    return {
        "SERVER_NAME": args.server_name,
        "HTTP_LISTEN": args.http_listen,
        "HTTPS_LISTEN": args.https_listen,
        "HTTPS_PORT_SUFFIX": "" if https_port == "443" else f":{https_port}",
        "TLS_CERT": args.cert,
        "TLS_KEY": args.key,
        "BASE_PATH": base,
        "BASE_URL_PATH": base.strip("/"),
        "COOKIE_PATH": f"{base}/",
        "ROOT_REDIRECT": (f"\n    location = / {{\n        return 302 {base}/;\n    }}"
                          if base else ""),
        "UPSTREAM_POLICY": policy,
        "UPSTREAM_SERVERS": "\n".join(f"    server {u} max_fails=3 fail_timeout=10s{conns};"
                                      for u in args.upstream),
        "AUTH": auth,
        "EXTRA": "\n".join(f"    {line.strip()}" for line in args.extra),
        "MAX_UPLOAD_MB": str(args.max_upload_mb),
        "ALLOWED_HOSTS": ", ".join(f'"{h}"' for h in hosts),
        "PROXY_IDENTITY": identity,
        "AUTH_MODE": "proxy" if args.auth == "basic" else "oidc",
        "CSP": CSP,
        "SERVICE_USER": args.service_user,
        "CONFIG_DIR": args.config_dir,
        "APP_DIR": args.app_dir,
        "STUDIES_ROOT": args.studies_root,
        "DEID": "1" if args.deid else "0",
        "MEMORY_MAX": args.memory_max,
        "MEMORY_HIGH": args.memory_high,
        "RECYCLE_MB": str(args.recycle_mb),
        "JOBS_SCHEDULER": f"tcp://{args.scheduler}" if args.jobs == "scheduler" else "",
        "LOCAL_WORKERS": str(args.local_workers),
        "SCHEDULER_ADDRESS": f"tcp://{args.scheduler}",
        "SCHEDULER_LISTEN": args.scheduler,
        "SCHEDULER_HOST": host,
        "SCHEDULER_PORT": port,
        "WORKER_MEMORY": args.worker_memory,
        "WORKER_MEMORY_MAX": _above(args.worker_memory),
    }


def _above(limit: str) -> str:
    """systemd MemoryMax a quarter above a Dask memory limit ("6GiB" -> "7680M")."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", limit, re.IGNORECASE)
    if not m:
        raise SystemExit(f"--worker-memory {limit!r}: give a size such as 6GiB or 4096MiB")
    scale = {"": 1 / 1024**2, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}
    return f"{round(float(m.group(1)) * scale[m.group(2).upper()] * 1.25)}M"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="folder to write the files into")
    p.add_argument("--server-name", default="localhost", help="host name users type")
    p.add_argument("--allowed-host", action="append", default=[],
                   help="host names Streamlit accepts (default: --server-name); repeat")
    p.add_argument("--https-listen", default="443", help="nginx TLS listen (port or addr:port)")
    p.add_argument("--http-listen", default="80", help="nginx plain-HTTP listen (redirects)")
    p.add_argument("--cert", default="/etc/ssl/certs/cart-explorer.pem")
    p.add_argument("--key", default="/etc/ssl/private/cart-explorer.key")
    p.add_argument("--base-path", default="/explorer", help='URL prefix ("" for the root)')
    p.add_argument("--upstream", action="append", default=[],
                   help="app process address (127.0.0.1:8501); repeat for several")
    p.add_argument("--sticky", choices=["cookie", "ip_hash", "none"], default="cookie",
                   help="how nginx keeps a browser on its app process")
    p.add_argument("--auth", choices=["basic", "oidc"], default="oidc",
                   help="basic: nginx htpasswd; oidc: st.login with secrets.toml [auth]")
    p.add_argument("--htpasswd", help="htpasswd file for --auth basic")
    p.add_argument("--realm", default="CAR-T explorer")
    p.add_argument("--secret-conf", default="/etc/nginx/cart-explorer-secret.conf",
                   help="where nginx reads the proxy's secret header from (--auth basic)")
    p.add_argument("--extra", action="append", default=[],
                   help="an extra nginx directive for the TLS server block; repeat")
    p.add_argument("--max-upload-mb", type=int, default=50)
    p.add_argument("--service-user", default="cart-explorer")
    p.add_argument("--config-dir", default="/etc/cart-explorer",
                   help="working directory of the service (holds .streamlit/)")
    p.add_argument("--app-dir", default="/opt/cart-explorer", help="checkout with .venv")
    p.add_argument("--studies-root", default="/srv/studies")
    p.add_argument("--no-deid", dest="deid", action="store_false",
                   help="show dates, exact ages and free text (identified data)")
    p.add_argument("--memory-max", default="6G", help="systemd MemoryMax per app process")
    p.add_argument("--memory-high", default="5G",
                   help="systemd MemoryHigh per app process (reclaim and slow down above it)")
    p.add_argument("--recycle-mb", type=int, default=4096,
                   help="cart-explorer-recycle.timer restarts an app process above this RSS")
    p.add_argument("--sessions-per-process", type=int, default=0,
                   help="nginx max_conns per app process (0: no cap): the sessions one "
                   "process may hold, so MemoryMax / this bounds the memory of a session")
    p.add_argument("--jobs", choices=["scheduler", "local"], default="scheduler",
                   help="scheduler: app processes send long work to the scheduler and "
                   "worker services; local: each app process starts its own local cluster")
    p.add_argument("--scheduler", default="127.0.0.1:8786",
                   help="address the jobs scheduler listens on (HOST:PORT)")
    p.add_argument("--worker-memory", default="6GiB",
                   help="Dask memory limit of one worker service (MemoryMax 25%% above)")
    p.add_argument("--local-workers", type=int, default=1,
                   help="--jobs local: worker processes of each app process's cluster")
    args = p.parse_args(argv)
    if not args.upstream:
        args.upstream = ["127.0.0.1:8501"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    values = values_from(args)
    for rel, template in TEMPLATES.items():
        target = args.out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.write_text(render(template.read_text(encoding="utf-8"), values),
                              encoding="utf-8")
        except KeyError as err:
            print(f"error: {template.name}: {err.args[0]}", file=sys.stderr)
            return 1
        print(f"wrote {target}")
    for target in write_proxy_secret(args.out, secrets.token_hex(32), auth=args.auth):
        print(f"wrote {target} (secret, mode 0600)")
    return 0


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)   # also when the file was there before


def write_proxy_secret(out: Path, secret: str, *, auth: str = "basic") -> list[Path]:
    """The shared secret, once for nginx (a header it adds to every request it passes on)
    and once for the app (secrets.toml [proxy]); both files readable by their owner only.
    With OIDC the secret proves only the client address nginx reports; the [auth] section is
    added to the same secrets.toml by hand."""
    nginx = out / "nginx" / "cart-explorer-secret.conf"
    app = out / "streamlit" / ".streamlit" / "secrets.toml"
    _write_private(nginx, "# proves to the app that a request came through nginx; keep private\n"
                          f'proxy_set_header {SECRET_HEADER} "{secret}";\n')
    _write_private(app, "# the header nginx adds to every request it passes on (deploy/render.py);"
                        "\n# the app believes X-Remote-User only together with it. Keep private."
                        f'\n[proxy]\nsecret = "{secret}"\nuser_header = "X-Remote-User"\n'
                        'address_header = "X-Real-IP"\n'
                        + ("" if auth == "basic" else
                           "\n# OIDC: append the [auth] section of "
                           "deploy/streamlit/secrets.toml.example here.\n"))
    return [nginx, app]


if __name__ == "__main__":
    sys.exit(main())
