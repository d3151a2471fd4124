"""Write the organisation hierarchy into a Parity database's ``practices`` table."""

from __future__ import annotations

import contextlib

import pandas as pd
import pyarrow as pa

from parity.db import Database
from parity.db.bulk import arrow_schema, insert_arrow
from parity.db.schema import TABLES
from parity.orgs.hierarchy import STRUCTURES, practices


def practices_arrow() -> pa.Table:
    """Every structure's practices as one Arrow table with the ``practices`` table schema."""
    frame = pd.concat([practices(s) for s in STRUCTURES], ignore_index=True)
    table = pa.Table.from_pandas(frame, schema=arrow_schema("practices"), preserve_index=False)
    return table.replace_schema_metadata(None)


def write_practices(db: Database) -> int:
    """Replace the contents of the ``practices`` table with every structure; returns rows written.

    Works inside a caller's ``db.transaction()`` (and then commits or rolls back with it); outside
    one it opens its own, so readers never see the table half written. Creates the table if it is
    missing.
    """
    data = practices_arrow()
    # Join the caller's transaction or open one. Read the flag under db.lock: otherwise another
    # thread's open transaction could be mistaken for ours (and its statements interleaved).
    with db.lock:
        scope = contextlib.nullcontext(db) if db.in_transaction else db.transaction()
        with scope:
            db.execute(TABLES["practices"].ddl())
            db.execute("DELETE FROM practices")
            return insert_arrow(db, "practices", data)
