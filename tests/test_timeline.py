"""The patient page (parity.reports.timeline) on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from parity.engine.ibis_engine import IbisEngine
from parity.errors import NotFound
from parity.reports.timeline import HISTORY_YEARS, PatientRecord, patient_timeline
from parity.rules.registry import load_measure
from spec.timeline import (
    NHS_NUMBERS,
    STRUCTURE,
    code_of,
    dataset,
    practice_row,
    smi_patient,
    unrelated_code,
    with_checks,
)

AS_OF = date(2025, 3, 31)
PHSMI = load_measure("phsmi")
QOF = load_measure("qof-mh021")
TRUST = "RX2"  # an NHS trust ODS code (Sussex Partnership): not a practice
NHS = NHS_NUMBERS[0]


def load(db: Any, *patients: Any) -> None:
    practices = [practice_row(code) for code in ("A81001", "A81017", "B81002")]
    dataset(*patients, practices=practices).write(db)


def story() -> Any:
    """Registered at A81017 until 2015, then A81001. Checks recorded by the practice, another
    practice, a trust and nobody; one declined; one code after AS_OF, one too old to show."""
    p = (
        smi_patient(NHS, practice="A81001")
        .born("1980-06-30")
        .ethnicity("A")
        .registered("A81017", "2010-01-01", "2014-12-31")
    )
    p.code("BMIVAL_COD", "2024-06-01", value=22.0, by="A81001")
    p.code("SYSBP_COD", "2024-07-01", value=128.0, by=TRUST)
    p.code("CHOLDEC_COD", "2024-08-01")  # declined, recorder not given
    p.code("NSMOK_COD", "2024-09-01", by="B81002")  # a practice the patient was never registered at
    p.code("ALC_COD", "2023-01-10", by="A81001")  # before the window, within the history shown
    p.code("IFCCHBAM_COD", "2021-01-10", value=40.0, by="A81001")  # more than 3 years before AS_OF
    p.code("IFCCHBAM_COD", "2025-04-15", value=41.0, by="A81001")  # after AS_OF
    p.snomed(unrelated_code(), "2024-10-01", by="A81001")  # not in any check
    return p


def test_record_demographics_registrations_and_entries(any_db: Any) -> None:
    load(any_db, story())
    rec = patient_timeline(any_db, PHSMI, NHS, AS_OF, STRUCTURE)
    assert isinstance(rec, PatientRecord)
    assert (rec.nhs_number, rec.date_of_birth, rec.age, rec.sex, rec.ethnicity, rec.date_of_death) == (
        NHS, date(1980, 6, 30), 44, "female", "A", None
    )
    assert (rec.practice_code, rec.on_register, rec.in_denominator) == ("A81001", True, True)
    assert [(r.practice_code, r.practice_name, r.start, r.end) for r in rec.registrations] == [
        ("A81001", "The Densham Surgery", date(2015, 1, 1), None),
        ("A81017", "Woodbridge Practice", date(2010, 1, 1), date(2014, 12, 31)),
    ]

    got = [(e.date, e.check_id, e.kind, e.recorded_by, e.recorder_kind, e.recorder_name, e.in_window)
           for e in rec.entries]
    assert got == [  # newest first; nothing after AS_OF, nothing older than HISTORY_YEARS
        (date(2024, 9, 1), "smoking", "done", "B81002", "practice", "Chp Ltd - Bransholme", True),
        (date(2024, 8, 1), "lipids", "declined", None, "unknown", None, True),
        (date(2024, 7, 1), "blood_pressure", "done", TRUST, "trust", None, True),
        (date(2024, 6, 1), "bmi", "done", "A81001", "practice", "The Densham Surgery", True),
        (date(2023, 1, 10), "alcohol", "done", "A81001", "practice", "The Densham Surgery", False),
    ]
    assert HISTORY_YEARS == 3
    bmi = rec.entries[3]
    assert (bmi.snomed_code, bmi.value, bmi.check_label) == (code_of("BMIVAL_COD"), 22.0, "BMI")
    assert bmi.term  # the code's SNOMED term from parity.codes
    assert rec.entries[1].check_label == "Lipids"


def test_check_summary_matches_the_engine(any_db: Any) -> None:
    load(any_db, story())
    rec = patient_timeline(any_db, PHSMI, NHS, AS_OF, STRUCTURE)
    summary = {s.check_id: s for s in rec.checks}
    assert [s.check_id for s in rec.checks] == [c.id for c in PHSMI.checks]
    assert (summary["bmi"].status, summary["bmi"].last_date, summary["bmi"].value, summary["bmi"].due) == (
        "done", date(2024, 6, 1), 22.0, date(2025, 6, 1)
    )
    assert summary["blood_pressure"].status == "done"  # recorded by a trust: counts
    assert (summary["lipids"].status, summary["lipids"].due) == ("declined", None)
    assert summary["glucose"].status == "missing"  # the result after AS_OF is not read
    assert summary["alcohol"].status == "missing"  # 2023: outside the 12-month window
    assert all(s.core and s.window_months == 12 for s in rec.checks)

    status = IbisEngine(any_db).patient_status(PHSMI, AS_OF).set_index("nhs_number").loc[NHS]
    for s in rec.checks:
        assert s.status == status[f"{s.check_id}_status"]
        assert s.last_date == status[f"{s.check_id}_date"]


def test_lower_risk_lipids_under_qof(any_db: Any) -> None:
    """No higher-risk criterion (BMI 22, never smoked, no antipsychotic): lipids count over 24 months."""
    p = with_checks(smi_patient(NHS), "2024-06-01", ("bmi", "blood_pressure", "glucose", "alcohol", "smoking"))
    p.code("CHOL2_COD", "2023-10-01", value=4.5)
    load(any_db, p)
    rec = patient_timeline(any_db, QOF, NHS, AS_OF, STRUCTURE)
    lipids = next(s for s in rec.checks if s.check_id == "lipids")
    assert (lipids.status, lipids.last_date, lipids.window_months, lipids.due) == (
        "done", date(2023, 10, 1), 24, date(2025, 10, 1)
    )
    entry = next(e for e in rec.entries if e.check_id == "lipids")
    assert entry.in_window


def test_a_patient_no_longer_registered_still_has_a_page(any_db: Any) -> None:
    p = smi_patient(NHS)
    p.registrations[0]["end_date"] = date(2024, 12, 31)
    p.code("BMIVAL_COD", "2024-06-01", value=30.0)
    load(any_db, p)
    rec = patient_timeline(any_db, PHSMI, NHS, AS_OF, STRUCTURE)
    assert (rec.practice_code, rec.on_register, rec.in_denominator) == (None, None, None)
    bmi = next(s for s in rec.checks if s.check_id == "bmi")
    assert (bmi.status, bmi.value, bmi.due) == ("done", 30.0, date(2025, 6, 1))


def test_age_of_a_patient_who_died_is_their_age_at_death(any_db: Any) -> None:
    load(any_db, smi_patient(NHS).born("1980-06-30").died("2024-06-29"))
    rec = patient_timeline(any_db, PHSMI, NHS, AS_OF, STRUCTURE)
    assert (rec.age, rec.date_of_death, rec.on_register) == (43, date(2024, 6, 29), None)


def test_unknown_patient_raises_not_found_without_the_nhs_number(any_db: Any) -> None:
    load(any_db, smi_patient(NHS))
    other = NHS_NUMBERS[1]
    with pytest.raises(NotFound) as err:
        patient_timeline(any_db, PHSMI, other, AS_OF, STRUCTURE)
    assert other not in str(err.value)
