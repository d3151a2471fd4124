"""Spark: the engine where an ICB or national data platform keeps its data (M11).

``open_database("spark:PATH")`` reads a canonical extract folder (Parquet or CSV);
``open_database("spark:CATALOG.SCHEMA")`` (or ``spark:SCHEMA``) reads the tables ``patients``,
``registrations``, ``events`` and ``medications`` from the session's catalog. Either way the
extract is validated on Spark (``parity.ingest.spark``) and exposed to the engine as temporary views
of the canonical types with those names, plus ``practices`` (the organisation structures shipped with
Parity) and the codelist release tables. Nothing is written unless asked (``--write-table``).

The session is the active one when there is one (a Databricks job or notebook), otherwise a new
one on ``PARITY_SPARK_MASTER`` or ``local[2]``. Settings verified on this platform
(shared/docs/dependencies.md item 2 and pitfall 9): bind to 127.0.0.1 (``SPARK_LOCAL_IP``), no UI,
two shuffle partitions (the default 200 makes each small job 200 tasks), UTC session time zone,
Arrow transfers to pandas.

PySpark is the optional extra ``parity[spark]``; importing this module does not need it.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parity.db.connection import Database
from parity.db.dialect import Dialect, check_table_name
from parity.db.schema import TABLES
from parity.errors import ConfigurationError, DatabaseError

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pyarrow as pa

PREFIX = "spark:"
DEFAULT_MASTER = "local[2]"
#: Session settings for a session Parity starts itself (an active session is used as it is,
#: apart from the time zone, which Ibis sets to UTC on every connection).
SESSION_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
_SQL_TYPES = {"VARCHAR": "STRING", "DATE": "DATE", "BIGINT": "BIGINT", "SMALLINT": "SMALLINT", "INTEGER": "INT",
              "DOUBLE PRECISION": "DOUBLE", "TIMESTAMP": "TIMESTAMP"}
_CATALOG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")
_session_lock = threading.Lock()
_WRITES = frozenset({"CREATE", "INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "TRUNCATE", "MERGE"})


def is_spark_url(url: str) -> bool:
    return url.startswith(PREFIX)


def spark_session(master: str | None = None) -> Any:
    """The active Spark session, or a new one on ``master`` (default ``PARITY_SPARK_MASTER`` or
    ``local[2]``) with ``SESSION_CONF``."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigurationError("Spark needs the optional extra: pip install 'parity[spark]' (and Java 17)") from exc
    with _session_lock:
        active = SparkSession.getActiveSession()
        if active is not None and master is None:
            return active
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = SparkSession.builder.master(master or os.environ.get("PARITY_SPARK_MASTER") or DEFAULT_MASTER)
        builder = builder.appName("parity")
        for key, value in SESSION_CONF.items():
            builder = builder.config(key, value)
        if os.environ.get("PARITY_SPARK_WAREHOUSE"):  # where saveAsTable writes on a bare local session
            builder = builder.config("spark.sql.warehouse.dir", os.environ["PARITY_SPARK_WAREHOUSE"])
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # py4j/Java start-up errors: name the type, never the environment
            raise DatabaseError(f"cannot start Spark: {type(exc).__name__} (is Java 17 installed?)") from exc
        session.sparkContext.setLogLevel("ERROR")
        return session


@dataclass(frozen=True)
class SparkDialect(Dialect):
    """Spark: reads and computes; no transactions, no locks, no Parity tables of its own."""

    name: str = "spark"
    blob_type: str = "BINARY"
    transactions: bool = False
    watch_row_counts: bool = False
    serves_web_app: bool = False
    skips_existing: bool = True
    stores_tables: bool = False

    def exists(self, raw: Any, name: str) -> bool:
        return bool(raw.catalog.tableExists(name))

    def execute(self, raw: Any, sql: str, params: Sequence[Any] | None) -> list[tuple]:
        # Read-only: the Parity tables a Spark "database" has are temporary views made by open_spark
        # ("CREATE TABLE IF NOT EXISTS <a view>", schema set-up before a read, never gets here:
        # ``skips_existing``).
        words = sql.split(None, 1)
        verb = words[0].upper() if words else ""
        if verb in _WRITES:
            raise ConfigurationError("a Spark source is read-only: Parity stores its own tables in DuckDB or "
                                     "PostgreSQL (results go back with --write-table)")
        # Spark SQL binds ``?`` placeholders itself (positional parameters, Spark 3.5+).
        frame = raw.sql(sql, args=list(params)) if params else raw.sql(sql)
        return [tuple(row) for row in frame.collect()]

    def write_table(self, db: Database, name: str, data: pa.Table) -> None:
        # Spark 4 builds a DataFrame from Arrow directly; saveAsTable uses the session's catalog and
        # default format (Delta in Unity Catalog, Parquet in ./spark-warehouse on a bare local session).
        db.raw.createDataFrame(data).write.mode("overwrite").saveAsTable(name)

    def close(self, con: Any, raw: Any) -> None:
        # The session belongs to the process (or the platform's job): never stop it here.
        return None

    def fetch_arrow(self, con: Any, expr: ir.Table) -> pa.Table:
        # Spark 4 hands Arrow over directly; Ibis 12 goes through pandas (toPandas), which is slower
        # and trips pandas 3's deprecation of the ``copy`` keyword inside PySpark.
        # Raw SQL skips Ibis's own execution hooks, so register the expression's in-memory tables
        # (the engine's reporting-date calendar) first, as ``to_pyarrow`` would.
        con._run_pre_execute_hooks(expr)
        return con.raw_sql(con.compile(expr)).toArrow()

    def materialise(self, con: Any, name: str, expr: ir.Table) -> None:
        # A temporary view cached eagerly (CACHE TABLE runs one job): later queries read memory.
        con.create_view(name, expr, overwrite=True)
        con.raw_sql(f"CACHE TABLE `{name}`")

    def release(self, con: Any, name: str) -> bool:
        try:
            con.raw_sql(f"UNCACHE TABLE IF EXISTS `{name}`")
            con.raw_sql(f"DROP VIEW IF EXISTS `{name}`")
        except Exception:  # noqa: BLE001 - a view gone with its session
            return False
        return True


SPARK = SparkDialect()


def open_spark(url: str, *, session: Any = None, validate: bool = True) -> Database:
    """A read-only ``Database`` over an extract folder or catalog schema on Spark (see module doc)."""
    import ibis

    target = url[len(PREFIX):] if is_spark_url(url) else url
    if not target:
        raise ConfigurationError("spark: needs a folder or CATALOG.SCHEMA, e.g. spark:./extract")
    session = session or spark_session()
    con = ibis.pyspark.connect(session)
    db = Database(url, SPARK, con, session)
    path = Path(target)
    if path.is_dir():
        from parity.ingest.spark import read_folder

        frames = read_folder(session, path, validate=validate)
    elif "/" in target or not _CATALOG_NAME.match(target):
        raise ConfigurationError(f"{target} is neither a folder nor a CATALOG.SCHEMA name")
    else:
        from parity.ingest.spark import read_catalog

        frames = read_catalog(session, target, validate=validate)
    for name, frame in frames.items():
        frame.createOrReplaceTempView(name)
    register_practices(db)
    register_codelists(db, path if path.is_dir() else None, None if path.is_dir() else target)
    return db


def register_codelists(db: Database, folder: Path | None, schema: str | None) -> None:
    """Views of the codelist release tables (``parity.codes.store``), so ``--codelists NAME`` works
    on Spark as on a Parity database: read from ``SCHEMA.codelist_files`` … when the platform holds
    them, or ``codelist_files.parquet`` … in the extract folder; otherwise empty (the shipped lists)."""
    import pyarrow.parquet as pq

    from parity.db.bulk import arrow_schema
    from parity.db.schema import CODELIST_TABLES

    session = db.raw
    for name in CODELIST_TABLES:
        if schema and session.catalog.tableExists(f"{schema}.{name}"):
            cols = canonical_select(name, session.table(f"{schema}.{name}").columns)
            session.table(f"{schema}.{name}").selectExpr(*cols).createOrReplaceTempView(name)
        elif folder is not None and (folder / f"{name}.parquet").is_file():
            replace_tables(db, {name: pq.read_table(folder / f"{name}.parquet")})
        else:
            replace_tables(db, {name: arrow_schema(name).empty_table()})


def register_practices(db: Database) -> None:
    """The ``practices`` view: every organisation structure shipped with Parity."""
    from parity.orgs.store import practices_arrow

    replace_tables(db, {"practices": practices_arrow()})


def replace_tables(db: Database, tables: Mapping[str, pa.Table]) -> None:
    """Make each Arrow table the temporary view of that name (Parity tables' columns and types).

    Used for the organisation structures and by tests, which give every dataset its own views."""
    session = db.raw
    for name, data in tables.items():
        check_table_name(name)
        session.createDataFrame(_with_schema(name, data)).createOrReplaceTempView(name)


def _with_schema(name: str, data: pa.Table) -> Any:
    from parity.db.bulk import arrow_schema

    schema = arrow_schema(name)
    return data.select(schema.names).cast(schema) if data.num_rows else schema.empty_table()


def canonical_select(table: str, available: Sequence[str], *,
                     typed: Mapping[str, str] | None = None) -> list[str]:
    """Spark SQL select expressions giving ``table``'s columns in Parity's types (absent optional ones NULL).
    ``typed`` maps a column to the expression that converts it (default ``CAST(col AS type)``)."""
    parts = []
    for col in TABLES[table].columns:
        spark_type = _SQL_TYPES[col.sql_type.split("(")[0]]
        if typed and col.name in typed:
            expr = typed[col.name]
        elif col.name in available:
            expr = f"CAST(`{col.name}` AS {spark_type})"
        else:
            expr = f"CAST(NULL AS {spark_type})"
        parts.append(f"{expr} AS `{col.name}`")
    return parts


@contextlib.contextmanager
def local_session() -> Iterator[Any]:
    """A session for scripts and benchmarks that stops it afterwards (tests keep one per run)."""
    session = spark_session()
    try:
        yield session
    finally:
        session.stop()


__all__ = ["SPARK", "SparkDialect", "canonical_select", "is_spark_url", "open_spark",
           "register_codelists", "register_practices", "replace_tables", "spark_session"]
