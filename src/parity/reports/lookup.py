"""Small lookups the dashboard needs about one patient before deciding what to show."""

from __future__ import annotations

from datetime import date

from parity.db import Database
from parity.db.indexes import patient_rows


def registered_practice(db: Database, nhs_number: str, as_of: date) -> str | None:
    """The practice ``nhs_number`` is registered at on ``as_of`` (latest start wins, then the smallest
    code, as in the engine contract), or None."""
    # By NHS number alone, so the index answers (``patient_rows``); the dates are compared here.
    rows = sorted((-start.toordinal(), str(code)) for code, start, end in patient_rows(
        db, "registrations", "practice_code, start_date, end_date", nhs_number)
        if start <= as_of and (end is None or end >= as_of))
    return rows[0][1] if rows else None
