"""The access log: one JSON line per event (page view, download, export, refusal, filter
change) with user, client address and a session tag."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["session_tag", "event_line", "access_log_line"]


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
