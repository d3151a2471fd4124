"""Open a Parity database: a DuckDB file (default) or PostgreSQL.

One ``Database`` wraps one Ibis backend. Raw SQL (DDL, bulk loads, transactions) goes through
``execute``/``transaction`` so callers never branch on the backend for those. Error messages name
the database kind, never its contents.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import ibis

from parity.db.dialect import DIALECTS, DUCKDB, POSTGRES, Dialect
from parity.db.schema import TABLES
from parity.errors import DatabaseError


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


class Database:
    """A connection to a Parity database.

    ``dialect`` holds what differs between backends (``parity.db.dialect``); ``kind`` is its name
    (``"duckdb"``, ``"postgres"`` or ``"spark"``). ``ibis`` is the Ibis backend the engine queries.
    """

    def __init__(self, url: str, dialect: Dialect | str, backend: Any, raw: Any) -> None:
        self.url = url
        self.dialect = dialect if isinstance(dialect, Dialect) else DIALECTS[dialect]
        self.kind = self.dialect.name
        self.ibis = backend
        self._raw = raw
        self._in_transaction = False
        # Held by ``execute`` and by callers that run several statements or Ibis queries as one
        # unit from a thread pool (the web app); re-entrant so those callers can nest ``execute``.
        self.lock = threading.RLock()

    # -- raw SQL -----------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """Run one SQL statement and return all rows (empty list for statements without rows).

        Parameters use ``?`` placeholders on both backends (translated to ``%s`` for psycopg), so
        callers write one statement. Calls are serialised by ``lock``: a DuckDB connection must not
        be used by two threads at once, and the web app serves requests from a thread pool.
        """
        with self.lock:
            return self.dialect.execute(self._raw, sql, params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        """All-or-nothing: commits if the block succeeds, rolls back on any exception.

        Holds ``lock`` for the whole block, so another thread's statements cannot interleave.
        """
        with self.lock:
            if self._in_transaction:
                raise RuntimeError("nested transactions are not supported")
            self._in_transaction = True
            try:
                with self.dialect.transaction(self._raw):
                    yield self
            finally:
                self._in_transaction = False

    @property
    def in_transaction(self) -> bool:
        """True inside ``transaction()``: writers join the caller's transaction instead of opening one."""
        return self._in_transaction

    @property
    def raw(self) -> Any:
        """The underlying DBAPI connection (duckdb or psycopg), for bulk loading."""
        return self._raw

    # -- schema --------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create any missing Parity tables (idempotent)."""
        for table in TABLES.values():
            self.execute(table.ddl())

    def has_table(self, name: str) -> bool:
        return name in self.ibis.list_tables()

    def count(self, table: str) -> int:
        return int(self.execute(f"SELECT COUNT(*) FROM {table}")[0][0])

    def close(self) -> None:
        self.dialect.close(self.ibis, self._raw)

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database(kind={self.kind!r})"


def _duckdb_path(url: str) -> str:
    if url.startswith("duckdb://"):
        url = url[len("duckdb://"):]
        if url.startswith("/") and not url.startswith("//"):
            pass
        url = url.lstrip("/") if url.startswith("//") else url
    return url or ":memory:"


def open_database(url: str, *, create: bool = True, memory_limit: str | None = None) -> Database:
    """Open (and by default create) the Parity database at ``url``.

    ``url`` is ``postgresql://user@host:port/db[?options=-csearch_path%3Dschema]`` or a DuckDB file
    path (``duckdb:///abs/path``, ``./parity-data/parity.duckdb`` or ``:memory:``).
    """
    if str(url).startswith("spark:"):
        # Read-only: an extract folder or catalog schema on a Spark session (parity.db.spark).
        from parity.db.spark import open_spark

        return open_spark(url)
    if _is_postgres(url):
        return _open_postgres(url, create)
    path = _duckdb_path(url)
    if path != ":memory:":
        p = Path(path)
        if not p.exists() and not create:
            raise DatabaseError(f"no Parity database at {p}; run 'parity load' first")
        p.parent.mkdir(parents=True, exist_ok=True)
    try:
        backend = ibis.duckdb.connect(path)
    except Exception as exc:  # duckdb raises IOException for locks and bad files
        raise DatabaseError(f"cannot open DuckDB database {path}: {type(exc).__name__}") from exc
    raw = backend.con
    if memory_limit:
        raw.execute(f"SET memory_limit = '{memory_limit}'")
    db = Database(url, DUCKDB, backend, raw)
    if create:
        db.ensure_schema()
    return db


def _open_postgres(url: str, create: bool) -> Database:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    url = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        info = conninfo_to_dict(url)
    except Exception as exc:
        raise DatabaseError("malformed PostgreSQL URL") from exc
    schema = None
    options = str(info.get("options") or "")
    if "search_path=" in options:
        schema = options.split("search_path=", 1)[1].split()[0].split(",")[0]
    try:
        raw = psycopg.connect(url, autocommit=True)
        if schema:
            raw.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        backend = ibis.postgres.connect(
            host=str(info.get("host") or "127.0.0.1"),
            port=int(info.get("port") or 5432),
            user=str(info["user"]) if info.get("user") else None,
            password=str(info["password"]) if info.get("password") else None,
            database=str(info["dbname"]) if info.get("dbname") else None,
            schema=schema,
        )
        if schema:
            backend.raw_sql(f'SET search_path TO "{schema}"')
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {type(exc).__name__}") from exc
    db = Database(url, POSTGRES, backend, raw)
    if create:
        db.ensure_schema()
    return db
