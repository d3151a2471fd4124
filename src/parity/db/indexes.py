"""Indexes that make one patient's rows cheap to read (issue 16, target 3).

A patient page (timeline, passport, contacts, findings) asks for one NHS number's events,
registrations and prescriptions. Without an index every such query scans the whole table, so the page
cost what the whole database cost: at region scale (7.7 million events) 24 ms for each events query,
1.2 ms with the index; England has seven times the events. The engine and the load never use these
indexes, so they are made *after* a load (``parity load``, ``parity demo``), not kept up to date during
it (schema.py: index maintenance would slow bulk loads); a database without them still answers, by scanning.

DuckDB builds an ART index (``CREATE INDEX``; used for equality filters on the column, including a bound
parameter), PostgreSQL a B-tree. Measured: 6 s and 370 MB on the region's 7.7 million events; 14 s and 1.2 GB on
England's 56.7 million with the memory limit below.
"""

from __future__ import annotations

from parity.db.connection import Database

INDEX_MEMORY = "2GB"  #: DuckDB's memory limit while it builds the indexes (issue 16 target 2: load peak ≤ 2 GB)

#: (index name, table, column): the tables a one-patient page reads by NHS number.
PATIENT_INDEXES: tuple[tuple[str, str, str], ...] = (
    ("events_nhs_number", "events", "nhs_number"),
    ("registrations_nhs_number", "registrations", "nhs_number"),
    ("medications_nhs_number", "medications", "nhs_number"),
    ("patients_nhs_number", "patients", "nhs_number"),
)


def ensure_patient_indexes(db: Database) -> list[str]:
    """Create the missing ``PATIENT_INDEXES`` (idempotent); returns the names created."""
    if db.kind not in ("duckdb", "postgres"):
        return []
    with db.lock:
        have = _existing(db)
        missing = [(n, t, c) for n, t, c in PATIENT_INDEXES if n.lower() not in have]
        if not missing:
            return []
        previous = None
        if db.kind == "duckdb":
            # DuckDB builds an ART index in memory up to its limit (80% of RAM by default): England's events
            # and prescriptions took the load to 9.0 GB; capped, the events index alone took 14 s and 1.2 GB.
            previous = db.execute("SELECT current_setting('memory_limit')")[0][0]
            db.execute(f"SET memory_limit = '{INDEX_MEMORY}'")
        made = []
        try:
            for name, table, column in missing:
                try:
                    db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})")
                except Exception as exc:  # noqa: BLE001 - only a refusal that leaves the index in place is let through
                    # A least-privilege PostgreSQL role (parity db grant) owns no table: the owner makes the
                    # indexes (parity db grant runs this as the owner); the load itself has committed.
                    # Two server processes starting together (parity serve --workers) both find an index
                    # missing and make it; PostgreSQL refuses the second with a duplicate catalogue key.
                    if db.kind != "postgres" or type(exc).__name__ not in ("InsufficientPrivilege",
                                                                          "UniqueViolation", "DuplicateTable"):
                        raise
                    continue
                made.append(name)
        finally:
            if previous is not None:
                db.execute(f"SET memory_limit = '{previous}'")
        return made


def _existing(db: Database) -> set[str]:
    if db.kind == "duckdb":
        rows = db.execute("SELECT index_name FROM duckdb_indexes() WHERE database_name = current_database()")
    else:
        rows = db.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
    return {str(r[0]).lower() for r in rows}


def drop_patient_indexes(db: Database) -> None:
    """Drop ``PATIENT_INDEXES`` before a bulk load (made again after it by ``ensure_patient_indexes``).

    Measured at region scale (7.7 million events): a replace load with the events index in place took
    28.5 s of CPU and 54 s, against 12 s and 20 s without it (the index kept up to date row by row)."""
    if db.kind not in ("duckdb", "postgres"):
        return
    with db.lock:
        for name in _existing(db) & {n.lower() for n, _, _ in PATIENT_INDEXES}:
            db.execute(f"DROP INDEX IF EXISTS {name}")



def patient_rows(db: Database, table: str, columns: str, nhs_number: str) -> list[tuple]:
    """``SELECT columns FROM table WHERE nhs_number = ?``: one patient's rows, found by the index.

    Callers filter the rows further in Python. DuckDB answers from its ART index only a lone equality on the
    indexed column: an ``OR``, a join or a second table in the statement makes it scan the whole table
    (duckdb/duckdb#8330, #24111; ``EXPLAIN ANALYZE`` shows "Type: Index Scan" or "Sequential Scan"), and a
    patient has a few hundred rows at most. ``table`` and ``columns`` are the caller's constants.
    """
    return db.execute(f"SELECT {columns} FROM {table} WHERE nhs_number = ?", [str(nhs_number)])
