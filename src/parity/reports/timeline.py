"""One patient's page: demographics, registrations, and every check-related code recorded, newest first.

``patient_timeline`` reads one patient from the database with a handful of parameterised queries
(the patient, their registrations, their events with the measure's codes, their prescriptions when a
rule reads them, the names of the organisations that recorded events) and returns plain dataclasses;
it knows nothing about the web app.

The per-check summary is the engine's answer for this patient: the patient's own rows go through the
reference engine (``parity.engine.reference``, the pure-Python statement of the counting rules that
every engine is tested to agree with), so the page says exactly what the worklist and the measure
say, lower-risk lipid window and personalised care adjustment included. A patient the engine does
not report on ``as_of`` (not registered, died, no register code) still gets a summary, from the
check's default window.

A recording organisation is a **practice** when it is in the ``practices`` table of the chosen
structure or is a practice the patient has been registered at, **unknown** when the event does not
say, and otherwise a **trust** (product.md: checks done by mental-health trusts count, from any
recording organisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from parity.codes import codes_for, term_for
from parity.db.connection import Database
from parity.db.indexes import patient_rows
from parity.engine.dataset import Dataset
from parity.engine.reference import ReferenceEngine
from parity.errors import NotFound
from parity.reports.worklist import age_on, due_date
from parity.rules.model import Check, Measure, Window

HISTORY_YEARS = 3
"""The timeline shows codes recorded up to this many years before ``as_of`` (the window is one year)."""

RECORDER_KINDS: tuple[str, ...] = ("practice", "trust", "unknown")


@dataclass(frozen=True)
class Registration:
    """One registration at a practice; ``practice_name`` is None when the practice is not in the structure."""

    practice_code: str
    practice_name: str | None
    start: date
    end: date | None


@dataclass(frozen=True)
class TimelineEntry:
    """One recorded code that belongs to a check (an event in two checks' clusters gives two entries).

    ``kind`` is ``done`` or ``declined``; ``in_window`` says whether the code falls inside the window
    the check is counted over on ``as_of`` (see ``CheckSummary.window_months``).
    """

    date: date
    check_id: str
    check_label: str
    kind: str
    snomed_code: int
    term: str | None
    value: float | None
    unit: str | None
    recorded_by: str | None
    recorder_kind: str
    recorder_name: str | None
    in_window: bool


@dataclass(frozen=True)
class CheckSummary:
    """A check's status on ``as_of`` (as in the status frame) and when it falls due (as in the worklist).

    ``window_months`` is the window the status was counted over: the check's default window, or the
    lower-risk window when the status shows it was applied (``parity.reports.worklist.due_date``).
    """

    check_id: str
    label: str
    core: bool
    status: str
    last_date: date | None
    value: float | None
    due: date | None
    window_months: int


@dataclass
class PatientRecord:
    """Everything the patient page shows. ``on_register``/``in_denominator`` are None when the engine
    does not report the patient on ``as_of`` (not registered at a practice, died, or no register code)."""

    nhs_number: str
    as_of: date
    measure_id: str
    date_of_birth: date
    age: int
    sex: str
    ethnicity: str | None
    date_of_death: date | None
    practice_code: str | None
    on_register: bool | None
    in_denominator: bool | None
    registrations: list[Registration] = field(default_factory=list)
    entries: list[TimelineEntry] = field(default_factory=list)
    checks: list[CheckSummary] = field(default_factory=list)


def patient_timeline(db: Database, measure: Measure, nhs_number: str, as_of: date, structure: str) -> PatientRecord:
    """The patient page for ``nhs_number`` on ``as_of`` under ``measure``.

    ``structure`` names the organisation structure (``practices.structure``) used for practice names.
    Events after ``as_of`` are never read. Raises ``parity.errors.NotFound`` (message without the NHS
    number) when there is no such patient.
    """
    nhs_number = str(nhs_number)
    # Each table is read by NHS number alone (``patient_rows``: the index answers only that), and the
    # patient's own rows are cut and joined here, so the page costs what this patient's records cost.
    found = patient_rows(db, "patients", "date_of_birth, sex, ethnicity, date_of_death", nhs_number)
    if not found:
        raise NotFound("patient not found")
    dob, sex, ethnicity, died = found[0]

    regs = sorted(patient_rows(db, "registrations", "practice_code, start_date, end_date", nhs_number),
                  key=lambda r: (-r[1].toordinal(), r[0]))
    recorders = {str(r[0]) for r in regs}

    # Every code the measure reads (checks, register, lower-risk criteria, PCA): the engine needs them
    # all for the summary; the timeline shows the checks' codes. Codes are integers bound as parameters.
    clusters = codes_for(sorted(measure.clusters()))
    wanted = sorted(set().union(*clusters.values())) if clusters else []
    events: list[dict[str, Any]] = []
    if wanted:
        # Filtered by NHS number alone in SQL, so the index on events(nhs_number) answers it (a long code
        # list turns the query into a join over every event); the patient's own rows are then cut here.
        keep = frozenset(wanted)
        rows = sorted(
            ((d, code, value, unit, recorded_by) for d, code, value, unit, recorded_by in patient_rows(
                db, "events", "date, snomed_code, value, unit, recorded_by", nhs_number)
             if d <= as_of and int(code) in keep),
            key=lambda r: (-r[0].toordinal(), int(r[1])))
        events = [
            {"nhs_number": nhs_number, "date": d, "snomed_code": int(code),
             "value": None if value is None else float(value), "unit": unit, "recorded_by": recorded_by}
            for d, code, value, unit, recorded_by in rows
        ]

    medications: list[dict[str, Any]] = []
    if _reads_medications(measure):
        medications = [
            {"nhs_number": nhs_number, "date": d, "dmd_code": dmd, "bnf_code": bnf}
            for d, dmd, bnf in patient_rows(db, "medications", "date, dmd_code, bnf_code", nhs_number)
            if d <= as_of
        ]

    # One look-up of every practice name the page shows: where the patient has been registered and who
    # recorded their events (practices of ``structure``; any other recorder is a trust).
    recorders |= {e["recorded_by"] for e in events if e["recorded_by"]}
    names = practice_names(db, structure, recorders)
    registrations = [Registration(code, names.get(code), start, end) for code, start, end in regs]

    patient = {"nhs_number": nhs_number, "date_of_birth": dob, "sex": sex, "ethnicity": ethnicity,
               "lsoa": None, "imd_decile": None, "date_of_death": died}
    row = _engine_row(measure, as_of, patient, registrations, events, medications)
    checks = _summaries(measure, as_of, row, events, clusters)
    windows = {s.check_id: Window(s.window_months).start(as_of) for s in checks}

    own = {r.practice_code for r in registrations}

    history_start = Window(12 * HISTORY_YEARS).start(as_of)
    entries: list[TimelineEntry] = []
    for e in events:  # already newest first
        if e["date"] < history_start:
            continue
        for check in measure.checks:
            kind = _kind(check, e["snomed_code"], clusters)
            if kind is None:
                continue
            by = e["recorded_by"] or None
            recorder_kind = "unknown" if by is None else ("practice" if by in names or by in own else "trust")
            entries.append(TimelineEntry(
                date=e["date"], check_id=check.id, check_label=check.label, kind=kind,
                snomed_code=e["snomed_code"], term=term_for(e["snomed_code"]), value=e["value"], unit=e["unit"],
                recorded_by=by, recorder_kind=recorder_kind, recorder_name=names.get(by) if by else None,
                in_window=e["date"] >= windows[check.id],
            ))

    end = min(as_of, died) if died is not None else as_of
    return PatientRecord(
        nhs_number=nhs_number, as_of=as_of, measure_id=measure.id, date_of_birth=dob, age=age_on(dob, end),
        sex=sex, ethnicity=ethnicity, date_of_death=died,
        practice_code=None if row is None else row["practice_code"],
        on_register=None if row is None else bool(row["on_register"]),
        in_denominator=None if row is None else bool(row["in_denominator"]),
        registrations=registrations, entries=entries, checks=checks,
    )


# -- helpers ----------------------------------------------------------------------------------


def _reads_medications(measure: Measure) -> bool:
    return any(
        crit.kind == "medication"
        for c in measure.checks if c.lower_risk is not None
        for crit in c.lower_risk.higher_risk_if
    )


def _engine_row(measure: Measure, as_of: date, patient: dict[str, Any], registrations: list[Registration],
                events: list[dict[str, Any]], medications: list[dict[str, Any]]) -> dict[str, Any] | None:
    """This patient's status row from the reference engine, or None when it does not report them."""
    ds = Dataset(
        patients=[patient],
        registrations=[
            {"nhs_number": patient["nhs_number"], "practice_code": r.practice_code, "start_date": r.start,
             "end_date": r.end}
            for r in registrations
        ],
        events=events,
        medications=medications,
    )
    # The engine's row for this one patient, before ``patient_status`` makes a frame of it: building and
    # normalising a one-row pandas frame cost more than the rules themselves (issue 16 target 3). The raw
    # row has the same values: dates as ``date`` (or None), flags as bools, values as floats (or None).
    return ReferenceEngine(ds)._patient(patient, measure, as_of, codes_for(measure.clusters()))


def practice_names(db: Database, structure: str, codes: set[str]) -> dict[str, str]:
    """``practice_code -> practice_name`` of ``codes`` in ``structure`` (codes not there are left out)."""
    wanted = sorted(c for c in codes if c)
    if not wanted:
        return {}
    marks = ", ".join("?" * len(wanted))
    return {str(code): name for code, name in db.execute(
        f"SELECT practice_code, practice_name FROM practices WHERE structure = ? AND practice_code IN ({marks})",
        [structure, *wanted])}


def _summaries(measure: Measure, as_of: date, row: dict[str, Any] | None, events: list[dict[str, Any]],
               clusters: dict[str, frozenset[int]]) -> list[CheckSummary]:
    core = {c.id for c in measure.core}
    out = []
    for check in measure.checks:
        if row is not None:
            status = str(row[f"{check.id}_status"])
            last = row[f"{check.id}_date"]
            value = row[f"{check.id}_value"]
            value = None if value is None or value != value else float(value)
        else:
            status, last, value = _default_window_status(check, as_of, events, clusters)
        months = check.window.months
        if check.lower_risk is not None and last is not None and last < check.window.start(as_of):
            months = check.lower_risk.months  # done only under the lower-risk window (see due_date)
        out.append(CheckSummary(
            check_id=check.id, label=check.label, core=check.id in core, status=status, last_date=last,
            value=value, due=due_date(check, last, as_of) if status == "done" else None, window_months=months,
        ))
    return out


def _default_window_status(check: Check, as_of: date, events: list[dict[str, Any]],
                           clusters: dict[str, frozenset[int]]) -> tuple[str, date | None, float | None]:
    """Status over the check's default window, for a patient the engine does not report (same rules:
    the latest done code wins, the largest value on that day; a declined code only when none is done)."""
    start = check.window.start(as_of)
    in_window = [e for e in events if e["date"] >= start]
    done = [e for e in in_window if _kind(check, e["snomed_code"], clusters) == "done"]
    if done:
        last = max(e["date"] for e in done)
        values = [e["value"] for e in done if e["date"] == last and e["value"] is not None]
        return "done", last, max(values) if values else None
    if any(_kind(check, e["snomed_code"], clusters) == "declined" for e in in_window):
        return "declined", None, None
    return "missing", None, None


def _kind(check: Check, code: int, clusters: dict[str, frozenset[int]]) -> str | None:
    """``done`` when ``code`` is in a done cluster of ``check`` (done wins), ``declined``, or None."""
    if any(code in clusters[name] for name in check.done):
        return "done"
    if any(code in clusters[name] for name in check.declined):
        return "declined"
    return None
