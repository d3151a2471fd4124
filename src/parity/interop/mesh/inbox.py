"""The practice side: fetch check messages from MESH, file them once, acknowledge after the commit.

For each message in a practice mailbox of this deployment:

1. if it is already stored (``mesh_inbox``: an earlier poll stopped after committing, before
   acknowledging), only acknowledge it: MESH delivers until acknowledged, Parity files once;
2. otherwise download it and, in **one transaction**, store it with its outcome and file it:
   - ``filed``: the Bundle is valid, the patient is in the practice record with the same date of
     birth and registered at the practice on the date of the check; each coded result becomes an
     ``events`` row recorded by the trust, and a ``loads`` row changes the data version so the
     dashboard recomputes;
   - ``duplicate``: the same check (check id, or the same content under another id) is already
     filed; nothing is filed;
   - ``exception``: anything else (malformed Bundle, unknown patient, not registered here,
     mismatched date of birth, an amended version of a filed check); nothing is filed, the reason
     is shown in the practice's exceptions queue;
3. acknowledge it, only after that commit.

Reasons never carry patient data (they name the rule that failed, never the value).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from parity.db import Database
from parity.db.bulk import insert_rows
from parity.db.locks import LockKey, hold
from parity.db.transactions import atomic, utc_now
from parity.errors import ConfigurationError, NotFound, PermissionDenied
from parity.interop import itk, store
from parity.interop.fhir import BundleError, ReceivedCheck, parse_bundle
from parity.interop.mesh import replies
from parity.interop.mesh.client import mesh_client, reason_for
from parity.interop.mesh.config import Mailbox, MeshConfig

log = logging.getLogger("parity.mesh")

OUTCOMES = ("filed", "duplicate", "exception", "document")


@dataclass
class PollSummary:
    """What one poll did (counts only: safe to log and print)."""

    received: int = 0
    filed: int = 0
    duplicates: int = 0
    exceptions: int = 0
    redelivered: int = 0
    acknowledged: int = 0
    skipped: int = 0
    letters: int = 0
    acks: int = 0
    events: int = 0
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"received {self.received}: filed {self.filed} ({self.events} coded results), duplicates "
                f"{self.duplicates}, exceptions {self.exceptions}; acknowledged {self.acknowledged}"
                + (f"; {self.letters} letters (Send Document)" if self.letters else "")
                + (f"; {self.acks} acknowledgements" if self.acks else "")
                + (f"; {self.redelivered} redelivered" if self.redelivered else "")
                + (f"; {self.skipped} other workflows left in the inbox" if self.skipped else ""))


@dataclass(frozen=True)
class Outcome:
    outcome: str
    reason: str
    events: int = 0
    load_id: str | None = None
    code: str = ""          # Parity's reason code in the reply to the sender (itk.REASONS)


def poll(db: Database, config: MeshConfig, *, practice_codes: set[str] | None = None,
         after_commit: Callable[[str], None] | None = None) -> PollSummary:
    """Poll every practice mailbox of this deployment (or those of ``practice_codes``).

    ``after_commit(message_id)`` runs after a message is stored and before it is acknowledged (the
    tests use it to stop the receiver at the worst moment).
    """
    store.ready(db)
    summary = PollSummary()
    for mailbox in config.mailboxes:
        if practice_codes is not None and mailbox.ods not in practice_codes:
            continue
        try:
            _poll_mailbox(db, config, mailbox, summary, after_commit)
        except Exception as exc:  # noqa: BLE001 - one mailbox failing must not stop the others
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            summary.errors.append(f"mailbox {mailbox.mailbox}: {reason_for(exc)}")
            log.warning("MESH poll of %s failed: %s", mailbox.mailbox, reason_for(exc))
    return summary


def _poll_mailbox(db: Database, config: MeshConfig, mailbox: Mailbox, summary: PollSummary,
                  after_commit: Callable[[str], None] | None) -> None:
    with mesh_client(config, mailbox) as client:
        for message_id in client.list_messages():
            if _stored_any(db, message_id):
                summary.redelivered += 1
            else:
                message = client.retrieve_message(message_id)
                workflow = message.workflow_id
                ack_workflows = (replies.reply_workflow(config.workflow_id),
                                 replies.reply_workflow(itk.SEND_DOCUMENT_WORKFLOW))
                if workflow in ack_workflows:
                    replies.record_ack(db, message_id, message.read(), workflow_id=workflow, local_id=message.local_id)
                    summary.acks += 1
                elif workflow == itk.SEND_DOCUMENT_WORKFLOW:
                    body = message.read()
                    summary.received += 1
                    result = receive_document(db, mailbox.ods, mailbox.mailbox, message_id, body,
                                              sender=message.sender, local_id=message.local_id)
                    if result.outcome == "document":
                        summary.letters += 1
                    elif result.outcome == "exception":
                        summary.exceptions += 1
                elif workflow != config.workflow_id:
                    summary.skipped += 1  # not ours: leave it for whatever handles that workflow
                    continue
                else:
                    body = message.read()
                    summary.received += 1
                    result = receive(db, mailbox.ods, mailbox.mailbox, message_id, body,
                                     sender=message.sender, workflow_id=workflow, local_id=message.local_id)
                    summary.events += result.events
                    if result.outcome == "filed":
                        summary.filed += 1
                    elif result.outcome == "duplicate":
                        summary.duplicates += 1
                    else:
                        summary.exceptions += 1
            if after_commit is not None:
                after_commit(message_id)
            client.acknowledge_message(message_id)
            summary.acknowledged += 1


def _stored(db: Database, message_id: str) -> bool:
    return bool(db.execute("SELECT 1 FROM mesh_inbox WHERE mesh_message_id = ?", [message_id]))


def _stored_any(db: Database, message_id: str) -> bool:
    return _stored(db, message_id) or bool(
        db.execute("SELECT 1 FROM mesh_outbox_acks WHERE mesh_message_id = ?", [message_id]))


def receive(db: Database, practice_code: str, mailbox: str, message_id: str, body: bytes, *,
            sender: str | None = None, workflow_id: str | None = None, local_id: str | None = None,
            now: datetime | None = None) -> Outcome:
    """Store one received message and file it if it passes every check, in one transaction, queuing
    the infrastructure and business acknowledgements to ``sender`` in the same transaction."""
    store.ready(db)
    now = now or utc_now()
    parsed: ReceivedCheck | None = None
    problems: list[tuple[str | None, str]] = []
    try:
        parsed = parse_bundle(body)
    except BundleError as exc:
        first = "; ".join(str(p) for p in exc.problems[:3])
        more = f" (and {len(exc.problems) - 3} more)" if len(exc.problems) > 3 else ""
        outcome = Outcome("exception", f"malformed FHIR Bundle: {first}{more}"[:500], code="malformed")
        problems = [(p.column, p.reason) for p in exc.problems]
    with atomic(db):
        hold(db, FILING_LOCK_KEY)  # one filer at a time, so two pollers cannot file the same check
        if _stored(db, message_id):
            return Outcome("duplicate", "this message was already received")
        if parsed is not None:
            outcome = _file(db, practice_code, message_id, parsed, now)
        db.execute(
            "INSERT INTO mesh_inbox (mesh_message_id, mailbox, practice_code, sender, workflow_id, local_id, "
            "received_at, outcome, reason, check_id, version, digest, nhs_number, trust_code, performed_on, payload, "
            "letter_pdf) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [message_id, mailbox, practice_code, sender, workflow_id, (local_id or "")[:300] or None, now,
             outcome.outcome, outcome.reason, *_identity(parsed), body,
             parsed.letter_pdf if parsed is not None else None])
        quoted = itk.message_reference(body) or message_id
        common = {"in_reply_to": message_id, "quoted_id": quoted, "mailbox": mailbox, "responder_ods": practice_code,
                  "recipient": sender, "workflow_id": workflow_id or "", "local_id": local_id, "now": now}
        if parsed is None:
            unreadable = not body.lstrip().startswith(b"{")
            replies.queue(db, reason="unreadable" if unreadable else "malformed", issues=problems, **common)
        else:
            _queue_outcome(db, outcome.code or "filed", common, infrastructure=True, business=True)
    log.info("MESH message stored: %s", outcome.outcome)
    return outcome


def _queue_outcome(db: Database, code: str, common: dict[str, object], *, infrastructure: bool,
                   business: bool) -> None:
    """The acknowledgements of a message that could be read: "received" then the business outcome;
    a refusal with an infrastructure-level ITK code (20010 other practice, 20008 already processed)
    is the infrastructure acknowledgement itself, with no business one (ITK3: negative is final)."""
    if itk.kind_of(itk.REASONS[code][0]) == "infrastructure":
        replies.queue(db, reason=code, **common)  # type: ignore[arg-type]
        return
    if infrastructure:
        replies.queue(db, reason="received", **common)  # type: ignore[arg-type]
    if business:
        replies.queue(db, reason=code, **common)  # type: ignore[arg-type]


FILING_LOCK_KEY = LockKey.MESH_FILING
AMENDED = ("an amended version of a check already filed: compare the letters and update the record by hand")
OTHER_PRACTICE = "addressed to another practice"
UNKNOWN_PATIENT = "unknown patient: the NHS number is not in the practice record"
DOB_MISMATCH = "the date of birth does not match the practice record"
NOT_REGISTERED = "the patient was not registered at this practice on the date of the check"
#: Each refusal of ``practice_problem`` -> Parity's reason code in the business acknowledgement.
PROBLEM_CODES = {OTHER_PRACTICE: "other-practice", UNKNOWN_PATIENT: "unknown-patient", DOB_MISMATCH: "dob-mismatch",
                 NOT_REGISTERED: "not-registered"}


def _identity(parsed: ReceivedCheck | None) -> list[object]:
    if parsed is None:
        return [None] * 6
    return [parsed.check_id, parsed.version, parsed.digest, parsed.nhs_number, parsed.trust_code,
            parsed.performed_on]


def _file(db: Database, practice_code: str, message_id: str, parsed: ReceivedCheck, now: datetime) -> Outcome:
    """Check one parsed check against the practice record and file it (inside the caller's transaction)."""
    problem = practice_problem(db, practice_code, parsed)
    if problem:
        return Outcome("exception", problem, code=PROBLEM_CODES.get(problem, "malformed"))
    same = db.execute("SELECT check_id, digest FROM filed_checks WHERE check_id = ? OR digest = ?",
                      [parsed.check_id, parsed.digest])
    if same:
        if any(row[1] == parsed.digest for row in same):
            return Outcome("duplicate", "this check is already filed", code="already-filed")
        return Outcome("exception", AMENDED, code="amended-held")
    # An amendment from a sender that gives no identifier is recognised by content and status: a
    # result marked amended/corrected for a patient, trust and date that already has a filed check.
    if parsed.amended and db.execute(
            "SELECT 1 FROM filed_checks f JOIN mesh_inbox i ON i.mesh_message_id = f.mesh_message_id "
            "WHERE f.nhs_number = ? AND i.trust_code = ? AND i.performed_on = ?",
            [parsed.nhs_number, parsed.trust_code, parsed.performed_on]):
        return Outcome("exception", AMENDED, code="amended-held")
    load_id = str(uuid.uuid4())
    rows = [{"nhs_number": parsed.nhs_number, "date": item.date, "snomed_code": item.snomed,
             "value": item.value, "unit": (item.unit or None), "recorded_by": item.recorded_by or parsed.trust_code}
            for item in parsed.items]
    insert_rows(db, "events", rows)
    # A loads row per filed message: the dashboard's data version is a fingerprint of ``loads``.
    insert_rows(db, "loads", [{"load_id": load_id, "loaded_at": now, "source": f"mesh:{message_id}"[:1000],
                               "mode": "mesh", "patients": 0, "registrations": 0, "events": len(rows),
                               "medications": 0, "warnings": 0}])
    db.execute("INSERT INTO filed_checks (check_id, digest, mesh_message_id, practice_code, nhs_number, filed_at, "
               "load_id, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               [parsed.check_id, parsed.digest, message_id, practice_code, parsed.nhs_number, now, load_id,
                len(rows)])
    return Outcome("filed", f"{len(rows)} coded results filed", len(rows), load_id, code="filed")


def practice_problem(db: Database, practice_code: str, parsed: ReceivedCheck) -> str | None:
    """Why this check cannot be filed at ``practice_code``, or None if it can."""
    if parsed.practice_code and parsed.practice_code.upper() != practice_code.upper():
        return OTHER_PRACTICE
    # Each result has its own date (bloods may be taken on another day): registered on every one.
    days = {parsed.performed_on, *(item.date for item in parsed.items)}
    return patient_problem(db, practice_code, parsed.nhs_number, parsed.birth_date, days)


def patient_problem(db: Database, practice_code: str, nhs_number: str, birth_date: date,
                    days: set[date]) -> str | None:
    """Why a patient's results or letter cannot be filed at ``practice_code`` (the safety checks of
    the receiving contract: known NHS number, same date of birth, registered on every date)."""
    found = db.execute("SELECT date_of_birth FROM patients WHERE nhs_number = ?", [nhs_number])
    if not found:
        return UNKNOWN_PATIENT
    if _as_date(found[0][0]) != birth_date:
        return DOB_MISMATCH
    for day in sorted(days):
        registered = db.execute(
            "SELECT 1 FROM registrations WHERE nhs_number = ? AND practice_code = ? AND start_date <= ? "
            "AND (end_date IS NULL OR end_date >= ?)", [nhs_number, practice_code, day, day])
        if not registered:
            return NOT_REGISTERED
    return None


def receive_document(db: Database, practice_code: str, mailbox: str, message_id: str, body: bytes, *,
                     sender: str | None = None, local_id: str | None = None,
                     now: datetime | None = None) -> Outcome:
    """Store a GP Connect Send Document message received by a Parity practice: the letter is filed on
    the patient's record for coding by hand (it carries no coded results), and the ITK3 responses
    its handling flags ask for are queued, all in one transaction."""
    store.ready(db)
    now = now or utc_now()
    workflow = itk.SEND_DOCUMENT_WORKFLOW
    doc: itk.ReceivedDocument | None = None
    problems: list[tuple[str | None, str]] = []
    try:
        doc = itk.parse_send_document(body, today=now.date())
    except itk.ItkError as exc:
        problems = [(p.column, p.reason) for p in exc.problems]
        first = "; ".join(str(p) for p in exc.problems[:3])
        outcome = Outcome("exception", f"malformed Send Document message: {first}"[:500], code="malformed")
    with atomic(db):
        if _stored(db, message_id):
            return Outcome("duplicate", "this message was already received")
        doc_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"parity:itk:{doc.message_id}")) if doc else None
        if doc is not None:
            problem = patient_problem(db, practice_code, doc.nhs_number, doc.birth_date, {doc.documented_on})
            if problem:
                outcome = Outcome("exception", problem, code=PROBLEM_CODES.get(problem, "malformed"))
            elif db.execute("SELECT 1 FROM mesh_inbox WHERE check_id = ? AND outcome = 'document'", [doc_id]):
                outcome = Outcome("duplicate", "this letter is already filed", code="already-filed")
            else:
                outcome = Outcome("document", f"letter for coding by hand: {doc.title}"[:500], code="letter-filed")
        db.execute(
            "INSERT INTO mesh_inbox (mesh_message_id, mailbox, practice_code, sender, workflow_id, local_id, "
            "received_at, outcome, reason, check_id, version, digest, nhs_number, trust_code, performed_on, payload, "
            "letter_pdf) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [message_id, mailbox, practice_code, sender, workflow, (local_id or "")[:300] or None, now,
             outcome.outcome, outcome.reason, doc_id, 1 if doc else None, None,
             doc.nhs_number if doc else None, doc.sender_ods if doc else None, doc.documented_on if doc else None,
             body, doc.pdf if doc else None])
        common = {"in_reply_to": message_id, "quoted_id": (doc.message_id if doc else None)
                  or itk.message_reference(body) or message_id, "mailbox": mailbox,
                  "responder_ods": practice_code, "recipient": sender, "workflow_id": workflow, "local_id": local_id,
                  "sender_reference": doc.sender_reference if doc else "", "now": now}
        if doc is None:
            replies.queue(db, reason="malformed", issues=problems, **common)
        else:
            _queue_outcome(db, outcome.code, common, infrastructure=doc.inf_ack, business=doc.bus_ack)
    log.info("MESH Send Document stored: %s", outcome.outcome)
    return outcome


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    assert isinstance(value, date)
    return value


# -- the exceptions queue -----------------------------------------------------------------------

@dataclass(frozen=True)
class InboxMessage:
    mesh_message_id: str
    practice_code: str
    received_at: datetime
    outcome: str
    reason: str | None
    nhs_number: str | None
    trust_code: str | None
    performed_on: date | None
    resolved: str | None
    workflow_id: str | None = None

    @property
    def is_letter(self) -> bool:
        """A letter received by GP Connect Send Document (no coded results)."""
        return self.workflow_id == itk.SEND_DOCUMENT_WORKFLOW

    @property
    def letter_state(self) -> str | None:
        """For a Send Document letter on the record: ``to_code`` until someone codes it, then ``coded``."""
        on_record = self.outcome == "document" or self.resolved == "document"
        if not self.is_letter or not on_record:
            return None
        return "coded" if self.resolved == "coded" else "to_code"


_LIST = """
SELECT i.mesh_message_id, i.practice_code, i.received_at, i.outcome, i.reason, i.nhs_number, i.trust_code,
       i.performed_on,
       (SELECT a.action FROM mesh_inbox_actions a WHERE a.mesh_message_id = i.mesh_message_id
        ORDER BY a.seq DESC LIMIT 1) AS resolved, i.workflow_id
FROM mesh_inbox i
"""


def messages(db: Database, *, practice_codes: frozenset[str] | None = None, outcome: str | None = None,
             open_only: bool = False, nhs_number: str | None = None) -> list[InboxMessage]:
    """Received messages, newest first (``open_only``: exceptions nobody has resolved yet)."""
    store.ready(db)
    where, params = [], []
    if practice_codes is not None:
        if not practice_codes:
            return []
        where.append("i.practice_code IN (" + ", ".join("?" for _ in practice_codes) + ")")
        params.extend(sorted(practice_codes))
    if outcome:
        where.append("i.outcome = ?")
        params.append(outcome)
    if nhs_number:
        where.append("i.nhs_number = ?")
        params.append(nhs_number)
    sql = _LIST + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY i.received_at DESC"
    rows = [InboxMessage(*r) for r in db.execute(sql, params)]
    if open_only:
        rows = [r for r in rows if r.outcome == "exception" and r.resolved is None]
    return rows


def letters_to_code(db: Database, practice_codes: frozenset[str]) -> list[InboxMessage]:
    """Send Document letters on the record that nobody has coded yet (the practice codes them by hand)."""
    return [m for m in messages(db, practice_codes=practice_codes) if m.letter_state == "to_code"]


def on_patient_record(db: Database, practice_codes: frozenset[str], nhs_number: str) -> list[InboxMessage]:
    """Messages whose letter is on the patient's record: filed checks and Send Document letters."""
    return [m for m in messages(db, practice_codes=practice_codes, nhs_number=nhs_number)
            if m.outcome in ("filed", "document") or m.resolved in ("filed", "document", "coded")]


def message(db: Database, message_id: str) -> InboxMessage:
    found = [m for m in messages(db) if m.mesh_message_id == message_id]
    if not found:
        raise NotFound("no such message")
    return found[0]


def letter_pdf(db: Database, message_id: str) -> bytes:
    """The letter that came with a message (raises ``NotFound`` if it had none)."""
    store.ready(db)
    rows = db.execute("SELECT letter_pdf FROM mesh_inbox WHERE mesh_message_id = ?", [message_id])
    if not rows or rows[0][0] is None:
        raise NotFound("no letter with this message")
    return store.blob(rows[0][0])


def _reply_later(db: Database, message_id: str, reason: str, now: datetime) -> None:
    """A business acknowledgement after a user resolved an exception (to the original sender)."""
    row = db.execute("SELECT mailbox, practice_code, sender, workflow_id, local_id, payload FROM mesh_inbox "
                     "WHERE mesh_message_id = ?", [message_id])[0]
    mailbox, practice, sender, workflow, local_id, payload = row
    replies.queue(db, in_reply_to=message_id, quoted_id=itk.message_reference(store.blob(payload)) or message_id,
                  mailbox=str(mailbox), responder_ods=str(practice), recipient=sender, workflow_id=str(workflow or ""),
                  local_id=local_id, reason=reason, now=now)


def retry_exception(db: Database, message_id: str, username: str, now: datetime | None = None) -> Outcome:
    """File an exception again (e.g. after the patient's registration was loaded); records the action
    and tells the sender (a business acknowledgement) when it is filed."""
    now = now or utc_now()
    current = message(db, message_id)
    if current.outcome != "exception" or current.resolved is not None:
        raise ConfigurationError("only an open exception can be filed again")
    payload, workflow = db.execute("SELECT payload, workflow_id FROM mesh_inbox WHERE mesh_message_id = ?",
                                   [message_id])[0]
    if workflow == itk.SEND_DOCUMENT_WORKFLOW:
        return _retry_document(db, current, store.blob(payload), username, now)
    try:
        parsed = parse_bundle(store.blob(payload))
    except BundleError:
        raise PermissionDenied("a malformed message cannot be filed; ask the trust to send it again") from None
    with atomic(db):
        outcome = _file(db, current.practice_code, message_id, parsed, now)
        if outcome.outcome != "exception":
            _action(db, message_id, username, outcome.outcome, outcome.reason, now)
            _reply_later(db, message_id, "filed-by-hand" if outcome.outcome == "filed" else "already-filed", now)
    return outcome


def _retry_document(db: Database, current: InboxMessage, payload: bytes, username: str, now: datetime) -> Outcome:
    try:
        doc = itk.parse_send_document(payload)
    except itk.ItkError:
        raise PermissionDenied("a malformed message cannot be filed; ask the sender to send it again") from None
    with atomic(db):
        problem = patient_problem(db, current.practice_code, doc.nhs_number, doc.birth_date, {doc.documented_on})
        if problem:
            return Outcome("exception", problem, code=PROBLEM_CODES.get(problem, "malformed"))
        db.execute("UPDATE mesh_inbox SET letter_pdf = ? WHERE mesh_message_id = ? AND letter_pdf IS NULL",
                   [doc.pdf, current.mesh_message_id])
        _action(db, current.mesh_message_id, username, "document", "letter filed for coding by hand", now)
        _reply_later(db, current.mesh_message_id, "letter-filed", now)
    return Outcome("document", "letter filed for coding by hand", code="letter-filed")


def dismiss_exception(db: Database, message_id: str, username: str, note: str, now: datetime | None = None) -> None:
    """Close an exception without filing (e.g. the trust was told and will resend); the sender is told."""
    current = message(db, message_id)
    if current.outcome != "exception" or current.resolved is not None:
        raise ConfigurationError("only an open exception can be dismissed")
    now = now or utc_now()
    with atomic(db):
        _action(db, message_id, username, "dismissed", note[:500], now)
        _reply_later(db, message_id, "dismissed", now)


def mark_coded(db: Database, message_id: str, username: str, now: datetime | None = None) -> None:
    """Record that a letter received by Send Document has been coded into the record by hand."""
    current = message(db, message_id)
    if current.letter_state != "to_code":
        raise ConfigurationError("only a letter waiting to be coded can be marked coded")
    with atomic(db):
        _action(db, message_id, username, "coded", "letter coded by hand", now or utc_now())


def _action(db: Database, message_id: str, username: str, action: str, detail: str, now: datetime) -> None:
    seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM mesh_inbox_actions WHERE mesh_message_id = ?",
                         [message_id])[0][0])
    db.execute("INSERT INTO mesh_inbox_actions (mesh_message_id, seq, occurred_at, username, action, detail) "
               "VALUES (?, ?, ?, ?, ?, ?)", [message_id, seq, now, username, action, detail])
