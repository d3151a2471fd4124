"""The patient page: each check's timeline with values, who recorded it, what is due, the contact log, and
red-zone findings with their referrals."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from parity.access import Actor
from parity.care.people import contact_details
from parity.reports.timeline import PatientRecord
from parity.web import care, messaging, patient_view, views
from parity.web.deps import ActorDep, AsOfDep, base_context, get_state, today
from parity.web.patients import patient_record

router = APIRouter(tags=["patients"], include_in_schema=False)


@router.get("/patients/{nhs_number}", response_class=HTMLResponse)
def patient_page(request: Request, nhs_number: str, actor: ActorDep, as_of: AsOfDep,
                 measure: Annotated[str, Query(max_length=20)] = "phsmi") -> Response:
    rec = patient_record(request, actor, nhs_number, measure, as_of, "view_patient")
    return render_patient(request, actor, rec, measure, as_of, care.contacts_view(request, nhs_number))


def render_patient(request: Request, actor: Actor, rec: PatientRecord, measure: str, as_of: date,
                   contacts: care.ContactsView, status: int = 200, referrals: Any = None) -> Response:
    """patient.html for a record the actor has been allowed to see (``patient_record``); ``referrals`` is the
    "Findings and referrals" section (``parity.web.routes.followup.referrals_view``, built here if None)."""
    from parity.web.routes.followup import referrals_view

    state = get_state(request)
    if referrals is None:
        referrals = referrals_view(request, rec, measure, as_of)
    crumbs = []
    if rec.practice_code:
        crumbs = [("Worklist", f"/practices/{rec.practice_code}/worklist?measure={measure}&as_of={as_of}")]
    letters = messaging.letters_for_patient(request, actor, rec.nhs_number)
    with state.db.lock:
        person = contact_details(state.db, [rec.nhs_number], state.results).get(rec.nhs_number, {})
    ctx = base_context(request, actor, title="Patient", rec=rec, measure=measure, measures=views.MEASURES,
                       measure_obj=state.results.measure(measure), as_of=as_of, breadcrumbs=crumbs, letters=letters,
                       contacts=contacts, followup=referrals, today=today(request), person=person,
                       check_results=patient_view.results(rec), entry_value=patient_view.entry_value)
    return state.templates.TemplateResponse(request, "patient.html", ctx, status_code=status)
