"""The deployment's secret key, kept outside the database (issue 12 finding 7).

It keys the audit chain (an HMAC, so someone who can edit the database but not read this key cannot
recompute the chain after changing an entry) and the sign-in throttle's hashed keys (so a typed
username is never stored in a form that a quick search of 10-digit numbers would undo).

From ``PARITY_AUDIT_KEY`` (at least 32 characters) if set, else the file ``audit.key`` in the data
directory (beside a DuckDB file, or ``PARITY_DATA_DIR``, default ``./parity-data``), created with
mode 0600 on first use. An in-memory database gets a random key for the life of the process.
Every process writing to one database must see the same key: on PostgreSQL give them the same
``PARITY_AUDIT_KEY`` or data directory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import weakref

from parity.db import Database
from parity.db.url import parse_database_url
from parity.errors import ConfigurationError
from parity.settings import MIN_SECRET_LENGTH, data_dir_from_env, read_or_create_secret

KEY_FILE = "audit.key"
_keys: weakref.WeakKeyDictionary[Database, bytes] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def deployment_key(db: Database) -> bytes:
    """The secret key for ``db`` (read once per ``Database``).

    The database keeps a fingerprint of the key (an HMAC of a fixed text: it reveals nothing of the
    key). A process with a different key (another data directory, a mistyped ``PARITY_AUDIT_KEY``)
    gets ``ConfigurationError`` instead of writing audit entries nobody else could verify.
    """
    with _lock:
        key = _keys.get(db)
        if key is not None:
            return key
    key = _read(db)
    _check_fingerprint(db, key)
    with _lock:
        _keys[db] = key
    return key


def _check_fingerprint(db: Database, key: bytes) -> None:
    from parity.access.schema import atomic, ready

    mine = hmac.new(key, b"parity audit key fingerprint", hashlib.sha256).hexdigest()
    ready(db)
    with atomic(db):
        stored = {str(r[0]) for r in db.execute("SELECT fingerprint FROM audit_key_check")}
        if not stored:
            db.execute("INSERT INTO audit_key_check (fingerprint) VALUES (?)", [mine])
        elif mine not in stored:
            raise ConfigurationError(
                "this process's audit key is not the one this database's audit log is kept with: give every "
                "process the same PARITY_AUDIT_KEY, or the same data directory (PARITY_DATA_DIR, audit.key)")


def _read(db: Database) -> bytes:
    env = os.environ.get("PARITY_AUDIT_KEY", "")
    if env:
        if len(env) < MIN_SECRET_LENGTH:
            raise ConfigurationError(f"PARITY_AUDIT_KEY must be at least {MIN_SECRET_LENGTH} characters")
        return env.encode("utf-8")
    folder = parse_database_url(db.url).data_dir(data_dir_from_env())
    if folder is None:
        return secrets.token_bytes(32)
    return read_or_create_secret(folder / KEY_FILE).encode("utf-8")
