"""Append-only tables on PostgreSQL: a trigger refuses UPDATE, DELETE and TRUNCATE.

State that users create (referrals, initiatives, assessments, the audit log) is stored as events and
never changed (product.md architecture). On PostgreSQL a trigger makes that hold for careless SQL too;
DuckDB has no triggers, so there it rests on the API having no update or delete function. A database
owner can still drop a trigger: the audit log's hash chain is what detects that.
"""

from __future__ import annotations

import re

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
