"""Every cross-process lock Parity takes, in one registry.

On PostgreSQL several server processes write at once; a writer that must not interleave with
another (the audit log's hash chain, filing a received check once, creating a table and its
triggers) takes a transaction-scoped advisory lock (``pg_advisory_xact_lock``) before it reads.
DuckDB admits one writing process, and ``Database.lock`` already serialises its threads, so there
``hold`` does nothing (the dialect decides: ``Dialect.lock``).

The numbers are arbitrary but fixed: two versions of Parity running side by side during an upgrade
must take the same lock for the same thing, so a key is never renumbered or reused.
"""

from __future__ import annotations

from enum import IntEnum

from parity.db.connection import Database


class LockKey(IntEnum):
    """One key per thing that must not be done by two processes at once."""

    ACCESS = 7_347_125_901       #: access tables' set-up and every audit-log append (one gapless chain)
    MESH_FILING = 7_347_125_902  #: filing a received check (two pollers never file the same one)
    SIGN_IN = 7_347_125_903      #: counting sign-in attempts (parity.access.throttle)
    REFERRALS = 7_347_125_917    #: referrals table set-up and appends
    INITIATIVES = 7_347_125_931  #: initiatives table set-up and appends
    ASSESSMENTS = 7_347_125_933  #: assessments table set-up and appends
    CONTACTS = 7_347_125_941     #: contact log and recall settings set-up


def hold(db: Database, key: LockKey) -> None:
    """Inside a transaction, wait for ``key`` until the transaction ends (a no-op where the backend
    has one writing process)."""
    db.dialect.lock(db, int(key))
