"""The trust's outbox: each completed check becomes one MESH message, sent once, tracked to the end.

States (``mesh_outbox_events``, append-only; the current state is the latest event):

- ``queued``: waiting to be sent (again, after a failed attempt, once ``next_attempt_at`` has passed);
- ``sending``: claimed by a sender; written and committed *before* the message leaves, so two
  senders (threads or processes) never send the same entry;
- ``sent``: MESH accepted the upload and gave a message id;
- ``accepted`` / ``acknowledged``: MESH tracking says the message is in the practice's inbox / was
  downloaded and acknowledged by the practice;
- ``failed``: a permanent error (unknown recipient, refused credentials) or ``max_attempts`` used up.

Transient errors (connection, timeouts, HTTP 5xx/429) are retried with exponential back-off:
``backoff_seconds`` × 2^(attempt − 1). An entry left in ``sending`` (the process died mid-send) is
never re-sent automatically, because the message may have gone: it is marked ``failed`` with that
reason, and a user may queue it again (``requeue``); the practice side files a check once whatever
arrives twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from parity.db import Database
from parity.db.transactions import atomic, utc_now
from parity.errors import ConfigurationError, NotFound
from parity.interop import store
from parity.interop.mesh.client import is_transient, mesh_client, reason_for
from parity.interop.mesh.config import MeshConfig

log = logging.getLogger("parity.mesh")

STATES = ("queued", "sending", "sent", "accepted", "acknowledged", "failed")
OPEN_STATES = ("sent", "accepted")          # tracked until acknowledged
STALE_SENDING = timedelta(minutes=15)       # longer than any send can take (client timeout 60 s)


@dataclass(frozen=True)
class OutboxEntry:
    """One message to a practice and where it has got to."""

    local_id: str
    check_id: str
    version: int
    trust_code: str
    recipient_ods: str
    created_at: datetime
    state: str
    attempt: int
    updated_at: datetime
    mesh_message_id: str | None
    recipient_mailbox: str | None
    next_attempt_at: datetime | None
    detail: str | None
    route: str = "bundle"


@dataclass(frozen=True)
class Payload:
    """What to send for an outbox entry: the body, its MESH subject and workflow, and where to.

    ``address`` overrides the directory (GP Connect Send Document's ``GPPROVIDER_...`` patient routing).
    """

    body: bytes
    subject: str
    workflow_id: str
    address: str | None = None
    content_type: str = "application/fhir+json"


ROUTES = ("bundle", "send_document")


@dataclass
class SendSummary:
    """What one pass of the sender did (counts only: safe to log)."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    tracked: int = 0
    acknowledged: int = 0
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"sent {self.sent}, retrying {self.retrying}, failed {self.failed}, "
                f"acknowledged {self.acknowledged} (tracked {self.tracked})")


def local_id_for(check_id: str, version: int) -> str:
    """The outbox key and MESH ``mex-LocalID`` of a check version: one message per version, ever."""
    return f"{check_id}.v{version}"


def enqueue(db: Database, check_id: str, version: int, trust_code: str, recipient_ods: str,
            now: datetime | None = None, route: str = "bundle") -> str:
    """Queue a check version for sending by ``route`` (coded Bundle or Send Document); queuing the same
    version again adds nothing. Joins the caller's transaction when there is one (the check and its
    outbox entry commit together)."""
    assert route in ROUTES
    store.ready(db)
    now = now or utc_now()
    local_id = local_id_for(check_id, version)
    if db.execute("SELECT 1 FROM mesh_outbox WHERE local_id = ?", [local_id]):
        return local_id
    db.execute("INSERT INTO mesh_outbox (local_id, check_id, version, trust_code, recipient_ods, created_at, route) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", [local_id, check_id, version, trust_code, recipient_ods, now, route])
    _event(db, local_id, "queued", 0, now, detail="waiting to be sent", next_attempt_at=now)
    return local_id


def _event(db: Database, local_id: str, state: str, attempt: int, now: datetime, *, detail: str | None = None,
           mesh_message_id: str | None = None, sender: str | None = None, recipient: str | None = None,
           workflow: str | None = None, next_attempt_at: datetime | None = None) -> None:
    assert state in STATES
    seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM mesh_outbox_events WHERE local_id = ?",
                         [local_id])[0][0])
    db.execute(
        "INSERT INTO mesh_outbox_events (local_id, seq, occurred_at, state, attempt, mesh_message_id, sender_mailbox, "
        "recipient_mailbox, workflow_id, next_attempt_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [local_id, seq, now, state, attempt, mesh_message_id, sender, recipient, workflow, next_attempt_at,
         (detail or "")[:500] or None])


_CURRENT = """
SELECT o.local_id, o.check_id, o.version, o.trust_code, o.recipient_ods, o.created_at,
       e.state, e.attempt, e.occurred_at, m.mesh_message_id, m.recipient_mailbox, e.next_attempt_at, e.detail,
       COALESCE(o.route, 'bundle')
FROM mesh_outbox o
JOIN mesh_outbox_events e ON e.local_id = o.local_id
 AND e.seq = (SELECT MAX(seq) FROM mesh_outbox_events x WHERE x.local_id = o.local_id)
LEFT JOIN mesh_outbox_events m ON m.local_id = o.local_id
 AND m.seq = (SELECT MAX(seq) FROM mesh_outbox_events y WHERE y.local_id = o.local_id AND y.mesh_message_id IS NOT NULL)
"""


def entries(db: Database, *, trust_code: str | None = None, states: tuple[str, ...] | None = None,
            local_id: str | None = None) -> list[OutboxEntry]:
    """Outbox entries with their current state, newest first."""
    store.ready(db)
    where, params = [], []
    if trust_code:
        where.append("o.trust_code = ?")
        params.append(trust_code)
    if local_id:
        where.append("o.local_id = ?")
        params.append(local_id)
    if states:
        where.append("e.state IN (" + ", ".join("?" for _ in states) + ")")
        params.extend(states)
    sql = _CURRENT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY o.created_at DESC, o.local_id"
    return [OutboxEntry(*row) for row in db.execute(sql, params)]


def entry(db: Database, local_id: str) -> OutboxEntry:
    found = entries(db, local_id=local_id)
    if not found:
        raise NotFound("no such outbox entry")
    return found[0]


def history(db: Database, local_id: str) -> list[tuple]:
    """Every state an entry went through: (occurred_at, state, attempt, detail), oldest first."""
    return db.execute("SELECT occurred_at, state, attempt, detail FROM mesh_outbox_events WHERE local_id = ? "
                      "ORDER BY seq", [local_id])


def requeue(db: Database, local_id: str, now: datetime | None = None) -> None:
    """Queue a failed entry again (a user's decision, e.g. after fixing the directory)."""
    now = now or utc_now()
    with atomic(db):
        current = entry(db, local_id)
        if current.state != "failed":
            raise ConfigurationError(f"only a failed message can be sent again (this one is {current.state})")
        _event(db, local_id, "queued", current.attempt, now, detail="queued again by a user", next_attempt_at=now)


def _claim(db: Database, local_id: str, now: datetime) -> OutboxEntry | None:
    """Move a due ``queued`` entry to ``sending`` in one transaction; None if someone else has it.

    On PostgreSQL the row lock (``FOR UPDATE``) serialises senders in different processes; DuckDB
    admits one writing process, and ``db.lock`` serialises threads.
    """
    with atomic(db):
        # A row lock where the backend has several writing processes (``FOR UPDATE`` on PostgreSQL).
        db.execute(f"SELECT local_id FROM mesh_outbox WHERE local_id = ?{db.dialect.for_update}", [local_id])
        current = entry(db, local_id)
        if current.state != "queued" or (current.next_attempt_at and current.next_attempt_at > now):
            return None
        _event(db, local_id, "sending", current.attempt + 1, now)
        return current


def send_due(db: Database, config: MeshConfig, payload_for: Callable[[OutboxEntry], Payload],
             *, now: datetime | None = None, trust_code: str | None = None) -> SendSummary:
    """Send every due queued entry (of ``trust_code``, or of every trust with a mailbox here).

    ``payload_for(entry)`` gives what to send (``parity.interop.checks.payload_source``).
    """
    now = now or utc_now()
    summary = SendSummary()
    _expire_stale(db, now)
    for e in entries(db, trust_code=trust_code, states=("queued",)):
        if e.next_attempt_at and e.next_attempt_at > now:
            continue
        try:
            sender = config.mailbox_for(e.trust_code)
        except ConfigurationError as exc:
            summary.errors.append(str(exc))
            continue
        claimed = _claim(db, e.local_id, now)
        if claimed is None:
            continue
        attempt = claimed.attempt + 1
        recipient = config.recipient(e.recipient_ods)
        workflow = config.workflow_id
        try:
            payload = payload_for(claimed)
            workflow = payload.workflow_id
            recipient = payload.address or recipient
            with mesh_client(config, sender) as client:
                if recipient is None and config.lookup:
                    found = client.lookup_endpoint(e.recipient_ods, workflow).get("results") or []
                    recipient = found[0]["mailbox_id"] if found else None
                if recipient is None:
                    raise _Permanent(f"no MESH mailbox is known for practice {e.recipient_ods}: add it to the "
                                     "directory")
                message_id = client.send_message(
                    recipient, payload.body, workflow_id=workflow, subject=payload.subject, local_id=e.local_id,
                    filename=f"{e.local_id}.json", content_type=payload.content_type)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, none may stop the loop
            transient = not isinstance(exc, _Permanent) and is_transient(exc)
            if recipient and recipient.startswith("GPPROVIDER_"):
                recipient = None  # a patient address, not a mailbox: never stored
            reason = str(exc) if isinstance(exc, _Permanent) else reason_for(exc)
            with atomic(db):
                if transient and attempt < config.max_attempts:
                    delay = timedelta(seconds=config.backoff_seconds * 2 ** (attempt - 1))
                    _event(db, e.local_id, "queued", attempt, utc_now(), next_attempt_at=now + delay,
                           detail=f"attempt {attempt} failed ({reason}); will retry", sender=sender.mailbox,
                           recipient=recipient)
                    summary.retrying += 1
                else:
                    why = f"attempt {attempt} failed ({reason})" + ("; no attempts left" if transient else "")
                    _event(db, e.local_id, "failed", attempt, utc_now(), detail=why, sender=sender.mailbox,
                           recipient=recipient)
                    summary.failed += 1
            log.warning("MESH send failed: %s", reason)
            continue
        with atomic(db):
            where = "the patient's registered practice (GPPROVIDER routing)" if recipient.startswith("GPPROVIDER_") \
                else f"mailbox {recipient}"
            _event(db, e.local_id, "sent", attempt, utc_now(), mesh_message_id=message_id, sender=sender.mailbox,
                   recipient=None if recipient.startswith("GPPROVIDER_") else recipient, workflow=workflow,
                   detail=f"sent to {where} on {workflow}")
        summary.sent += 1
    return summary


def track(db: Database, config: MeshConfig, *, trust_code: str | None = None) -> SendSummary:
    """Ask MESH tracking where each sent message is, recording ``accepted`` and ``acknowledged``."""
    summary = SendSummary()
    for e in entries(db, trust_code=trust_code, states=OPEN_STATES):
        if not e.mesh_message_id:
            continue
        try:
            sender = config.mailbox_for(e.trust_code)
            with mesh_client(config, sender) as client:
                status = str(client.track_message(e.mesh_message_id).get("status", "")).lower()
        except Exception as exc:  # noqa: BLE001 - tracking is retried on the next pass
            summary.errors.append(reason_for(exc))
            continue
        summary.tracked += 1
        new = {"accepted": "accepted", "acknowledged": "acknowledged"}.get(status)
        if new and new != e.state and not (e.state == "acknowledged"):
            with atomic(db):
                _event(db, e.local_id, new, e.attempt, utc_now(), detail=f"MESH tracking: {status}")
            if new == "acknowledged":
                summary.acknowledged += 1
    return summary


def _expire_stale(db: Database, now: datetime) -> None:
    for e in entries(db, states=("sending",)):
        if now - e.updated_at > STALE_SENDING:
            with atomic(db):
                _event(db, e.local_id, "failed", e.attempt, now,
                       detail="the sender stopped while sending: the message may have gone; check MESH tracking "
                              "before sending again")


class _Permanent(Exception):
    """A send failure that retrying cannot fix (message safe to show: no patient data)."""
