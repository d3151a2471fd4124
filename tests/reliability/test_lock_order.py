"""Finding 1 (issue 12): one lock order in ``ResultStore`` — ``db.lock`` before the store's own lock.

The PostgreSQL server hung when ``version()`` held the store's lock while waiting for ``db.lock``
and ``_get`` held ``db.lock`` while waiting for the store's lock. Here a thread re-reads the data
version while this thread holds ``db.lock`` (as ``_get`` does); the store's lock must stay free.
"""

from __future__ import annotations

import threading

from parity.reports.results import VERSION_TTL_SECONDS, ResultStore


def test_version_never_holds_the_store_lock_while_waiting_for_the_database(any_db):
    now = [0.0]
    store = ResultStore(any_db, clock=lambda: now[0])
    store.version()
    now[0] += VERSION_TTL_SECONDS + 1  # the next call must ask the database again
    done = threading.Event()
    with any_db.lock:  # what _get holds while it looks for a stored result
        reader = threading.Thread(target=lambda: (store.version(), done.set()), daemon=True)
        reader.start()
        reader.join(0.3)  # the reader is now waiting for db.lock
        assert not done.is_set()
        # With the inverted order this waited for ever: the reader held _lock while queueing for db.lock.
        assert store._lock.acquire(timeout=2), "the store's lock is held by a thread waiting for the database"
        store._lock.release()
    reader.join(5)
    assert done.is_set()

