"""Trust pages: record a physical health check for a patient's GP, bulk upload, and what was sent.

Every check goes through ``parity.interop``: validated against the check template, stored with its
letter and FHIR Bundle, and queued in the MESH outbox. A trust sees only its own checks.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parity.access import Actor, record
from parity.errors import ValidationError
from parity.interop import checks as trust_checks
from parity.interop.mesh import outbox
from parity.interop.record import record_from_form
from parity.rules.template import load_template
from parity.web import messaging
from parity.web.deps import ActorDep, base_context, get_state, today
from parity.web.security import check_csrf

router = APIRouter(prefix="/trust", tags=["trust"], include_in_schema=False)
MAX_FORM_VALUE = 5000


async def submitted_form(request: Request) -> dict[str, str]:
    """The posted form as plain strings (files ignored), each value capped in length."""
    form = await request.form()
    return {k: v[:MAX_FORM_VALUE] for k, v in form.items() if isinstance(v, str)}


FormDep = Annotated[dict[str, str], Depends(submitted_form)]


def _form_page(request: Request, actor: Actor, values: dict[str, str], errors: list[dict[str, str]] | None = None,
               inline: dict[str, str] | None = None, status: int = 200) -> Response:
    state = get_state(request)
    template = load_template()
    ctx = base_context(request, actor, title="Record a physical health check", template=template,
                       core=[s for s in template.sections if s.core],
                       extended=[s for s in template.sections if not s.core],
                       values=values, errors=errors or [], inline=inline or {}, today=today(request),
                       breadcrumbs=[("Sent checks", "/trust/checks")])
    return state.templates.TemplateResponse(request, "trust_check_form.html", ctx, status_code=status)


@router.get("/checks/new", response_class=HTMLResponse)
def new_check(request: Request, actor: ActorDep) -> Response:
    messaging.require_trust(actor)
    return _form_page(request, actor, {"performed_on": today(request).isoformat()})


@router.post("/checks")
def submit_check(request: Request, actor: ActorDep, form: FormDep) -> Response:
    trust = messaging.require_trust(actor)
    check_csrf(request, form.get("csrf_token"))
    state = get_state(request)
    template = load_template()
    values = {k: v for k, v in form.items() if k != "csrf_token"}
    try:
        rec = record_from_form(template, values, trust_code=trust, created_by=actor.username, today=today(request))
    except ValidationError as exc:
        errors, inline = messaging.form_errors(template, exc.problems)
        return _form_page(request, actor, values, errors, inline, status=422)
    with state.db.lock:
        trust_checks.submit_check(state.db, rec, template, source="form")
    record(state.db, actor, "record_check", f"patient/{rec.nhs_number}", "allowed",
           f"check {rec.check_id} v{rec.version} for practice {rec.practice_code}")
    return RedirectResponse(f"/trust/checks/{rec.check_id}/v{rec.version}", status_code=303)


@router.get("/checks", response_class=HTMLResponse)
def sent_checks(request: Request, actor: ActorDep, queued: int | None = None) -> Response:
    trust = messaging.require_trust(actor)
    state = get_state(request)
    rows = messaging.sent_checks(request, trust)
    record(state.db, actor, "view_sent_checks", f"trust/{trust}", "allowed", f"{len(rows)} checks")
    ctx = base_context(request, actor, title="Sent checks", rows=rows, tags=messaging.STATE_TAGS,
                       queued=queued, trust=trust, wide=True)
    return state.templates.TemplateResponse(request, "trust_checks.html", ctx)


@router.get("/checks/{check_id}/v{version}", response_class=HTMLResponse)
def check_page(request: Request, actor: ActorDep, check_id: str, version: int) -> Response:
    rec = messaging.own_check(request, actor, check_id, version, "view_check")
    state = get_state(request)
    template = load_template()
    local_id = outbox.local_id_for(check_id, version)
    with state.db.lock:
        entries = outbox.entries(state.db, local_id=local_id)
        history = outbox.history(state.db, local_id)
    record(state.db, actor, "view_check", f"patient/{rec.nhs_number}", "allowed", f"check {check_id} v{version}")
    ctx = base_context(request, actor, title="Check sent to the GP practice", rec=rec,
                       rows=rec.summary_rows(template), entry=entries[0] if entries else None, history=history,
                       tags=messaging.STATE_TAGS, breadcrumbs=[("Sent checks", "/trust/checks")])
    return state.templates.TemplateResponse(request, "trust_check.html", ctx)


@router.get("/checks/{check_id}/v{version}/letter.pdf")
def check_letter(request: Request, actor: ActorDep, check_id: str, version: int) -> Response:
    rec = messaging.own_check(request, actor, check_id, version, "view_letter")
    state = get_state(request)
    with state.db.lock:
        body = trust_checks.stored_letter(state.db, check_id, version)
    record(state.db, actor, "view_letter", f"patient/{rec.nhs_number}", "allowed", f"check {check_id} v{version}")
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="check-{check_id}-v{version}.pdf"'})


@router.post("/outbox/{local_id}/requeue")
def requeue(request: Request, actor: ActorDep, local_id: str,
            csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    check_csrf(request, csrf_token)
    entry = messaging.own_outbox_entry(request, actor, local_id)
    state = get_state(request)
    with state.db.lock:
        outbox.requeue(state.db, entry.local_id)
    record(state.db, actor, "requeue_check", f"check/{entry.check_id}", "allowed", f"v{entry.version}")
    return RedirectResponse("/trust/checks", status_code=303)


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, actor: ActorDep) -> Response:
    messaging.require_trust(actor)
    return _upload_page(request, actor, [])


def _upload_page(request: Request, actor: Actor, problems: list, status: int = 200) -> Response:
    state = get_state(request)
    ctx = base_context(request, actor, title="Upload checks", problems=problems, names=messaging.UPLOAD_NAMES,
                       breadcrumbs=[("Sent checks", "/trust/checks")])
    return state.templates.TemplateResponse(request, "trust_upload.html", ctx, status_code=status)


@router.post("/upload")
def upload(request: Request, actor: ActorDep, files: Annotated[list[UploadFile] | None, File()] = None,
           csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    messaging.require_trust(actor)
    check_csrf(request, csrf_token)
    try:
        count = messaging.upload(request, actor, files or [], load_template())
    except ValidationError as exc:
        return _upload_page(request, actor, exc.problems, status=422)
    return RedirectResponse(f"/trust/checks?queued={count}", status_code=303)
