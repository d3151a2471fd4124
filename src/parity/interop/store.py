"""Tables of trust-to-GP messaging, one DDL for DuckDB and PostgreSQL.

Trust side: ``trust_checks`` (each completed check, version by version, with its letter and Bundle),
``mesh_outbox`` (one entry per message to send) and ``mesh_outbox_events`` (its states, append-only:
the current state is the latest event). Practice side: ``mesh_inbox`` (every message received,
written once with its outcome, in the same transaction as anything filed from it), ``filed_checks``
(what was filed into ``events``, unique by check id and by content digest, so nothing files twice)
and ``mesh_inbox_actions`` (what users did with exceptions, append-only).
"""

from __future__ import annotations

import weakref

from parity.db import Database

_ready: weakref.WeakSet[Database] = weakref.WeakSet()


def _ddl(db: Database) -> list[str]:
    blob = "BLOB" if db.kind == "duckdb" else "BYTEA"
    return [
        f"""CREATE TABLE IF NOT EXISTS trust_checks (
            check_id VARCHAR(36) NOT NULL, version INTEGER NOT NULL, trust_code VARCHAR(10) NOT NULL,
            practice_code VARCHAR(10) NOT NULL, nhs_number VARCHAR(10) NOT NULL, performed_on DATE NOT NULL,
            created_at TIMESTAMP NOT NULL, created_by VARCHAR(64), source VARCHAR(16) NOT NULL,
            record_json TEXT NOT NULL, bundle_json TEXT NOT NULL, letter_pdf {blob} NOT NULL,
            PRIMARY KEY (check_id, version))""",
        """CREATE TABLE IF NOT EXISTS mesh_outbox (
            local_id VARCHAR(80) PRIMARY KEY, check_id VARCHAR(36) NOT NULL, version INTEGER NOT NULL,
            trust_code VARCHAR(10) NOT NULL, recipient_ods VARCHAR(10) NOT NULL, created_at TIMESTAMP NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS mesh_outbox_events (
            local_id VARCHAR(80) NOT NULL, seq INTEGER NOT NULL, occurred_at TIMESTAMP NOT NULL,
            state VARCHAR(16) NOT NULL, attempt INTEGER NOT NULL, mesh_message_id VARCHAR(64),
            sender_mailbox VARCHAR(20), recipient_mailbox VARCHAR(20), workflow_id VARCHAR(300),
            next_attempt_at TIMESTAMP, detail VARCHAR(500),
            PRIMARY KEY (local_id, seq))""",
        f"""CREATE TABLE IF NOT EXISTS mesh_inbox (
            mesh_message_id VARCHAR(64) PRIMARY KEY, mailbox VARCHAR(20) NOT NULL, practice_code VARCHAR(10) NOT NULL,
            sender VARCHAR(20), workflow_id VARCHAR(300), local_id VARCHAR(300), received_at TIMESTAMP NOT NULL,
            outcome VARCHAR(16) NOT NULL, reason VARCHAR(500), check_id VARCHAR(36), version INTEGER,
            digest VARCHAR(64), nhs_number VARCHAR(10), trust_code VARCHAR(10), performed_on DATE,
            payload {blob} NOT NULL, letter_pdf {blob})""",
        """CREATE TABLE IF NOT EXISTS filed_checks (
            check_id VARCHAR(36) PRIMARY KEY, digest VARCHAR(64) NOT NULL UNIQUE, mesh_message_id VARCHAR(64) NOT NULL,
            practice_code VARCHAR(10) NOT NULL, nhs_number VARCHAR(10) NOT NULL, filed_at TIMESTAMP NOT NULL,
            load_id VARCHAR(36) NOT NULL, events INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS mesh_inbox_actions (
            mesh_message_id VARCHAR(64) NOT NULL, seq INTEGER NOT NULL, occurred_at TIMESTAMP NOT NULL,
            username VARCHAR(64), action VARCHAR(16) NOT NULL, detail VARCHAR(500),
            PRIMARY KEY (mesh_message_id, seq))""",
        "CREATE INDEX IF NOT EXISTS mesh_inbox_nhs ON mesh_inbox (nhs_number)",
        "CREATE INDEX IF NOT EXISTS trust_checks_trust ON trust_checks (trust_code)",
    ]


def ensure_interop_schema(db: Database) -> None:
    """Create the messaging tables if missing (idempotent)."""
    with db.lock:
        for ddl in _ddl(db):
            db.execute(ddl)
    _ready.add(db)


def ready(db: Database) -> None:
    """Make sure the messaging tables exist, running the DDL once per ``Database`` object."""
    if db not in _ready:
        ensure_interop_schema(db)


def blob(value: object) -> bytes:
    """A BLOB/BYTEA column value as bytes (DuckDB returns bytes, psycopg memoryview)."""
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, bytearray):
        return bytes(value)
    assert isinstance(value, bytes)
    return value
