"""The patient page: each check's timeline with values, who recorded it, and what is due."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from parity.web import messaging, views
from parity.web.deps import ActorDep, AsOfDep, base_context, get_state
from parity.web.patients import patient_record

router = APIRouter(tags=["patients"], include_in_schema=False)


@router.get("/patients/{nhs_number}", response_class=HTMLResponse)
def patient_page(request: Request, nhs_number: str, actor: ActorDep, as_of: AsOfDep,
                 measure: Annotated[str, Query(max_length=20)] = "phsmi") -> Response:
    state = get_state(request)
    rec = patient_record(request, actor, nhs_number, measure, as_of, "view_patient")
    crumbs = []
    if rec.practice_code:
        crumbs = [("Worklist", f"/practices/{rec.practice_code}/worklist?measure={measure}&as_of={as_of}")]
    letters = messaging.letters_for_patient(request, actor, nhs_number)
    ctx = base_context(request, actor, title="Patient", rec=rec, measure=measure, measures=views.MEASURES,
                       measure_obj=state.results.measure(measure), as_of=as_of, breadcrumbs=crumbs, letters=letters)
    return state.templates.TemplateResponse(request, "patient.html", ctx)
