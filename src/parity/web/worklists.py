"""The practice worklist as pages and the API see it: scoped, filtered, audited.

Shared by the worklist page, its CSV/Excel exports and ``GET /api/v1/practices/{code}/patients``,
so the access check and the audit entry cannot differ between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from fastapi import Request

from parity.access import Actor, record
from parity.errors import NotFound, PermissionDenied
from parity.reports.worklist import WorklistFilter, apply_filter, worklist_summary
from parity.web import views
from parity.web.deps import actor_scope, get_state


@dataclass
class PracticeWorklist:
    practice_code: str
    practice_name: str
    rows: pd.DataFrame         # filtered and sorted
    total: int                 # patients in the denominator the user may see, before filtering
    summary: dict


def practice_worklist(request: Request, actor: Actor, code: str, measure_id: str, as_of: date,
                      filters: WorklistFilter, action: str) -> PracticeWorklist:
    """The worklist of practice ``code`` that ``actor`` may see, after ``filters``.

    Refused (403, audited as denied) unless the actor's scope covers the practice. Every allowed
    call is audited as ``action`` with the number of patients returned (never who they are).
    """
    state = get_state(request)
    views.check_measure(measure_id)
    scope = actor_scope(request, actor, as_of)
    resource = f"practice/{code}"
    if not scope.can_view_practice(code):
        record(state.db, actor, action, resource, "denied", "outside the user's organisation")
        raise PermissionDenied("you can only see patients of your own organisation")
    try:
        practice = views.org_row(state.results, measure_id, as_of, "practice", code)
    except NotFound:
        record(state.db, actor, action, resource, "denied", "no such practice")
        raise
    full = scope.filter_patients(state.results.practice_worklist(measure_id, as_of, code))
    rows = apply_filter(full, filters)
    record(state.db, actor, action, resource, "allowed", f"{len(rows)} patients; {measure_id}; as_of {as_of}")
    return PracticeWorklist(code, practice["org_name"], rows, len(full), worklist_summary(full))


def caseload_worklist(request: Request, actor: Actor, measure_id: str, as_of: date,
                      filters: WorklistFilter) -> PracticeWorklist:
    """A trust user's caseload as one worklist across practices (audited as ``view_caseload``)."""
    state = get_state(request)
    views.check_measure(measure_id)
    scope = actor_scope(request, actor, as_of)
    if scope.caseload is None:
        record(state.db, actor, "view_caseload", "caseload", "denied", "not a trust user")
        raise PermissionDenied("only mental-health trust users have a caseload")
    full = state.results.worklist_of(scope.filter_patients(state.results.status(measure_id, as_of)), measure_id,
                                     as_of)
    rows = apply_filter(full, filters)
    record(state.db, actor, "view_caseload", f"caseload/{actor.org_code}", "allowed",
           f"{len(rows)} patients; {measure_id}; as_of {as_of}")
    return PracticeWorklist(actor.org_code or "", f"Caseload of {actor.org_code}", rows, len(full),
                            worklist_summary(full))
