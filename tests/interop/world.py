"""A tiny practice record for the messaging tests: three synthetic patients at two real practices.

Patient ``FIVE`` has five of the six core checks in the year to ``CHECK_DAY`` (no smoking status),
so one trust check with a smoking status takes them to six of six.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from nhs_number import is_valid

from parity.db import Database
from parity.ingest import load_extract
from parity.interop.record import CheckRecord, record_from_form
from parity.rules.template import load_template

PRACTICE = "J82155"
OTHER_PRACTICE = "H85001"
CHECK_DAY = date(2026, 11, 20)
TODAY = date(2026, 11, 27)
SMI_DIAGNOSIS = 1089481000000106  # Cataleptic schizophrenia (MH_COD)


def test_range_numbers(count: int, start: int = 900_000_000) -> list[str]:
    """Valid NHS numbers in the test range (9000000000-9999999999)."""
    out: list[str] = []
    stem = start
    while len(out) < count:
        for check in range(10):
            candidate = f"{stem}{check}"
            if is_valid(candidate):
                out.append(candidate)
                break
        stem += 1
    return out


FIVE, MOVED, STRANGER = test_range_numbers(3)
DOB = {FIVE: "1980-05-17", MOVED: "1975-01-02", STRANGER: "1990-03-03"}
FIVE_CHECKS = [  # (code, value): BMI, BP, lipids, HbA1c, AUDIT-C; no smoking status
    (60621009, 27.0), (72313002, 125.0), (1091811000000102, 78.0), (1005671000000105, 5.1),
    (999791000000106, 39.0), (763256006, 2.0),
]


def load_world(db: Database, folder: Path) -> None:
    """Write and load the extract (FIVE and MOVED at ``PRACTICE``; MOVED left in 2025; STRANGER unknown)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patients.csv").write_text(
        "nhs_number,date_of_birth,sex\n" + "".join(f"{n},{DOB[n]},female\n" for n in (FIVE, MOVED)))
    (folder / "registrations.csv").write_text(
        "nhs_number,practice_code,start_date,end_date\n"
        f"{FIVE},{PRACTICE},2010-01-01,\n{MOVED},{PRACTICE},2010-01-01,2025-06-30\n"
        f"{MOVED},{OTHER_PRACTICE},2025-07-01,\n")
    rows = [f"{n},2015-02-01,{SMI_DIAGNOSIS},,," for n in (FIVE, MOVED)]
    rows += [f"{FIVE},2026-03-10,{code},{value},," for code, value in FIVE_CHECKS]
    (folder / "events.csv").write_text("nhs_number,date,snomed_code,value,unit,recorded_by\n" + "\n".join(rows) + "\n")
    load_extract(db, folder, mode="replace")


def smoking_check(nhs_number: str = FIVE, *, practice: str = PRACTICE, dob: str | None = None,
                  smoking: str = "77176002", **extra: str) -> CheckRecord:
    """A trust check recording smoking status (and a blood pressure) for ``nhs_number``."""
    form = {"nhs_number": nhs_number, "date_of_birth": dob or DOB.get(nhs_number, "1990-03-03"),
            "practice_code": practice, "performed_on": CHECK_DAY.isoformat(), "performed_by": "Sam Jones, RMN",
            "family_name": "Example", "given_name": "Alex",
            "smoking.smoking_status": smoking, "blood_pressure.systolic": "150", "blood_pressure.diastolic": "85",
            "narrative": "Seen at the depot clinic.", **extra}
    return record_from_form(load_template(), form, trust_code="RX2", created_by="nurse1", today=TODAY)
