"""A completed trust check: what the nurse recorded, validated against the template.

A ``CheckRecord`` is the one source both artefacts are built from (the letter and the FHIR Bundle),
and what the outbox stores. It is plain data: JSON in, JSON out, no database and no web.

Validation never echoes a value back (a value is patient data): problems name the field and the
reason, e.g. ``blood_pressure.systolic: must be between 60 and 260 mmHg``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from typing import Any

from nhs_number import is_valid as nhs_number_is_valid

from parity.errors import Problem, ValidationError
from parity.rules.template import SECTION_STATUSES, CheckTemplate, Field, Section

ODS_CODE = re.compile(r"^[A-Z0-9]{3,10}$")
ETHNIC_CATEGORIES = frozenset("ABCDEFGHJKLMNPRSZ")
STATUS_WORDS = {"done": "Done", "declined": "Declined", "unable": "Unable", "not_done": "Not done"}
MAX_TEXT = 4000


@dataclass(frozen=True)
class Result:
    """One recorded item: a quantity (``value`` in ``unit``) or a coded answer (``value`` None)."""

    section_id: str
    field_id: str
    snomed: int
    display: str
    value: float | None = None
    unit: str = ""
    ucum: str = ""


@dataclass(frozen=True)
class SectionOutcome:
    """What happened to one check: ``status`` in done / declined / unable / not_done, and why."""

    section_id: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class FindingOut:
    """An abnormal result found in the record, with the recommended follow-up."""

    section_id: str
    field_id: str
    finding: str
    action: str


@dataclass(frozen=True)
class CheckRecord:
    """One patient's physical health check at a trust, ready to send to their GP practice.

    ``check_id`` identifies the check for ever (re-sends keep it and raise ``version``); it is the
    Bundle identifier, and what the practice side files at most once.
    """

    check_id: str
    version: int
    template_id: str
    nhs_number: str
    date_of_birth: date
    practice_code: str
    trust_code: str
    performed_on: date
    performed_by: str
    outcomes: tuple[SectionOutcome, ...]
    results: tuple[Result, ...]
    family_name: str = ""
    given_name: str = ""
    sex: str = "unknown"
    ethnicity: str | None = None
    narrative: str = ""
    follow_up: str = ""
    created_at: datetime | None = None
    created_by: str = ""

    # -- reading ------------------------------------------------------------------------------
    def outcome(self, section_id: str) -> SectionOutcome:
        for o in self.outcomes:
            if o.section_id == section_id:
                return o
        return SectionOutcome(section_id, "not_done")

    def results_for(self, section_id: str) -> list[Result]:
        return [r for r in self.results if r.section_id == section_id]

    def coded_items(self, template: CheckTemplate) -> list[Result]:
        """What is filed into the GP record: every result, plus each declined check's declined code."""
        items = list(self.results)
        for o in self.outcomes:
            if o.status == "declined":
                s = template.section(o.section_id)
                if s.declined_code is not None:
                    items.append(Result(s.id, "", s.declined_code, f"{s.label} declined"))
        return items

    def findings(self, template: CheckTemplate) -> list[FindingOut]:
        """Abnormal results and their recommended follow-up (template findings, first match per field)."""
        out: list[FindingOut] = []
        for r in self.results:
            f = template.field(r.field_id)
            for rule in f.findings:
                if rule.matches(r.value, r.snomed if r.value is None else None, self.ethnicity):
                    out.append(FindingOut(r.section_id, r.field_id, rule.finding, rule.action))
                    break
        return out

    def summary_rows(self, template: CheckTemplate) -> list[dict[str, str]]:
        """One row per check, for the table at the top of the letter and the trust's screens:
        ``check``, ``result``, ``date``, ``status``, ``action``."""
        found = self.findings(template)
        rows = []
        for s in template.sections:
            o = self.outcome(s.id)
            if not s.core and o.status == "not_done":
                continue  # extended elements appear only when recorded
            res = self.results_for(s.id)
            if o.status == "done":
                result = _result_text(s, res)
                actions = [f.action for f in found if f.section_id == s.id]
                action = "; ".join(dict.fromkeys(actions)) or "None"
            elif o.status == "declined":
                result, action = "Declined" + (f" ({o.reason})" if o.reason else ""), "Offer again at the next contact"
            elif o.status == "unable":
                result, action = "Unable" + (f" ({o.reason})" if o.reason else ""), "Complete at the practice"
            else:
                result, action = "Not done", "Complete at the practice"
            rows.append({"check": s.label, "result": result, "date": display_date(self.performed_on),
                         "status": STATUS_WORDS[o.status], "action": action})
        return rows

    def core_done(self, template: CheckTemplate) -> int:
        return sum(1 for s in template.sections if s.core and self.outcome(s.id).status == "done")

    # -- identity ----------------------------------------------------------------------------
    def content_digest(self, template: CheckTemplate) -> str:
        """``content_digest`` of what this record files (see there)."""
        return content_digest(self.nhs_number, self.performed_on, self.trust_code,
                              [(r.snomed, r.value, r.ucum) for r in self.coded_items(template)])

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["date_of_birth"] = self.date_of_birth.isoformat()
        d["performed_on"] = self.performed_on.isoformat()
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckRecord:
        d = dict(d)
        d["date_of_birth"] = date.fromisoformat(d["date_of_birth"])
        d["performed_on"] = date.fromisoformat(d["performed_on"])
        d["created_at"] = datetime.fromisoformat(d["created_at"]) if d.get("created_at") else None
        d["outcomes"] = tuple(SectionOutcome(**o) for o in d["outcomes"])
        d["results"] = tuple(Result(**r) for r in d["results"])
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> CheckRecord:
        return cls.from_dict(json.loads(text))

    def next_version(self) -> CheckRecord:
        return replace(self, version=self.version + 1)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def display_date(day: date) -> str:
    """``DD-Mmm-YYYY`` (GP Connect Send Document PDF convention, interop-and-peers.md §1.5), in English
    whatever the server's locale (``strftime('%b')`` follows the locale)."""
    return f"{day.day:02d}-{_MONTHS[day.month - 1]}-{day.year}"


def content_digest(nhs_number: str, performed_on: date, trust_code: str,
                   items: Iterable[tuple[Any, ...]]) -> str:
    """SHA-256 of a check's clinical content: patient, date, recording trust and the coded items
    (SNOMED CT code, value, UCUM unit), order-free. The same check resent under a new message or
    check id has the same digest, so the practice files it once. Both the sender (from a
    ``CheckRecord``) and the receiver (from a parsed Bundle) compute it with this one function.

    An item may also carry its own date and performing organisation (``code, value, unit, date,
    ods``), as a foreign sender's lab results do; an item dated on the check's date and performed by
    the trust counts as the plain three-part item, so Parity's own Bundles keep the digest they had.
    """
    norm: list[list[Any]] = []
    for item in items:
        code, value, unit = item[0], item[1], item[2]
        row: list[Any] = [int(code), None if value is None else round(float(value), 6), unit or ""]
        if len(item) >= 5:
            day, ods = item[3], str(item[4] or "").upper()
            if day != performed_on or ods != trust_code.upper():
                row += [day.isoformat(), ods]
        norm.append(row)
    # The order of the original (code, value, unit) sort, so digests stored before are unchanged.
    norm.sort(key=lambda r: (r[0], float("-inf") if r[1] is None else r[1], r[2], tuple(r[3:])))
    key = [nhs_number, performed_on.isoformat(), trust_code.upper(), [tuple(r) for r in norm]]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def _result_text(section: Section, results: list[Result]) -> str:
    if section.id == "blood_pressure":
        sys_ = next((r for r in results if r.field_id == "systolic"), None)
        dia = next((r for r in results if r.field_id == "diastolic"), None)
        if sys_ and dia and sys_.value is not None and dia.value is not None:
            return f"{sys_.value:.0f}/{dia.value:.0f} mmHg"
    # A quantity is read with its name ("HbA1c 44 mmol/mol"); a coded answer speaks for itself.
    return "; ".join(r.display if r.value is None else f"{section.field(r.field_id).label} {r.display}"
                     for r in results)


# -- building a record from a form ---------------------------------------------------------------

@dataclass
class _Collector:
    source: str
    problems: list[Problem] = field(default_factory=list)

    def add(self, where: str, reason: str) -> None:
        self.problems.append(Problem(self.source, None, where, reason))


def _number(raw: str) -> float | None:
    try:
        return float(raw.replace(",", ""))
    except ValueError:
        return None


def _quantity(f: Field, raw: str, out: _Collector, where: str) -> float | None:
    value = _number(raw)
    if value is None or value != value:  # NaN
        out.add(where, "must be a number")
        return None
    if f.integer and value != int(value):
        out.add(where, "must be a whole number")
        return None
    if f.low is not None and f.high is not None and not (f.low <= value <= f.high):
        low, high = f"{f.low:g}", f"{f.high:g}"
        out.add(where, f"must be between {low} and {high}{(' ' + f.unit) if f.unit else ''}")
        return None
    return round(value, max(f.decimals, 1))


def record_from_form(template: CheckTemplate, form: Mapping[str, str], *, trust_code: str, created_by: str,
                     today: date, source: str = "form", check_id: str | None = None) -> CheckRecord:
    """Validate a submitted check and build the record, or raise ``ValidationError`` naming every problem.

    Form keys: ``nhs_number``, ``date_of_birth``, ``practice_code``, ``performed_on``, ``performed_by``,
    optional ``family_name``, ``given_name``, ``sex``, ``ethnicity``, ``narrative``, ``follow_up``;
    per section ``<section>.status`` (done / declined / unable / not_done, default: done when any field
    has a value) and ``<section>.reason``; per field ``<section>.<field>`` (a number, or for a choice the
    SNOMED CT code of the answer). A done check needs at least one value (the fields with ``counts``
    for core checks); blood pressure needs both readings.
    """
    out = _Collector(source)
    get = {k: (v or "").strip() for k, v in form.items()}
    nhs = get.get("nhs_number", "").replace(" ", "")
    if not re.fullmatch(r"\d{10}", nhs) or not nhs_number_is_valid(nhs):
        out.add("nhs_number", "is not a valid NHS number (10 digits with a correct check digit)")
    dob = _date(get.get("date_of_birth", ""), "date_of_birth", out)
    performed = _date(get.get("performed_on", ""), "performed_on", out)
    if performed and performed > today:
        out.add("performed_on", "cannot be in the future")
    if dob and performed and dob > performed:
        out.add("date_of_birth", "is after the date of the check")
    practice = get.get("practice_code", "").upper()
    if not ODS_CODE.match(practice):
        out.add("practice_code", "must be the ODS code of the patient's GP practice")
    if not get.get("performed_by"):
        out.add("performed_by", "is empty: name and role of the clinician who did the check")
    sex = get.get("sex") or "unknown"
    if sex not in ("male", "female", "intersex", "unknown"):
        out.add("sex", "must be male, female, intersex or unknown")
    ethnicity = (get.get("ethnicity") or "").upper() or None
    if ethnicity and ethnicity not in ETHNIC_CATEGORIES:
        out.add("ethnicity", "must be an NHS ethnic category letter")
    for key in ("narrative", "follow_up", "family_name", "given_name", "performed_by"):
        if len(get.get(key, "")) > MAX_TEXT:
            out.add(key, f"is longer than {MAX_TEXT} characters")

    outcomes: list[SectionOutcome] = []
    results: list[Result] = []
    for s in template.sections:
        section_results = _section(template, s, get, out)
        given = get.get(f"{s.id}.status", "")
        status = given or ("done" if section_results else "not_done")
        if status not in SECTION_STATUSES:
            out.add(f"{s.id}.status", f"must be one of {', '.join(SECTION_STATUSES)}")
            continue
        reason = get.get(f"{s.id}.reason", "")[:500]
        if status == "done" and not section_results:
            out.add(s.id, "is marked done but has no result")
        if status != "done" and section_results:
            out.add(s.id, f"has results but is marked {status.replace('_', ' ')}")
        if status == "done" and s.core and section_results and not any(
                s.field(r.field_id).counts for r in section_results):
            out.add(s.id, "needs a result that counts towards the check")
        outcomes.append(SectionOutcome(s.id, status, reason if status in ("declined", "unable") else ""))
        if status == "done":
            results.extend(section_results)
    if not any(o.status in ("done", "declined", "unable") for o in outcomes) and not out.problems:
        out.add("checks", "nothing was recorded")
    if out.problems:
        raise ValidationError(f"the check has {len(out.problems)} problem(s)", out.problems)
    assert dob is not None and performed is not None
    return CheckRecord(
        check_id=check_id or str(uuid.uuid4()), version=1, template_id=template.id, nhs_number=nhs,
        date_of_birth=dob, practice_code=practice, trust_code=trust_code.upper(), performed_on=performed,
        performed_by=get["performed_by"], outcomes=tuple(outcomes), results=tuple(results),
        family_name=get.get("family_name", ""), given_name=get.get("given_name", ""), sex=sex,
        ethnicity=ethnicity, narrative=get.get("narrative", ""), follow_up=get.get("follow_up", ""),
        created_at=datetime.now().replace(microsecond=0), created_by=created_by,
    )


def _section(template: CheckTemplate, s: Section, get: Mapping[str, str], out: _Collector) -> list[Result]:
    found: list[Result] = []
    values: dict[str, float] = {}
    for f in s.fields:
        where = f"{s.id}.{f.id}"
        raw = get.get(where, "")
        if not raw:
            continue
        if f.kind == "quantity":
            value = _quantity(f, raw, out, where)
            if value is not None:
                values[f.id] = value
                assert f.snomed is not None
                found.append(Result(s.id, f.id, f.snomed, f.format_value(value), value, f.unit, f.ucum))
        else:
            code = int(raw) if raw.isdigit() else None
            choice = f.choice(code) if code is not None else None
            if choice is None:
                out.add(where, "is not one of the template's answers")
                continue
            found.append(Result(s.id, f.id, choice.snomed, choice.label))
    # BMI from weight and height when BMI itself was not entered (template ``derived``).
    for f in s.fields:
        if f.derived and f.id not in values and {"weight", "height"} <= values.keys():
            bmi = values["weight"] / (values["height"] / 100) ** 2
            if f.low is not None and f.high is not None and not f.low <= bmi <= f.high:
                out.add(f"{s.id}.{f.id}", "worked out from weight and height is outside the plausible range")
            else:
                assert f.snomed is not None
                bmi = round(bmi, f.decimals)
                found.append(Result(s.id, f.id, f.snomed, f.format_value(bmi), bmi, f.unit, f.ucum))
    components = [f.id for f in s.fields if f.component_of]
    have = [c for c in components if get.get(f"{s.id}.{c}")]
    if have and len(have) != len(components):
        out.add(s.id, "needs both " + " and ".join(components) + " readings")
    return found


def _date(raw: str, where: str, out: _Collector) -> date | None:
    if not raw:
        out.add(where, "is empty: a date is required")
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        out.add(where, "must be a date written YYYY-MM-DD")
        return None
