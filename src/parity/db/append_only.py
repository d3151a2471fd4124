"""Append-only tables: where the backend can, the database itself refuses UPDATE, DELETE and TRUNCATE.

State that users create (referrals, initiatives, assessments, contacts, the audit log) is stored as
events and never changed (product.md architecture). On PostgreSQL a trigger makes that hold for
careless SQL too (``PostgresDialect.protect``); DuckDB has no triggers, so there it rests on the API
having no update or delete function. A database owner can still drop a trigger: the audit log's hash
chain is what detects that.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from parity.db.connection import Database
from parity.db.locks import LockKey, hold
from parity.db.transactions import atomic


def protect(db: Database, table: str) -> None:
    """Install (once) the backend's append-only protection on ``table`` (triggers on PostgreSQL, nothing
    on DuckDB). Call inside the transaction that creates the table. ``table`` is a name from code,
    never from input."""
    db.dialect.protect(db, table)


_ready: weakref.WeakKeyDictionary[Database, set[str]] = weakref.WeakKeyDictionary()


def lock(db: Database, key: int) -> None:
    """Inside a transaction, wait for the cross-process lock ``key`` (``parity.db.locks.hold``)."""
    hold(db, LockKey(key))


def ensure_table(db: Database, table: str, statements: Sequence[str], lock_key: int,
                 *, also: Sequence[str] = ()) -> None:
    """Create an append-only table once per ``Database``: run ``statements`` (``CREATE … IF NOT EXISTS``)
    and ``protect`` it (and the tables named in ``also``), in one transaction under ``lock_key``."""
    if table in _ready.get(db, set()):
        return
    with atomic(db):
        hold(db, LockKey(lock_key))
        for sql in statements:
            db.execute(sql)
        for name in (table, *also):
            protect(db, name)
    _ready.setdefault(db, set()).add(table)
