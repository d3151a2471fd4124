"""Check and read a received FHIR R4 UK Core Bundle (the practice side).

fhir.resources checks structure only: it accepts ``status="bogus"``, any code system, a quantity
without UCUM and a missing profile slice (interop-and-peers.md §2.3, "What it does not catch").
``check_bundle`` adds the rules this project relies on when filing into a GP record.

No problem reason ever contains patient data (parity.errors): reasons are fixed wording, and a
pydantic message is only used when it cannot contain the offending value.
"""


import base64
import binascii
import hashlib
import json
import math
import re
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pydantic
from fhir.resources.R4B.bundle import Bundle
from nhs_number import is_valid as nhs_number_is_valid

from parity.codes.sctid import is_concept_id
from parity.errors import Problem, ValidationError
from parity.interop.fhir.codes import (
    _LONDON,
    BP_DIASTOLIC,
    BP_PANEL,
    BP_SYSTOLIC,
    KNOWN_CODE_SYSTEMS,
    MAX_PROBLEMS,
    NHS_NUMBER_SYSTEM,
    OBSERVATION_STATUSES,
    ODS_SYSTEM,
    RESOURCE_TYPES,
    SNOMED,
    UCUM,
    URI_SYSTEM,
)
from parity.interop.record import ODS_CODE, content_digest


class BundleError(ValidationError):
    """A FHIR Bundle failed validation; ``problems`` name each FHIR path and reason (never a value)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"the FHIR Bundle has {len(problems)} problem(s)", problems)


@dataclass(frozen=True)
class ReceivedItem:
    """One coded item to file at the practice: a SNOMED CT code with its value (None for a coded answer)."""

    snomed: int
    display: str
    value: float | None
    unit: str
    ucum: str
    date: date


@dataclass(frozen=True)
class ReceivedCheck:
    """A received, checked Bundle: who, where, when and exactly the items to file.

    ``digest`` is ``parity.interop.record.content_digest`` of the items, the same value the sender's
    ``CheckRecord.content_digest`` gives, so a check resent under another message is filed once.
    """

    check_id: str
    version: int
    nhs_number: str
    birth_date: date
    practice_code: str | None
    trust_code: str
    performed_on: date
    items: tuple[ReceivedItem, ...]
    letter_pdf: bytes | None
    digest: str
# == reading =======================================================================================

def parse_bundle(payload: bytes | str, *, today: date | None = None) -> ReceivedCheck:
    """Read a received Bundle (a MESH message body) into the items to file, or raise ``BundleError``.

    In order: JSON decoding, FHIR structure (``fhir.resources`` R4B), then ``check_bundle``. Problems
    name the FHIR path (``entry[3].resource.valueQuantity.system``) and never quote a value.
    ``today`` (default: today in England) is the latest acceptable date of the check.
    """
    data = _decode(payload)
    if not isinstance(data, dict):
        raise BundleError([_problem(None, "must be a JSON object (a FHIR resource)")])
    if data.get("resourceType") != "Bundle":
        raise BundleError([_problem("resourceType", "must be Bundle")])
    try:
        Bundle.model_validate(data)
    except pydantic.ValidationError as exc:
        raise BundleError(pydantic_problems(exc)) from None
    except Exception:  # fhir-core raises KeyError (naming the type) for an unknown resourceType
        problems = check_bundle(data, today=today)
        raise BundleError(problems or [_problem(None, "is not a FHIR R4 Bundle the R4B models can read")]) from None
    problems, received = _read(data, today or _today())
    if problems or received is None:
        raise BundleError(problems or [_problem(None, "could not be read")])
    return received


def check_bundle(bundle: Mapping[str, Any] | Bundle, *, today: date | None = None) -> list[Problem]:
    """The project's own rules for a check Bundle (a parsed JSON dict or an R4B ``Bundle``).

    fhir.resources does not check profiles, bindings or terminology (interop-and-peers.md §2.3);
    these are the rules a practice relies on when filing: ``collection`` type and a ``urn:uuid``
    identifier; exactly one Patient with one valid NHS number and a birth date; every Observation
    final/amended/corrected, about that Patient, performed by the trust Organization (ODS code), on
    one date that is not after ``today``, coded in SNOMED CT (valid concept id) using only known code
    systems, with UCUM quantities; the blood pressure panel with both readings; a PDF letter.
    """
    data = bundle if isinstance(bundle, Mapping) else json.loads(bundle.model_dump_json(exclude_none=True))
    problems, _ = _read(data, today or _today())
    return problems


def _today() -> date:
    return datetime.now(_LONDON).date()


def _problem(path: str | None, reason: str) -> Problem:
    return Problem("bundle", None, path, reason)


def _decode(payload: bytes | str) -> Any:
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BundleError([_problem(None, "is not UTF-8 text")]) from None

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(payload, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        # exc.msg is the parser's wording ("Expecting value"), never the text itself.
        raise BundleError([Problem("bundle", exc.lineno, None, f"is not valid JSON: {exc.msg} (column {exc.colno})")]) \
            from None
    except ValueError:
        raise BundleError([_problem(None, "is not valid JSON: NaN and Infinity are not JSON numbers")]) from None


# -- pydantic errors as problems -------------------------------------------------------------------

_FIXED_REASONS = {
    "missing": "is required",
    "model_field_validation.missing": "is required",
    "extra_forbidden": "is not a FHIR element here",
    "fhir-validation-wrong-resource-type": "is not the resource type expected here",
    "base64_decode": "is not valid base64",
}


def _loc_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = "resourceType" if part == "resource_type" else str(part)
            path += f".{name}" if path else name
    return path


def _pydantic_reason(err: Mapping[str, Any]) -> str:
    kind = str(err.get("type", ""))
    if kind in _FIXED_REASONS:
        return _FIXED_REASONS[kind]
    msg = " ".join(str(err.get("msg", "")).split()).removeprefix("Value error, ")
    inp = err.get("input")
    quotes_input = isinstance(inp, str | int | float) and str(inp) != "" and str(inp) in msg
    # A message may quote the input for some error types; use it only when it has no digits (an NHS
    # number, date or value) and does not contain the input, else a fixed wording naming the type.
    if msg and not quotes_input and not re.search(r"\d", msg):
        return msg
    return f"is not valid FHIR ({kind})"


def pydantic_problems(exc: pydantic.ValidationError) -> list[Problem]:
    """Pydantic validation errors as problems naming the FHIR path, never the value."""
    return [_problem(_loc_path(tuple(e.get("loc", ()))) or None, _pydantic_reason(e))
            for e in exc.errors()[:MAX_PROBLEMS]]


# -- the project's rules, and reading the items ----------------------------------------------------

def _obj(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def _full_date(x: Any) -> date | None:
    """The date of a FHIR date/dateTime with at least day precision, else None."""
    if not isinstance(x, str) or len(x) < 10:
        return None
    try:
        return date.fromisoformat(x[:10])
    except ValueError:
        return None


def _is_urn_uuid(x: Any) -> bool:
    if not isinstance(x, str) or not x.startswith("urn:uuid:"):
        return False
    try:
        uuid.UUID(x[9:])
    except ValueError:
        return False
    return True


def _ods(org: dict[str, Any]) -> str | None:
    for ident in _list(org.get("identifier")):
        ident = _obj(ident)
        value = ident.get("value")
        if ident.get("system") == ODS_SYSTEM and isinstance(value, str) and ODS_CODE.match(value.upper()):
            return value.upper()
    return None


#: An item read from an Observation: (SNOMED CT code, display, value, display unit, UCUM code).
_Item = tuple[int, str, float | None, str, str]


class _Reader:
    """Walks a Bundle dict once, collecting problems and, when there are none, the received check."""

    def __init__(self, data: Mapping[str, Any], today: date) -> None:
        self.data = data
        self.today = today
        self.problems: list[Problem] = []
        self.by_url: dict[str, tuple[int, dict[str, Any]]] = {}

    def add(self, path: str | None, reason: str) -> None:
        self.problems.append(_problem(path, reason))

    def resolve(self, ref: Any, resource_type: str) -> tuple[str, int, dict[str, Any]] | None:
        url = _obj(ref).get("reference")
        found = self.by_url.get(url) if isinstance(url, str) else None
        if found is None or found[1].get("resourceType") != resource_type:
            return None
        return url, found[0], found[1]

    def entries(self, resource_type: str) -> Iterator[tuple[int, dict[str, Any]]]:
        for i, e in enumerate(_list(self.data.get("entry"))):
            res = _obj(_obj(e).get("resource"))
            if res.get("resourceType") == resource_type:
                yield i, res

    # -- the parts ------------------------------------------------------------------------------
    def bundle(self) -> tuple[str | None, int | None]:
        data = self.data
        if data.get("resourceType") != "Bundle":
            self.add("resourceType", "must be Bundle")
        if data.get("type") != "collection":
            self.add("type", "must be collection (one check is one collection Bundle)")
        ident = _obj(data.get("identifier"))
        check_id = None
        if ident.get("system") != URI_SYSTEM or not _is_urn_uuid(ident.get("value")):
            self.add("identifier", f"must be a urn:uuid (system {URI_SYSTEM}) identifying the check")
        else:
            check_id = str(ident["value"])[9:]
        version_text = _obj(data.get("meta")).get("versionId")
        version = int(version_text) if isinstance(version_text, str) and version_text.isdigit() else 0
        if version < 1:
            self.add("meta.versionId", "must be the check's version, a whole number from 1")
        entries = _list(data.get("entry"))
        if not entries:
            self.add("entry", "is empty")
        for i, e in enumerate(entries):
            e = _obj(e)
            url = e.get("fullUrl")
            if not _is_urn_uuid(url):
                self.add(f"entry[{i}].fullUrl", "must be a urn:uuid")
            elif url in self.by_url:
                self.add(f"entry[{i}].fullUrl", "is used by another entry")
            else:
                self.by_url[url] = (i, _obj(e.get("resource")))
            if _obj(e.get("resource")).get("resourceType") not in RESOURCE_TYPES:
                self.add(f"entry[{i}].resource.resourceType", "must be one of " + ", ".join(RESOURCE_TYPES))
        return check_id, version if version >= 1 else None

    def patient(self) -> tuple[str | None, str | None, date | None, str | None]:
        """(Patient fullUrl, NHS number, birth date, practice ODS code)."""
        patients = list(self.entries("Patient"))
        if len(patients) != 1:
            self.add("entry", f"must hold exactly one Patient (found {len(patients)})")
            return None, None, None, None
        i, res = patients[0]
        p = f"entry[{i}].resource"
        url = _obj(_list(self.data.get("entry"))[i]).get("fullUrl")
        nhs_ids = [(k, _obj(x)) for k, x in enumerate(_list(res.get("identifier")))
                   if _obj(x).get("system") == NHS_NUMBER_SYSTEM]
        nhs = None
        if len(nhs_ids) != 1:
            self.add(f"{p}.identifier", f"must hold exactly one NHS number (system {NHS_NUMBER_SYSTEM}), "
                                        f"found {len(nhs_ids)}")
        else:
            k, ident = nhs_ids[0]
            value = ident.get("value")
            # UKCore-Patient identifier:nhsNumber (§2.1); the check digit is mod 11 (nhs-number package).
            if isinstance(value, str) and re.fullmatch(r"\d{10}", value) and nhs_number_is_valid(value):
                nhs = value
            else:
                self.add(f"{p}.identifier[{k}].value",
                         "is not a valid NHS number (10 digits with a correct check digit)")
        birth = _full_date(res.get("birthDate"))
        if birth is None:
            self.add(f"{p}.birthDate", "is missing or not a full date (YYYY-MM-DD)")
        practice = None
        gps = _list(res.get("generalPractitioner"))
        if gps:
            found = self.resolve(gps[0], "Organization")
            practice = _ods(found[2]) if found else None
            if practice is None:
                self.add(f"{p}.generalPractitioner[0].reference",
                         "must refer to the GP practice Organization (with an ODS code) in this Bundle")
        return (url if isinstance(url, str) else None), nhs, birth, practice

    def codings(self, concept: Any, path: str) -> tuple[list[tuple[int, str]], int]:
        """Check every coding's system is known; return the valid SNOMED CT (code, display) pairs and
        the number of SNOMED CT codings with an invalid code (already reported)."""
        snomed: list[tuple[int, str]] = []
        invalid = 0
        for k, coding in enumerate(_list(_obj(concept).get("coding"))):
            coding = _obj(coding)
            system, code = coding.get("system"), coding.get("code")
            if system not in KNOWN_CODE_SYSTEMS:
                self.add(f"{path}.coding[{k}].system",
                         "is not a known code system (SNOMED CT, LOINC, observation category or UCUM)")
            elif system == SNOMED:
                if isinstance(code, str) and is_concept_id(code):
                    display = coding.get("display") or _obj(concept).get("text") or ""
                    snomed.append((int(code), str(display)))
                else:
                    self.add(f"{path}.coding[{k}].code", "is not a valid SNOMED CT concept id")
                    invalid += 1
        return snomed, invalid

    def one_snomed(self, concept: Any, path: str) -> tuple[int, str] | None:
        found, invalid = self.codings(concept, path)
        if len(found) > 1:
            self.add(f"{path}.coding", "has more than one SNOMED CT coding: the code to file is ambiguous")
        elif not found and not invalid:
            self.add(f"{path}.coding", f"needs a SNOMED CT coding (system {SNOMED})")
        return found[0] if len(found) == 1 else None

    def quantity(self, q: Any, path: str) -> tuple[float, str, str] | None:
        """(value, display unit, UCUM code) of a valueQuantity, or None after adding problems."""
        if not isinstance(q, dict):
            self.add(path, "must be a Quantity")
            return None
        ok = True
        if q.get("system") != UCUM:
            self.add(f"{path}.system", f"must be {UCUM} (UK Core requires UCUM units)")
            ok = False
        code = q.get("code")
        if not isinstance(code, str) or not code.strip():
            self.add(f"{path}.code", "is missing: the UCUM unit code is required")
            ok = False
        value = q.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.add(f"{path}.value", "must be a number")
            ok = False
        if not ok:
            return None
        unit = q.get("unit")
        return float(value), str(unit) if isinstance(unit, str) else str(code), str(code)

    def observation(self, i: int, res: dict[str, Any], patient: str | None) -> tuple[list[_Item], date | None,
                                                                                     str | None]:
        """Check one Observation; return its items, its date and its performer's fullUrl."""
        p = f"entry[{i}].resource"
        if res.get("status") not in OBSERVATION_STATUSES:
            self.add(f"{p}.status", "must be " + ", ".join(OBSERVATION_STATUSES[:-1]) + " or "
                     + OBSERVATION_STATUSES[-1])
        subject = self.resolve(res.get("subject"), "Patient")
        if subject is None or subject[0] != patient:
            self.add(f"{p}.subject.reference", "must refer to the Patient entry of this Bundle")
        when = None
        if "effectiveDateTime" not in res:
            self.add(f"{p}.effectiveDateTime", "is missing: the date of the check is required")
        else:
            when = _full_date(res.get("effectiveDateTime"))
            if when is None:
                self.add(f"{p}.effectiveDateTime", "must be a full date (YYYY-MM-DD)")
            elif when > self.today:
                self.add(f"{p}.effectiveDateTime", "is in the future")
        performer = None
        for ref in _list(res.get("performer")):
            found = self.resolve(ref, "Organization")
            if found and _ods(found[2]):
                performer = found[0]
                break
        if performer is None:
            self.add(f"{p}.performer", "must refer to the trust Organization (with an ODS code) in this Bundle")
        for c, category in enumerate(_list(res.get("category"))):
            self.codings(category, f"{p}.category[{c}]")  # only the system matters for a category
        code = self.one_snomed(res.get("code"), f"{p}.code")
        for key in res:
            if key.startswith("value") and key != "valueQuantity":
                self.add(f"{p}.{key}", "is not supported: a coded answer is the Observation code, a reading a "
                                       "valueQuantity")
        items: list[_Item] = []
        components = _list(res.get("component"))
        if components or (code and code[0] == BP_PANEL):
            items = self.panel(p, res, code, components)
        elif code:
            value: tuple[float, str, str] | None = None
            if "valueQuantity" in res:
                value = self.quantity(res["valueQuantity"], f"{p}.valueQuantity")
            if value is not None:
                items.append((code[0], code[1], *value))
            elif "valueQuantity" not in res:
                items.append((code[0], code[1], None, "", ""))
        return items, when, performer

    def panel(self, p: str, res: dict[str, Any], code: tuple[int, str] | None,
              components: list[Any]) -> list[_Item]:
        """The blood pressure panel: both readings as components, each a UCUM quantity (§2.1)."""
        if code is not None and code[0] != BP_PANEL:
            self.add(f"{p}.component", "is only expected on the blood pressure panel")
        if "valueQuantity" in res:
            self.add(f"{p}.valueQuantity", "must not be set on a panel: the readings are its components")
        items: list[_Item] = []
        for k, comp in enumerate(components):
            cp = f"{p}.component[{k}]"
            comp_code = self.one_snomed(_obj(comp).get("code"), f"{cp}.code")
            if "valueQuantity" not in _obj(comp):
                self.add(f"{cp}.valueQuantity", "is missing: a blood pressure reading needs a value")
                continue
            value = self.quantity(_obj(comp)["valueQuantity"], f"{cp}.valueQuantity")
            if comp_code and value:
                items.append((comp_code[0], comp_code[1], *value))
        have = {s for s, *_ in items}
        missing = [name for name, c in (("systolic", BP_SYSTOLIC), ("diastolic", BP_DIASTOLIC)) if c not in have]
        if code is not None and code[0] == BP_PANEL and missing:
            self.add(f"{p}.component", "needs a " + " and a ".join(missing) + " reading with a value")
        return items

    def letter(self, patient: str | None) -> tuple[bytes | None, str | None, date | None]:
        """(PDF, author fullUrl, documented date) of the DocumentReference, if there is one."""
        docs = list(self.entries("DocumentReference"))
        if len(docs) > 1:
            self.add("entry", f"must hold at most one DocumentReference (found {len(docs)})")
        if not docs:
            return None, None, None
        i, res = docs[0]
        p = f"entry[{i}].resource"
        if res.get("status") != "current":
            self.add(f"{p}.status", "must be current")
        subject = self.resolve(res.get("subject"), "Patient")
        if subject is None or subject[0] != patient:
            self.add(f"{p}.subject.reference", "must refer to the Patient entry of this Bundle")
        author = None
        for ref in _list(res.get("author")):
            found = self.resolve(ref, "Organization")
            if found and _ods(found[2]):
                author = found[0]
                break
        if author is None:
            self.add(f"{p}.author", "must refer to the trust Organization (with an ODS code) in this Bundle")
        documented = _full_date(_obj(_obj(res.get("context")).get("period")).get("start"))
        contents = _list(res.get("content"))
        att = _obj(_obj(contents[0]).get("attachment")) if contents else {}
        ap = f"{p}.content[0].attachment"
        if not att:
            self.add(ap, "is missing")
            return None, author, documented
        if att.get("contentType") != "application/pdf":
            self.add(f"{ap}.contentType", "must be application/pdf")
        pdf = None
        data = att.get("data")
        try:
            pdf = base64.b64decode(data, validate=True) if isinstance(data, str) else None
        except (binascii.Error, ValueError):
            pdf = None
        if pdf is None or not pdf.startswith(b"%PDF"):
            self.add(f"{ap}.data", "must be a base64 PDF document")
            return None, author, documented
        # Attachment.hash is base64(SHA-1(data)) and size the byte count (FHIR R4 Attachment).
        if "hash" in att and att["hash"] != base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"):
            self.add(f"{ap}.hash", "does not match the data (SHA-1, base64)")
        if "size" in att and att["size"] != len(pdf):
            self.add(f"{ap}.size", "does not match the data")
        return pdf, author, documented

    # -- the whole ------------------------------------------------------------------------------
    def run(self) -> ReceivedCheck | None:
        check_id, version = self.bundle()
        patient, nhs, birth, practice = self.patient()
        items: list[_Item] = []
        dated: list[tuple[int, date]] = []
        first_trust: str | None = None
        observations = list(self.entries("Observation"))
        for i, res in observations:
            found, when, performer = self.observation(i, res, patient)
            items.extend(found)
            if when is not None:
                dated.append((i, when))
            # One check = one trust: report each Observation performed by another Organization.
            if performer is not None:
                if first_trust is None:
                    first_trust = performer
                elif performer != first_trust:
                    self.add(f"entry[{i}].resource.performer",
                             "refers to another Organization than the other Observations: one check, one trust")
        # One check = one date: the date most Observations have is the check's; report the others.
        first_date = Counter(when for _, when in dated).most_common(1)[0][0] if dated else None
        for i, when in dated:
            if when != first_date:
                self.add(f"entry[{i}].resource.effectiveDateTime",
                         "differs from the other Observations: one check has one date")
        pdf, author, documented = self.letter(patient)
        if author is not None and first_trust is not None and author != first_trust:
            self.add("entry", "the letter's author is not the Organization that performed the Observations")
        trust_url = first_trust or author
        performed_on = first_date or documented
        if not observations and pdf is None and not self.problems:
            self.add("entry", "holds no Observation and no letter: nothing to file")
        if performed_on is None and not self.problems:
            self.add("entry", "gives no date of the check (Observation.effectiveDateTime)")
        if birth and performed_on and birth > performed_on:
            self.add("entry", "the Patient's birthDate is after the date of the check")
        if self.problems:
            return None
        assert check_id and version and nhs and birth and performed_on and trust_url
        trust = _ods(self.by_url[trust_url][1])
        assert trust is not None
        filed = tuple(ReceivedItem(snomed, display, value, unit, ucum, performed_on)
                      for snomed, display, value, unit, ucum in items)
        digest = content_digest(nhs, performed_on, trust, [(x.snomed, x.value, x.ucum) for x in filed])
        return ReceivedCheck(check_id=check_id, version=version, nhs_number=nhs, birth_date=birth,
                             practice_code=practice, trust_code=trust, performed_on=performed_on, items=filed,
                             letter_pdf=pdf, digest=digest)


def _read(data: Mapping[str, Any], today: date) -> tuple[list[Problem], ReceivedCheck | None]:
    reader = _Reader(data, today)
    received = reader.run()
    return reader.problems[:MAX_PROBLEMS], received

