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
    BUNDLE_TYPES,
    MAX_PROBLEMS,
    NHS_NUMBER_SYSTEM,
    OBSERVATION_STATUSES,
    SNOMED,
    UCUM,
)
from parity.interop.fhir.fields import (
    _check_id_from,
    _full_date,
    _Item,
    _list,
    _obj,
    _ods,
    _ods_of_identifiers,
    _problem,
    known_snomed_codes,
    pydantic_problems,
)
from parity.interop.record import content_digest


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
    recorded_by: str = ""


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
    amended: bool = False
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
    these are the rules of the published receiving contract (``docs/receiving-checks.md``): a
    collection, message or document Bundle; exactly one Patient with one valid NHS number and a
    birth date; every result final/amended/corrected, about that Patient, with its own full date
    that is not after ``today``, one SNOMED CT code Parity can choose, UCUM quantities; the blood
    pressure panel with both readings; an organisation (ODS code) that sent or performed it; a PDF
    letter if there is one. Anything else (identifiers, versionId, other resources and code
    systems) is ignored.
    """
    data = bundle if isinstance(bundle, Mapping) else json.loads(bundle.model_dump_json(exclude_none=True))
    problems, _ = _read(data, today or _today())
    return problems


def _today() -> date:
    return datetime.now(_LONDON).date()


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

class _Reader:
    """Walks a Bundle dict once, collecting problems and, when there are none, the received check.

    What it requires and what it ignores is the published receiving contract
    (``docs/receiving-checks.md``); each rule there names the method here that applies it.
    """

    def __init__(self, data: Mapping[str, Any], today: date) -> None:
        self.data = data
        self.today = today
        self.problems: list[Problem] = []
        self.by_url: dict[str, tuple[int, dict[str, Any]]] = {}
        self.patient_nhs: str | None = None

    def add(self, path: str | None, reason: str) -> None:
        self.problems.append(_problem(path, reason))

    def _register(self, i: int, e: dict[str, Any], res: dict[str, Any]) -> None:
        """Index an entry under every name a reference may use: its fullUrl and ``Type/id``
        (FHIR R4 Bundle §3.3.1: relative references resolve against the entry's fullUrl base)."""
        url = e.get("fullUrl")
        keys: list[str] = []
        if isinstance(url, str) and url:
            keys.append(url)
            m = re.search(r"([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?$", url)
            if m and not url.startswith("urn:") and m.group(1) == res.get("resourceType"):
                keys.append(f"{m.group(1)}/{m.group(2)}")
        rid = res.get("id")
        if isinstance(rid, str) and res.get("resourceType"):
            keys.append(f"{res['resourceType']}/{rid}")
        for key in dict.fromkeys(keys):
            self.by_url.setdefault(key, (i, res))

    def resolve(self, ref: Any, resource_type: str) -> tuple[str, int, dict[str, Any]] | None:
        url = _obj(ref).get("reference")
        found = self.by_url.get(url) if isinstance(url, str) else None
        if found is None or found[1].get("resourceType") != resource_type:
            return None
        return url, found[0], found[1]

    def org_ods(self, ref: Any) -> str | None:
        """The ODS code of an Organization reference: an entry of this Bundle, or a logical
        reference by identifier (``{"identifier": {"system": ODS, "value": ...}}``) with no entry."""
        found = self.resolve(ref, "Organization")
        if found is not None:
            return _ods(found[2])
        ref = _obj(ref)
        if ref.get("type") not in (None, "Organization") or "reference" in ref and not ref.get("identifier"):
            return None
        return _ods_of_identifiers(ref.get("identifier"))

    def entries(self, resource_type: str) -> Iterator[tuple[int, dict[str, Any]]]:
        for i, e in enumerate(_list(self.data.get("entry"))):
            res = _obj(_obj(e).get("resource"))
            if res.get("resourceType") == resource_type:
                yield i, res

    # -- the parts ------------------------------------------------------------------------------
    def bundle(self) -> tuple[str | None, int, str | None]:
        """(check id from Bundle.identifier or None, version, sending organisation's ODS code)."""
        data = self.data
        if data.get("resourceType") != "Bundle":
            self.add("resourceType", "must be Bundle")
        kind = data.get("type")
        if kind not in BUNDLE_TYPES:
            self.add("type", "must be collection, message or document (one check per Bundle)")
        check_id = _check_id_from(_obj(data.get("identifier")))
        # meta.versionId is set by FHIR servers; a sender need not: version 1 unless it is a number.
        version_text = _obj(data.get("meta")).get("versionId")
        version = int(version_text) if isinstance(version_text, str) and version_text.isdigit() else 1
        entries = _list(data.get("entry"))
        if not entries:
            self.add("entry", "is empty")
        seen: set[str] = set()
        for i, e in enumerate(entries):
            e = _obj(e)
            url = e.get("fullUrl")
            if isinstance(url, str) and url:
                if url in seen:
                    self.add(f"entry[{i}].fullUrl", "is used by another entry")
                seen.add(url)
            self._register(i, e, _obj(e.get("resource")))
        sender = None
        if kind == "message":
            first = _obj(_obj(entries[0]).get("resource")) if entries else {}
            if first.get("resourceType") != "MessageHeader":
                self.add("entry[0].resource", "must be the MessageHeader in a message Bundle")
            else:
                sender = self.org_ods(first.get("sender"))
                if check_id is None and isinstance(first.get("id"), str):
                    check_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"MessageHeader|{first['id']}"))
        return check_id, max(version, 1), sender

    def patient(self) -> tuple[str | None, str | None, date | None, str | None]:
        """(Patient entry key, NHS number, birth date, practice ODS code)."""
        patients = list(self.entries("Patient"))
        if len(patients) != 1:
            self.add("entry", f"must hold exactly one Patient (found {len(patients)})")
            return None, None, None, None
        i, res = patients[0]
        p = f"entry[{i}].resource"
        nhs_ids = [(k, _obj(x)) for k, x in enumerate(_list(res.get("identifier")))
                   if _obj(x).get("system") == NHS_NUMBER_SYSTEM]
        nhs = None
        values = {v.get("value") for _, v in nhs_ids}
        if len(nhs_ids) == 0 or len(values) != 1:
            self.add(f"{p}.identifier", f"must hold exactly one NHS number (system {NHS_NUMBER_SYSTEM}), "
                                        f"found {len(values)}")
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
        # The registered practice, when the sender names one (entry or ODS identifier); a reference
        # to a Practitioner or an unresolvable one is ignored: the mailbox says which practice it is.
        practice = None
        for gp in _list(res.get("generalPractitioner")):
            practice = self.org_ods(gp)
            if practice:
                break
        self.patient_nhs = nhs
        return f"#patient{i}", nhs, birth, practice

    def is_patient(self, ref: Any, patient_index: int | None) -> bool:
        found = self.resolve(ref, "Patient")
        if found is not None:
            return found[1] == patient_index
        # A logical reference by NHS number to the same patient (references by identifier).
        ident = _obj(_obj(ref).get("identifier"))
        return (ident.get("system") == NHS_NUMBER_SYSTEM and self.patient_nhs is not None
                and ident.get("value") == self.patient_nhs)

    def snomed(self, concept: Any, path: str) -> tuple[list[tuple[int, str, bool]], int]:
        """The valid SNOMED CT codings of a CodeableConcept as (code, display, userSelected), and how
        many SNOMED CT codings had an invalid concept id (reported). Other code systems are ignored."""
        found: list[tuple[int, str, bool]] = []
        invalid = 0
        for k, coding in enumerate(_list(_obj(concept).get("coding"))):
            coding = _obj(coding)
            if coding.get("system") != SNOMED:
                continue  # LOINC, CTV3, local codes: a translation Parity does not file
            code = coding.get("code")
            if isinstance(code, str) and is_concept_id(code):
                display = coding.get("display") or _obj(concept).get("text") or ""
                found.append((int(code), str(display), coding.get("userSelected") is True))
            else:
                self.add(f"{path}.coding[{k}].code", "is not a valid SNOMED CT concept id")
                invalid += 1
        return found, invalid

    def choose(self, concept: Any, path: str) -> tuple[int, str] | None:
        """The one SNOMED CT code to file from a CodeableConcept (contract: "one code per result").

        Codings of one concept are translations of each other (FHIR R4 CodeableConcept), so: the
        coding the sender marked ``userSelected`` if Parity knows it, else the first Parity knows
        (PBCL and PaLM codings of one test), else the only SNOMED CT coding there is.
        """
        found, invalid = self.snomed(concept, path)
        if invalid:
            return None
        known = known_snomed_codes()
        ranked = [c for c in found if c[2] and c[0] in known] + [c for c in found if c[0] in known]
        if ranked:
            return ranked[0][0], ranked[0][1]
        if len(found) == 1:
            return found[0][0], found[0][1]
        if found:
            self.add(f"{path}.coding", "has several SNOMED CT codings and none is in Parity's codelists: "
                                       "the code to file is ambiguous")
        else:
            self.add(f"{path}.coding", f"needs a SNOMED CT coding (system {SNOMED})")
        return None

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

    def when(self, res: dict[str, Any], p: str) -> date | None:
        """The clinically relevant date: effectiveDateTime, effectivePeriod.start or effectiveInstant."""
        if "effectiveDateTime" in res:
            key, raw = "effectiveDateTime", res.get("effectiveDateTime")
        elif "effectivePeriod" in res:
            key, raw = "effectivePeriod.start", _obj(res.get("effectivePeriod")).get("start")
        elif "effectiveInstant" in res:
            key, raw = "effectiveInstant", res.get("effectiveInstant")
        else:
            self.add(f"{p}.effectiveDateTime", "is missing: the date of each result is required (effective[x])")
            return None
        day = _full_date(raw)
        if day is None:
            self.add(f"{p}.{key}", "must be a full date (YYYY-MM-DD)")
        elif day > self.today:
            self.add(f"{p}.{key}", "is in the future")
            return None
        return day

    def observation(self, i: int, res: dict[str, Any], patient_index: int | None
                    ) -> tuple[list[_Item], date | None, str | None, bool]:
        """Check one Observation; return its items, its date, its performer's ODS code (or None) and
        whether it was ignored (a panel header, or data absent)."""
        p = f"entry[{i}].resource"
        has_value = any(k.startswith("value") for k in res) or bool(_list(res.get("component")))
        if not has_value and (_list(res.get("hasMember")) or "dataAbsentReason" in res):
            return [], None, None, True  # a group header or "data absent": nothing to file
        if res.get("status") not in OBSERVATION_STATUSES:
            self.add(f"{p}.status", "must be " + ", ".join(OBSERVATION_STATUSES[:-1]) + " or "
                     + OBSERVATION_STATUSES[-1])
        if not self.is_patient(res.get("subject"), patient_index):
            self.add(f"{p}.subject.reference", "must refer to the Patient of this Bundle")
        when = self.when(res, p)
        performer = None
        for ref in _list(res.get("performer")):
            performer = self.org_ods(ref)
            if performer:
                break
        for key in res:
            if key.startswith("value") and key not in ("valueQuantity", "valueCodeableConcept"):
                self.add(f"{p}.{key}", "is not supported: a result is a valueQuantity, a valueCodeableConcept "
                                       "or the coded Observation itself")
        items: list[_Item] = []
        components = _list(res.get("component"))
        if components:
            code = self.choose(res.get("code"), f"{p}.code") if res.get("code") else None
            items = self.panel(p, res, code, components)
        elif "valueCodeableConcept" in res:
            # A coded answer ("smoking status: current smoker"): the answer's concept is what is filed.
            answer = self.choose(res["valueCodeableConcept"], f"{p}.valueCodeableConcept")
            if answer:
                items.append((answer[0], answer[1], None, "", ""))
        else:
            code = self.choose(res.get("code"), f"{p}.code")
            if "valueQuantity" in res:
                value = self.quantity(res["valueQuantity"], f"{p}.valueQuantity")
                if code and value:
                    items.append((code[0], code[1], *value))
            elif code:
                if code[0] == BP_PANEL:
                    self.add(f"{p}.component", "needs a systolic and a diastolic reading with a value")
                else:
                    items.append((code[0], code[1], None, "", ""))
        return items, when, performer, False

    def panel(self, p: str, res: dict[str, Any], code: tuple[int, str] | None,
              components: list[Any]) -> list[_Item]:
        """A panel's components (blood pressure, §2.1): each a SNOMED CT code with a UCUM quantity."""
        if "valueQuantity" in res:
            self.add(f"{p}.valueQuantity", "must not be set on a panel: the readings are its components")
        items: list[_Item] = []
        for k, comp in enumerate(components):
            cp = f"{p}.component[{k}]"
            comp_code = self.choose(_obj(comp).get("code"), f"{cp}.code")
            if "valueQuantity" not in _obj(comp):
                self.add(f"{cp}.valueQuantity", "is missing: a reading needs a value")
                continue
            value = self.quantity(_obj(comp)["valueQuantity"], f"{cp}.valueQuantity")
            if comp_code and value:
                items.append((comp_code[0], comp_code[1], *value))
        have = {s for s, *_ in items}
        missing = [name for name, c in (("systolic", BP_SYSTOLIC), ("diastolic", BP_DIASTOLIC)) if c not in have]
        if code is not None and code[0] == BP_PANEL and missing:
            self.add(f"{p}.component", "needs a " + " and a " .join(missing) + " reading with a value")
        return items

    def letter(self, patient_index: int | None) -> tuple[bytes | None, str | None, date | None]:
        """(PDF, author ODS code, documented date) of the DocumentReference, if there is one."""
        docs = list(self.entries("DocumentReference"))
        if len(docs) > 1:
            self.add("entry", f"must hold at most one DocumentReference (found {len(docs)})")
        if not docs:
            return None, None, None
        i, res = docs[0]
        p = f"entry[{i}].resource"
        if res.get("status") != "current":
            self.add(f"{p}.status", "must be current")
        if not self.is_patient(res.get("subject"), patient_index):
            self.add(f"{p}.subject.reference", "must refer to the Patient of this Bundle")
        author = None
        for ref in _list(res.get("author")):
            author = self.org_ods(ref)
            if author:
                break
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
        check_id, version, sender = self.bundle()
        _, nhs, birth, practice = self.patient()
        patients = list(self.entries("Patient"))
        patient_index = patients[0][0] if len(patients) == 1 else None
        observations = list(self.entries("Observation"))
        read: list[tuple[int, list[_Item], date | None, str | None]] = []
        amended = False
        for i, res in observations:
            found, when, performer, ignored = self.observation(i, res, patient_index)
            if not ignored:
                read.append((i, found, when, performer))
                amended = amended or res.get("status") in ("amended", "corrected")
        pdf, author, documented = self.letter(patient_index)
        # The organisation that sent the check: the MessageHeader's sender, else the letter's author,
        # else the organisation that performed most results. A result with no performer of its own
        # is taken to be performed by it (contract: "each result with its own date and performer").
        performers = Counter(perf for _, _, _, perf in read if perf)
        trust = sender or author or (performers.most_common(1)[0][0] if performers else None)
        if trust is None:
            self.add("entry", "names no organisation (ODS code) that sent or performed the results: give "
                              "Observation.performer or MessageHeader.sender")
        filed: list[tuple[_Item, date, str]] = []
        for _, found, when, performer in read:
            if when is not None and (performer or trust):
                filed.extend((item, when, performer or trust or "") for item in found)
        # The check's date: the date most results have (the latest of equals), else the letter's.
        dates = Counter(when for _, _, when, _ in read if when is not None)
        performed_on = max(dates, key=lambda d: (dates[d], d)) if dates else documented
        if not read and pdf is None and not self.problems:
            self.add("entry", "holds no Observation and no letter: nothing to file")
        if read and not filed and not self.problems:
            self.add("entry", "holds no result Parity can file")
        if performed_on is None and not self.problems:
            self.add("entry", "gives no date of the check (Observation.effectiveDateTime)")
        if birth and dates and birth > min(dates):
            self.add("entry", "the Patient's birthDate is after the date of a result")
        elif birth and performed_on and birth > performed_on:
            self.add("entry", "the Patient's birthDate is after the date of the check")
        if self.problems:
            return None
        assert nhs and birth and performed_on and trust
        items = tuple(ReceivedItem(snomed, display, value, unit, ucum, day, ods)
                      for (snomed, display, value, unit, ucum), day, ods in filed)
        digest = content_digest(nhs, performed_on, trust,
                                [(x.snomed, x.value, x.ucum, x.date, x.recorded_by) for x in items])
        # No identifier: the content is the identity (a resend files once; an amendment is held).
        check_id = check_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"parity:content:{digest}"))
        return ReceivedCheck(check_id=check_id, version=version, nhs_number=nhs, birth_date=birth,
                             practice_code=practice, trust_code=trust, performed_on=performed_on, items=items,
                             letter_pdf=pdf, digest=digest, amended=amended)


def _read(data: Mapping[str, Any], today: date) -> tuple[list[Problem], ReceivedCheck | None]:
    reader = _Reader(data, today)
    received = reader.run()
    return reader.problems[:MAX_PROBLEMS], received
