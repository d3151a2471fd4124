"""Follow-up of red-zone findings (M6): the practice's follow-up list, its CSV, and referrals recorded from
the patient page ("Findings and referrals") or with one click ("Offer") from the list.

Findings are as at the reporting date (``parity.care.service.followup_findings``: "followed up" and
"overdue" are the red-zone measure's); the referral column shows the latest state recorded *now*, so a
referral offered this morning shows on the list this afternoon even when the reporting date is a past
quarter end. Access is the worklist's (``practice_worklist``) and the patient page's (``patient_record``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parity.access import Actor, record
from parity.care.referrals import FOLLOW_UP_MONTHS, TRANSITIONS, Referral, record_referral, referrals
from parity.care.service import followup_findings
from parity.errors import ConfigurationError
from parity.reports.export import to_csv_bytes
from parity.reports.timeline import PatientRecord
from parity.reports.worklist import WorklistFilter
from parity.rules.interventions import REFERRAL_STATES, load_interventions
from parity.web import care
from parity.web.deps import ActorDep, AsOfDep, actor_scope, base_context, get_state
from parity.web.patients import patient_record
from parity.web.security import check_csrf
from parity.web.worklists import practice_worklist

router = APIRouter(tags=["followup"], include_in_schema=False)

SHOW = {"overdue": "Overdue", "open": "Not followed up", "all": "All findings"}
GROUPS = {"person": "By person", "intervention": "By intervention"}
PEOPLE_PAGE = 50
STATE_WORDS = {"none": "None", "offered": "Offered", "accepted": "Accepted", "declined": "Declined",
               "completed": "Completed"}
STATE_COLOURS = {"none": "grey", "offered": "blue", "accepted": "green", "declined": "orange",
                 "completed": "green"}
CSV_COLUMNS = {"nhs_number": "NHS number", "finding_label": "Finding", "value_text": "Value",
               "finding_date": "Date", "intervention_label": "Intervention", "state": "Referral",
               "followed_up_words": "Followed up within 3 months", "overdue_words": "Overdue"}
NEXT_PATH = re.compile(r"^/practices/[A-Za-z0-9]+/followup(\?[A-Za-z0-9=&%._-]*)?$")
ShowQuery = Annotated[str, Query(max_length=10)]
MeasureQuery = Annotated[str, Query(max_length=20)]


# -- shared: findings with the referral state recorded now -------------------------------------------

def _latest_referrals(refs: list[Referral]) -> dict[tuple[str, str], list[Referral]]:
    by_key: dict[tuple[str, str], list[Referral]] = {}
    for r in refs:  # newest first (``referrals``)
        by_key.setdefault((r.nhs_number, r.intervention_id), []).append(r)
    return by_key


def _with_current_state(found: pd.DataFrame, refs: list[Referral]) -> pd.DataFrame:
    """``found`` plus ``state`` (the newest referral opened on or after the finding date, as recorded now;
    else the coded state as at the reporting date; else "none") and yes/no words."""
    by_key = _latest_referrals(refs)
    states = []
    for nhs, iid, day, coded in found[["nhs_number", "intervention_id", "finding_date",
                                       "referral_state"]].itertuples(index=False):
        newer = [r for r in by_key.get((nhs, iid), []) if r.opened_at.date() >= day]
        states.append(newer[0].state if newer else (coded or "none"))
    out = found.copy()
    out["state"] = states
    out["followed_up_words"] = ["yes" if f else "no" for f in out["followed_up"]]
    out["overdue_words"] = ["yes" if f else "no" for f in out["overdue"]]
    return out


# -- the practice follow-up list ----------------------------------------------------------------------

@dataclass
class FollowupList:
    code: str
    practice_name: str
    rows: pd.DataFrame
    counts: dict[str, int]


def followup_list(request: Request, actor: Actor, code: str, as_of: date, show: str, action: str) -> FollowupList:
    """The red-zone findings of practice ``code`` that ``actor`` may see (access and audit as the worklist)."""
    if show not in SHOW:
        raise ConfigurationError(f"show must be one of {', '.join(SHOW)}")
    state = get_state(request)
    wl = practice_worklist(request, actor, code, "phsmi", as_of, WorklistFilter(), action)
    found = followup_findings(state.db, as_of, practice_codes=[code], results=state.results)
    found = actor_scope(request, actor, as_of).filter_patients(found)
    with state.db.lock:
        refs = referrals(state.db, practice_codes=[code])
    found = _with_current_state(found, refs)
    counts = {"overdue": int(found["overdue"].sum()), "open": int((~found["followed_up"].astype(bool)).sum()),
              "all": len(found)}
    if show == "overdue":
        found = found[found["overdue"].astype(bool)]
    elif show == "open":
        found = found[~found["followed_up"].astype(bool)]
    found = found.assign(_o=~found["overdue"].astype(bool), _f=found["followed_up"].astype(bool))
    found = found.sort_values(["_o", "_f", "finding_date", "nhs_number"]).drop(columns=["_o", "_f"])
    return FollowupList(code, wl.practice_name, found.reset_index(drop=True), counts)


def by_person(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The findings grouped by person, in the list's order (a person's place is their first finding's):
    ``[{"nhs_number", "overdue", "findings": [row, ...]}]``."""
    people: dict[str, dict[str, Any]] = {}
    for r in rows.to_dict(orient="records"):
        person = people.setdefault(r["nhs_number"], {"nhs_number": r["nhs_number"], "overdue": 0, "findings": []})
        person["findings"].append(r)
        person["overdue"] += int(bool(r["overdue"]))
    return list(people.values())


def by_intervention(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per intervention: people, findings, overdue and not followed up; most people first."""
    if rows.empty:
        return []
    g = rows.assign(open=~rows["followed_up"].astype(bool), late=rows["overdue"].astype(bool))
    out = g.groupby(["intervention_id", "intervention_label"], sort=False).agg(
        people=("nhs_number", "nunique"), findings=("nhs_number", "size"), overdue=("late", "sum"),
        open=("open", "sum")).reset_index()
    out = out.sort_values(["people", "intervention_label"], ascending=[False, True])
    return [{k: (int(v) if k in ("people", "findings", "overdue", "open") else v) for k, v in r.items()}
            for r in out.to_dict(orient="records")]


@router.get("/practices/{code}/followup", response_class=HTMLResponse)
def followup_page(request: Request, code: str, actor: ActorDep, as_of: AsOfDep,
                  show: ShowQuery = "overdue", group: Annotated[str, Query(max_length=15)] = "person",
                  intervention: Annotated[str | None, Query(max_length=40)] = None,
                  page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    """Findings grouped by person (a row per person, their findings inside it) or by intervention (how many
    people each intervention is for, each a link to its people); ``PEOPLE_PAGE`` people a page."""
    if group not in GROUPS:
        raise ConfigurationError(f"group must be one of {', '.join(GROUPS)}")
    state = get_state(request)
    f = followup_list(request, actor, code, as_of, show, "view_followup")
    interventions = by_intervention(f.rows)
    names = {i["intervention_id"]: i["intervention_label"] for i in interventions}
    rows = f.rows
    if intervention:
        rows = rows[rows["intervention_id"] == intervention]
    people = by_person(rows)
    pages = max(1, -(-len(people) // PEOPLE_PAGE))
    page = min(page, pages)
    params = {"show": show, "as_of": as_of.isoformat()}
    if group != "person":
        params["group"] = group
    if intervention:
        params["intervention"] = intervention
    query = urlencode(params)
    here = f"/practices/{code}/followup?{query}" + (f"&page={page}" if page > 1 else "")
    ctx = base_context(
        request, actor, title=f"Follow-up – {f.practice_name}", code=code, practice_name=f.practice_name,
        show=show, shows=SHOW, counts=f.counts, group=group, groups=GROUPS, interventions=interventions,
        intervention=intervention, intervention_name=names.get(intervention or "", intervention),
        people=people[(page - 1) * PEOPLE_PAGE:page * PEOPLE_PAGE], n_people=len(people), n_findings=len(rows),
        page=page, pages=pages, as_of=as_of, query=query,
        csv_query=urlencode({"show": show, "as_of": as_of.isoformat()}),
        here=here, words=STATE_WORDS, colours=STATE_COLOURS,
        months=FOLLOW_UP_MONTHS, wide=True, breadcrumbs=[("Worklist", f"/practices/{code}/worklist?as_of={as_of}")],
    )
    return state.templates.TemplateResponse(request, "followup.html", ctx)


@router.get("/practices/{code}/followup.csv")
def followup_csv(request: Request, code: str, actor: ActorDep, as_of: AsOfDep, show: ShowQuery = "overdue") -> Response:
    f = followup_list(request, actor, code, as_of, show, "export_followup_csv")
    out = f.rows.reindex(columns=list(CSV_COLUMNS)).rename(columns=CSV_COLUMNS)
    out["NHS number"] = out["NHS number"].astype(str)
    out["Referral"] = out["Referral"].map(lambda s: STATE_WORDS.get(s, s))
    return Response(to_csv_bytes(out), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="followup-{show}-{code}-{as_of}.csv"'})


# -- the patient page section -------------------------------------------------------------------------

@dataclass
class ReferralsView:
    """What ``_referrals.html`` shows: findings, referrals (newest first, with history) and the form."""

    findings: list[dict[str, Any]]
    referrals: list[dict[str, Any]]
    open_referrals: list[tuple[str, str]]            # (referral_id, words) that can still move on
    interventions: list[tuple[str, str]]
    states: list[tuple[str, str]]
    values: dict[str, str]
    errors: list[dict[str, str]] = field(default_factory=list)
    words: dict[str, str] = field(default_factory=lambda: dict(STATE_WORDS))
    colours: dict[str, str] = field(default_factory=lambda: dict(STATE_COLOURS))


def referrals_view(request: Request, rec: PatientRecord, measure: str, as_of: date,
                   values: dict[str, str] | None = None,
                   errors: list[dict[str, str]] | None = None) -> ReferralsView:
    """The section for a patient the caller has already been allowed to see (``patient_record``)."""
    state = get_state(request)
    catalogue = load_interventions().interventions
    found = followup_findings(state.db, as_of, nhs_numbers=[rec.nhs_number], measure_id=measure,
                              results=state.results)
    with state.db.lock:
        refs = referrals(state.db, nhs_number=rec.nhs_number)
    found = _with_current_state(found, refs).sort_values("finding_date")
    label = {i.id: i.label for i in catalogue.values()}
    rows = [{"referral_id": r.referral_id, "intervention": label.get(r.intervention_id, r.intervention_id),
             "state": r.state, "opened_at": r.opened_at, "practice_code": r.practice_code,
             "history": [{"state": s.state, "at": s.occurred_at, "by": s.username, "note": s.note}
                         for s in r.history]} for r in refs]
    open_refs = [(r.referral_id, f"{label.get(r.intervention_id, r.intervention_id)} – "
                                 f"{STATE_WORDS.get(r.state, r.state).lower()} {r.opened_at:%d %b %Y}")
                 for r in refs if TRANSITIONS.get(r.state)]
    defaults = {"intervention_id": "", "state": "offered", "referral_id": "new", "note": ""}
    return ReferralsView(found.to_dict(orient="records"), rows, open_refs, sorted(label.items(), key=lambda x: x[1]),
                         [(s, STATE_WORDS[s]) for s in REFERRAL_STATES], {**defaults, **(values or {})},
                         errors or [])


def _step_time(request: Request) -> datetime | None:
    """Now; on a pinned day (``PARITY_TODAY``, demos and tests) that day at the current time (UTC, naive)."""
    pinned = getattr(get_state(request).settings, "today", None)
    if pinned is None:
        return None
    return datetime.combine(pinned, datetime.now(UTC).replace(tzinfo=None).time())


def _safe_next(value: str) -> str | None:
    return value if NEXT_PATH.match(value) else None


@router.post("/patients/{nhs_number}/referrals")
def add_referral(request: Request, nhs_number: str, actor: ActorDep, as_of: AsOfDep,
                 csrf_token: Annotated[str, Form(max_length=200)] = "",
                 intervention_id: Annotated[str, Form(max_length=40)] = "",
                 state: Annotated[str, Form(max_length=20)] = "",
                 referral_id: Annotated[str, Form(max_length=40)] = "new",
                 note: Annotated[str, Form(max_length=1000)] = "",
                 next: Annotated[str, Form(max_length=300)] = "",  # noqa: A002
                 measure: MeasureQuery = "phsmi") -> Response:
    check_csrf(request, csrf_token)
    rec = patient_record(request, actor, nhs_number, measure, as_of, "view_patient")
    app_state = get_state(request)
    values = {"intervention_id": intervention_id, "state": state, "referral_id": referral_id or "new",
              "note": note[:500]}
    errors: list[dict[str, str]] = []
    existing = None if values["referral_id"] == "new" else values["referral_id"]
    if existing is not None and not intervention_id:
        with app_state.db.lock:
            mine = {r.referral_id: r for r in referrals(app_state.db, nhs_number=nhs_number)}
        if existing in mine:
            intervention_id = mine[existing].intervention_id
    if not intervention_id:
        errors.append({"text": "Choose an intervention", "href": "#intervention_id"})
    if state not in REFERRAL_STATES:
        errors.append({"text": "Choose the state of the referral", "href": "#referral-state"})
    if not errors and not rec.practice_code:
        errors.append({"text": "This patient is not registered at a practice on this date", "href": "#intervention_id"})
    if not errors and rec.practice_code:
        try:
            with app_state.db.lock:
                record_referral(app_state.db, nhs_number, rec.practice_code, intervention_id, state, actor.username,
                                note=values["note"], referral_id=existing, at=_step_time(request))
        except ConfigurationError as exc:  # the referral rules' reason: names states, never the patient
            errors.append({"text": care.sentence(str(exc)), "href": "#referral-state"})
    if errors:
        from parity.web.routes.patients import render_patient

        view = referrals_view(request, rec, measure, as_of, values, errors)
        return render_patient(request, actor, rec, measure, as_of, care.contacts_view(request, nhs_number),
                              status=422, referrals=view)
    record(app_state.db, actor, "record_referral", f"patient/{nhs_number}", "allowed", f"{intervention_id} {state}")
    target = _safe_next(next)
    if target is None:
        target = f"/patients/{nhs_number}?{urlencode({'measure': measure, 'as_of': as_of.isoformat()})}#referrals"
    return RedirectResponse(target, status_code=303)
