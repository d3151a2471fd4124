"""What differs between the backends Parity runs on, as data: one ``Dialect`` object per backend.

Feature code and the engine ask the dialect (``db.dialect``) instead of branching on the backend's
name, so adding a backend means adding a dialect here, not editing every module that stores or
queries something. A dialect holds:

- capabilities: transactions, a lock shared by several processes, append-only triggers, whether the
  engine must watch row counts to notice new data;
- types: the column type of a byte string (``blob_type``);
- behaviour that cannot be a constant: running one SQL statement through the DBAPI connection, a
  transaction, bulk inserts, append-only protection, the engine's planner settings, and how the
  engine keeps an intermediate result (a temporary table, or on Spark a cached view).

The Spark dialect lives in ``parity.db.spark`` (PySpark is an optional extra).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parity.errors import ConfigurationError

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pyarrow as pa

    from parity.db.connection import Database

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Dialect:
    """One backend's differences. Subclasses override the methods; the fields are plain data."""

    name: str
    #: column type of a byte string (PDF letters, cached result frames)
    blob_type: str = "BLOB"
    #: all-or-nothing writes (``Database.transaction``)
    transactions: bool = True
    #: a lock held by a transaction that other *processes* wait for (``parity.db.locks``)
    cross_process_locks: bool = False
    #: the database itself refuses UPDATE/DELETE/TRUNCATE on append-only tables
    append_only_triggers: bool = False
    #: the engine re-counts the extract tables on every call to notice a load (cheap on SQL
    #: databases; on Spark each count is a job, and a run reads one snapshot)
    watch_row_counts: bool = True
    #: the engine's intermediate tables need ``ANALYZE`` before the planner can use them well
    analyze_temp_tables: bool = False
    #: statements run at the start of each engine call, inside one transaction (``SET LOCAL …``)
    engine_settings: tuple[str, ...] = ()
    #: each engine call is one transaction, so a failed call loses the temporary tables it made
    engine_transaction: bool = False
    #: the web app, users, audit, care and messaging need a writable transactional database
    serves_web_app: bool = True
    #: appended to a SELECT to lock the rows it reads until the transaction ends
    for_update: str = ""
    #: database roles that can be granted least privilege (``parity db grant``)
    roles: bool = False
    #: ``CREATE … IF NOT EXISTS`` of an existing object is skipped by Parity before it reaches the
    #: database (``Database.execute``): PostgreSQL checks the CREATE privilege first, which a
    #: least-privilege role lacks; on a read-only Spark source it would create a real table
    skips_existing: bool = False
    #: Parity creates and writes its own tables here (DuckDB, PostgreSQL; not a Spark source)
    stores_tables: bool = True
    #: an extract is staged and checked inside the database itself (DuckDB runs the checks' SQL);
    #: otherwise in a DuckDB work file and then copied over (``parity.ingest.load``)
    validates_in_place: bool = False

    # -- raw SQL through the DBAPI connection ---------------------------------------------------
    def execute(self, raw: Any, sql: str, params: Sequence[Any] | None) -> list[tuple]:
        """Run one statement and return its rows (``?`` placeholders)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self, raw: Any) -> Iterator[None]:
        """Commit if the block succeeds, roll back on any exception."""
        raise ConfigurationError(f"{self.name} has no transactions")
        yield  # pragma: no cover

    def exists(self, raw: Any, name: str) -> bool:
        """Whether a table or index ``name`` exists in the current schema."""
        return False

    def close(self, con: Any, raw: Any) -> None:
        """Disconnect the Ibis backend (and the DBAPI connection when the backend does not own it)."""
        with contextlib.suppress(Exception):
            con.disconnect()

    # -- writes ----------------------------------------------------------------------------------
    def insert_arrow(self, db: Database, table: str, data: pa.Table, columns: Sequence[str]) -> None:
        """Append ``data`` (already reduced to ``columns``) to ``table``."""
        raise ConfigurationError(f"{self.name} does not store Parity tables")

    def write_table(self, db: Database, name: str, data: pa.Table) -> None:
        """Create (or replace) table ``name`` holding ``data``."""
        database, _, table = name.rpartition(".")
        with db.lock:
            db.ibis.create_table(table, data, database=database or None, overwrite=True)

    def protect(self, db: Database, table: str) -> None:
        """Make ``table`` append-only in the database itself, where the backend can (idempotent).
        Without triggers, append-only rests on the API having no update or delete function."""

    def lock(self, db: Database, key: int) -> None:
        """Inside a transaction, wait for the cross-process lock ``key`` (no-op without one)."""

    # -- the engine ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def engine_session(self, con: Any) -> Iterator[None]:
        """Around one engine call: ``engine_settings`` in one transaction on the Ibis connection."""
        yield

    def fetch_arrow(self, con: Any, expr: ir.Table) -> pa.Table:
        """Run ``expr`` and return its rows as Arrow (dates as dates)."""
        return expr.to_pyarrow()

    def materialise(self, con: Any, name: str, expr: ir.Table) -> None:
        """Keep ``expr``'s rows as the table ``name`` for the rest of the session."""
        con.create_table(name, expr, temp=True)
        if self.analyze_temp_tables:
            with con.raw_sql(f'ANALYZE "{name}"'):
                pass

    def fetch_rows(self, con: Any, sql: str) -> list[tuple]:
        """Rows of one SQL statement (written by Parity, no parameters) on the Ibis connection."""
        return list(con.raw_sql(sql).fetchall())

    def tables_like(self, con: Any, prefix: str) -> list[str]:
        """Names of the tables in the current schema that start with ``prefix`` (letters, digits, _)."""
        rows = self.fetch_rows(con, self._tables_like_sql(prefix))
        return [str(r[0]) for r in rows if str(r[0]).startswith(prefix)]

    def _tables_like_sql(self, prefix: str) -> str:
        check_table_name(prefix)
        return ("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                f"AND table_catalog = current_database() AND table_name LIKE '{prefix}%'")

    @contextlib.contextmanager
    def capped_memory(self, db: Database, limit: str) -> Iterator[None]:
        """Hold the database engine to ``limit`` of memory for the block, spilling to disk beyond it
        (DuckDB, in this process); other backends manage their own memory."""
        yield

    def keep(self, con: Any, name: str, expr: ir.Table) -> None:
        """Keep ``expr``'s rows as the ordinary table ``name``, for every later session and process
        (the engine's feature tables after a load)."""
        con.create_table(name, expr)
        if self.analyze_temp_tables:
            with con.raw_sql(f'ANALYZE "{name}"'):
                pass

    def release(self, con: Any, name: str) -> bool:
        """Drop what ``materialise`` or ``keep`` made (quietly: it may be gone with its session, or be in
        use by another process); whether it was dropped."""
        try:
            con.drop_table(name, force=True)
        except Exception:  # noqa: BLE001 - never fatal: a later load drops it
            return False
        return True


def check_table_name(table: str) -> str:
    """``table`` if it is a plain lower-case SQL name (names come from code, never from input)."""
    if not _NAME.match(table):
        raise ValueError(f"not a table name: {table!r}")
    return table


@dataclass(frozen=True)
class DuckDBDialect(Dialect):
    """DuckDB: embedded, one writing process, no triggers."""

    name: str = "duckdb"
    blob_type: str = "BLOB"
    validates_in_place: bool = True

    def execute(self, raw: Any, sql: str, params: Sequence[Any] | None) -> list[tuple]:
        cur = raw.execute(sql, params or [])
        try:
            return cur.fetchall()
        except Exception:  # noqa: BLE001 - DDL has no result set
            return []

    @contextlib.contextmanager
    def transaction(self, raw: Any) -> Iterator[None]:
        raw.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        raw.execute("COMMIT")

    @contextlib.contextmanager
    def capped_memory(self, db: Database, limit: str) -> Iterator[None]:
        # memory_limit is one setting of the process's DuckDB instance: put the previous one back.
        previous = db.execute("SELECT current_setting('memory_limit')")[0][0]
        db.execute(f"SET memory_limit = '{limit}'")
        try:
            yield
        finally:
            db.execute(f"SET memory_limit = '{previous}'")

    def exists(self, raw: Any, name: str) -> bool:
        name = name.split(".")[-1].lower()
        row = raw.execute(
            "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() AND lower(table_name) = ? "
            "UNION ALL SELECT 1 FROM duckdb_indexes() WHERE database_name = current_database() "
            "AND lower(index_name) = ? LIMIT 1", [name, name]).fetchone()
        return row is not None

    def insert_arrow(self, db: Database, table: str, data: pa.Table, columns: Sequence[str]) -> None:
        # DuckDB scans a registered Arrow table in place: no copy, no row loop.
        view = f"_parity_insert_{table}"
        col_sql = ", ".join(columns)
        db.raw.register(view, data)
        try:
            db.raw.execute(f"INSERT INTO {table} ({col_sql}) SELECT {col_sql} FROM {view}")
        finally:
            db.raw.unregister(view)


_PG_APPEND_ONLY_FUNCTION = """CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION '{table} is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$fn$"""


@dataclass(frozen=True)
class PostgresDialect(Dialect):
    """PostgreSQL: several server processes, advisory locks, triggers, a cost-based planner."""

    name: str = "postgres"
    blob_type: str = "BYTEA"
    cross_process_locks: bool = True
    append_only_triggers: bool = True
    for_update: str = " FOR UPDATE"
    roles: bool = True
    skips_existing: bool = True
    # Autovacuum never analyses temporary tables; without statistics the planner guesses a few
    # rows and picks nested loops over hundreds of thousands.
    analyze_temp_tables: bool = True
    # No JIT, which spends seconds compiling the engine's wide expressions; server-side cursors
    # (Ibis fetches through one) planned for all rows rather than the first tenth.
    engine_settings: tuple[str, ...] = ("SET LOCAL jit = off", "SET LOCAL cursor_tuple_fraction = 1.0")
    engine_transaction: bool = True

    def execute(self, raw: Any, sql: str, params: Sequence[Any] | None) -> list[tuple]:
        if params:
            sql = sql.replace("%", "%%").replace("?", "%s")
        with raw.cursor() as cur:
            cur.execute(sql, params)
            if cur.description is None:
                return []
            return cur.fetchall()

    @contextlib.contextmanager
    def transaction(self, raw: Any) -> Iterator[None]:
        with raw.transaction():
            yield

    def exists(self, raw: Any, name: str) -> bool:
        with raw.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
            row = cur.fetchone()
        return bool(row and row[0])

    def close(self, con: Any, raw: Any) -> None:
        super().close(con, raw)
        with contextlib.suppress(Exception):
            raw.close()

    def insert_arrow(self, db: Database, table: str, data: pa.Table, columns: Sequence[str]) -> None:
        # COPY in text form through psycopg, batch by batch.
        col_sql = ", ".join(columns)
        with db.raw.cursor() as cur, cur.copy(f"COPY {table} ({col_sql}) FROM STDIN") as copy:
            for batch in data.to_batches(max_chunksize=100_000):
                cols = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
                for row in zip(*cols, strict=True):
                    copy.write_row(row)

    def protect(self, db: Database, table: str) -> None:
        check_table_name(table)
        function = f"parity_{table}_append_only"
        # Looked up rather than CREATE OR REPLACE TRIGGER (PostgreSQL 14+) or DROP IF EXISTS (which
        # would leave a moment without the trigger and emits notices).
        existing = {row[0] for row in db.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(?) AND NOT tgisinternal", [table])}
        triggers = {
            f"{table}_no_update_delete": f"BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW",
            f"{table}_no_truncate": f"BEFORE TRUNCATE ON {table} FOR EACH STATEMENT",
        }
        if set(triggers) <= existing:
            # Already protected. Replacing the function needs its owner, which a least-privilege role
            # (``parity db grant``) is not, so nothing is re-run (issue 12 finding 7).
            return
        db.execute(_PG_APPEND_ONLY_FUNCTION.format(function=function, table=table))
        for name, when in triggers.items():
            if name not in existing:
                db.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {function}()")

    def lock(self, db: Database, key: int) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", [key])

    def fetch_rows(self, con: Any, sql: str) -> list[tuple]:
        with con.raw_sql(sql) as cur:  # a psycopg cursor: closed here
            return list(cur.fetchall())

    def _tables_like_sql(self, prefix: str) -> str:
        # Only tables this role may read: a least-privilege role (``parity db grant``) skips any it
        # was not granted, and the engine builds its own instead of failing.
        return (super()._tables_like_sql(prefix) + " AND has_table_privilege("
                "quote_ident(table_schema) || '.' || quote_ident(table_name), 'SELECT')")

    @contextlib.contextmanager
    def engine_session(self, con: Any) -> Iterator[None]:
        # One transaction on the Ibis connection, so SET LOCAL outlives nothing.
        with con.con.transaction():
            with con.con.cursor() as cur:
                for sql in self.engine_settings:
                    cur.execute(sql)
            yield


DUCKDB = DuckDBDialect()
POSTGRES = PostgresDialect()
#: The dialects of the databases Parity stores its tables in, by name (Spark's is ``parity.db.spark.SPARK``).
DIALECTS: dict[str, Dialect] = {d.name: d for d in (DUCKDB, POSTGRES)}
