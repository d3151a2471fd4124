"""Bulk writes of Arrow tables into a Parity table (how is the dialect's: ``parity.db.dialect``).

Callers own the transaction (``Database.transaction``); these functions never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from parity.db.connection import Database
from parity.db.schema import TABLES

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "DATE": pa.date32(),
    "BIGINT": pa.int64(),
    "SMALLINT": pa.int16(),
    "INTEGER": pa.int32(),
    "DOUBLE PRECISION": pa.float64(),
    "TIMESTAMP": pa.timestamp("us"),
}


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema matching a Parity table's columns."""
    fields = []
    for col in TABLES[table].columns:
        base = col.sql_type.split("(")[0]
        fields.append(pa.field(col.name, _ARROW_TYPES[base], nullable=not col.required))
    return pa.schema(fields)


def rows_to_arrow(table: str, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Build an Arrow table for ``table`` from dict rows (missing optional keys become null)."""
    schema = arrow_schema(table)
    rows = list(rows)
    data = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.table(data, schema=schema)


def insert_arrow(db: Database, table: str, data: pa.Table) -> int:
    """Append ``data`` (columns named as the table's, in any order) to ``table``; returns rows written."""
    cols = [c for c in TABLES[table].column_names if c in data.column_names]
    data = data.select(cols)
    if data.num_rows == 0:
        return 0
    db.dialect.insert_arrow(db, table, data, cols)
    return data.num_rows


def insert_rows(db: Database, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append dict rows to ``table`` (for tests and small writes)."""
    return insert_arrow(db, table, rows_to_arrow(table, rows))
