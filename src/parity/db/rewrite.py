"""Crash-safe large writes on a DuckDB file: build the next version beside it, then rename it in.

Issue 12 finding 2: SIGKILL during the COMMIT of a DuckDB load left old patients with old *and* new
events after write-ahead-log replay (14 of 46 kills), and the data version did not change. That is
DuckDB's recovery, not Parity's transaction, so Parity does not rely on it for loads: ``rewrite``
hands the load a copy of the file (``<file>.rewrite``). When the load returns, the copy is
checkpointed (its WAL folded in and gone), flushed to disk and renamed over the file: one POSIX
``rename``, atomic on a local file system. On an exception the copy is deleted; a crash leaves it
behind, and the next ``open_database`` deletes it. The file itself therefore only ever holds the
old data or the new, never a mixture, and the ``loads`` row (the data version) moves with the data.

The price is a copy of the file per load (the load is the big write; copying is sequential I/O).
PostgreSQL and in-memory DuckDB do not need this: PostgreSQL's recovery is sound (11 of 11 kills
consistent) and memory does not outlive a crash, so ``rewrite`` yields the database itself there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from parity.db.connection import Database, open_database
from parity.db.url import parse_database_url
from parity.errors import DatabaseError

SUFFIX = ".rewrite"


def rewrite_path(file: Path) -> Path:
    """Where ``rewrite`` builds the next version of a DuckDB ``file``."""
    return file.with_name(file.name + SUFFIX)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _remove(file: Path) -> None:
    work = rewrite_path(file)
    work.unlink(missing_ok=True)
    _wal(work).unlink(missing_ok=True)


def discard_unfinished_rewrite(file: Path) -> bool:
    """Delete what a killed ``rewrite`` left beside ``file``; True if there was something.

    Called by ``open_database`` once the process holds the DuckDB file's lock, so it never deletes
    the copy a live process is still building.
    """
    found = rewrite_path(file).exists()
    _remove(file)
    return found


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _has_wal(path: Path) -> bool:
    wal = _wal(path)
    return wal.exists() and wal.stat().st_size > 0


@contextlib.contextmanager
def rewrite(db: Database, *, memory_limit: str | None = None) -> Iterator[Database]:
    """The database an all-or-nothing bulk write (a load) should use; see the module docstring.

    The caller still wraps its writes in ``transaction()`` on the database it is given. For a DuckDB
    file, ``db`` is reconnected to the new file afterwards (Ibis tables taken from it before are stale).
    ``memory_limit`` caps DuckDB's memory on the copy (its own connection) for the write and the final
    checkpoint; beyond it DuckDB spills to a temporary folder beside the file.
    """
    file = parse_database_url(db.url).file if db.kind == "duckdb" else None
    if file is None:
        yield db
        return
    with db.lock:
        if db.in_transaction:
            raise RuntimeError("rewrite() cannot run inside a transaction")
        db.execute("CHECKPOINT")  # the file alone now holds everything committed
        work_path = rewrite_path(file)
        _remove(file)
        shutil.copyfile(file, work_path)
        try:
            work = open_database(str(work_path), create=False, shared=False,  # private until renamed in
                                 memory_limit=memory_limit)
            # Indexes for one-patient pages would be kept up to date row by row during the load (twice the
            # time); the load's caller makes them again afterwards (parity.db.indexes).
            from parity.db.indexes import drop_patient_indexes

            drop_patient_indexes(work)
        except BaseException:
            _remove(file)
            raise
        try:
            yield work
            work.execute("CHECKPOINT")
        except BaseException:
            work.close()
            _remove(file)
            raise
        work.close()
        _swap_in(db, file, work_path)


def _swap_in(db: Database, file: Path, work_path: Path) -> None:
    """Rename the finished copy over ``file`` and reconnect ``db`` to it."""
    if _has_wal(work_path):
        _remove(file)
        raise DatabaseError("the new DuckDB file could not be checkpointed; the database is unchanged")
    _fsync(work_path)
    db.close()
    try:
        if _has_wal(file):
            # A WAL beside the old file would be replayed into the new one: never swap then.
            _remove(file)
            raise DatabaseError("the DuckDB file has an unfinished write-ahead log; the database is unchanged")
        _wal(file).unlink(missing_ok=True)
        os.replace(work_path, file)
        _fsync(file.parent)
    finally:
        fresh = open_database(str(file), create=False)
        # Same object, new connection: callers (the CLI, a ResultStore) keep using ``db``.
        db.ibis = fresh.ibis
        db._raw = fresh.raw  # noqa: SLF001 - the Database's own package
        db.shared = fresh.shared
        db.lock = fresh.lock
