"""Tables of trust-to-GP messaging, one DDL for DuckDB and PostgreSQL.

Trust side: ``trust_checks`` (each completed check, version by version, with its letter and Bundle),
``mesh_outbox`` (one entry per message to send) and ``mesh_outbox_events`` (its states, append-only:
the current state is the latest event). Practice side: ``mesh_inbox`` (every message received,
written once with its outcome, in the same transaction as anything filed from it), ``filed_checks``
(what was filed into ``events``, unique by check id and by content digest, so nothing files twice),
``mesh_inbox_actions`` (what users did with exceptions and letters, append-only), ``mesh_replies`` and
``mesh_reply_sends`` (the ITK3 acknowledgements owed to senders, and when each went). Both sides:
``practice_routes`` (coded Bundle or GP Connect Send Document, per practice, append-only) and
``mesh_outbox_acks`` (acknowledgements received for sent messages).
"""

from __future__ import annotations

import weakref

from parity.db import Database

_ready: weakref.WeakSet[Database] = weakref.WeakSet()


def _ddl(db: Database) -> list[str]:
    blob = db.dialect.blob_type
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
        # Which route a message takes: "bundle" (coded results to a Parity practice) or "send_document"
        # (the letter by GP Connect Send Document to a practice not on Parity).
        "ALTER TABLE mesh_outbox ADD COLUMN IF NOT EXISTS route VARCHAR(16) DEFAULT 'bundle'",
        """CREATE TABLE IF NOT EXISTS practice_routes (
            practice_code VARCHAR(10) NOT NULL, seq INTEGER NOT NULL, route VARCHAR(16) NOT NULL,
            set_at TIMESTAMP NOT NULL, set_by VARCHAR(64), PRIMARY KEY (practice_code, seq))""",
        # Replies (ITK3 responses) a practice owes senders: queued with the message's outcome, in the
        # same transaction, and sent by the worker; a row in mesh_reply_sends once MESH accepted it.
        """CREATE TABLE IF NOT EXISTS mesh_replies (
            reply_id VARCHAR(36) PRIMARY KEY, in_reply_to VARCHAR(64) NOT NULL, mailbox VARCHAR(20) NOT NULL,
            recipient VARCHAR(20) NOT NULL, workflow_id VARCHAR(300) NOT NULL, local_id VARCHAR(300),
            kind VARCHAR(16) NOT NULL, itk_code VARCHAR(8) NOT NULL, reason VARCHAR(32) NOT NULL,
            body TEXT NOT NULL, created_at TIMESTAMP NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS mesh_reply_sends (
            reply_id VARCHAR(36) PRIMARY KEY, sent_at TIMESTAMP NOT NULL, mesh_message_id VARCHAR(64) NOT NULL)""",
        # Acknowledgements a sender received for its messages (ITK3 responses, Parity's or a GP system's).
        """CREATE TABLE IF NOT EXISTS mesh_outbox_acks (
            mesh_message_id VARCHAR(64) PRIMARY KEY, local_id VARCHAR(80), received_at TIMESTAMP NOT NULL,
            workflow_id VARCHAR(300), kind VARCHAR(16) NOT NULL, positive BOOLEAN NOT NULL, itk_code VARCHAR(8),
            reason VARCHAR(32), detail VARCHAR(500))""",
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
