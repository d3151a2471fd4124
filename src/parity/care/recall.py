"""Recall: each practice's invitation schedule, and who to invite in a month (M5).

A practice chooses its schedule (``recall_settings``, append-only: the latest setting wins):

- ``birthday_month`` (default, product.md M5): invite in the month of the patient's birthday;
- ``medication_review``: invite in the month of the last medication review (MEDRVW_COD), so the
  check and the annual review happen together; patients with no review on record fall back to their
  birthday month.

In the chosen month a patient is invited when any core check is missing or falls due by the month's
end, and the DNA protocol allows an invitation (due; no reply to the first; 7 days after a DNA).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from parity.care.contacts import Contact, histories, preferences, ready
from parity.care.protocol import state_on
from parity.db import Database
from parity.db.transactions import atomic, utc_now
from parity.errors import ConfigurationError

MODES = ("birthday_month", "medication_review")
DEFAULT_MODE = "birthday_month"
MODE_WORDS = {"birthday_month": "Birthday month",
              "medication_review": "With the annual medication review (birthday month if none)"}


@dataclass(frozen=True)
class Due:
    """One invitation to send: who, which checks, first or second invitation, and their options."""

    nhs_number: str
    practice_code: str
    checks_due: tuple[str, ...]
    invitation_number: int
    options: tuple[str, ...]
    recall_month: int


def set_mode(db: Database, practice_code: str, mode: str, username: str | None = None,
             now: datetime | None = None) -> None:
    """Choose a practice's recall schedule."""
    ready(db)
    if mode not in MODES:
        raise ConfigurationError(f"unknown recall schedule {mode!r}; choose one of {', '.join(MODES)}")
    with atomic(db):
        db.execute("INSERT INTO recall_settings (practice_code, set_at, mode, username) VALUES (?, ?, ?, ?)",
                   [practice_code, now or utc_now(), mode, username])


def mode_of(db: Database, practice_code: str) -> str:
    """A practice's recall schedule (the default until one is chosen)."""
    ready(db)
    rows = db.execute("SELECT mode FROM recall_settings WHERE practice_code = ? ORDER BY set_at DESC LIMIT 1",
                      [practice_code])
    return str(rows[0][0]) if rows else DEFAULT_MODE


def month_bounds(month: str) -> tuple[date, date]:
    """``YYYY-MM`` -> first and last day."""
    try:
        year, mon = (int(p) for p in month.split("-"))
        first = date(year, mon, 1)
    except (ValueError, TypeError):
        raise ConfigurationError(f"month must be written YYYY-MM, got {month!r}") from None
    return first, date(year, mon, calendar.monthrange(year, mon)[1])


def recall_months(db: Database, patients: pd.DataFrame, mode: str, as_of: date) -> dict[str, int]:
    """NHS number -> recall month (1-12) under ``mode``; ``patients`` has nhs_number, date_of_birth."""
    months = {str(n): pd.Timestamp(d).month for n, d in zip(patients["nhs_number"], patients["date_of_birth"],
                                                             strict=True) if pd.notna(d)}
    if mode == "medication_review" and months:
        from parity.codes import load_codelist

        codes = sorted(int(c) for c in load_codelist("MEDRVW_COD").ids())
        marks = ", ".join("?" for _ in codes)
        rows = db.execute(f"SELECT nhs_number, MAX(date) FROM events WHERE snomed_code IN ({marks}) AND date <= ? "
                          "GROUP BY nhs_number", [*codes, as_of])
        for nhs, last in rows:
            if str(nhs) in months and last is not None:
                months[str(nhs)] = pd.Timestamp(last).month
    return months


def due_invitations(db: Database, wl: pd.DataFrame, practice_code: str, month: str, as_of: date,
                    core: tuple[str, ...], contacts: dict[str, list[Contact]] | None = None) -> list[Due]:
    """Who to invite at ``practice_code`` in ``month`` (``YYYY-MM``), from its worklist ``wl`` on ``as_of``."""
    first, last = month_bounds(month)
    mine = wl[wl["practice_code"] == practice_code]
    if mine.empty:
        return []
    people = db.execute(
        "SELECT nhs_number, date_of_birth FROM patients WHERE nhs_number IN ("
        + ", ".join("?" for _ in mine["nhs_number"]) + ")", list(mine["nhs_number"].astype(str)))
    months = recall_months(db, pd.DataFrame(people, columns=["nhs_number", "date_of_birth"]),
                           mode_of(db, practice_code), as_of)
    contacts = histories(db, practice_code) if contacts is None else contacts
    out = []
    for rec in mine.to_dict("records"):
        nhs = str(rec["nhs_number"])
        if months.get(nhs) != first.month:
            continue
        due = tuple(c for c in core if rec.get(f"{c}_status") != "done"
                    or (rec.get(f"{c}_due") is not None and pd.Timestamp(rec[f"{c}_due"]).date() <= last))
        if not due:
            continue
        history = contacts.get(nhs, [])
        state = state_on(history, max(as_of, first))
        if state.state == "due":
            number = 1
        elif state.state in ("invited", "dna_once") and state.next_action == "Send a second invitation" \
                and (state.action_from is None or state.action_from <= last):
            number = 2
        else:
            continue
        out.append(Due(nhs, practice_code, due, number, preferences(history), first.month))
    return out
