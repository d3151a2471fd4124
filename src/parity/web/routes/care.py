"""Recall and outreach pages: priorities ranked by expected gain, monthly invitations, the contact log
and the patient passport. Thin: the work is in ``parity.web.care`` and ``parity.care``."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parity.care import recall
from parity.care.service import invitation_letters, invitation_sms, passport_document
from parity.care.worklist import BASE_CHANCE, DECLINED_FACTOR, DNA_FACTOR, OUTREACH_CHANCE, QUICK_EFFORT
from parity.errors import ConfigurationError
from parity.reports.export import to_csv_bytes
from parity.web import care, views
from parity.web.deps import ActorDep, AsOfDep, base_context, get_state, today
from parity.web.patients import patient_record
from parity.web.routes.patients import render_patient
from parity.web.security import check_csrf

router = APIRouter(tags=["care"], include_in_schema=False)
PAGE_SIZE = 100
MeasureQuery = Annotated[str, Query(max_length=20)]
ListQuery = Annotated[str, Query(alias="list", max_length=20)]
MonthQuery = Annotated[str | None, Query(max_length=7)]
CsrfField = Annotated[str, Form(max_length=200)]
WEIGHTS = {"base": BASE_CHANCE, "dna": DNA_FACTOR, "declined": DECLINED_FACTOR, "outreach": OUTREACH_CHANCE,
           "quick": QUICK_EFFORT}
RESULTS = {"schedule": "The invitation schedule has been changed."}


# -- priorities -------------------------------------------------------------------------------------

@router.get("/practices/{code}/priorities", response_class=HTMLResponse)
def priorities_page(request: Request, code: str, actor: ActorDep, as_of: AsOfDep, kind: ListQuery = "ranked",
                    measure: MeasureQuery = "phsmi", page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    state = get_state(request)
    p = care.priorities(request, actor, code, measure, as_of, kind, "view_priorities")
    start = (page - 1) * PAGE_SIZE
    query = urlencode({"list": kind, "measure": measure, "as_of": as_of.isoformat()})
    ctx = base_context(
        request, actor, title=f"Priorities – {p.practice_name}", code=code, practice_name=p.practice_name,
        kind=kind, lists=care.LISTS, rows=p.rows.iloc[start:start + PAGE_SIZE].to_dict(orient="records"),
        shown=len(p.rows), total=p.total, measure=measure, measure_obj=state.results.measure(measure), as_of=as_of,
        today=today(request), page=page, pages=max(1, -(-len(p.rows) // PAGE_SIZE)), query=query,
        colours=care.STATE_COLOURS, weights=WEIGHTS, wide=True,
        breadcrumbs=[("Worklist", f"/practices/{code}/worklist?measure={measure}&as_of={as_of}")],
    )
    return state.templates.TemplateResponse(request, "care_priorities.html", ctx)


@router.get("/practices/{code}/priorities.csv")
def priorities_csv(request: Request, code: str, actor: ActorDep, as_of: AsOfDep, kind: ListQuery = "ranked",
                   measure: MeasureQuery = "phsmi") -> Response:
    p = care.priorities(request, actor, code, measure, as_of, kind, "export_priorities_csv")
    body = to_csv_bytes(care.priorities_export(p))
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="priorities-{kind}-{code}-{as_of}.csv"'})


# -- recall -----------------------------------------------------------------------------------------

def _recall_page(request: Request, actor: Any, code: str, month: str, measure: str, as_of: Any,
                 errors: list[dict[str, str]] | None = None, message: str | None = None,
                 status: int = 200) -> Response:
    state = get_state(request)
    r = care.recall_view(request, actor, code, month, measure, as_of, "view_recall")
    ctx = base_context(
        request, actor, title=f"Recall – {r.wl.practice_name}", code=code, practice_name=r.wl.practice_name,
        month=month, mode=r.mode, modes=recall.MODE_WORDS, rows=r.rows, measure=measure, as_of=as_of,
        can_change=actor.role == "practice" and actor.org_code == code, errors=errors or [], message=message,
        channels=[(c, care.CHANNEL_WORDS[c]) for c in care.INVITE_CHANNELS], wide=True,
        month_query=urlencode({"month": month, "measure": measure, "as_of": as_of.isoformat()}),
        breadcrumbs=[("Worklist", f"/practices/{code}/worklist")],
    )
    return state.templates.TemplateResponse(request, "care_recall.html", ctx, status_code=status)


@router.get("/practices/{code}/recall", response_class=HTMLResponse)
def recall_page(request: Request, code: str, actor: ActorDep, as_of: AsOfDep, month: MonthQuery = None,
                measure: MeasureQuery = "phsmi", result: Annotated[str | None, Query(max_length=20)] = None,
                invited: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
                channel: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    month = care.check_month(month, today(request))
    message = RESULTS.get(result or "")
    if invited is not None:
        how = {"letter": " by letter", "sms": " by text message"}.get(channel or "", "")
        message = f"Recorded {invited} invitation{'' if invited == 1 else 's'}{how}."
    return _recall_page(request, actor, code, month, measure, as_of, message=message)


@router.post("/practices/{code}/recall/schedule")
def recall_schedule(request: Request, code: str, actor: ActorDep, csrf_token: CsrfField = "",
                    mode: Annotated[str, Form(max_length=30)] = "",
                    month: Annotated[str, Form(max_length=7)] = "") -> Response:
    check_csrf(request, csrf_token)
    month = care.check_month(month, today(request))
    care.set_schedule(request, actor, code, mode)
    return RedirectResponse(f"/practices/{code}/recall?month={month}&result=schedule", status_code=303)


@router.post("/practices/{code}/recall/invited")
def recall_invited(request: Request, code: str, actor: ActorDep, as_of: AsOfDep, csrf_token: CsrfField = "",
                   channel: Annotated[str, Form(max_length=20)] = "",
                   month: Annotated[str, Form(max_length=7)] = "", measure: MeasureQuery = "phsmi") -> Response:
    check_csrf(request, csrf_token)
    month = care.check_month(month, today(request))
    try:
        n = care.mark_invited(request, actor, code, month, channel, measure, as_of)
    except ConfigurationError as exc:  # the protocol's reason (nothing was stored)
        return _recall_page(request, actor, code, month, measure, as_of, status=422,
                            errors=[{"text": care.sentence(str(exc)), "href": "#invite"}])
    query = urlencode({"month": month, "invited": n, "channel": channel, "measure": measure,
                       "as_of": as_of.isoformat()})
    return RedirectResponse(f"/practices/{code}/recall?{query}#invite", status_code=303)


def _batch(request: Request, actor: Any, code: str, month: str | None, measure: str, as_of: Any,
           action: str) -> Any:
    month = care.check_month(month, today(request))
    r = care.recall_view(request, actor, code, month, measure, as_of, action)
    if not r.batch.due:
        raise ConfigurationError("no invitations are due that month")
    return r.batch


@router.get("/practices/{code}/recall/letters.pdf")
def recall_letters(request: Request, code: str, actor: ActorDep, as_of: AsOfDep, month: MonthQuery = None,
                   measure: MeasureQuery = "phsmi") -> Response:
    batch = _batch(request, actor, code, month, measure, as_of, "export_invitation_letters")
    body = invitation_letters(batch, today(request))
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="invitations-{code}-{batch.month}.pdf"'})


@router.get("/practices/{code}/recall/sms.csv")
def recall_sms(request: Request, code: str, actor: ActorDep, as_of: AsOfDep, month: MonthQuery = None,
               measure: MeasureQuery = "phsmi") -> Response:
    batch = _batch(request, actor, code, month, measure, as_of, "export_invitation_sms")
    body = invitation_sms(batch).encode("utf-8")
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="invitations-sms-{code}-{batch.month}.csv"'})


# -- the contact log and the passport ---------------------------------------------------------------

async def contact_values(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {"csrf_token": str(form.get("csrf_token") or "")[:200], **care.contact_form(form)}


@router.post("/patients/{nhs_number}/contacts")
def add_contact(request: Request, nhs_number: str, actor: ActorDep, as_of: AsOfDep,
                values: Annotated[dict[str, Any], Depends(contact_values)],
                measure: MeasureQuery = "phsmi") -> Response:
    check_csrf(request, values.pop("csrf_token"))
    rec = patient_record(request, actor, nhs_number, measure, as_of, "view_patient")
    errors = care.add_contact(request, actor, nhs_number, rec.practice_code, values)
    if errors:
        return render_patient(request, actor, rec, measure, as_of,
                              care.contacts_view(request, nhs_number, values, errors), status=422)
    query = urlencode({"measure": measure, "as_of": as_of.isoformat()})
    return RedirectResponse(f"/patients/{nhs_number}?{query}#contacts", status_code=303)


def _passport(request: Request, actor: Any, nhs_number: str, measure: str, as_of: Any, kind: str) -> bytes:
    state = get_state(request)
    views.check_measure(measure)
    patient_record(request, actor, nhs_number, measure, as_of, f"view_passport_{kind}")
    return passport_document(state.db, nhs_number, as_of, kind, measure, results=state.results,
                             made_on=today(request))


@router.get("/patients/{nhs_number}/passport.html", response_class=HTMLResponse)
def passport_html(request: Request, nhs_number: str, actor: ActorDep, as_of: AsOfDep,
                  measure: MeasureQuery = "phsmi") -> Response:
    body = _passport(request, actor, nhs_number, measure, as_of, "html")
    return Response(body, media_type="text/html; charset=utf-8")


@router.get("/patients/{nhs_number}/passport.pdf")
def passport_pdf(request: Request, nhs_number: str, actor: ActorDep, as_of: AsOfDep,
                 measure: MeasureQuery = "phsmi") -> Response:
    body = _passport(request, actor, nhs_number, measure, as_of, "pdf")
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": 'inline; filename="passport.pdf"'})
