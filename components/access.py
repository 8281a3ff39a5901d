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
  study.toml cannot be read but names an `[access]` table.
- One JSON line per page view (time, user, study, page) for the server's access log.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

__all__ = ["AccessError", "AccessRule", "Viewer", "list_studies", "resolve_study",
           "read_access", "may_open", "access_log_line"]

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
@dataclass(frozen=True)
class Viewer:
    """The person looking: e-mail and groups from the identity provider (or the proxy)."""

    email: str | None = None
    groups: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.email or "anonymous"

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Viewer:
        """From OIDC claims (`st.user`): email (or preferred_username / upn when it holds an
        address) and groups (a list or a comma string; `roles` as a fallback). A proxy's
        user name mapped to `email` by server.trustedUserHeaders counts as given."""
        email = None
        for key in ("email", "preferred_username", "upn"):
            value = claims.get(key)
            if isinstance(value, str) and value.strip() and ("@" in value or key == "email"):
                email = value.strip()
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
        return cls(email=email, groups=groups)


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


# ---- access log -------------------------------------------------------------------------------
def access_log_line(*, user: str | None, study: str | None, page: str | None,
                    when: datetime | None = None) -> str:
    """One JSON line for a page view: {"event", "time" (UTC ISO-8601), "user", "study",
    "page"}; newlines in values cannot break the one-line format (JSON escapes them)."""
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    record = {"event": "page_view",
              "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
              "user": user or "anonymous", "study": study, "page": page}
    return json.dumps(record, ensure_ascii=True, separators=(",", ":"))
