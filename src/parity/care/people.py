"""Who a patient is, for direct care: name, phone and preferred contact from the extract, and their practice's phone.

The canonical extract's ``patients`` table may carry ``given_name``, ``family_name``, ``phone`` and
``preferred_contact`` (README, "Canonical extract"): optional, for direct care only. Only patient-level
pages and documents read them, through this module; they are never logged, never in an error message and
never in an aggregate. A database loaded before these columns existed simply has none.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources
from typing import Any

from parity.db import Database

DIRECT_CARE_COLUMNS = ("given_name", "family_name", "phone", "preferred_contact")
# How ``preferred_contact`` values read on a page (the extract's vocabulary; anything else is shown as given).
PREFERRED_WORDS = {"phone": "phone", "sms": "text message", "text": "text message", "letter": "letter",
                   "email": "email", "in_person": "in person"}


def contact_columns(db: Database) -> tuple[str, ...]:
    """The direct-care columns this database's ``patients`` table has: all four, or none."""
    rows = db.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'patients' "
                      "AND table_schema = current_schema()")
    have = {str(r[0]).lower() for r in rows}
    return DIRECT_CARE_COLUMNS if set(DIRECT_CARE_COLUMNS) <= have else ()


def contact_details(db: Database, nhs_numbers: list[str], results: Any = None) -> dict[str, dict[str, str]]:
    """``nhs_number -> {"name", "given_name", "family_name", "phone", "preferred_contact"}`` for the patients
    who have any of them (names as "Given FAMILY", the NHS style for a patient's name on a page).

    With ``results`` (a ``parity.reports.results.ResultStore``) which columns the table has is looked up once
    per data version (a load may add them): the catalogue query cost a patient page 2 to 14 ms."""
    if not nhs_numbers:
        return {}
    if results is not None:
        columns = results.derived(("contact_columns",), lambda: contact_columns(db))
    else:
        columns = contact_columns(db)
    if not columns:
        return {}
    marks = ", ".join("?" * len(nhs_numbers))
    rows = db.execute("SELECT nhs_number, " + ", ".join(DIRECT_CARE_COLUMNS)
                      + f" FROM patients WHERE nhs_number IN ({marks})", [str(n) for n in nhs_numbers])
    out = {}
    for nhs, given, family, phone, preferred in rows:
        given, family = (given or "").strip(), (family or "").strip()
        name = " ".join(p for p in (given, family.upper()) if p)
        pref = (preferred or "").strip()
        out[str(nhs)] = {"name": name, "given_name": given, "family_name": family, "phone": (phone or "").strip(),
                         "preferred_contact": PREFERRED_WORDS.get(pref.lower(), pref)}
    return out


@cache
def _phones() -> dict[str, str]:
    text = resources.files("parity.care.documents").joinpath("practice_phones.csv").read_text(encoding="utf-8")
    return {r["practice_code"]: r["phone"] for r in csv.DictReader(text.splitlines())}


def practice_phone(practice_code: str | None) -> str | None:
    """The practice's published telephone number (NHS ODS epraccur; ``documents/practice_phones.md``), or None."""
    if not practice_code:
        return None
    return _phones().get(practice_code.upper())
