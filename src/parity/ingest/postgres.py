"""Moving rows between the DuckDB work connection and PostgreSQL with COPY.

Rows go to PostgreSQL as CSV produced by Arrow's C++ writer, batch by batch, so no Python code runs
per row. A second thread reads and encodes the next batch while the current one is sent.
"""

from __future__ import annotations

import queue
import tempfile
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from parity.db.schema import TABLES
from parity.ingest.reader import PREFIX, quote_ident, sql_string

BATCH_ROWS = 250_000
_DUCK_TYPES = {"DOUBLE PRECISION": "DOUBLE"}


def _duck_type(sql_type: str) -> str:
    base = sql_type.split("(")[0]
    return _DUCK_TYPES.get(base, base)


def copy_from_duckdb(con: Any, select_sql: str, pg: Any, table: str, columns: list[str]) -> int:
    """Run ``select_sql`` in DuckDB and COPY its rows into PostgreSQL ``table``; returns rows sent.

    The caller owns the PostgreSQL transaction. Values are written as CSV: NULL is an unquoted
    empty field and every text value is quoted, so empty text and NULL stay distinct.
    """
    reader = con.execute(select_sql).to_arrow_reader(BATCH_ROWS)
    options = pacsv.WriteOptions(include_header=False, batch_size=BATCH_ROWS)
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in reader:
                if stop.is_set():
                    return
                sink = pa.BufferOutputStream()
                pacsv.write_csv(pa.Table.from_batches([batch]), sink, options)
                chunks.put(sink.getvalue().to_pybytes())
            chunks.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            chunks.put(exc)

    worker = threading.Thread(target=produce, name="parity-ingest-copy", daemon=True)
    worker.start()
    rows = 0
    col_sql = ", ".join(columns)
    try:
        with pg.cursor() as cur:
            with cur.copy(f"COPY {table} ({col_sql}) FROM STDIN (FORMAT csv)") as copy:
                while True:
                    item = chunks.get()
                    if item is None:
                        break
                    if isinstance(item, BaseException):
                        raise item
                    copy.write(item)
            rows = cur.rowcount
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                chunks.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()
    return int(rows)


def fetch_table(pg: Any, con: Any, table: str, workdir: Path) -> str:
    """Copy a PostgreSQL table into a DuckDB temp table (for append-mode checks); returns its name."""
    cols = TABLES[table].columns
    name = f"{PREFIX}existing_{table}"
    col_sql = ", ".join(c.name for c in cols)
    with tempfile.NamedTemporaryFile(suffix=".csv", dir=workdir, delete=False) as f:
        path = Path(f.name)
        with pg.cursor() as cur, cur.copy(f"COPY (SELECT {col_sql} FROM {table}) TO STDOUT (FORMAT csv)") as cp:
            for data in cp:
                f.write(data)
    try:
        types = "{" + ", ".join(f"{sql_string(c.name)}: '{_duck_type(c.sql_type)}'" for c in cols) + "}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM read_csv({sql_string(str(path))}, "
            f"header = false, auto_detect = false, columns = {types}, delim = ',', quote = '\"', "
            "escape = '\"')"
        )
    finally:
        path.unlink(missing_ok=True)
    return name


def insert_new_rows(pg: Any, con: Any, select_sql: str, table: str) -> tuple[int, int]:
    """Append mode: COPY rows to a temporary table, then insert those not already stored.

    Returns (rows inserted, rows skipped as identical to a stored row). Required columns compare
    with ``=`` (so PostgreSQL can hash-join on them), optional ones with IS NOT DISTINCT FROM.
    """
    cols = TABLES[table].columns
    names = [c.name for c in cols]
    stage = f"{PREFIX}{table}"
    with pg.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE {stage} (LIKE {table}) ON COMMIT DROP")
    sent = copy_from_duckdb(con, select_sql, pg, stage, names)
    same = " AND ".join(
        f"x.{quote_ident(c.name)} = s.{quote_ident(c.name)}" if c.required
        else f"x.{quote_ident(c.name)} IS NOT DISTINCT FROM s.{quote_ident(c.name)}"
        for c in cols
    )
    col_sql = ", ".join(names)
    with pg.cursor() as cur:
        cur.execute(f"ANALYZE {stage}")
        cur.execute(f"ANALYZE {table}")
        # Over millions of rows a hash anti-join is several times faster than the merge join the
        # planner tends to pick (two external sorts); give it memory for few batches. SET LOCAL
        # lasts until the load's transaction ends.
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute("SET LOCAL enable_mergejoin = off")
        cur.execute(f"INSERT INTO {table} ({col_sql}) SELECT {col_sql} FROM {stage} s "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE {same})")
        inserted = int(cur.rowcount)
        cur.execute(f"DROP TABLE {stage}")
    return inserted, sent - inserted
