"""The trust side: store a completed check with its letter and Bundle, and queue it for the practice.

``submit_check`` is the one way a check enters the outbox, whether typed into the web form or bulk
uploaded (``upload_checks``): the letter and the Bundle are built and validated first, then the
check and its outbox entry are written in one transaction.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from parity.db import Database
from parity.db.transactions import atomic, utc_now
from parity.errors import NotFound, Problem, ValidationError
from parity.interop import itk, store
from parity.interop.fhir import build_bundle
from parity.interop.letters import render_letter_pdf
from parity.interop.mesh.config import DEFAULT_WORKFLOW, MeshConfig
from parity.interop.mesh.outbox import OutboxEntry, Payload, enqueue
from parity.interop.record import CheckRecord, record_from_form
from parity.rules.template import CheckTemplate

# The MESH subject line carries no patient data: subjects are seen by every system a message
# passes through (GP Connect's subject pattern names the patient; Parity chooses not to).
SUBJECT = "SMI physical health check results (Parity), version {version}"
# GP Connect puts the patient's name and NHS number in the subject (GPCM-SD-061/064); Parity keeps
# patient data out of MESH metadata and gives the version, incremented on each resend (GPCM-SD-091/098).
SEND_DOCUMENT_SUBJECT = "Physical health check letter from {trust}, version {version}"
ROUTE_LABELS = {"bundle": "Coded results (practice on Parity)",
                "send_document": "Letter by GP Connect Send Document (practice not on Parity)"}


@dataclass(frozen=True)
class StoredCheck:
    check_id: str
    version: int
    trust_code: str
    practice_code: str
    nhs_number: str
    performed_on: date
    created_at: datetime
    created_by: str | None
    source: str


def practice_name(db: Database, practice_code: str) -> str | None:
    rows = db.execute("SELECT practice_name FROM practices WHERE practice_code = ? LIMIT 1", [practice_code])
    return str(rows[0][0]) if rows else None


def submit_check(db: Database, record: CheckRecord, template: CheckTemplate, *, source: str = "form",
                 trust_name: str | None = None, now: datetime | None = None) -> str:
    """Build the letter and Bundle for ``record``, store them and queue the message; returns the outbox id.

    Joins the caller's transaction if there is one (a bulk upload commits all its checks at once).
    """
    store.ready(db)
    now = now or utc_now()
    letter = render_letter_pdf(record, template, practice_name=practice_name(db, record.practice_code),
                               trust_name=trust_name, generated_at=now)
    bundle = build_bundle(record, template, letter_pdf=letter, sent_at=now)
    with atomic(db):
        route = route_for(db, record.practice_code)
        db.execute(
            "INSERT INTO trust_checks (check_id, version, trust_code, practice_code, nhs_number, performed_on, "
            "created_at, created_by, source, record_json, bundle_json, letter_pdf) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [record.check_id, record.version, record.trust_code, record.practice_code, record.nhs_number,
             record.performed_on, now, record.created_by, source, record.to_json(), bundle, letter])
        return enqueue(db, record.check_id, record.version, record.trust_code, record.practice_code, now,
                       route=route)


def checks(db: Database, *, trust_code: str | None = None) -> list[StoredCheck]:
    """Checks recorded at a trust (or everywhere), newest first."""
    store.ready(db)
    sql = ("SELECT check_id, version, trust_code, practice_code, nhs_number, performed_on, created_at, created_by, "
           "source FROM trust_checks")
    params: list[object] = []
    if trust_code:
        sql += " WHERE trust_code = ?"
        params.append(trust_code)
    return [StoredCheck(*r) for r in db.execute(sql + " ORDER BY created_at DESC, check_id", params)]


def _column(db: Database, column: str, check_id: str, version: int) -> object:
    store.ready(db)
    rows = db.execute(f"SELECT {column} FROM trust_checks WHERE check_id = ? AND version = ?", [check_id, version])
    if not rows:
        raise NotFound("no such check")
    return rows[0][0]


def stored_record(db: Database, check_id: str, version: int) -> CheckRecord:
    return CheckRecord.from_json(str(_column(db, "record_json", check_id, version)))


def stored_letter(db: Database, check_id: str, version: int) -> bytes:
    return store.blob(_column(db, "letter_pdf", check_id, version))


def payload_source(db: Database, config: MeshConfig | None = None) -> Callable[[OutboxEntry], Payload]:
    """What the outbox sends for an entry: the stored Bundle (a Parity practice), or the letter as GP
    Connect Send Document (a practice not on Parity), addressed as ``config`` says."""

    def payload_for(entry: OutboxEntry) -> Payload:
        if entry.route != "send_document":
            bundle = str(_column(db, "bundle_json", entry.check_id, entry.version))
            workflow = config.workflow_id if config else DEFAULT_WORKFLOW
            return Payload(bundle.encode("utf-8"), SUBJECT.format(version=entry.version), workflow)
        return send_document_payload(db, entry, config)

    return payload_for


def send_document_payload(db: Database, entry: OutboxEntry, config: MeshConfig | None) -> Payload:
    """The Send Document message of an outbox entry; each resend carries the next version number."""
    record = stored_record(db, entry.check_id, entry.version)
    pdf = stored_letter(db, entry.check_id, entry.version)
    sends = int(db.execute("SELECT COUNT(*) FROM mesh_outbox_events WHERE local_id = ? AND state = 'sent'",
                           [entry.local_id])[0][0])
    version = entry.version + sends
    mailbox = config.mailbox_for(entry.trust_code).mailbox if config else entry.trust_code
    letter = itk.Letter(nhs_number=record.nhs_number, date_of_birth=record.date_of_birth,
                        family_name=record.family_name, given_name=record.given_name, trust_code=record.trust_code,
                        trust_name=record.trust_code, practice_code=record.practice_code,
                        performed_on=record.performed_on, performed_by=record.performed_by, pdf=pdf)
    body = itk.build_send_document(letter, message_id=itk.message_id_for(entry.local_id, sends + 1),
                                   sender_mailbox=mailbox, version=version, sender_reference=record.check_id)
    address = None
    if config is None or config.send_document_addressing == "gpprovider":
        address = itk.gpprovider_address(record.nhs_number, record.date_of_birth, record.family_name)
    return Payload(body.encode("utf-8"), SEND_DOCUMENT_SUBJECT.format(trust=record.trust_code, version=version),
                   itk.SEND_DOCUMENT_WORKFLOW, address)


# -- per-practice route ----------------------------------------------------------------------------

def set_route(db: Database, practice_code: str, route: str, username: str, now: datetime | None = None) -> None:
    """Choose how checks reach a practice from now on: ``bundle`` (it runs Parity: coded results) or
    ``send_document`` (it does not: the letter by GP Connect Send Document). Kept with its history."""
    if route not in ROUTE_LABELS:
        raise ValidationError("unknown route", [Problem("route", None, "route", "must be bundle or send_document")])
    store.ready(db)
    code = practice_code.upper()
    with atomic(db):
        seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM practice_routes WHERE practice_code = ?",
                             [code])[0][0])
        db.execute("INSERT INTO practice_routes (practice_code, seq, route, set_at, set_by) VALUES (?, ?, ?, ?, ?)",
                   [code, seq, route, now or utc_now(), username[:64]])


def routes(db: Database) -> dict[str, str]:
    """Practice ODS code -> its current route, for practices whose route was ever set."""
    store.ready(db)
    rows = db.execute("SELECT r.practice_code, r.route FROM practice_routes r WHERE r.seq = "
                      "(SELECT MAX(seq) FROM practice_routes x WHERE x.practice_code = r.practice_code)")
    return {str(code): str(route) for code, route in rows}


def route_for(db: Database, practice_code: str) -> str:
    """The route of one practice; ``bundle`` unless it was set otherwise."""
    return routes(db).get(practice_code.upper(), "bundle")


# -- bulk upload --------------------------------------------------------------------------------

def upload_checks(db: Database, folder: Path | str, template: CheckTemplate, *, trust_code: str, username: str,
                  today: date) -> list[str]:
    """Load trust check records in canonical extract form and queue one message per patient and day.

    The folder holds ``patients``, ``registrations`` and ``events`` (CSV or Parquet, canonical extract
    v1). Every events row must be recorded by ``trust_code`` and carry a code of the template. All or
    nothing: any problem (named by file, line, column and reason) and nothing is stored or queued.
    Returns the outbox ids.
    """
    from parity.ingest import validate_extract

    folder = Path(folder)
    trust_code = trust_code.upper()
    report = validate_extract(folder)
    report.raise_for_errors()
    patients, registrations, events, names = _read(folder)
    problems: list[Problem] = []
    codes = template.all_codes()
    forms: dict[tuple[str, date], dict[str, str]] = {}
    lines: dict[tuple[str, date], int] = {}
    for idx, row in events.iterrows():
        line = int(idx) + 2  # header is line 1, as the extract loader counts
        if str(row.get("recorded_by") or "").upper() != trust_code:
            problems.append(Problem(names["events"], line, "recorded_by",
                                    f"must be this trust's ODS code ({trust_code})"))
            continue
        code = int(row["snomed_code"])
        if code not in codes:
            problems.append(Problem(names["events"], line, "snomed_code", "is not a code of the trust check template"))
            continue
        key = (str(row["nhs_number"]), pd.Timestamp(row["date"]).date())
        lines.setdefault(key, line)
        section, field_id = codes[code]
        form = forms.setdefault(key, {})
        if field_id is None:
            form[f"{section}.status"] = "declined"
        else:
            f = template.field(field_id)
            value = row.get("value")
            if f.kind == "quantity":
                if value is None or pd.isna(value):
                    problems.append(Problem(names["events"], line, "value", f"is empty: {f.label} needs a value"))
                    continue
                form[f"{section}.{field_id}"] = str(value)
            else:
                form[f"{section}.{field_id}"] = str(code)
    records: list[CheckRecord] = []
    for (nhs, day), form in forms.items():
        line = lines[(nhs, day)]
        pat = patients.get(nhs)
        practice = _practice_on(registrations, nhs, day)
        if pat is None or practice is None:
            problems.append(Problem(names["events"], line, "nhs_number",
                                    "has no registration covering the date of the check in the registrations file"))
            continue
        form.update({"nhs_number": nhs, "date_of_birth": pat.isoformat(), "practice_code": practice,
                     "performed_on": day.isoformat(), "performed_by": f"{trust_code} (bulk upload by {username})"})
        try:
            records.append(record_from_form(template, form, trust_code=trust_code, created_by=username, today=today,
                                            source=names["events"]))
        except ValidationError as exc:
            problems.extend(Problem(names["events"], line, p.column, p.reason) for p in exc.problems)
    if problems:
        raise ValidationError(f"the upload has {len(problems)} problem(s); nothing was stored", problems)
    with atomic(db):
        return [submit_check(db, r, template, source="upload") for r in records]


def _read(folder: Path) -> tuple[dict[str, date], pd.DataFrame, pd.DataFrame, dict[str, str]]:
    frames, names = {}, {}
    for table in ("patients", "registrations", "events"):
        for suffix in (".csv", ".parquet"):
            path = folder / f"{table}{suffix}"
            if path.exists():
                frames[table] = (pd.read_csv(path, dtype=str, keep_default_na=False) if suffix == ".csv"
                                 else pd.read_parquet(path))
                names[table] = path.name
                break
    events = frames["events"]
    if "value" in events.columns:
        events["value"] = pd.to_numeric(events["value"].replace("", None), errors="coerce")
    if "recorded_by" not in events.columns:
        events["recorded_by"] = ""
    pats = {str(r.nhs_number): pd.Timestamp(r.date_of_birth).date() for r in frames["patients"].itertuples()}
    regs = frames["registrations"].copy()
    regs["start_date"] = pd.to_datetime(regs["start_date"]).dt.date
    end = regs["end_date"] if "end_date" in regs.columns else pd.Series([None] * len(regs))
    regs["end_date"] = [pd.Timestamp(v).date() if v not in (None, "") and not pd.isna(v) else None for v in end]
    return pats, regs, events, names


def _practice_on(registrations: pd.DataFrame, nhs: str, day: date) -> str | None:
    rows = registrations[registrations["nhs_number"].astype(str) == nhs]
    for r in rows.itertuples():
        if r.start_date <= day and (r.end_date is None or r.end_date >= day):
            return str(r.practice_code)
    return None


def temporary_folder() -> tempfile.TemporaryDirectory[str]:
    """Where the web app saves an uploaded extract while it is checked."""
    return tempfile.TemporaryDirectory(prefix="parity-upload-")
