"""Writing a result frame back as a table of the database it came from (``--write-table``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from parity.db.connection import Database
from parity.errors import ConfigurationError

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")


def write_frame(db: Database, name: str, frame: Any, metadata: Mapping[str, str] | None = None) -> str:
    """Write ``frame`` (pandas) as table ``name`` (``[[CATALOG.]SCHEMA.]TABLE``), replacing it, with one
    column per ``metadata`` item (measure, reporting date, structure, codelists) so the table says what
    made it. On Spark this is how results reach the platform's own dashboards. Returns ``name``."""
    import pyarrow as pa

    if not _TABLE_NAME.match(name):
        raise ConfigurationError(f"a table name is letters, digits and _ with optional SCHEMA. prefix, not {name!r}")
    out = frame.copy()
    for key, value in (metadata or {}).items():
        if key not in out.columns:
            out[key] = value
    db.dialect.write_table(db, name, pa.Table.from_pandas(out, preserve_index=False))
    return name
