"""The practice worklist: who is missing which check, near-misses, overdue and due soon, declined.

Filters are query parameters, so a filtered view can be bookmarked and exported as shown.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from parity.access import Actor
from parity.care.people import contact_details
from parity.reports.export import to_csv_bytes, to_xlsx_bytes, worklist_export_frame
from parity.reports.worklist import WorklistFilter
from parity.web import views
from parity.web.deps import ActorDep, AsOfDep, base_context, get_state, today
from parity.web.worklists import PracticeWorklist, caseload_worklist, practice_worklist, worklist_rows

router = APIRouter(tags=["practices"], include_in_schema=False)
PAGE_SIZE = 100


def worklist_filter(
    category: Annotated[str | None, Query(max_length=20)] = None,
    due_status: Annotated[str | None, Query(max_length=20)] = None,
    missing: Annotated[str | None, Query(max_length=40)] = None,
    declined: bool = False,
    search: Annotated[str | None, Query(max_length=20)] = None,
    sort: Annotated[str, Query(max_length=30)] = "priority",
    desc: bool = False,
) -> WorklistFilter:
    """Query parameters → ``WorklistFilter`` (blank form fields mean "any")."""
    return WorklistFilter(category=category or None, due_status=due_status or None, missing_check=missing or None,
                          declined_only=declined, search=search or None, sort=sort or "priority", descending=desc)


FilterDep = Annotated[WorklistFilter, Depends(worklist_filter)]
MeasureQuery = Annotated[str, Query(max_length=20)]


@router.get("/practices/{code}/worklist", response_class=HTMLResponse)
def worklist_page(request: Request, code: str, actor: ActorDep, as_of: AsOfDep, filters: FilterDep,
                  measure: MeasureQuery = "phsmi", page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    state = get_state(request)
    wl = practice_worklist(request, actor, code, measure, as_of, filters, "view_worklist")
    trail = views.ancestors(state.results, measure, as_of, "practice", code)
    crumbs = [(r["org_name"], f"/orgs/{r['level']}/{r['org_code']}") for r in trail]
    crumbs.append((wl.practice_name, f"/orgs/practice/{code}"))
    return _render(request, actor, wl, measure, as_of, filters, page, title=f"Worklist – {wl.practice_name}",
                   breadcrumbs=crumbs)


@router.get("/caseload", response_class=HTMLResponse)
def caseload_page(request: Request, actor: ActorDep, as_of: AsOfDep, filters: FilterDep,
                  measure: MeasureQuery = "phsmi", page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    """A trust user's caseload: the worklist of every patient the trust recorded an event for in the
    last 24 months, wherever they are registered."""
    wl = caseload_worklist(request, actor, measure, as_of, filters)
    names = {code: row["org_name"] for code, row in
             views.aggregate_index(get_state(request).results, measure, as_of).rows.get("practice", {}).items()}
    return _render(request, actor, wl, measure, as_of, filters, page, title=wl.practice_name, breadcrumbs=[],
                   caseload=True, practice_names=names)


def _render(request: Request, actor: Actor, wl: PracticeWorklist, measure: str, as_of: date,
            filters: WorklistFilter, page: int, **extra: object) -> Response:
    """One page of a worklist (practice or caseload) in worklist.html."""
    state = get_state(request)
    start = (page - 1) * PAGE_SIZE
    params = dict(request.query_params)
    params.pop("page", None)
    rows = worklist_rows(request, measure, as_of, wl.rows.iloc[start:start + PAGE_SIZE])
    ctx = base_context(
        request, actor, code=wl.practice_code, practice_name=wl.practice_name, today=today(request),
        rows=rows, shown=len(wl.rows), total=wl.total, contacts=any(r["name"] or r["phone"] for r in rows),
        summary=wl.summary, filters=filters, measure=measure, measures=views.MEASURES,
        measure_obj=state.results.measure(measure), as_of=as_of, page=page,
        pages=max(1, -(-len(wl.rows) // PAGE_SIZE)), query=urlencode(params), page_size=PAGE_SIZE, wide=True,
        **extra,
    )
    return state.templates.TemplateResponse(request, "worklist.html", ctx)


def _export_frame(request: Request, wl: PracticeWorklist, measure: str, contacts: bool):  # noqa: ANN202
    """The worklist as exported; with ``contacts`` (asked for explicitly) name, phone and preferred contact
    follow the NHS number. Patient-level users only reach this (``practice_worklist`` checks the scope)."""
    state = get_state(request)
    frame = worklist_export_frame(wl.rows, state.results.measure(measure))
    if contacts:
        with state.db.lock:
            details = contact_details(state.db, list(frame["NHS number"]), state.results)
        for i, (key, heading) in enumerate((("name", "Name"), ("phone", "Phone"),
                                            ("preferred_contact", "Preferred contact")), start=1):
            frame.insert(i, heading, [details.get(n, {}).get(key, "") for n in frame["NHS number"]])
    return frame


ContactsQuery = Annotated[bool, Query(description="Add name, phone and preferred contact (direct care only)")]


@router.get("/practices/{code}/worklist.csv")
def worklist_csv(request: Request, code: str, actor: ActorDep, as_of: AsOfDep, filters: FilterDep,
                 measure: MeasureQuery = "phsmi", contacts: ContactsQuery = False) -> Response:
    action = "export_worklist_csv_contacts" if contacts else "export_worklist_csv"
    wl = practice_worklist(request, actor, code, measure, as_of, filters, action)
    body = to_csv_bytes(_export_frame(request, wl, measure, contacts))
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="worklist-{code}-{as_of}.csv"'})


@router.get("/practices/{code}/worklist.xlsx")
def worklist_xlsx(request: Request, code: str, actor: ActorDep, as_of: AsOfDep, filters: FilterDep,
                  measure: MeasureQuery = "phsmi", contacts: ContactsQuery = False) -> Response:
    action = "export_worklist_xlsx_contacts" if contacts else "export_worklist_xlsx"
    wl = practice_worklist(request, actor, code, measure, as_of, filters, action)
    frame = _export_frame(request, wl, measure, contacts)
    body = to_xlsx_bytes(frame, sheet="Worklist", title=f"{wl.practice_name} ({code}) – worklist as at {as_of}")
    return Response(body, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f'attachment; filename="worklist-{code}-{as_of}.xlsx"'})
