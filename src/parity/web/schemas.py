"""API response models (kept apart from stored rows and frames; FastAPI template's *Public style)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class CheckCount(BaseModel):
    """One check in one organisation: patients done and declined, and the done rate."""

    done: int = Field(ge=0)
    declined: int = Field(ge=0)
    percent: float | None = Field(description="100 × done / register, one decimal place")


class MeasureRowPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    org_code: str
    org_name: str | None
    level: str
    parent_code: str | None
    # "register" would shadow pydantic BaseModel.register (ABCMeta); the JSON name is still "register".
    register_: int = Field(ge=0, alias="register", description="Patients in the denominator on as_of")
    all_six: int = Field(ge=0, description="Patients with all six core checks in the window")
    percent: float | None = Field(description="100 × all_six / register, one decimal place")
    checks: dict[str, CheckCount]


class MeasuresPublic(BaseModel):
    measure: str
    as_of: date
    level: str
    parent: str | None
    structure: str = Field(description="Organisation structure of the rows: in force on as_of unless chosen")
    codelists: str = Field(description="Codelist release the counts used (and any clusters from the shipped "
                                       "lists)")
    data_version: str
    rows: list[MeasureRowPublic]


class TrendPointPublic(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    as_of: date
    register_: int = Field(ge=0, alias="register")
    all_six: int
    percent: float | None


class TrendPublic(BaseModel):
    measure: str
    org_code: str
    level: str
    interval: str
    points: list[TrendPointPublic]


class CheckStatusPublic(BaseModel):
    status: str = Field(description="done, declined or missing")
    last_date: date | None
    due: date | None = Field(description="When the check falls due again (None: due now)")


class WorklistRowPublic(BaseModel):
    nhs_number: str
    practice_code: str
    age: int | None
    sex: str | None
    checks_done: int = Field(ge=0, le=6)
    category: str = Field(description="complete (6/6), near_miss (4 or 5 of 6) or incomplete (0–3)")
    missing: list[str]
    declined: list[str]
    next_due: date
    due_status: str = Field(description="overdue, due_soon (within 30 days) or up_to_date")
    checks: dict[str, CheckStatusPublic]


class WorklistPublic(BaseModel):
    practice_code: str
    practice_name: str | None
    measure: str
    as_of: date
    total: int = Field(ge=0, description="Patients in the denominator you may see, before filters")
    matched: int = Field(ge=0, description="Patients after filters (before limit/offset)")
    limit: int
    offset: int
    summary: dict[str, int]
    patients: list[WorklistRowPublic]


class TimelineEntryPublic(BaseModel):
    date: date
    check: str
    kind: str
    snomed_code: str
    term: str | None
    value: float | None
    unit: str | None
    recorded_by: str | None
    recorder_kind: str
    in_window: bool


class PatientCheckPublic(BaseModel):
    check: str
    label: str
    status: str
    last_date: date | None
    value: float | None
    due: date | None


class PatientPublic(BaseModel):
    nhs_number: str
    measure: str
    as_of: date
    practice_code: str | None
    age: int
    sex: str
    on_register: bool | None
    in_denominator: bool | None
    checks: list[PatientCheckPublic]
    timeline: list[TimelineEntryPublic]


class MePublic(BaseModel):
    username: str
    role: str
    org_code: str | None
    via: str
    patient_level: bool


class AuditEntryPublic(BaseModel):
    seq: int
    at: datetime
    username: str | None
    role: str | None
    org_code: str | None
    via: str | None
    action: str
    resource: str | None
    outcome: str
    detail: str | None


class ErrorPublic(BaseModel):
    """The one error shape."""

    ok: bool = False
    status: int
    error: str
    detail: str
    errors: list[dict] | None = None
