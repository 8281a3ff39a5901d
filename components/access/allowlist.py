"""Per-study allow-lists (study.toml [access] emails and groups) and who may create studies
(STUDY_CREATORS): which viewer may open which study, failing closed."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Viewer", "AccessRule", "read_access", "may_open", "study_creators",
           "may_create_studies"]

_ACCESS_HEADER = re.compile(r"^\s*\[\s*access\s*\]", re.MULTILINE)


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
