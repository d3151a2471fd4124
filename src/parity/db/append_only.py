"""Append-only tables on PostgreSQL: a trigger refuses UPDATE, DELETE and TRUNCATE.

State that users create (referrals, initiatives, assessments, the audit log) is stored as events and
never changed (product.md architecture). On PostgreSQL a trigger makes that hold for careless SQL too;
DuckDB has no triggers, so there it rests on the API having no update or delete function. A database
owner can still drop a trigger: the audit log's hash chain is what detects that.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence

from parity.db.connection import Database

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def protect(db: Database, table: str) -> None:
    """Install (once) the append-only triggers on ``table``; a no-op on DuckDB. Call inside the
    transaction that creates the table. ``table`` is a name from code, never from input."""
    if db.kind != "postgres":
        return
    if not _NAME.match(table):
        raise ValueError(f"not a table name: {table!r}")
    function = f"parity_{table}_append_only"
    db.execute(f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION '{table} is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$fn$""")
    # Looked up rather than CREATE OR REPLACE TRIGGER (PostgreSQL 14+) or DROP IF EXISTS (which would
    # leave a moment without the trigger and emits notices).
    existing = {row[0] for row in db.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(?) AND NOT tgisinternal", [table])}
    triggers = {
        f"{table}_no_update_delete": f"BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW",
        f"{table}_no_truncate": f"BEFORE TRUNCATE ON {table} FOR EACH STATEMENT",
    }
    for name, when in triggers.items():
        if name not in existing:
            db.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {function}()")


_ready: weakref.WeakKeyDictionary[Database, set[str]] = weakref.WeakKeyDictionary()


def lock(db: Database, key: int) -> None:
    """Inside a transaction on PostgreSQL, wait for the advisory lock ``key`` (serialises writers across
    processes; ``db.lock`` covers only threads of one process). A no-op on DuckDB (one writing process)."""
    if db.kind == "postgres":
        db.execute("SELECT pg_advisory_xact_lock(?)", [key])


def ensure_table(db: Database, table: str, statements: Sequence[str], lock_key: int) -> None:
    """Create an append-only table once per ``Database``: run ``statements`` (``CREATE … IF NOT EXISTS``)
    and ``protect`` it, in one transaction under ``lock_key``."""
    if table in _ready.get(db, set()):
        return
    from parity.access.schema import atomic

    with atomic(db):
        lock(db, lock_key)
        for sql in statements:
            db.execute(sql)
        protect(db, table)
    _ready.setdefault(db, set()).add(table)
