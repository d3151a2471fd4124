"""An in-memory copy of the extract tables: the reference engine's input and the spec tests' fixture.

Rows are plain dicts with Python values: ``nhs_number`` str, dates ``datetime.date``,
``snomed_code``/``dmd_code`` int, ``value`` float or None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parity.db.bulk import insert_rows
from parity.db.connection import Database

Row = dict[str, Any]


@dataclass
class Dataset:
    """The four extract tables plus the practice hierarchy rows (``practices`` table shape)."""

    patients: list[Row] = field(default_factory=list)
    registrations: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    medications: list[Row] = field(default_factory=list)
    practices: list[Row] = field(default_factory=list)

    TABLES = ("patients", "registrations", "events", "medications", "practices")

    @classmethod
    def from_database(cls, db: Database) -> Dataset:
        """Read every table into memory (small databases only: tests and checks)."""
        ds = cls()
        for name in cls.TABLES:
            df = db.ibis.table(name).to_pandas()
            rows = []
            for rec in df.to_dict("records"):
                rows.append({k: _py(v) for k, v in rec.items()})
            setattr(ds, name, rows)
        return ds

    def write(self, db: Database) -> None:
        """Append every table to ``db`` in one transaction (no validation: tests only)."""
        with db.transaction():
            for name in self.TABLES:
                insert_rows(db, name, getattr(self, name))


def _py(v: Any) -> Any:
    import datetime as dt

    import pandas as pd

    if v is None or v is pd.NaT:
        return None
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, pd.Timestamp):
        return v.date()
    if isinstance(v, dt.datetime):
        return v.date()
    if hasattr(v, "item"):
        return v.item()
    return v
