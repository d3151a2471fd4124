"""The sender hears back: ITK3 acknowledgements owed to senders, and those received for sent messages.

Practice side: every message received on a check workflow gets an **infrastructure** acknowledgement
(it could be read, ``20013``; or not, ``20009``/``10009`` with the paths of each problem) and, when it
could be read, a **business** acknowledgement (filed ``30001``; or why not: ``30002``, ``30003``,
``20010``, ``20008``), each with Parity's reason code beside the ITK code (docs/receiving-checks.md,
"Replies"). They are queued in the transaction that stores the message, so a message is never
acknowledged to MESH without its replies, and sent by the worker on the reply workflow
(``<workflow>_ACK``, as GP Connect pairs ``GPCONNECT_SEND_DOCUMENT`` with ``..._ACK``).

Trust side: acknowledgements arriving on an ``_ACK`` workflow are matched to the outbox entry they
answer (its MESH local id, else the message id they quote) and kept in ``mesh_outbox_acks``; the sent
checks page shows the latest of each kind. Replies carry codes and fixed texts, never patient data.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from parity.access.schema import atomic, utc_now
from parity.db import Database
from parity.interop import itk, store
from parity.interop.mesh.client import mesh_client, reason_for
from parity.interop.mesh.config import MeshConfig

log = logging.getLogger("parity.mesh")

ACK_SUFFIX = "_ACK"


def reply_workflow(workflow_id: str) -> str:
    """The workflow a reply to ``workflow_id`` travels on."""
    return workflow_id if workflow_id.endswith(ACK_SUFFIX) else workflow_id + ACK_SUFFIX


def queue(db: Database, *, in_reply_to: str, quoted_id: str, mailbox: str, responder_ods: str,
          recipient: str | None, workflow_id: str, local_id: str | None, reason: str, sender_reference: str = "",
          issues: Sequence[tuple[str | None, str]] = (), now: datetime | None = None) -> str | None:
    """Queue one ITK3 response (inside the caller's transaction); None when there is nobody to reply to.

    ``in_reply_to`` is the received MESH message id; ``quoted_id`` the message's own id that the
    response quotes (MessageHeader or Bundle id). ``local_id`` is echoed as the reply's MESH local id
    so a sender can match it without reading the body.
    """
    if not recipient:
        return None
    store.ready(db)
    now = now or utc_now()
    body = itk.build_response(in_reply_to=quoted_id, reason=reason, responder_ods=responder_ods, mailbox=mailbox,
                              sender_reference=sender_reference, issues=issues)
    itk_code = itk.REASONS[reason][0]
    reply_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO mesh_replies (reply_id, in_reply_to, mailbox, recipient, workflow_id, local_id, kind, itk_code, "
        "reason, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [reply_id, in_reply_to, mailbox, recipient, reply_workflow(workflow_id), (local_id or "")[:300] or None,
         itk.kind_of(itk_code), itk_code, reason, body, now])
    return reply_id


@dataclass(frozen=True)
class Reply:
    reply_id: str
    in_reply_to: str
    mailbox: str
    recipient: str
    workflow_id: str
    local_id: str | None
    kind: str
    itk_code: str
    reason: str
    created_at: datetime
    sent_at: datetime | None


def replies(db: Database, *, in_reply_to: str | None = None, pending: bool = False) -> list[Reply]:
    """Replies queued (oldest first), with when each was sent."""
    store.ready(db)
    sql = ("SELECT r.reply_id, r.in_reply_to, r.mailbox, r.recipient, r.workflow_id, r.local_id, r.kind, r.itk_code, "
           "r.reason, r.created_at, s.sent_at FROM mesh_replies r LEFT JOIN mesh_reply_sends s "
           "ON s.reply_id = r.reply_id")
    where, params = [], []
    if in_reply_to:
        where.append("r.in_reply_to = ?")
        params.append(in_reply_to)
    if pending:
        where.append("s.reply_id IS NULL")
    sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.created_at, r.kind DESC, r.reply_id"
    return [Reply(*row) for row in db.execute(sql, params)]


@dataclass
class ReplySummary:
    sent: int = 0
    errors: list[str] | None = None


def send_pending(db: Database, config: MeshConfig) -> ReplySummary:
    """Send every queued reply whose mailbox this deployment owns; a failure is retried next pass."""
    summary = ReplySummary(errors=[])
    for r in replies(db, pending=True):
        try:
            owned = config.owned(r.mailbox)
        except Exception:  # noqa: BLE001 - not our mailbox any more: leave it queued, say so
            summary.errors.append(f"reply from mailbox {r.mailbox}: not configured")  # type: ignore[union-attr]
            continue
        body = db.execute("SELECT body FROM mesh_replies WHERE reply_id = ?", [r.reply_id])[0][0]
        try:
            with mesh_client(config, owned) as client:
                message_id = client.send_message(
                    r.recipient, str(body).encode("utf-8"), workflow_id=r.workflow_id,
                    subject=f"ITK3 response {r.itk_code} ({r.kind} acknowledgement)",
                    local_id=r.local_id or r.reply_id, filename=f"{r.reply_id}.json",
                    content_type="application/fhir+json")
        except Exception as exc:  # noqa: BLE001 - recorded as an error and retried on the next pass
            summary.errors.append(f"reply to {r.recipient}: {reason_for(exc)}")  # type: ignore[union-attr]
            log.warning("MESH reply failed: %s", reason_for(exc))
            continue
        with atomic(db):
            if not db.execute("SELECT 1 FROM mesh_reply_sends WHERE reply_id = ?", [r.reply_id]):
                db.execute("INSERT INTO mesh_reply_sends (reply_id, sent_at, mesh_message_id) VALUES (?, ?, ?)",
                           [r.reply_id, utc_now(), message_id])
        summary.sent += 1
    return summary


# -- the sender's side ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ack:
    """An acknowledgement received for a sent message."""

    mesh_message_id: str
    local_id: str | None
    received_at: datetime
    workflow_id: str | None
    kind: str
    positive: bool
    itk_code: str | None
    reason: str | None
    detail: str | None


def _match(db: Database, local_id: str | None, quoted: str) -> str | None:
    """The outbox entry an acknowledgement answers: by the MESH local id it echoes, else by the id it
    quotes (a Send Document MessageHeader id, or a Parity Bundle's ``urn:uuid`` check id)."""
    if local_id and db.execute("SELECT 1 FROM mesh_outbox WHERE local_id = ?", [local_id]):
        return local_id
    for (candidate, attempts) in db.execute(
            "SELECT o.local_id, COALESCE(MAX(e.attempt), 0) FROM mesh_outbox o JOIN mesh_outbox_events e "
            "ON e.local_id = o.local_id WHERE o.route = 'send_document' GROUP BY o.local_id"):
        if any(itk.message_id_for(candidate, n) == quoted for n in range(1, int(attempts) + 2)):
            return str(candidate)
    # A Parity Bundle is identified by urn:uuid:<check id>; the response quotes the uuid.
    rows = db.execute("SELECT local_id FROM mesh_outbox WHERE check_id = ? ORDER BY version DESC",
                      [quoted.removeprefix("urn:uuid:")[:36]])
    return str(rows[0][0]) if rows else None


def record_ack(db: Database, message_id: str, body: bytes, *, workflow_id: str | None, local_id: str | None,
               now: datetime | None = None) -> Ack | None:
    """Keep one acknowledgement (once per MESH message); None if it cannot be read as an ITK3 Response."""
    store.ready(db)
    try:
        response = itk.parse_response(body)
    except itk.ItkError:
        log.warning("MESH acknowledgement could not be read")
        response = None
    with atomic(db):
        if db.execute("SELECT 1 FROM mesh_outbox_acks WHERE mesh_message_id = ?", [message_id]):
            return None
        if response is None:
            db.execute("INSERT INTO mesh_outbox_acks (mesh_message_id, local_id, received_at, workflow_id, kind, "
                       "positive, itk_code, reason, detail) VALUES (?, NULL, ?, ?, 'unreadable', FALSE, NULL, NULL, ?)",
                       [message_id, now or utc_now(), workflow_id, "the acknowledgement could not be read"])
            return None
        matched = _match(db, local_id, response.in_reply_to)
        detail = response.text + ("; " + "; ".join(response.issues) if response.issues else "")
        ack = Ack(message_id, matched, now or utc_now(), workflow_id, response.kind, response.positive,
                  response.itk_code, response.reason, detail[:500])
        db.execute("INSERT INTO mesh_outbox_acks (mesh_message_id, local_id, received_at, workflow_id, kind, positive, "
                   "itk_code, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [ack.mesh_message_id, ack.local_id, ack.received_at, ack.workflow_id, ack.kind, ack.positive,
                    ack.itk_code, ack.reason, ack.detail])
    return ack


def acks(db: Database, local_ids: Iterable[str] | None = None) -> list[Ack]:
    """Acknowledgements received, oldest first (for ``local_ids`` only, if given)."""
    store.ready(db)
    rows = [Ack(*r) for r in db.execute(
        "SELECT mesh_message_id, local_id, received_at, workflow_id, kind, positive, itk_code, reason, detail "
        "FROM mesh_outbox_acks ORDER BY received_at, mesh_message_id")]
    if local_ids is not None:
        wanted = set(local_ids)
        rows = [a for a in rows if a.local_id in wanted]
    return rows


def latest_acks(db: Database, local_ids: Iterable[str] | None = None) -> dict[str, dict[str, Ack]]:
    """local id -> {"infrastructure": latest, "business": latest} of the acknowledgements received."""
    out: dict[str, dict[str, Ack]] = {}
    for a in acks(db, local_ids):
        if a.local_id:
            out.setdefault(a.local_id, {})[a.kind] = a
    return out
