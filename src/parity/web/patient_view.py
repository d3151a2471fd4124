"""The patient page's check results in words a clinician reads: each value with its unit and what was measured.

The check summary (``parity.reports.timeline.CheckSummary``) carries one value per check, which hides what
the number is: a lipids "9.2" may be a QRISK score, a blood pressure "127" only its systolic half. Here the
result is rebuilt from the codes recorded on the day the check was last done (the timeline's entries),
named by their SNOMED CT term: blood pressure as systolic/diastolic, a QRISK score as a QRISK score.
No SQL; presentation only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from parity.reports.timeline import CheckSummary, PatientRecord, TimelineEntry

# Units shown when the record carries none (the canonical extract's ``unit`` is optional). Sources: the
# units of the PCD clusters' observables (BMI kg/m2; cholesterol mmol/L; HbA1c IFCC mmol/mol).
DEFAULT_UNITS = {"bmi": "kg/m²", "blood_pressure": "mmHg"}
UNIT_WORDS = {"kg/m2": "kg/m²", "mmol/l": "mmol/L", "mmol/mol": "mmol/mol", "%": "%", "mmhg": "mmHg"}


@dataclass(frozen=True)
class Result:
    """One check's result as shown: ``text`` (e.g. "145/74 mmHg", "QRISK score 9.2%") and the terms behind it."""

    check_id: str
    text: str
    terms: tuple[str, ...]


def _num(value: float) -> str:
    return f"{value:g}"


def _unit(entry: TimelineEntry, check_id: str) -> str:
    raw = (entry.unit or "").strip()
    if not raw:
        return DEFAULT_UNITS.get(check_id, "")
    return UNIT_WORDS.get(raw.lower(), raw)


def _with_unit(value: float, unit: str) -> str:
    if not unit:
        return _num(value)
    return f"{_num(value)}{unit}" if unit == "%" else f"{_num(value)} {unit}"


def _blood_pressure(entries: list[TimelineEntry]) -> str | None:
    """"systolic/diastolic mmHg" from the day's readings (named by term); one half alone is named."""
    systolic = next((e for e in entries if e.value is not None and "systolic" in (e.term or "").lower()), None)
    diastolic = next((e for e in entries if e.value is not None and "diastolic" in (e.term or "").lower()), None)
    if systolic and diastolic:
        return f"{_num(systolic.value)}/{_num(diastolic.value)} mmHg"  # type: ignore[arg-type]
    if systolic:
        return f"systolic {_num(systolic.value)} mmHg (no diastolic recorded)"  # type: ignore[arg-type]
    if diastolic:
        return f"diastolic {_num(diastolic.value)} mmHg (no systolic recorded)"  # type: ignore[arg-type]
    return None


def _one(entry: TimelineEntry, check_id: str) -> str:
    term = entry.term or "Recorded"
    if entry.value is None:
        return term
    if "qrisk" in term.lower():
        return f"QRISK score {_with_unit(entry.value, '%')}"
    return f"{term}: {_with_unit(entry.value, _unit(entry, check_id))}"


def check_result(summary: CheckSummary, entries: Iterable[TimelineEntry]) -> Result:
    """The result of one check on the day it was last done (``summary.last_date``)."""
    if summary.status != "done" or summary.last_date is None:
        return Result(summary.check_id, "–", ())
    day = [e for e in entries if e.check_id == summary.check_id and e.kind == "done" and e.date == summary.last_date]
    terms = tuple(dict.fromkeys(e.term or str(e.snomed_code) for e in day))
    if summary.check_id == "blood_pressure":
        text = _blood_pressure(day)
        if text:
            return Result(summary.check_id, text, terms)
    valued = [e for e in day if e.value is not None]
    shown = valued or day
    if not shown:
        return Result(summary.check_id, "Done", terms)
    return Result(summary.check_id, "; ".join(dict.fromkeys(_one(e, summary.check_id) for e in shown)), terms)


def results(rec: PatientRecord) -> dict[str, Result]:
    """Every check's result, by check id."""
    return {c.check_id: check_result(c, rec.entries) for c in rec.checks}


def entry_value(entry: TimelineEntry) -> str:
    """A timeline entry's value with its unit ("–" when none)."""
    if entry.value is None:
        return "–"
    if "qrisk" in (entry.term or "").lower():
        return _with_unit(entry.value, "%")
    return _with_unit(entry.value, _unit(entry, entry.check_id))
