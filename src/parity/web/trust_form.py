"""The trust check form's patient: found by NHS number and date of birth, never typed in from scratch.

A trust nurse starts a check from the caseload (the NHS number is known) or types the NHS number and
date of birth. Both must match a patient Parity holds, as a demographics trace would; the form then
carries what the record says (date of birth, sex, ethnic category, the practice registered at today,
and the name when the extract has one), so a made-up name or a wrong practice cannot reach a GP.

Every lookup is audited; a failed match says which of the two did not match, never a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from parity.care.people import contact_columns
from parity.db import Database

NHS_DIGITS = 10


@dataclass(frozen=True)
class FoundPatient:
    """The record a check is for. ``practice_code`` is the registration on the day asked for."""

    nhs_number: str
    date_of_birth: date
    sex: str
    ethnicity: str | None
    practice_code: str | None
    practice_name: str | None
    given_name: str
    family_name: str

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.given_name, self.family_name.upper()) if p)

    def form_values(self) -> dict[str, str]:
        """The form's patient fields, as the record has them."""
        return {"nhs_number": self.nhs_number, "date_of_birth": self.date_of_birth.isoformat(), "sex": self.sex,
                "ethnicity": self.ethnicity or "", "practice_code": self.practice_code or "",
                "given_name": self.given_name, "family_name": self.family_name}


def clean_nhs_number(text: str) -> str:
    """Digits only ("943 476 5919" -> "9434765919")."""
    return "".join(ch for ch in text if ch.isdigit())


def find_patient(db: Database, nhs_number: str, on: date, structure: str) -> FoundPatient | None:
    """The patient with ``nhs_number`` and where they are registered on ``on``, or None."""
    rows = db.execute("SELECT date_of_birth, sex, ethnicity FROM patients WHERE nhs_number = ?", [nhs_number])
    if not rows:
        return None
    dob, sex, ethnicity = rows[0]
    reg = db.execute(
        "SELECT r.practice_code, p.practice_name FROM registrations r LEFT JOIN practices p "
        "ON p.practice_code = r.practice_code AND p.structure = ? WHERE r.nhs_number = ? AND r.start_date <= ? "
        "AND (r.end_date IS NULL OR r.end_date >= ?) ORDER BY r.start_date DESC LIMIT 1",
        [structure, nhs_number, on, on])
    given = family = ""
    if contact_columns(db):
        given, family = db.execute("SELECT given_name, family_name FROM patients WHERE nhs_number = ?",
                                   [nhs_number])[0]
    return FoundPatient(nhs_number, dob, str(sex or "unknown"), ethnicity, reg[0][0] if reg else None,
                        reg[0][1] if reg else None, str(given or ""), str(family or ""))


def match(db: Database, nhs_number: str, date_of_birth: str, on: date, structure: str
          ) -> tuple[FoundPatient | None, dict[str, str]]:
    """The patient if NHS number and date of birth both match the record; else field id -> message."""
    digits = clean_nhs_number(nhs_number)
    if len(digits) != NHS_DIGITS:
        return None, {"nhs_number": "Enter the NHS number: 10 digits"}
    try:
        born = date.fromisoformat(date_of_birth.strip())
    except ValueError:
        return None, {"date_of_birth": "Enter the date of birth, for example 1980-05-17"}
    found = find_patient(db, digits, on, structure)
    if found is None:
        return None, {"nhs_number": "No patient with this NHS number is in Parity's records"}
    if found.date_of_birth != born:
        return None, {"date_of_birth": "The date of birth does not match the record for this NHS number"}
    if not found.practice_code:
        return None, {"nhs_number": "This patient is not registered with a GP practice today"}
    return found, {}
