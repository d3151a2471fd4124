"""Shared fixtures: real DuckDB and PostgreSQL databases.

PostgreSQL tests read ``PARITY_TEST_POSTGRES_URL``. Without it they skip locally, but under CI
(``CI=true``) a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from parity.db import Database, open_database

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(reason: str) -> None:
    """Skip locally, fail under CI: a missing component must never pass CI silently."""
    if IN_CI:
        pytest.fail(f"required test component missing under CI: {reason}")
    pytest.skip(reason)


def postgres_base_url() -> str:
    url = os.environ.get("PARITY_TEST_POSTGRES_URL", "")
    if not url:
        need("PARITY_TEST_POSTGRES_URL is not set")
    return url


def postgres_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty schema on the test PostgreSQL server (dropped afterwards)."""
    import psycopg

    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        need(f"PostgreSQL not reachable: {type(exc).__name__}")
    yield postgres_schema_url(base, schema)
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def duckdb_db() -> Iterator[Database]:
    db = open_database(":memory:")
    yield db
    db.close()


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[Database]:
    db = open_database(postgres_url)
    yield db
    db.close()


@pytest.fixture(params=["duckdb", "postgres"])
def any_db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """Each test using this runs once on DuckDB and once on PostgreSQL."""
    if request.param == "duckdb":
        yield request.getfixturevalue("duckdb_db")
    else:
        yield request.getfixturevalue("postgres_db")


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - pyspark.sql.SparkSession
    """One ``local[2]`` Spark session for the whole run (no UI, 127.0.0.1, two shuffle partitions:
    ``parity.db.spark``; tables written go to a temporary warehouse). Missing PySpark or Java skips
    locally and fails under CI."""
    os.environ["PARITY_SPARK_WAREHOUSE"] = str(tmp_path_factory.mktemp("spark-warehouse"))
    try:
        import pyspark  # noqa: F401
    except ImportError:
        need("PySpark is not installed: pip install -e '.[spark]'")
    from parity.db.spark import spark_session as start

    try:
        session = start()
    except Exception as exc:  # noqa: BLE001 - reported by type; the cause is the machine, not the test
        need(f"Spark cannot start: {type(exc).__name__}")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_db(spark_session) -> Database:  # noqa: ANN001
    """A read-only Parity ``Database`` on the session (tests put tables in with ``replace_tables``)."""
    import ibis

    from parity.db.spark import SPARK

    return Database("spark:tests", SPARK, ibis.pyspark.connect(spark_session), spark_session)
