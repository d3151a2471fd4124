"""Trust-to-GP messaging as pages see it: who may do what, form labels, uploads, scoped lookups.

Routes (``routes/trust.py``, ``routes/messages.py``) stay thin; access checks and audit entries for
checks, outbox entries and received messages live here, so a page cannot forget them. Nothing here
puts patient data into an error message: problems name the field and the rule, never the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request, UploadFile

from parity.access import Actor, Role, record
from parity.errors import NotFound, PermissionDenied, Problem, ValidationError
from parity.interop import checks as trust_checks
from parity.interop.mesh import inbox, outbox, replies
from parity.interop.mesh.inbox import InboxMessage
from parity.interop.record import ODS_CODE, CheckRecord
from parity.rules.template import CheckTemplate
from parity.web.deps import actor_scope, get_state, today

UPLOAD_NAMES = ("patients.csv", "registrations.csv", "events.csv")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
PRACTICE_SIDE_ROLES = (Role.practice, Role.pcn, Role.icb)

PATIENT_LABELS = {
    "nhs_number": "NHS number", "date_of_birth": "Date of birth", "family_name": "Family name",
    "given_name": "Given name", "sex": "Sex", "ethnicity": "Ethnic category", "practice_code": "GP practice",
    "performed_on": "Date of the check", "performed_by": "Performed by", "narrative": "Narrative",
    "follow_up": "Follow-up", "checks": "The check",
}

# Outbox states as NHS.UK tags: (text, colour).
STATE_TAGS = {
    "queued": ("Queued", "grey"), "sending": ("Sending", "blue"), "sent": ("Sent", "aqua-green"),
    "accepted": ("Accepted", "aqua-green"), "acknowledged": ("Acknowledged", "green"), "failed": ("Failed", "red"),
}

# Outcomes of a practice's action on an exception, shown after the redirect (fixed texts only).
RESULT_TEXTS = {
    "filed": "The check was filed in the practice record.",
    "duplicate": "The check was already filed; nothing more was filed.",
    "still": "The check still cannot be filed: the reason is shown in the list.",
    "malformed": "A malformed message cannot be filed; ask the trust to send it again.",
    "closed": "That exception was already resolved.",
    "dismissed": "The exception was dismissed.",
    "document": "The letter was filed on the patient's record for coding by hand.",
    "coded": "The letter was marked as coded.",
}

# Acknowledgements as NHS.UK tags: (kind, positive) -> (text, colour).
ACK_TAGS = {
    ("infrastructure", True): ("Received", "aqua-green"), ("infrastructure", False): ("Refused", "red"),
    ("business", True): ("Filed", "green"), ("business", False): ("Not filed", "red"),
}


# -- the trust side ------------------------------------------------------------------------------

def require_trust(actor: Actor) -> str:
    """The trust's ODS code, or 403 for anyone who is not a trust user."""
    if actor.role != Role.trust or not actor.org_code:
        raise PermissionDenied("only trust users can record and send checks")
    return actor.org_code.upper()


def field_labels(template: CheckTemplate) -> dict[str, str]:
    """Form key → what to call it in an error message."""
    labels = dict(PATIENT_LABELS)
    for s in template.sections:
        labels[s.id] = s.label
        labels[f"{s.id}.status"] = f"{s.label}: status"
        labels[f"{s.id}.reason"] = f"{s.label}: reason"
        for f in s.fields:
            labels[f"{s.id}.{f.id}"] = f.label if f.label == s.label else f"{s.label}: {f.label}"
    return labels


def form_errors(template: CheckTemplate, problems: list[Problem]) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Problems → (error summary items linked to their fields, field id → inline message)."""
    labels = field_labels(template)
    summary: list[dict[str, str]] = []
    inline: dict[str, str] = {}
    for p in problems:
        key = p.column or "checks"
        text = f"{labels.get(key, key)} {p.reason}"
        summary.append({"text": text, "href": f"#{key}"})
        inline[key] = f"{inline[key]}; {text}" if key in inline else text
    return summary, inline


def own_check(request: Request, actor: Actor, check_id: str, version: int, action: str) -> CheckRecord:
    """A check recorded by the actor's trust; 404 (audited as denied) for any other, so other trusts'
    checks are not revealed."""
    trust = require_trust(actor)
    db = get_state(request).db
    with db.lock:
        try:
            rec: CheckRecord | None = trust_checks.stored_record(db, check_id, version)
        except NotFound:
            rec = None
    if rec is None or rec.trust_code.upper() != trust:
        record(db, actor, action, f"check/{check_id[:60]}", "denied", "not a check of the user's trust")
        raise NotFound("no such check")
    return rec


def own_outbox_entry(request: Request, actor: Actor, local_id: str) -> outbox.OutboxEntry:
    trust = require_trust(actor)
    db = get_state(request).db
    with db.lock:
        try:
            entry = outbox.entry(db, local_id)
        except NotFound:
            entry = None
    if entry is None or entry.trust_code.upper() != trust:
        raise NotFound("no such message")
    return entry


@dataclass(frozen=True)
class SentCheck:
    check: trust_checks.StoredCheck
    entry: outbox.OutboxEntry | None
    acks: dict[str, replies.Ack]

    @property
    def infrastructure(self) -> replies.Ack | None:
        return self.acks.get("infrastructure")

    @property
    def business(self) -> replies.Ack | None:
        return self.acks.get("business")


def sent_checks(request: Request, trust: str) -> list[SentCheck]:
    """The trust's checks, newest first, each with its outbox entry and the latest acknowledgements."""
    db = get_state(request).db
    with db.lock:
        stored = trust_checks.checks(db, trust_code=trust)
        entries = outbox.entries(db, trust_code=trust)
        by_key = {(e.check_id, e.version): e for e in entries}
        acks = replies.latest_acks(db, [e.local_id for e in entries])
    out = []
    for c in stored:
        entry = by_key.get((c.check_id, c.version))
        out.append(SentCheck(c, entry, acks.get(entry.local_id, {}) if entry else {}))
    return out


def practice_routes(request: Request) -> dict[str, str]:
    """Practices whose route was set (ODS code -> bundle / send_document)."""
    db = get_state(request).db
    with db.lock:
        return trust_checks.routes(db)


def set_practice_route(request: Request, actor: Actor, practice_code: str, route: str) -> None:
    """A trust user marks a practice as on Parity (coded results) or not (Send Document); audited."""
    require_trust(actor)
    code = practice_code.strip().upper()
    if not ODS_CODE.match(code):
        raise ValidationError("the practice code is not valid",
                              [Problem("route", None, "practice_code", "must be the ODS code of a GP practice")])
    db = get_state(request).db
    with db.lock:
        trust_checks.set_route(db, code, route, actor.username)
    record(db, actor, "set_practice_route", f"practice/{code}", "allowed", f"route {route}")


def save_uploads(files: list[UploadFile], folder: Path) -> list[Problem]:
    """Write the uploaded extract files into ``folder``; problems for any other name, repeats or size."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for f in files:
        name = Path(f.filename or "").name
        if not name:
            continue
        if name not in UPLOAD_NAMES:
            problems.append(Problem("upload", None, None, "only files named " + ", ".join(UPLOAD_NAMES)
                                    + " can be uploaded; rename or remove the others"))
            continue
        if name in seen:
            problems.append(Problem(name, None, None, "was uploaded twice"))
            continue
        seen.add(name)
        body = f.file.read(MAX_UPLOAD_BYTES + 1)
        if len(body) > MAX_UPLOAD_BYTES:
            problems.append(Problem(name, None, None, f"is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"))
            continue
        (folder / name).write_bytes(body)
    if not problems:
        problems += [Problem(n, None, None, "is missing: upload all three files")
                     for n in UPLOAD_NAMES if n not in seen]
    return problems


def upload(request: Request, actor: Actor, files: list[UploadFile], template: CheckTemplate) -> int:
    """Save, check and queue an uploaded extract; the number of checks queued, or ``ValidationError``."""
    trust = require_trust(actor)
    state = get_state(request)
    with trust_checks.temporary_folder() as tmp:
        folder = Path(tmp)
        problems = save_uploads(files, folder)
        if problems:
            raise ValidationError("the upload cannot be read", problems)
        with state.db.lock:
            queued = trust_checks.upload_checks(state.db, folder, template, trust_code=trust,
                                                username=actor.username, today=today(request))
    record(state.db, actor, "upload_checks", f"trust/{trust}", "allowed", f"{len(queued)} checks queued")
    return len(queued)


# -- the practice side ---------------------------------------------------------------------------

def require_practice_view(request: Request, actor: Actor, practice_code: str, action: str) -> None:
    """403 (audited) unless a practice, PCN or ICB user whose scope covers ``practice_code``."""
    scope = actor_scope(request, actor, today(request))
    if actor.role not in PRACTICE_SIDE_ROLES or not scope.can_view_practice(practice_code):
        record(get_state(request).db, actor, action, f"practice/{practice_code[:20]}", "denied",
               "outside the user's organisation")
        raise PermissionDenied("you can only see messages for your own organisation")


def practice_messages(request: Request, actor: Actor, practice_code: str
                      ) -> tuple[list[InboxMessage], list[InboxMessage], list[InboxMessage]]:
    """(open exceptions, Send Document letters to code by hand, recent filed or duplicate messages) of
    one practice, audited."""
    require_practice_view(request, actor, practice_code, "view_messages")
    db = get_state(request).db
    with db.lock:
        open_ = inbox.messages(db, practice_codes=frozenset({practice_code}), open_only=True)
        to_code = inbox.letters_to_code(db, frozenset({practice_code}))
        received = [m for m in inbox.messages(db, practice_codes=frozenset({practice_code}))
                    if m.outcome in ("filed", "duplicate", "document")][:200]
    record(db, actor, "view_messages", f"practice/{practice_code}", "allowed",
           f"{len(open_)} open exceptions; {len(to_code)} letters to code; {len(received)} received")
    return open_, to_code, received


def scoped_message(request: Request, actor: Actor, message_id: str, action: str) -> InboxMessage:
    """A received message whose practice the actor may see; 404 if there is none, 403 (audited) if outside."""
    db = get_state(request).db
    with db.lock:
        found = inbox.message(db, message_id)
    require_practice_view(request, actor, found.practice_code, action)
    return found


def message_resource(m: InboxMessage) -> str:
    return f"patient/{m.nhs_number}" if m.nhs_number else f"message/{m.mesh_message_id[:100]}"


def letters_for_patient(request: Request, actor: Actor, nhs_number: str) -> list[InboxMessage]:
    """Filed messages about a patient the actor may see (the patient page checked access first)."""
    if actor.role not in PRACTICE_SIDE_ROLES:
        return []
    scope = actor_scope(request, actor, today(request))
    if not scope.practices:
        return []
    db = get_state(request).db
    with db.lock:
        return inbox.on_patient_record(db, frozenset(scope.practices), nhs_number)
