"""Who may open which study on a shared server, and which folder a study name may mean.

No streamlit here: `app.py` and `components/filters.py` call these rules with the logged-in user
and the URL's study name.

- Study names come only from the folders listed directly below `STUDIES_ROOT`. A name from a URL
  is matched against that list, never joined onto a path: `..`, absolute paths, separators,
  URL-encoded (also double-encoded) traversal and symlinks that resolve outside the root are
  refused with a message that says why (OWASP "Path Traversal": allow-list the names, then
  canonicalise and check the prefix).
- A study may restrict itself to named users in its `study.toml`:

      [access]
      emails = ["ana@lab.org", "@partner.org"]   # an entry starting with "@" admits a domain
      groups = ["cart-core"]                      # matched against the identity's groups claim

  No `[access]` table means every user who got past the login may open the study. A study with
  an allow-list and a viewer without identity is refused (fail closed), as is a study whose
  study.toml cannot be read but names an `[access]` table. E-mail entries match only an
  e-mail the identity provider marked verified (`email_verified` true) or a user name proven
  by the proxy; `preferred_username` and `upn` are shown, never used to admit.
- Who is looking on a server: an OIDC login (`st.login`, secrets.toml `[auth]`), or a user name
  from the reverse proxy, believed only when the request also carries the proxy's shared
  secret (secrets.toml `[proxy]`, compared in constant time). `login_config` decides which
  applies and refuses (fail closed) a server without either.
- One JSON line per event (page view, download, export, refusal, filter change) with user,
  client address and a session tag, for the server's access log.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

__all__ = ["AccessError", "AccessRule", "Viewer", "LoginConfig", "ProxyCheck", "list_studies",
           "resolve_study", "read_access", "may_open", "login_config", "check_proxy",
           "proxy_address", "session_tag", "is_loopback", "access_log_line", "event_line",
           "may_create_studies", "study_creators"]

_ACCESS_HEADER = re.compile(r"^\s*\[\s*access\s*\]", re.MULTILINE)


class AccessError(ValueError):
    """A study name or folder that this server refuses to open; the message says why."""


# ---- study names under the root -----------------------------------------------------------------
def list_studies(root: str | Path) -> dict[str, Path]:
    """Name -> resolved folder of every study directly below `root` (hidden folders skipped;
    a symlinked folder is listed only when it resolves inside the root)."""
    base = Path(root).resolve()
    if not base.is_dir():
        return {}
    out: dict[str, Path] = {}
    for p in sorted(base.iterdir()):
        if p.name.startswith(".") or not p.is_dir():
            continue
        real = p.resolve()
        if real.is_relative_to(base) and real != base:
            out[p.name] = real
    return out


def resolve_study(name: str, root: str | Path) -> Path:
    """The folder of study `name` under `root`, or `AccessError` saying why not."""
    shown = repr(name)[:80]
    if not name or not name.strip():
        raise AccessError("no study name given")
    decoded = _fully_unquoted(name)
    if "\x00" in decoded:
        raise AccessError(f"study name {shown} contains a NUL character")
    if decoded != name and _looks_like_path(decoded):
        raise AccessError(f"study name {shown} is URL-encoded path traversal; "
                          "give a study's folder name")
    if Path(decoded).is_absolute() or decoded.startswith(("/", "\\")) or \
            re.match(r"^[A-Za-z]:[\\/]", decoded):
        raise AccessError(f"study name {shown} is an absolute path; "
                          "give a study's folder name")
    if _looks_like_path(decoded):
        raise AccessError(f"study name {shown} is a path, not a study name "
                          "('..' and separators are not allowed)")
    base = Path(root).resolve()
    candidate = base / name
    if candidate.is_symlink() and not candidate.resolve().is_relative_to(base):
        raise AccessError(f"study {shown} is a link to a folder outside the studies root")
    studies = list_studies(base)
    if name not in studies:
        raise AccessError(f"no study named {shown} on this server")
    folder = studies[name]
    if not folder.is_relative_to(base):  # re-checked: the listing is the only source of paths
        raise AccessError(f"study {shown} resolves outside the studies root")
    return folder


def _fully_unquoted(text: str) -> str:
    # undo repeated percent-encoding ("%252e%252e" -> "%2e%2e" -> "..") a few times at most
    for _ in range(4):
        nxt = unquote(text)
        if nxt == text:
            break
        text = nxt
    return text


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text in (".", "..") or ".." in text.split("/")


# ---- per-study allow-list -----------------------------------------------------------------------
def _claim_true(value: Any) -> bool:
    # some providers send the boolean as a string ("true")
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


@dataclass(frozen=True)
class Viewer:
    """The person looking. `email` is an identity the allow-lists may trust: an e-mail the
    identity provider verified, or the user name the proxy proved. `name` is only shown and
    logged (an unverified e-mail, preferred_username, sub), never used to admit."""

    email: str | None = None
    groups: tuple[str, ...] = ()
    name: str | None = None
    via: str = ""                 # "oidc" or "proxy"

    @property
    def label(self) -> str:
        if self.email:
            return self.email
        return f"{self.name} (unverified)" if self.name else "anonymous"

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Viewer:
        """From OIDC claims (`st.user`): `email` only when `email_verified` is true (a
        provider that does not verify addresses gives no e-mail to match; use groups);
        groups from `groups` (a list or a comma string) or else `roles`. preferred_username,
        upn, an unverified e-mail or sub become `name`."""
        email = claims.get("email")
        email = email.strip() if isinstance(email, str) and email.strip() else None
        verified = email if email and _claim_true(claims.get("email_verified")) else None
        name = None
        for key in ("email", "preferred_username", "upn", "name", "sub"):
            value = claims.get(key)
            if isinstance(value, str) and value.strip():
                name = value.strip()
                break
        raw = claims.get("groups")
        if raw is None:
            raw = claims.get("roles")
        if isinstance(raw, str):
            groups = tuple(g.strip() for g in raw.split(",") if g.strip())
        elif isinstance(raw, (list, tuple)):
            groups = tuple(str(g).strip() for g in raw if str(g).strip())
        else:
            groups = ()
        return cls(email=verified, groups=groups, name=None if verified else name, via="oidc")

    @classmethod
    def from_proxy(cls, user: str) -> Viewer:
        """The user name a proven proxy sent (nginx basic auth: the htpasswd name)."""
        return cls(email=user.strip(), via="proxy")


@dataclass(frozen=True)
class AccessRule:
    """A study's allow-list. Empty `emails` and `groups` with `restricted=False`: open."""

    emails: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    restricted: bool = False
    problem: str = ""

    def allows(self, viewer: Viewer | None) -> bool:
        if not self.restricted:
            return True
        if viewer is None or self.problem:
            return False
        if viewer.email:
            email = viewer.email.lower()
            domain = "@" + email.rsplit("@", 1)[-1]
            if email in self.emails or domain in self.emails:
                return True
        return bool(self.groups & set(viewer.groups))


def read_access(folder: str | Path) -> AccessRule:
    """The `[access]` allow-list of the study in `folder` (open when there is none)."""
    path = Path(folder) / "study.toml"
    if not path.is_file():
        return AccessRule()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return AccessRule(restricted=True, problem=f"study.toml cannot be read ({exc})")
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        if _ACCESS_HEADER.search(text):
            return AccessRule(restricted=True,
                              problem=f"study.toml has an [access] table but is not valid "
                                      f"TOML ({exc})")
        return AccessRule()
    section = config.get("access")
    if section is None:
        return AccessRule()
    if not isinstance(section, dict):
        return AccessRule(restricted=True, problem="[access] in study.toml is not a table")
    emails = _strings(section.get("emails"))
    groups = _strings(section.get("groups"))
    return AccessRule(emails=frozenset(e.lower() for e in emails), groups=frozenset(groups),
                      restricted=True)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    return [str(v).strip() for v in value if str(v).strip()]


def may_open(viewer: Viewer | None, folder: str | Path) -> bool:
    """True when `viewer` passes the allow-list of the study in `folder`."""
    return read_access(folder).allows(viewer)


# ---- which login applies -------------------------------------------------------------------------
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


def session_tag(session_id: str | None) -> str:
    """A short tag for a session in the log: the first 12 hex digits of its SHA-256 (the
    session id itself lets a browser reconnect to a session, so it is not written down)."""
    if not session_id:
        return "-"
    return hashlib.sha256(session_id.encode()).hexdigest()[:12]


# ---- access log -------------------------------------------------------------------------------
def _now(when: datetime | None) -> str:
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_line(event: str, *, user: str | None, client: str | None = None,
               session: str | None = None, when: datetime | None = None,
               **fields: Any) -> str:
    """One JSON line for the access log: {"event", "time" (UTC ISO-8601), "user", "client",
    "session", ...fields}. Events: page_view, download, export, refusal, filter_change.
    Newlines in values cannot break the one-line format (JSON escapes them)."""
    record: dict[str, Any] = {"event": event, "time": _now(when), "user": user or "anonymous",
                              "client": client or "-", "session": session or "-"}
    record.update({k: v for k, v in fields.items() if k not in record})
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str)


def access_log_line(*, user: str | None, study: str | None, page: str | None,
                    when: datetime | None = None, client: str | None = None,
                    session: str | None = None) -> str:
    """The page-view line: {"event": "page_view", "time", "user", "client", "session",
    "study", "page"}."""
    return event_line("page_view", user=user, client=client, session=session, when=when,
                      study=study, page=page)


# ---- who may create studies (the Import page on a shared server) ------------------------------
def study_creators(config: str | None = None) -> tuple[str, ...]:
    """The server's list of users allowed to create studies: `STUDY_CREATORS` in the service
    environment (deploy/README.md), comma-separated e-mails, `@domain` entries and
    `group:NAME` entries; `*` admits everyone who passed the login. Empty: nobody
    (docs/importing.md)."""
    import os

    text = os.environ.get("STUDY_CREATORS", "") if config is None else config
    return tuple(e.strip() for e in text.split(",") if e.strip())


def may_create_studies(viewer: Viewer | None, creators: tuple[str, ...] | None = None) -> bool:
    """True when `viewer` may import data as a new study under STUDIES_ROOT. Fails closed:
    no list (or an empty one) admits nobody, and a viewer without identity passes only `*`."""
    allowed = study_creators() if creators is None else creators
    if "*" in allowed:
        return True
    if viewer is None:
        return False
    if viewer.email:
        email = viewer.email.lower()
        domain = "@" + email.rsplit("@", 1)[-1]
        if email in {a.lower() for a in allowed} or domain in {a.lower() for a in allowed}:
            return True
    groups = {a[len("group:"):] for a in allowed if a.startswith("group:")}
    return bool(groups & set(viewer.groups))
