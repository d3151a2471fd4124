"""The contact log: every invitation, booking, attendance, missed appointment and outreach attempt.

Append-only (product.md: state users create is stored as events; current state is a query over
them). A correction is a new event, never an edit. Notes are free text a practice writes for itself;
they are stored and shown to people who may see the patient, and never logged.
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass
from datetime import date, datetime

from parity.db import Database
from parity.db.append_only import ensure_table
from parity.db.locks import LockKey
from parity.db.transactions import atomic, utc_now
from parity.errors import ConfigurationError

# What happened. ``preferences`` records the patient-friendly options a person asked for.
KINDS = ("invited", "booked", "attended", "did_not_attend", "declined", "unable_to_contact", "outreach",
         "preferences")
CHANNELS = ("letter", "sms", "phone", "email", "in_person", "home_visit", "community_venue", "third_sector")
# Reasonable adjustments people with SMI most often need (regional roadmap findings, product.md M5).
OPTIONS = {
    "later_appointment": "A later appointment time",
    "quiet_space": "A quiet space to wait",
    "shorter_appointment": "Shorter appointments",
    "longer_appointment": "A longer appointment",
    "same_clinician": "The same clinician each time",
    "carer_present": "A carer or supporter present",
    "reminder_call": "A reminder call the day before",
}
KIND_WORDS = {"invited": "Invited", "booked": "Booked", "attended": "Attended", "did_not_attend": "Did not attend",
              "declined": "Declined", "unable_to_contact": "Unable to contact", "outreach": "Outreach",
              "preferences": "Preferences"}

_ready: weakref.WeakSet[Database] = weakref.WeakSet()


@dataclass(frozen=True)
class Contact:
    """One entry of a patient's contact log."""

    contact_id: str
    nhs_number: str
    practice_code: str
    occurred_on: date
    kind: str
    channel: str | None
    options: tuple[str, ...]
    note: str
    username: str | None
    recorded_at: datetime


def ensure_contacts_schema(db: Database) -> None:
    """Create ``contacts`` and ``recall_settings`` if missing (idempotent); both are append-only (the
    latest row wins), protected by the database where it can (``parity.db.append_only``)."""
    ensure_table(db, "contacts", (
        """CREATE TABLE IF NOT EXISTS contacts (
            contact_id VARCHAR(36) PRIMARY KEY, nhs_number VARCHAR(10) NOT NULL, practice_code VARCHAR(10) NOT NULL,
            occurred_on DATE NOT NULL, kind VARCHAR(20) NOT NULL, channel VARCHAR(20), options VARCHAR(300),
            note VARCHAR(500), username VARCHAR(64), recorded_at TIMESTAMP NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS contacts_patient ON contacts (nhs_number)",
        """CREATE TABLE IF NOT EXISTS recall_settings (
            practice_code VARCHAR(10) NOT NULL, set_at TIMESTAMP NOT NULL, mode VARCHAR(30) NOT NULL,
            username VARCHAR(64))""",
    ), LockKey.CONTACTS, also=("recall_settings",))
    _ready.add(db)


def ready(db: Database) -> None:
    if db not in _ready:
        ensure_contacts_schema(db)


def record_contact(db: Database, nhs_number: str, practice_code: str, kind: str, occurred_on: date, *,
                   channel: str | None = None, options: tuple[str, ...] = (), note: str = "",
                   username: str | None = None, now: datetime | None = None, check: bool = True) -> Contact:
    """Append one contact after checking it is a valid step of the DNA protocol (``parity.care.protocol``).

    Raises ``ConfigurationError`` (naming the rule, never the patient) for an unknown kind, channel or
    option, a date in the future, or a step the protocol does not allow (``check=False`` skips only the
    protocol check, for importing history).
    """
    from parity.care.protocol import next_state

    ready(db)
    if kind not in KINDS:
        raise ConfigurationError(f"unknown contact kind {kind!r}; choose one of {', '.join(KINDS)}")
    if channel is not None and channel not in CHANNELS:
        raise ConfigurationError(f"unknown channel {channel!r}; choose one of {', '.join(CHANNELS)}")
    unknown = [o for o in options if o not in OPTIONS]
    if unknown:
        raise ConfigurationError(f"unknown option {unknown[0]!r}; choose from {', '.join(OPTIONS)}")
    now = now or utc_now()
    if occurred_on > now.date():
        raise ConfigurationError("a contact cannot be dated in the future")
    contact = Contact(str(uuid.uuid4()), nhs_number, practice_code, occurred_on, kind, channel, tuple(options),
                      note.strip()[:500], username, now)
    with atomic(db):
        if check and kind != "preferences":
            next_state(history(db, nhs_number), contact)  # raises on a step the protocol does not allow
        db.execute(
            "INSERT INTO contacts (contact_id, nhs_number, practice_code, occurred_on, kind, channel, options, note, "
            "username, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [contact.contact_id, nhs_number, practice_code, occurred_on, kind, channel, ",".join(options) or None,
             contact.note or None, username, now])
    return contact


def history(db: Database, nhs_number: str) -> list[Contact]:
    """A patient's contacts, oldest first (by date, then by when they were recorded)."""
    ready(db)
    rows = db.execute("SELECT contact_id, nhs_number, practice_code, occurred_on, kind, channel, options, note, "
                      "username, recorded_at FROM contacts WHERE nhs_number = ? ORDER BY occurred_on, recorded_at",
                      [nhs_number])
    return [_contact(r) for r in rows]


def histories(db: Database, practice_code: str | None = None) -> dict[str, list[Contact]]:
    """Contacts of every patient (of one practice), grouped by NHS number, each list oldest first."""
    ready(db)
    sql = ("SELECT contact_id, nhs_number, practice_code, occurred_on, kind, channel, options, note, username, "
           "recorded_at FROM contacts")
    params: list[object] = []
    if practice_code:
        sql += " WHERE practice_code = ?"
        params.append(practice_code)
    out: dict[str, list[Contact]] = {}
    for r in db.execute(sql + " ORDER BY nhs_number, occurred_on, recorded_at", params):
        c = _contact(r)
        out.setdefault(c.nhs_number, []).append(c)
    return out


def preferences(contacts: list[Contact]) -> tuple[str, ...]:
    """The patient-friendly options asked for most recently: those of the latest contact that records
    options (a ``preferences`` contact with none clears them)."""
    for c in reversed(contacts):
        if c.kind == "preferences" or c.options:
            return c.options
    return ()


def _contact(r: tuple) -> Contact:
    occurred = r[3].date() if isinstance(r[3], datetime) else r[3]
    return Contact(str(r[0]), str(r[1]), str(r[2]), occurred, str(r[4]), r[5],
                   tuple(o for o in (r[6] or "").split(",") if o), r[7] or "", r[8], r[9])
