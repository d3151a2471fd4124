"""One patient's record as pages and the API see it: scoped and audited in one place."""

from __future__ import annotations

import re
from datetime import date

from fastapi import Request

from parity.access import Actor, record
from parity.errors import NotFound, PermissionDenied
from parity.reports.lookup import registered_practice
from parity.reports.timeline import PatientRecord, patient_timeline
from parity.web import views
from parity.web.deps import actor_scope, get_state

NHS_NUMBER = re.compile(r"^\d{10}$")


def patient_record(request: Request, actor: Actor, nhs_number: str, measure_id: str, as_of: date,
                   action: str) -> PatientRecord:
    """The record of ``nhs_number`` if ``actor`` may see it; 403 (audited) if not.

    A patient outside the user's scope gets the same 403 whether or not they exist, so the
    response does not reveal who is registered elsewhere.
    """
    state = get_state(request)
    views.check_measure(measure_id)
    if not NHS_NUMBER.match(nhs_number):
        raise NotFound("an NHS number has 10 digits")
    resource = f"patient/{nhs_number}"
    scope = actor_scope(request, actor, as_of)
    practice = registered_practice(state.db, nhs_number, as_of)
    if not scope.can_view_patient(nhs_number, practice):
        record(state.db, actor, action, resource, "denied", "outside the user's organisation or caseload")
        raise PermissionDenied("you can only see patients of your own organisation or caseload")
    measure = state.results.measure(measure_id)
    with state.db.lock:
        try:
            rec = patient_timeline(state.db, measure, nhs_number, as_of, state.results.structure_for(as_of))
        except NotFound:
            record(state.db, actor, action, resource, "denied", "no such patient")
            raise
    record(state.db, actor, action, resource, "allowed", f"{measure_id}; as_of {as_of}")
    return rec
