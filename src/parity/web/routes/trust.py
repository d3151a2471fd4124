"""Trust pages: record a physical health check for a patient's GP, bulk upload, and what was sent.

Every check goes through ``parity.interop``: validated against the check template, stored with its
letter and FHIR Bundle, and queued in the MESH outbox. A trust sees only its own checks.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parity.access import Actor, record
from parity.dates import latest_quarter_end
from parity.errors import ValidationError
from parity.interop import checks as trust_checks
from parity.interop.mesh import outbox, replies
from parity.interop.record import record_from_form
from parity.rules.template import load_template
from parity.web import messaging, trust_form
from parity.web.deps import ActorDep, actor_scope, base_context, get_state, today
from parity.web.security import check_csrf

router = APIRouter(prefix="/trust", tags=["trust"], include_in_schema=False)
MAX_FORM_VALUE = 5000


async def submitted_form(request: Request) -> dict[str, str]:
    """The posted form as plain strings (files ignored), each value capped in length."""
    form = await request.form()
    return {k: v[:MAX_FORM_VALUE] for k, v in form.items() if isinstance(v, str)}


FormDep = Annotated[dict[str, str], Depends(submitted_form)]


def _form_page(request: Request, actor: Actor, values: dict[str, str], errors: list[dict[str, str]] | None = None,
               inline: dict[str, str] | None = None, status: int = 200,
               patient: trust_form.FoundPatient | None = None, posted: bool = False) -> Response:
    """The form: first the patient lookup (NHS number and date of birth), then, once a record matches, the check
    for that patient (their details from the record, not retyped)."""
    state = get_state(request)
    template = load_template()
    ctx = base_context(request, actor, title="Record a physical health check", template=template,
                       core=[s for s in template.sections if s.core],
                       extended=[s for s in template.sections if not s.core],
                       values=values, errors=errors or [], inline=inline or {}, today=today(request),
                       patient=patient, posted=posted, breadcrumbs=[("Caseload", "/caseload")])
    return state.templates.TemplateResponse(request, "trust_check_form.html", ctx, status_code=status)


def _lookup(request: Request, actor: Actor, nhs_number: str, date_of_birth: str
            ) -> tuple[trust_form.FoundPatient | None, dict[str, str]]:
    """The patient for the form: from the caseload by NHS number alone (the trust already sees them), otherwise
    NHS number and date of birth must both match the record. Audited either way (never with the values)."""
    state = get_state(request)
    day = today(request)
    digits = trust_form.clean_nhs_number(nhs_number)
    scope = actor_scope(request, actor, latest_quarter_end(day))
    structure = state.results.structure_for(day)
    with state.db.lock:
        if not date_of_birth and scope.caseload is not None and digits in scope.caseload:
            found = trust_form.find_patient(state.db, digits, day, structure)
            problems = {} if found and found.practice_code else {
                "nhs_number": "This patient is not registered with a GP practice today"}
        else:
            found, problems = trust_form.match(state.db, nhs_number, date_of_birth, day, structure)
    if problems:
        found = None
    record(state.db, actor, "find_patient", f"patient/{digits}" if found else "patient", "allowed" if found else
           "denied", "matched the record" if found else "no match: " + ", ".join(sorted(problems)))
    return found, problems


@router.get("/checks/new", response_class=HTMLResponse)
def new_check(request: Request, actor: ActorDep,
              nhs_number: Annotated[str, Query(max_length=20)] = "",
              date_of_birth: Annotated[str, Query(max_length=10)] = "") -> Response:
    """Start a check: with ``nhs_number`` (from the caseload) or ``nhs_number`` and ``date_of_birth`` (the lookup)
    the form opens for that patient; otherwise it asks who the patient is."""
    messaging.require_trust(actor)
    values = {"performed_on": today(request).isoformat(), "nhs_number": nhs_number, "date_of_birth": date_of_birth}
    if not nhs_number and not date_of_birth:
        return _form_page(request, actor, values)
    found, problems = _lookup(request, actor, nhs_number, date_of_birth)
    if found is None:
        errors = [{"text": text, "href": f"#{key}"} for key, text in problems.items()]
        return _form_page(request, actor, values, errors, problems, status=422)
    return _form_page(request, actor, {**values, **found.form_values()}, patient=found)


def _check_values(request: Request, actor: Actor, form: dict[str, str]
                  ) -> tuple[dict[str, str], trust_form.FoundPatient | None, dict[str, str]]:
    """The posted check with its patient fields taken from the matched record (names typed only when the record
    has none)."""
    values = {k: v for k, v in form.items() if k not in ("csrf_token", "step")}
    found, problems = _lookup(request, actor, values.get("nhs_number", ""), values.get("date_of_birth", ""))
    if found is not None:
        record_values = found.form_values()
        for key in ("given_name", "family_name"):
            if not record_values[key]:
                record_values[key] = values.get(key, "")
        values.update(record_values)
    return values, found, problems


@router.post("/checks")
def submit_check(request: Request, actor: ActorDep, form: FormDep) -> Response:
    """``step=review`` (the form's button): check the answers and show them; ``step=send``: store and queue for
    MESH; ``step=change``: back to the form with the answers kept."""
    trust = messaging.require_trust(actor)
    check_csrf(request, form.get("csrf_token"))
    state = get_state(request)
    template = load_template()
    step = form.get("step", "send")
    values, found, problems = _check_values(request, actor, form)
    if found is None:
        # The patient did not match; say so first, and what else is wrong, so the form is fixed in one go.
        errors = [{"text": text, "href": f"#{key}"} for key, text in problems.items()]
        inline = dict(problems)
        try:
            record_from_form(template, values, trust_code=trust, created_by=actor.username, today=today(request))
        except ValidationError as exc:
            more, more_inline = messaging.form_errors(template, exc.problems)
            errors += [e for e in more if e["href"].lstrip("#") not in problems]
            inline = {**more_inline, **inline}
        return _form_page(request, actor, values, errors, inline, status=422, posted=True)
    if step == "change":
        return _form_page(request, actor, values, patient=found)
    try:
        rec = record_from_form(template, values, trust_code=trust, created_by=actor.username, today=today(request))
    except ValidationError as exc:
        errors, inline = messaging.form_errors(template, exc.problems)
        return _form_page(request, actor, values, errors, inline, status=422, patient=found)
    if step == "review":
        ctx = base_context(request, actor, title="Check your answers before sending", rec=rec, patient=found,
                           rows=rec.summary_rows(template), values=values,
                           breadcrumbs=[("Caseload", "/caseload")])
        return state.templates.TemplateResponse(request, "trust_check_review.html", ctx)
    with state.db.lock:
        trust_checks.submit_check(state.db, rec, template, source="form")
    record(state.db, actor, "record_check", f"patient/{rec.nhs_number}", "allowed",
           f"check {rec.check_id} v{rec.version} for practice {rec.practice_code}")
    return RedirectResponse(f"/trust/checks/{rec.check_id}/v{rec.version}?sent=1", status_code=303)


@router.get("/checks", response_class=HTMLResponse)
def sent_checks(request: Request, actor: ActorDep, queued: int | None = None) -> Response:
    trust = messaging.require_trust(actor)
    state = get_state(request)
    rows = messaging.sent_checks(request, trust)
    record(state.db, actor, "view_sent_checks", f"trust/{trust}", "allowed", f"{len(rows)} checks")
    ctx = base_context(request, actor, title="Sent checks", rows=rows, tags=messaging.STATE_TAGS,
                       ack_tags=messaging.ACK_TAGS, routes=messaging.practice_routes(request),
                       route_labels=trust_checks.ROUTE_LABELS, queued=queued, trust=trust, wide=True)
    return state.templates.TemplateResponse(request, "trust_checks.html", ctx)


@router.get("/checks/{check_id}/v{version}", response_class=HTMLResponse)
def check_page(request: Request, actor: ActorDep, check_id: str, version: int, sent: bool = False) -> Response:
    rec = messaging.own_check(request, actor, check_id, version, "view_check")
    state = get_state(request)
    template = load_template()
    local_id = outbox.local_id_for(check_id, version)
    with state.db.lock:
        entries = outbox.entries(state.db, local_id=local_id)
        history = outbox.history(state.db, local_id)
        acks = replies.acks(state.db, [local_id])
    record(state.db, actor, "view_check", f"patient/{rec.nhs_number}", "allowed", f"check {check_id} v{version}")
    ctx = base_context(request, actor, title="Check sent to the GP practice", rec=rec,
                       rows=rec.summary_rows(template), entry=entries[0] if entries else None, history=history,
                       tags=messaging.STATE_TAGS, acks=acks, ack_tags=messaging.ACK_TAGS, sent=sent,
                       breadcrumbs=[("Sent checks", "/trust/checks")])
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


@router.post("/routes")
def set_route(request: Request, actor: ActorDep, practice_code: Annotated[str, Form(max_length=20)] = "",
              route: Annotated[str, Form(max_length=20)] = "",
              csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Mark a practice as on Parity (coded results) or not (letter by GP Connect Send Document)."""
    check_csrf(request, csrf_token)
    try:
        messaging.set_practice_route(request, actor, practice_code, route)
    except ValidationError:
        return RedirectResponse("/trust/checks?route=invalid", status_code=303)
    return RedirectResponse("/trust/checks", status_code=303)
