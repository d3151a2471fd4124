"""Assessments (M10): every assessed area's latest scores, and one area's latest assessment (scores, evidence,
date), its history (with the trend of EDS totals) and a form to record a new one.

Assessments are about areas, not patients, so every signed-in user may read them; only programme, ICB and
admin users may record one (others get 403, audited as denied). Posts need the session's CSRF token; a refused
assessment re-shows the form with an NHS.UK error summary and status 422, and stores nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parity.access import AREA_EDITORS, Actor, may_edit_area, record
from parity.db import Database
from parity.errors import ConfigurationError, PermissionDenied
from parity.reports.assessments import history, latest_per_area, normalise_area, record_assessment
from parity.rules.assessments import MAX_EVIDENCE, Framework, get_framework, load_frameworks
from parity.web.deps import ActorDep, base_context, get_state, today
from parity.web.security import check_csrf

router = APIRouter(tags=["assessments"], include_in_schema=False)

#: Roles that may record an assessment (product.md M10; Parity choice: the commissioning side).
RECORDING_ROLES = AREA_EDITORS
LEVEL_WORDS = {"region": "Region", "icb": "ICB", "sub_icb": "Sub-ICB", "pcn": "PCN", "practice": "Practice",
               "trust": "Trust", "service": "Service"}
RAG_COLOURS = {"red": "red", "amber": "yellow", "green": "green"}
MAX_FORM_VALUE = MAX_EVIDENCE + 100


async def submitted_form(request: Request) -> dict[str, str]:
    """The posted form as plain strings (files ignored), each value capped in length."""
    form = await request.form()
    return {k: v[:MAX_FORM_VALUE] for k, v in form.items() if isinstance(v, str)}


FormDep = Annotated[dict[str, str], Depends(submitted_form)]


def area_path(framework: str, level: str, code: str) -> str:
    return f"/assessments/{framework}/{level}/{quote(code, safe='')}"


def may_record(actor: Actor, level: str | None = None, code: str | None = None, db: Database | None = None) -> bool:
    """The shared area rule (``parity.access.may_edit_area``): an ICB user records only for its own area."""
    return may_edit_area(actor.user, level, code, db)


def _colour(fw: Framework, score: str) -> str | None:
    if fw.scale_kind == "rag":
        return RAG_COLOURS.get(score)
    return {"0": "red", "1": "yellow", "2": "green", "3": "blue"}.get(score)


@router.get("/assessments", response_class=HTMLResponse)
def assessments_page(request: Request, actor: ActorDep) -> Response:
    state = get_state(request)
    sections = []
    with state.db.lock:
        for fw in load_frameworks().values():
            areas = latest_per_area(state.db, fw.id)
            sections.append({"framework": fw, "areas": [
                {"a": a, "href": area_path(fw.id, a.area_level, a.area_code),
                 "scores": [(i.item_id, i.score, i.label, _colour(fw, i.score)) for i in a.items],
                 "counts": a.counts()} for a in areas]})
    record(state.db, actor, "view_assessments", "assessments", "allowed")
    from parity.web.routes.programme import area_options

    ctx = base_context(request, actor, title="Assessments", sections=sections, levels=LEVEL_WORDS,
                       areas=area_options(request),
                       frameworks=list(load_frameworks().values()), can_record=may_record(actor), wide=True)
    return state.templates.TemplateResponse(request, "assessments.html", ctx)


@router.get("/assessments/{framework}.csv")
def assessments_csv(request: Request, framework: str, actor: ActorDep) -> Response:
    """A framework's table as CSV: the latest assessment of each area, one column per item."""
    from parity.reports.assessments import summary
    from parity.reports.export import to_csv_bytes

    fw = get_framework(framework)
    state = get_state(request)
    with state.db.lock:
        frame = summary(state.db, fw.id)
    record(state.db, actor, "export_assessments_csv", "assessments", "allowed", fw.id)
    return Response(to_csv_bytes(frame), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="assessments-{fw.id}.csv"'})


@router.get("/assessments/area")
def find_area(request: Request, actor: ActorDep,
              framework: Annotated[str, Query(max_length=20)] = "",
              level: Annotated[str, Query(max_length=20)] = "",
              code: Annotated[str, Query(max_length=200)] = "") -> Response:
    """The "go to an area" form on the list page: a redirect to the area's page."""
    fw = get_framework(framework)
    lv, cd = normalise_area(level, code)
    return RedirectResponse(area_path(fw.id, lv, cd), status_code=303)


def _area_page(request: Request, actor: Actor, fw: Framework, level: str, code: str,
               values: dict[str, str] | None = None, errors: list[dict[str, str]] | None = None,
               status: int = 200) -> Response:
    state = get_state(request)
    with state.db.lock:
        found = history(state.db, fw.id, level, code)
    rows: list[dict[str, Any]] = []
    previous = None
    for a in found:
        change = None if previous is None or a.total is None else a.total - previous
        rows.append({"a": a, "change": change, "counts": a.counts(),
                     "scores": {i.item_id: (i.score, i.label, _colour(fw, i.score)) for i in a.items}})
        previous = a.total
    current = found[-1] if found else None
    defaults = {"assessed_on": today(request).isoformat()}
    ctx = base_context(
        request, actor, title=f"{fw.name} – {LEVEL_WORDS[level]} {code}", fw=fw, level=level, code=code,
        level_word=LEVEL_WORDS[level], current=current, rows=list(reversed(rows)), totals=[r["a"].total for r in rows],
        colour=lambda s: _colour(fw, s), can_record=may_record(actor, level, code, state.db),
        values={**defaults, **(values or {})},
        errors=errors or [], inline={e["href"][1:]: e["text"] for e in errors or [] if e.get("href")},
        action=area_path(fw.id, level, code), max_evidence=MAX_EVIDENCE, today=today(request), wide=True,
        breadcrumbs=[("Assessments", "/assessments")])
    return state.templates.TemplateResponse(request, "assessment_area.html", ctx, status_code=status)


@router.get("/assessments/{framework}/{level}/{code}", response_class=HTMLResponse)
def area_page(request: Request, framework: str, level: str, code: str, actor: ActorDep) -> Response:
    fw = get_framework(framework)
    lv, cd = normalise_area(level, code)
    record(get_state(request).db, actor, "view_assessment", f"assessment/{fw.id}/{lv}/{cd}", "allowed")
    return _area_page(request, actor, fw, lv, cd)


@router.post("/assessments/{framework}/{level}/{code}")
def add_assessment(request: Request, framework: str, level: str, code: str, actor: ActorDep,
                   form: FormDep) -> Response:
    check_csrf(request, form.get("csrf_token"))
    state = get_state(request)
    fw = get_framework(framework)
    lv, cd = normalise_area(level, code)
    resource = f"assessment/{fw.id}/{lv}/{cd}"
    if not may_record(actor, lv, cd, state.db):
        record(state.db, actor, "record_assessment", resource, "denied", f"role {actor.role.value} may not record")
        raise PermissionDenied("only the programme team, administrators and the ICB itself can record "
                               "assessments for an area")
    values = {k: v for k, v in form.items() if k != "csrf_token"}
    scores = {i.id: values.get(f"score-{i.id}", "").strip() for i in fw.items}
    evidence = {i.id: values.get(f"evidence-{i.id}", "") for i in fw.items}
    errors: list[dict[str, str]] = []
    assessed_on: date | None = None
    try:
        assessed_on = date.fromisoformat(values.get("assessed_on", "").strip())
    except ValueError:
        errors.append({"text": "Enter the date of the assessment, for example 2026-03-31", "href": "#assessed_on"})
    if assessed_on is not None and assessed_on > today(request):
        errors.append({"text": "The date of the assessment cannot be after today", "href": "#assessed_on"})
    for item in fw.items:
        if not scores[item.id]:
            errors.append({"text": f"Choose a score for {item.id if fw.totals else item.name}",
                           "href": f"#score-{item.id}"})
            del scores[item.id]
    for item_id, reason in fw.problems(scores, evidence):
        if item_id is not None and item_id not in scores:
            continue  # already reported as "choose a score"
        href = f"#score-{item_id}" if item_id else "#scores"
        if reason.startswith("evidence"):
            href = f"#evidence-{item_id}"
        errors.append({"text": reason[:1].upper() + reason[1:], "href": href})
    if not errors and assessed_on is not None:
        try:
            with state.db.lock:
                aid = record_assessment(state.db, fw.id, lv, cd, scores, evidence, assessed_on, actor.username,
                                        today=today(request))
        except ConfigurationError as exc:
            errors.append({"text": str(exc)[:1].upper() + str(exc)[1:], "href": "#scores"})
    if errors:
        return _area_page(request, actor, fw, lv, cd, values, errors, status=422)
    record(state.db, actor, "record_assessment", resource, "allowed", f"assessment {aid}")
    return RedirectResponse(area_path(fw.id, lv, cd) + "#latest", status_code=303)
