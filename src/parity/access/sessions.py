"""Browser sessions held on the server, so they can be ended (issue 12 finding 5).

The signed session cookie carries only a random session id; the ``sessions`` table says whether it
is still good. Signing out ends that session; disabling a user or changing a password ends all of the
user's sessions. A replayed cookie from an ended session is then worth nothing, whatever its
signature. Only the id's SHA-256 is stored (256 random bits: nothing to brute-force), so a copy of the
table does not hold live sessions.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from parity.access.schema import ready, utc_now
from parity.db import Database


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def start_session(db: Database, username: str, hours: int) -> str:
    """A new session for ``username`` lasting ``hours``; the id to keep in the cookie."""
    ready(db)
    session_id = secrets.token_urlsafe(32)
    now = utc_now()
    db.execute("INSERT INTO sessions (session_hash, username, created_at, expires_at, ended_at) "
               "VALUES (?, ?, ?, ?, NULL)", [_hash(session_id), username, now, now + timedelta(hours=hours)])
    return session_id


def session_username(db: Database, session_id: str) -> str | None:
    """The username of a live session (not ended, not expired, its user not disabled), else None."""
    if not session_id or len(session_id) > 100:
        return None
    ready(db)
    rows = db.execute(
        "SELECT s.username FROM sessions s JOIN users u ON u.username = s.username "
        "WHERE s.session_hash = ? AND s.ended_at IS NULL AND s.expires_at > ? AND u.disabled_at IS NULL",
        [_hash(session_id), utc_now()])
    return str(rows[0][0]) if rows else None


def end_session(db: Database, session_id: str) -> None:
    """End one session (signing out). Idempotent."""
    ready(db)
    db.execute("UPDATE sessions SET ended_at = ? WHERE session_hash = ? AND ended_at IS NULL",
               [utc_now(), _hash(session_id)])


def end_sessions(db: Database, username: str) -> int:
    """End every session of ``username`` (disabled, or password changed); how many were live."""
    ready(db)
    live = db.execute("SELECT COUNT(*) FROM sessions WHERE username = ? AND ended_at IS NULL", [username])[0][0]
    db.execute("UPDATE sessions SET ended_at = ? WHERE username = ? AND ended_at IS NULL", [utc_now(), username])
    return int(live)
