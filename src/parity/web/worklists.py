"""The practice worklist as pages and the API see it: scoped, filtered, audited.

Shared by the worklist page, its CSV/Excel exports and ``GET /api/v1/practices/{code}/patients``,
so the access check and the audit entry cannot differ between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
from fastapi import Request

from parity.access import Actor, record
from parity.care.people import contact_details
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


def worklist_rows(request: Request, measure_id: str, as_of: date, page: pd.DataFrame) -> list[dict]:
    """One page of a worklist for the page: each row with when its missing checks fell due (``overdue_since``,
    ``never``), the last invitation and where the patient is in the DNA protocol today, and name and phone
    when the extract has them. Only for users already allowed to see these patients."""
    from parity.care.contacts import histories
    from parity.care.due import overdue_since
    from parity.care.protocol import STATE_WORDS, state_on
    from parity.care.worklist import LABELS
    from parity.web.deps import today

    state = get_state(request)
    measure = state.results.measure(measure_id)
    rows = page.to_dict(orient="records")
    people = [str(r["nhs_number"]) for r in rows]
    day = today(request)
    # When each patient's missing checks fell due reads their events before the window: one query over the
    # events of the page's patients, a scan of the table (160 ms a region). It changes only with the data,
    # so each patient's answer is kept per data version (ResultStore.derived) and a page asks only for
    # patients not seen since the load.
    known: dict[str, Any] = state.results.derived(("overdue_since", measure_id, as_of), dict)
    unseen = page[~page["nhs_number"].astype(str).isin(known.keys())]
    with state.db.lock:
        if len(unseen):
            found = overdue_since(state.db, measure, unseen, as_of)
            known.update({str(n): found.get(str(n)) for n in unseen["nhs_number"]})
        due = {n: known[n] for n in people if known.get(n) is not None}
        details = contact_details(state.db, people, state.results)
        logs: dict[str, list] = {}
        for practice in sorted({str(r["practice_code"]) for r in rows if r.get("practice_code")}):
            logs.update(histories(state.db, practice))
    for r in rows:
        nhs = str(r["nhs_number"])
        over = due.get(nhs)
        r["overdue_since"] = over.since if over else None
        r["never"] = ", ".join(LABELS.get(c, c) for c in over.never) if over else ""
        log = logs.get(nhs, [])
        invited = [c.occurred_on for c in log if c.kind == "invited" and c.occurred_on <= day]
        r["last_invited"] = max(invited) if invited else None
        r["invitations"] = len(invited)
        r["protocol"] = STATE_WORDS[state_on(log, day).state] if log else ""
        r.update(details.get(nhs, {"name": "", "phone": "", "preferred_contact": ""}))
    return rows
