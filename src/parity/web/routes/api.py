"""JSON API, ``/api/v1``: measures at any level, trends, practice worklists, patients.

Authenticate with ``Authorization: Bearer <token>`` (``parity users token U``); a signed-in browser
session works too. The same scope and audit rules as the pages apply, because both call the same
functions (``web.worklists``, ``web.patients``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from parity.access import entries
from parity.web import pagecache, views
from parity.web.deps import ActorDep, AdminDep, AsOfDep, actor_scope, get_state
from parity.web.patients import patient_record
from parity.web.routes.practices import FilterDep
from parity.web.schemas import (
    AuditEntryPublic,
    CheckCount,
    CheckStatusPublic,
    ErrorPublic,
    MeasureRowPublic,
    MeasuresPublic,
    MePublic,
    PatientCheckPublic,
    PatientPublic,
    TimelineEntryPublic,
    TrendPointPublic,
    TrendPublic,
    WorklistPublic,
    WorklistRowPublic,
)
from parity.web.worklists import practice_worklist

ERRORS = {status: {"model": ErrorPublic} for status in (400, 401, 403, 404, 422)}
router = APIRouter(tags=["api"], responses=ERRORS)  # type: ignore[arg-type]

MeasureId = Annotated[Literal["phsmi", "qof-mh021"], Query(description="Measure id")]
Level = Literal["practice", "pcn", "sub_icb", "icb", "region", "england"]
OrgCode = Annotated[str, Query(max_length=12, pattern=r"^[A-Za-z0-9-]+$")]
StructureParam = Annotated[Literal["2022-23", "2026"] | None, Query(
    description="Organisation structure (default: the one in force on as_of)")]
CodelistsParam = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description=(
    "Codelist release (default: this database's; 'shipped' for the lists shipped with Parity)"))]


@router.get("/me", response_model=MePublic)
def me(request: Request, actor: ActorDep, as_of: AsOfDep) -> MePublic:
    """Who the token or session belongs to, and whether it may see patient-level data."""
    scope = actor_scope(request, actor, as_of)
    return MePublic(username=actor.username, role=actor.role.value, org_code=actor.org_code, via=actor.via,
                    patient_level=scope.patient_level)


@router.get("/measures", response_model=MeasuresPublic)
def measures(request: Request, actor: ActorDep, as_of: AsOfDep, measure: MeasureId = "phsmi",
             level: Level = "icb", parent: Annotated[str | None, Query(max_length=12)] = None,
             structure: StructureParam = None, codelists: CodelistsParam = None) -> MeasuresPublic:
    """One row per organisation at ``level`` (optionally only the children of ``parent``):
    ``org_code, org_name, register, all_six, percent`` and per-check counts. Every role may read
    aggregates. ``structure`` and ``codelists`` choose the organisation structure and codelist release
    (read for the whole request by ``parity.web.choice``); the response names both."""
    state = get_state(request)

    def render() -> Response:
        rows = views.level_rows(state.results, measure, as_of, level, parent)
        m = state.results.measure(measure)
        return _json(MeasuresPublic(
            measure=measure, as_of=as_of, level=level, parent=parent, structure=state.results.structure_for(as_of),
            codelists=state.results.codelists().describe(m.clusters()).removeprefix("codelists: "),
            data_version=state.results.version(), rows=[_measure_row(r, m) for r in rows]))

    # The same for every caller (aggregates only), so serialised once per data version (parity.web.pagecache).
    return pagecache.cached(request, (), as_of, render, html=False)  # type: ignore[return-value]


@router.get("/organisations/{level}/{code}/trend", response_model=TrendPublic)
def organisation_trend(request: Request, level: Level, code: str,
                       actor: ActorDep, as_of: AsOfDep, measure: MeasureId = "phsmi",
                       interval: Literal["quarter", "month"] = "quarter") -> TrendPublic:
    """The all-six rate at each quarter end (8) or month end (12) up to ``as_of``."""
    state = get_state(request)

    def render() -> Response:
        views.org_row(state.results, measure, as_of, level, code)
        points = views.trend(state.results, measure, as_of, level, code, monthly=interval == "month")
        return _json(TrendPublic(measure=measure, org_code=code, level=level, interval=interval,
                                 points=[TrendPointPublic(as_of=p["period"], register=p["register"],
                                                          all_six=p["all_six"], percent=p["percent"])
                                         for p in points]))

    return pagecache.cached(request, (), as_of, render, html=False)  # type: ignore[return-value]


@router.get("/practices/{code}/patients", response_model=WorklistPublic)
def practice_patients(request: Request, code: str, actor: ActorDep, as_of: AsOfDep, filters: FilterDep,
                      measure: MeasureId = "phsmi", limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
                      offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> WorklistPublic:
    """The practice worklist: every patient in the denominator with missing checks, near-miss
    category, due dates and declined checks. Practice, PCN and ICB users see their own
    organisation's practices; trust users see their caseload; others get 403 (audited)."""
    state = get_state(request)
    wl = practice_worklist(request, actor, code, measure, as_of, filters, "api_worklist")
    m = state.results.measure(measure)
    page = wl.rows.iloc[offset:offset + limit]
    return WorklistPublic(
        practice_code=code, practice_name=wl.practice_name, measure=measure, as_of=as_of, total=wl.total,
        matched=len(wl.rows), limit=limit, offset=offset, summary=wl.summary,
        patients=[_worklist_row(r, m) for r in page.to_dict(orient="records")])


@router.get("/patients/{nhs_number}", response_model=PatientPublic)
def patient(request: Request, nhs_number: str, actor: ActorDep, as_of: AsOfDep,
            measure: MeasureId = "phsmi") -> PatientPublic:
    """One patient's checks and timeline (same access rules as the worklist; audited)."""
    rec = patient_record(request, actor, nhs_number, measure, as_of, "api_patient")
    return PatientPublic(
        nhs_number=rec.nhs_number, measure=measure, as_of=as_of, practice_code=rec.practice_code, age=rec.age,
        sex=rec.sex, on_register=rec.on_register, in_denominator=rec.in_denominator,
        checks=[PatientCheckPublic(check=c.check_id, label=c.label, status=c.status, last_date=c.last_date,
                                   value=c.value, due=c.due) for c in rec.checks],
        timeline=[TimelineEntryPublic(date=e.date, check=e.check_id, kind=e.kind, snomed_code=str(e.snomed_code),
                                      term=e.term, value=e.value, unit=e.unit, recorded_by=e.recorded_by,
                                      recorder_kind=e.recorder_kind, in_window=e.in_window) for e in rec.entries])


@router.get("/audit", response_model=list[AuditEntryPublic])
def audit(request: Request, actor: AdminDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
          user: Annotated[str | None, Query(max_length=64)] = None) -> list[AuditEntryPublic]:
    """The audit log, newest first (administrators only)."""
    state = get_state(request)
    rows = entries(state.db, limit=limit, offset=offset, username=user)
    return [AuditEntryPublic(seq=e.seq, at=e.at, username=e.username, role=e.role, org_code=e.org_code, via=e.via,
                             action=e.action, resource=e.resource, outcome=e.outcome, detail=e.detail) for e in rows]


def _json(model: Any) -> Response:
    """A response model as JSON bytes, as FastAPI would send it (kept by ``parity.web.pagecache``)."""
    return Response(model.model_dump_json(by_alias=True).encode(), media_type="application/json")


def _measure_row(r: dict, m) -> MeasureRowPublic:  # noqa: ANN001 - Measure
    return MeasureRowPublic(
        org_code=r["org_code"], org_name=r["org_name"], level=r["level"], parent_code=r["parent_code"],
        register=r["register"], all_six=r["all_six"], percent=r["percent"],
        checks={c["check"]: CheckCount(done=c["done"], declined=c["declined"], percent=c["percent"])
                for c in views.check_rates(r, m)})


def _worklist_row(r: dict, m) -> WorklistRowPublic:  # noqa: ANN001 - Measure
    return WorklistRowPublic(
        nhs_number=r["nhs_number"], practice_code=r["practice_code"],
        age=None if pd.isna(r["age"]) else int(r["age"]), sex=r["sex"],
        checks_done=r["checks_done"], category=r["category"], missing=_split(r["missing"]),
        declined=_split(r["declined"]), next_due=r["next_due"], due_status=r["due_status"],
        checks={c.id: CheckStatusPublic(status=r[f"{c.id}_status"], last_date=r[f"{c.id}_date"], due=r[f"{c.id}_due"])
                for c in m.checks})


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in text.split(",")] if text else []
