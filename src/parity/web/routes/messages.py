"""Practice pages for checks received from trusts: the exceptions queue and the letters filed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parity.access import record
from parity.errors import ConfigurationError, PermissionDenied
from parity.interop.mesh import inbox
from parity.web import messaging
from parity.web.deps import ActorDep, base_context, get_state
from parity.web.security import check_csrf

router = APIRouter(tags=["messages"], include_in_schema=False)
CsrfField = Annotated[str, Form(max_length=200)]


@router.get("/practices/{code}/messages", response_class=HTMLResponse)
def messages_page(request: Request, code: str, actor: ActorDep, result: str | None = None) -> Response:
    state = get_state(request)
    open_, to_code, received = messaging.practice_messages(request, actor, code)
    ctx = base_context(request, actor, title="Results received", code=code, open=open_, received=received,
                       to_code=to_code,
                       result=messaging.RESULT_TEXTS.get(result or ""), wide=True,
                       breadcrumbs=[("Worklist", f"/practices/{code}/worklist")])
    return state.templates.TemplateResponse(request, "exceptions.html", ctx)


@router.get("/messages/{message_id}/letter.pdf")
def message_letter(request: Request, message_id: str, actor: ActorDep) -> Response:
    state = get_state(request)
    m = messaging.scoped_message(request, actor, message_id, "view_letter")
    with state.db.lock:
        body = inbox.letter_pdf(state.db, message_id)
    record(state.db, actor, "view_letter", messaging.message_resource(m), "allowed", "letter received from a trust")
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": 'inline; filename="letter.pdf"'})


@router.post("/messages/{message_id}/retry")
def retry(request: Request, message_id: str, actor: ActorDep, csrf_token: CsrfField = "") -> Response:
    check_csrf(request, csrf_token)
    state = get_state(request)
    m = messaging.scoped_message(request, actor, message_id, "file_message")
    try:
        with state.db.lock:
            outcome = inbox.retry_exception(state.db, message_id, actor.username)
        result = {"filed": "filed", "duplicate": "duplicate", "document": "document"}.get(outcome.outcome, "still")
    except ConfigurationError:
        result = "closed"
    except PermissionDenied:
        result = "malformed"
    record(state.db, actor, "file_message", messaging.message_resource(m), "allowed", f"result: {result}")
    return RedirectResponse(f"/practices/{m.practice_code}/messages?result={result}", status_code=303)


@router.post("/messages/{message_id}/dismiss")
def dismiss(request: Request, message_id: str, actor: ActorDep, csrf_token: CsrfField = "",
            note: Annotated[str, Form(max_length=500)] = "") -> Response:
    check_csrf(request, csrf_token)
    state = get_state(request)
    m = messaging.scoped_message(request, actor, message_id, "dismiss_message")
    try:
        with state.db.lock:
            inbox.dismiss_exception(state.db, message_id, actor.username, note.strip())
        result = "dismissed"
    except ConfigurationError:
        result = "closed"
    record(state.db, actor, "dismiss_message", messaging.message_resource(m), "allowed", f"result: {result}")
    return RedirectResponse(f"/practices/{m.practice_code}/messages?result={result}", status_code=303)


@router.post("/messages/{message_id}/coded")
def mark_coded(request: Request, message_id: str, actor: ActorDep, csrf_token: CsrfField = "") -> Response:
    """A practice has coded a Send Document letter into the record by hand."""
    check_csrf(request, csrf_token)
    state = get_state(request)
    m = messaging.scoped_message(request, actor, message_id, "code_letter")
    try:
        with state.db.lock:
            inbox.mark_coded(state.db, message_id, actor.username)
        result = "coded"
    except ConfigurationError:
        result = "closed"
    record(state.db, actor, "code_letter", messaging.message_resource(m), "allowed", f"result: {result}")
    return RedirectResponse(f"/practices/{m.practice_code}/messages?result={result}", status_code=303)
