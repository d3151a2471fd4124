"""The audit log: an append-only, hash-chained record of who looked at what.

Every row carries ``prev_hash`` (the previous row's ``hash``; 64 zeros for the first) and ``hash``,
an HMAC-SHA-256 of ``prev_hash`` and the row's own fields under the deployment key, which is kept
outside the database (``parity.access.keys``): editing an entry and recomputing the later hashes
needs that key, so a database superuser alone cannot do it (issue 12 finding 7). Changing a row
breaks its own hash; deleting one breaks the link (and the ``seq`` sequence) at the next row.
``verify_chain`` finds the first broken row. Removing rows from the *end* leaves a valid shorter
chain, so ``chain_head`` gives the latest ``(seq, hash)`` for anchoring somewhere else (a report, a
ticket) when that matters.

There is deliberately no update or delete function. On PostgreSQL a trigger rejects UPDATE, DELETE
and TRUNCATE (``schema.py``); DuckDB has no triggers, so there the API and the chain are the guard.

``seq`` is assigned here as max + 1 inside a transaction holding ``db.lock`` (and, on PostgreSQL, an
advisory lock, so several server processes still produce one gapless chain). ``detail`` is short
free text for context and must never hold clinical values; ``resource`` names what was accessed
(``practice/H81001``, ``patient/9434765919``), which for patient access is the point of the log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from parity.access.keys import deployment_key
from parity.access.model import Actor, User
from parity.access.schema import ready
from parity.db import Database
from parity.db.locks import LockKey, hold
from parity.db.transactions import atomic, utc_now

Outcome = Literal["allowed", "denied"]
OUTCOMES: frozenset[str] = frozenset({"allowed", "denied"})

# Actions the web app and CLI record; ``record`` accepts any lower_snake name so new ones need no change here.
KNOWN_ACTIONS: frozenset[str] = frozenset({
    "login", "login_failed", "logout", "denied",
    "view_worklist", "export_worklist_csv", "export_worklist_xlsx", "view_patient", "api_worklist",
    "user_added", "user_disabled", "password_set", "token_issued", "tokens_revoked",
})

GENESIS_HASH = "0" * 64
MAX_RESOURCE = 200
MAX_DETAIL = 500
MAX_USERNAME = 64
_ACTION_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_COLUMNS = "seq, occurred_at, username, role, org_code, via, action, resource, outcome, detail, prev_hash, hash"
_VERIFY_BATCH = 5000


@dataclass(frozen=True)
class AuditEntry:
    """One audit row. ``at`` is timezone-aware UTC."""

    seq: int
    at: datetime
    username: str | None
    role: str | None
    org_code: str | None
    via: str | None
    action: str
    resource: str | None
    outcome: str
    detail: str | None
    prev_hash: str
    hash: str  # the column's name; shadows the builtin only inside the dataclass

    def expected_hash(self, key: bytes) -> str:
        """The hash this row should carry given its fields, ``prev_hash`` and the deployment ``key``."""
        return compute_hash(key, self.prev_hash, self.seq, self.at, self.username, self.role, self.org_code, self.via,
                            self.action, self.resource, self.outcome, self.detail)


def compute_hash(key: bytes, prev_hash: str, seq: int, at: datetime, username: str | None, role: str | None,
                 org_code: str | None, via: str | None, action: str, resource: str | None, outcome: str,
                 detail: str | None) -> str:
    """HMAC-SHA-256 under ``key`` over ``prev_hash`` and a row's fields, serialised as canonical JSON
    (unambiguous, unlike joining). Keyed (issue 12 finding 7): with a plain hash anyone able to edit
    the table could edit an entry and recompute every later hash; without the key they cannot."""
    stamp = at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
    payload = json.dumps(
        [prev_hash, seq, stamp.strftime("%Y-%m-%dT%H:%M:%S.%f"), username, role, org_code, via, action, resource,
         outcome, detail],
        ensure_ascii=True, separators=(",", ":"),
    )
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).hexdigest()


def record(db: Database, actor: Actor | User | None, action: str, resource: str | None = None,
           outcome: Outcome = "allowed", detail: str | None = None, *, username: str | None = None) -> AuditEntry:
    """Append one entry and return it.

    ``actor`` is who acted (an ``Actor`` also records ``via``; a ``User`` records ``via`` as None).
    When nobody is signed in (a failed sign-in) pass ``actor=None`` and the name typed as ``username``.
    Over-long or control characters in ``username``/``detail`` are cut or replaced rather than
    rejected: they can come from a login form, and the entry must still be written.
    """
    if not _ACTION_RE.match(action):
        raise ValueError("action must be lower_snake_case, 2-40 characters")
    if outcome not in OUTCOMES:
        raise ValueError("outcome must be 'allowed' or 'denied'")
    # An over-long resource (a path built from a 5000-character URL) is cut, never refused: an audit
    # write must not turn a refusal into a 500 (issue 12 finding 8).
    ready(db)
    via: str | None = None
    if isinstance(actor, Actor):
        via = actor.via
        actor = actor.user
    if isinstance(actor, User):
        name: str | None = actor.username
        role: str | None = actor.role.value
        org = actor.org_code
    else:
        name, role, org = (_clean(username, MAX_USERNAME) if username is not None else None), None, None
    res = _clean(resource, MAX_RESOURCE) if resource is not None else None
    det = _clean(detail, MAX_DETAIL) if detail is not None else None

    if outcome == "denied":
        seen = _refusals.get()
        if seen is not None:
            seen.append(action)
    with atomic(db):
        hold(db, LockKey.ACCESS)
        last = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        seq, prev = (int(last[0][0]) + 1, str(last[0][1])) if last else (1, GENESIS_HASH)
        at = utc_now()
        digest = compute_hash(deployment_key(db), prev, seq, at, name, role, org, via, action, res, outcome, det)
        db.execute(f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [seq, at, name, role, org, via, action, res, outcome, det, prev, digest])
    return AuditEntry(seq, at.replace(tzinfo=UTC), name, role, org, via, action, res, outcome, det, prev, digest)


# Refusals recorded while handling the current request (see ``watch_refusals``). A list, not a flag:
# a sync route runs in a worker thread with a *copy* of the context, and appending to the shared
# list is visible back in the request's own context, where the error handler runs.
_refusals: ContextVar[list[str] | None] = ContextVar("parity_audit_refusals", default=None)


def watch_refusals() -> list[str]:
    """Start noting refusals recorded in this context (one web request); returns the list they go in.

    The web error handler uses it to audit every refusal exactly once: a route that recorded its own
    "denied" entry is not recorded again, any other 401/403/404 from the shared checks is."""
    seen: list[str] = []
    _refusals.set(seen)
    return seen


def entries(db: Database, limit: int = 200, offset: int = 0, username: str | None = None,
            action: str | None = None, resource: str | None = None) -> list[AuditEntry]:
    """Entries newest first, optionally only one user's, one action's or one resource's."""
    if not 1 <= limit <= 10_000 or offset < 0:
        raise ValueError("limit must be 1-10000 and offset >= 0")
    ready(db)
    where, params = [], []
    for column, value in (("username", username), ("action", action), ("resource", resource)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = db.execute(f"SELECT {_COLUMNS} FROM audit_log{clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
                      [*params, limit, offset])
    return [_entry(r) for r in rows]


def verify_chain(db: Database) -> int | None:
    """The ``seq`` of the first row that breaks the chain (altered, or following a deleted row), or None.

    Reads the log in batches, so it runs in constant memory however long the log is.
    """
    ready(db)
    key = deployment_key(db)
    prev_seq, prev_hash = 0, GENESIS_HASH
    while True:
        rows = db.execute(f"SELECT {_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
                          [prev_seq, _VERIFY_BATCH])
        for row in rows:
            entry = _entry(row)
            forged = not hmac.compare_digest(entry.hash, entry.expected_hash(key))
            if entry.seq != prev_seq + 1 or entry.prev_hash != prev_hash or forged:
                return entry.seq
            prev_seq, prev_hash = entry.seq, entry.hash
        if len(rows) < _VERIFY_BATCH:
            return None


def chain_head(db: Database) -> tuple[int, str] | None:
    """The latest ``(seq, hash)``, to note elsewhere so that later truncation of the log is detectable."""
    ready(db)
    rows = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def _clean(text: str, limit: int) -> str:
    return _CONTROL_RE.sub("?", text)[:limit]


def _entry(row: tuple) -> AuditEntry:
    seq, at, username, role, org_code, via, action, resource, outcome, detail, prev_hash, digest = row
    stamp = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return AuditEntry(int(seq), stamp, username, role, org_code, via, action, resource, outcome, detail, prev_hash,
                      digest)
