"""Which login applies (OIDC, a reverse proxy proving itself with a shared secret, none for a
local study, or refuse) and the check of a proxy's headers."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from components.access.allowlist import Viewer

__all__ = ["PROXY_SECRET_HEADER", "MIN_SECRET_LENGTH", "LoginConfig", "ProxyCheck",
           "is_loopback", "login_config", "proxy_address", "check_proxy"]

PROXY_SECRET_HEADER = "X-Cart-Proxy-Secret"
MIN_SECRET_LENGTH = 32
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


@dataclass(frozen=True)
class LoginConfig:
    """How this process learns who is looking. `mode`: "oidc" (st.login with secrets.toml
    [auth]), "proxy" (user name from a proxy proving itself with a shared secret), "none"
    (a local study on this computer) or "refuse" (a server without a usable login: no data
    is served; `problem` says what to configure)."""

    mode: str
    problem: str = ""
    secret: str = field(default="", repr=False)    # never printed, never logged
    user_header: str = "X-Remote-User"
    address_header: str = "X-Real-IP"
    secret_header: str = PROXY_SECRET_HEADER


def is_loopback(address: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for "" (every interface) and others."""
    if not address:
        return False
    if address.strip("[]").lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def login_config(*, auth: Mapping | None, proxy: Any, server: bool, expected: str = "",
                 trusted_user_headers: Any = None, address: str | None = "127.0.0.1",
                 open_network: bool = False) -> LoginConfig:
    """Decide the login from what is configured.

    `auth`: secrets.toml [auth] (None when absent); `proxy`: secrets.toml [proxy] (None when
    absent); `server`: a shared server (STUDIES_ROOT set); `expected`: what the deployment
    says it uses (CART_AUTH=oidc|proxy in the service unit; "" when unset);
    `trusted_user_headers`: Streamlit's server.trustedUserHeaders, which copies a header
    anyone can send into st.user and is refused outright; `address`: server.address ("" when
    unset: every interface; None when not known, as in a headless test run);
    `open_network`: CART_OPEN_NETWORK=1, a local study served to the network on purpose.
    """
    if trusted_user_headers:
        return LoginConfig("refuse", "server.trustedUserHeaders is set: Streamlit would copy a "
                           "header that any client can send into the user's identity. Remove "
                           "it from .streamlit/config.toml; a proxy login uses the shared "
                           "secret in secrets.toml [proxy] instead.")
    expected = (expected or "").strip().lower()
    if expected not in ("", "oidc", "proxy"):
        return LoginConfig("refuse", f"CART_AUTH={expected!r} is not known; use oidc or proxy.")
    secret, problem = _proxy_secret(proxy)
    if auth is not None and expected != "proxy":
        if not isinstance(auth, Mapping) or not auth:
            return LoginConfig("refuse", "secrets.toml [auth] cannot be read or is empty; "
                               "fill it in as in deploy/streamlit/secrets.toml.example.")
        if problem:
            return LoginConfig("refuse", problem)
        # behind nginx the [proxy] secret, when given, proves only the client's address
        return LoginConfig("oidc", secret=secret, **_proxy_headers(proxy))
    if proxy is not None and expected != "oidc":
        if problem:
            return LoginConfig("refuse", problem)
        return LoginConfig("proxy", secret=secret, **_proxy_headers(proxy))
    if expected == "oidc":
        return LoginConfig("refuse", "This server is set up for OIDC login (CART_AUTH=oidc) "
                           "but secrets.toml has no [auth] section. Copy "
                           "deploy/streamlit/secrets.toml.example next to .streamlit/config.toml "
                           "as .streamlit/secrets.toml and fill it in.")
    if expected == "proxy":
        return LoginConfig("refuse", "This server is set up for a proxy login (CART_AUTH=proxy) "
                           "but secrets.toml has no [proxy] secret. Copy the secrets.toml that "
                           "deploy/render.py wrote into the service's .streamlit/ folder.")
    if server:
        return LoginConfig("refuse", "This is a shared server (STUDIES_ROOT is set) and no "
                           "login is configured. Configure one: OIDC (secrets.toml [auth], "
                           "render with --auth oidc) or nginx basic auth (render with --auth "
                           "basic, which writes the proxy's shared secret into secrets.toml "
                           "[proxy]).")
    if address is not None and not is_loopback(address) and not open_network:
        where = f"server.address is {address!r}" if address else \
            "server.address is not set, so the app listens on every network interface"
        return LoginConfig("refuse", f"{where}: the study would be open to the network "
                           "without a login. Start it from the project folder (its "
                           ".streamlit/config.toml listens on 127.0.0.1) or with `make run`, "
                           "configure a login, or set CART_OPEN_NETWORK=1 to open it on "
                           "purpose (make run OPEN=1).")
    return LoginConfig("none")


def _proxy_secret(proxy: Any) -> tuple[str, str]:
    """(secret, problem) of secrets.toml [proxy]; ("", "") when there is none."""
    if proxy is None:
        return "", ""
    if not isinstance(proxy, Mapping):
        return "", "secrets.toml [proxy] is not a table."
    secret = str(proxy.get("secret") or "")
    if len(secret) < MIN_SECRET_LENGTH:
        return "", (f"secrets.toml [proxy] secret is missing or shorter than "
                    f"{MIN_SECRET_LENGTH} characters; render the deployment again with "
                    "deploy/render.py, which generates one.")
    return secret, ""


def _proxy_headers(proxy: Any) -> dict[str, str]:
    if not isinstance(proxy, Mapping):
        return {}
    return {"user_header": str(proxy.get("user_header") or "X-Remote-User"),
            "address_header": str(proxy.get("address_header") or "X-Real-IP")}


def proxy_address(headers: Mapping[str, str] | Iterable[tuple[str, str]],
                  config: LoginConfig) -> str | None:
    """The client address nginx reports, when the request carries the proxy's secret (else
    None: an address header anyone can send proves nothing)."""
    if not config.secret:
        return None
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
    sent = _header_values(pairs, config.secret_header)
    if len(sent) != 1 or not hmac.compare_digest(sent[0].encode("utf-8", "replace"),
                                                 config.secret.encode("utf-8")):
        return None
    addresses = _header_values(pairs, config.address_header)
    return addresses[0][:64] if len(addresses) == 1 else None


@dataclass(frozen=True)
class ProxyCheck:
    """The outcome of checking one connection's headers against the proxy's secret."""

    viewer: Viewer | None
    problem: str = ""
    claimed_user: str | None = None
    client: str | None = None


def _header_values(headers: Mapping[str, str] | Iterable[tuple[str, str]],
                   name: str) -> list[str]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    return [str(v) for k, v in pairs if str(k).lower() == wanted]


def check_proxy(headers: Mapping[str, str] | Iterable[tuple[str, str]],
                config: LoginConfig) -> ProxyCheck:
    """Believe the proxy's user header only when the request carries the proxy's secret.

    The comparison is constant-time (hmac.compare_digest). A header given twice, an empty
    user or a wrong or missing secret is refused; `problem` says which, without the secret.
    """
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
    users = _header_values(pairs, config.user_header)
    claimed = users[0][:200] if users else None
    secrets_sent = _header_values(pairs, config.secret_header)
    if not secrets_sent:
        return ProxyCheck(None, f"no {config.secret_header} header: the request did not come "
                          "through the proxy", claimed)
    if len(secrets_sent) > 1:
        return ProxyCheck(None, f"{config.secret_header} given more than once", claimed)
    if not hmac.compare_digest(secrets_sent[0].encode("utf-8", "replace"),
                               config.secret.encode("utf-8")):
        return ProxyCheck(None, f"{config.secret_header} does not match", claimed)
    if len(users) != 1 or not users[0].strip():
        return ProxyCheck(None, f"the proxy sent {len(users)} {config.user_header} "
                          "header(s) with a user name; expected one", claimed)
    addresses = _header_values(pairs, config.address_header)
    client = addresses[0][:64] if len(addresses) == 1 else None
    return ProxyCheck(Viewer.from_proxy(users[0]), "", claimed, client)
