"""Small lookups the dashboard needs about one patient before deciding what to show."""

from __future__ import annotations

from datetime import date

from parity.db import Database


def registered_practice(db: Database, nhs_number: str, as_of: date) -> str | None:
    """The practice ``nhs_number`` is registered at on ``as_of`` (latest start wins, then the smallest
    code, as in the engine contract), or None."""
    rows = db.execute(
        "SELECT practice_code FROM registrations WHERE nhs_number = ? AND start_date <= ? "
        "AND (end_date IS NULL OR end_date >= ?) ORDER BY start_date DESC, practice_code LIMIT 1",
        [nhs_number, as_of, as_of])
    return str(rows[0][0]) if rows else None
