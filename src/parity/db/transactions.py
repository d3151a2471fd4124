"""Transactions and timestamps shared by every package that stores something."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

from parity.db.connection import Database


@contextlib.contextmanager
def atomic(db: Database) -> Iterator[Database]:
    """A transaction, or the caller's if this thread is already in one.

    ``db.lock`` is taken *before* looking at ``in_transaction``: that flag is per connection, not
    per thread, so read without the lock it would let another thread's statements join (and
    interleave with) a transaction this thread did not open.
    """
    with db.lock:
        if db.in_transaction:
            yield db
        else:
            with db.transaction():
                yield db


def utc_now() -> datetime:
    """Now in UTC as a naive datetime (microseconds), the form stored in ``TIMESTAMP`` columns."""
    return datetime.now(UTC).replace(tzinfo=None)
