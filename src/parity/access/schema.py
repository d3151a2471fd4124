"""Tables of the access layer: ``users``, ``api_tokens`` and the append-only ``audit_log``.

One set of DDL for DuckDB and PostgreSQL. On PostgreSQL a trigger additionally rejects UPDATE,
DELETE and TRUNCATE on ``audit_log``. DuckDB has no triggers: there append-only is enforced by the
API (``parity.access.audit`` has no update or delete function) and made checkable by the hash chain
(``audit.verify_chain``). The trigger stops the application and careless SQL; a database owner can
still drop it, which is what the hash chain is for.

Timestamps are stored as UTC without a time zone (``TIMESTAMP``), the same on both backends.
"""

from __future__ import annotations

import weakref

from parity.db import Database
from parity.db.append_only import protect
from parity.db.locks import LockKey, hold
from parity.db.transactions import atomic, utc_now

__all__ = ["atomic", "utc_now"]  # re-exported: their home is parity.db.transactions

USERS_DDL = """CREATE TABLE IF NOT EXISTS users (
    username VARCHAR(64) PRIMARY KEY,
    role VARCHAR(16) NOT NULL,
    org_code VARCHAR(10),
    password_hash VARCHAR(255) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    disabled_at TIMESTAMP
)"""

API_TOKENS_DDL = """CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash VARCHAR(64) PRIMARY KEY,
    username VARCHAR(64) NOT NULL,
    label VARCHAR(200),
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
)"""

AUDIT_LOG_DDL = """CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY,
    occurred_at TIMESTAMP NOT NULL,  -- UTC; "at" is a reserved word in DuckDB
    username VARCHAR(64),
    role VARCHAR(16),
    org_code VARCHAR(10),
    via VARCHAR(10),
    action VARCHAR(40) NOT NULL,
    resource VARCHAR(200),
    outcome VARCHAR(10) NOT NULL,
    detail VARCHAR(500),
    prev_hash VARCHAR(64) NOT NULL,
    hash VARCHAR(64) NOT NULL
)"""

# Browser sessions (parity.access.sessions): the cookie holds an id, this table whether it is live.
SESSIONS_DDL = """CREATE TABLE IF NOT EXISTS sessions (
    session_hash VARCHAR(64) PRIMARY KEY,
    username VARCHAR(64) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
)"""

# Sign-in attempts (parity.access.throttle): counted in the database so every thread and process
# shares one count. ``key_hash`` is a keyed hash of "user:<name>", "pair:<name>|<address>" or
# "addr:<address>": what was typed as a username is never stored.
LOGIN_ATTEMPTS_DDL = """CREATE TABLE IF NOT EXISTS login_attempts (
    attempt_id VARCHAR(32) NOT NULL,
    key_hash VARCHAR(64) NOT NULL,
    attempted_at TIMESTAMP NOT NULL,
    state VARCHAR(8) NOT NULL
)"""

# A fingerprint of the audit key (parity.access.keys): a process started with another key is refused
# rather than writing entries that no other process can verify.
AUDIT_KEY_CHECK_DDL = """CREATE TABLE IF NOT EXISTS audit_key_check (
    fingerprint VARCHAR(64) NOT NULL
)"""

# "Who looked at this patient / what did this user do" are the questions an audit answers.
AUDIT_INDEXES = (
    "CREATE INDEX IF NOT EXISTS audit_log_username ON audit_log (username)",
    "CREATE INDEX IF NOT EXISTS audit_log_resource ON audit_log (resource)",
    "CREATE INDEX IF NOT EXISTS sessions_username ON sessions (username)",
    "CREATE INDEX IF NOT EXISTS login_attempts_key ON login_attempts (key_hash, attempted_at)",
)

# Serialises schema set-up and audit appends across processes (db.lock only covers threads of one
# process); the key is in the registry (parity.db.locks).
PG_LOCK_KEY = LockKey.ACCESS

_ready: weakref.WeakSet[Database] = weakref.WeakSet()


def ensure_access_schema(db: Database) -> None:
    """Create the access tables (and on PostgreSQL the audit trigger) if missing; idempotent."""
    with atomic(db):
        hold(db, LockKey.ACCESS)
        for ddl in (USERS_DDL, API_TOKENS_DDL, AUDIT_LOG_DDL, SESSIONS_DDL, LOGIN_ATTEMPTS_DDL, AUDIT_KEY_CHECK_DDL,
                    *AUDIT_INDEXES):
            db.execute(ddl)
        protect(db, "audit_log")
    _ready.add(db)


def ready(db: Database) -> None:
    """Make sure the access tables exist, running the DDL once per ``Database`` object."""
    if db not in _ready:
        ensure_access_schema(db)

