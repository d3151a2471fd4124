"""Arrow schemas of the canonical extract v1 tables, derived from ``parity.db.schema``."""

from __future__ import annotations

import pyarrow as pa

from parity.db.schema import EXTRACT_TABLES

_ARROW = {
    "VARCHAR": pa.string(),
    "DATE": pa.date32(),
    "BIGINT": pa.int64(),
    "SMALLINT": pa.int16(),
    "DOUBLE PRECISION": pa.float64(),
}


def _arrow_type(sql_type: str) -> pa.DataType:
    return _ARROW[sql_type.split("(")[0]]


ARROW_SCHEMAS: dict[str, pa.Schema] = {
    name: pa.schema([pa.field(c.name, _arrow_type(c.sql_type), nullable=not c.required) for c in table.columns])
    for name, table in EXTRACT_TABLES.items()
}
