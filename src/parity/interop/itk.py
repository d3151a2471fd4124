"""ITK3 messages over MESH (FHIR STU3, ``fhir.resources.STU3``): responses and GP Connect Send Document.

- ``build_response`` / ``parse_response``: the ITK3 Response (event ``ITK008M``) a receiver returns to a
  sender: an **infrastructure** acknowledgement (the message could be read: response codes 1xxxx and
  2xxxx) and a **business** acknowledgement (what became of it: 3xxxx). Parity replies with them to
  every check it receives, and reads them from GP systems (GP Connect Send Document ``_ACK``).
- ``build_send_document`` / ``parse_send_document``: GP Connect Send Document, the letter as a PDF in
  an ITK3 message (MessageHeader event ``ITK007C``; focus a document Bundle with Composition,
  Patient, Organization, Practitioner and the Binary PDF).

Sources (read, not copied): ``nhsconnect/gpconnect-messaging`` (``_data/senddoc_requirements.yml``
GPCM-SD-039..055 and 103..124; ``_includes/senddocument/consultation_report.xml``), ITK3 response codes
(``nhsconnect/Dose-Syntax-Implementation`` ``pages/explore/explore_response_codes.md``). ITK3 is STU3
only, so acknowledgements are STU3 even for the UK Core R4 check Bundle (docs/receiving-checks.md).

Nothing here puts patient data into a response: codes and fixed wording, FHIR paths, never values.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pydantic
from fhir.resources.STU3.bundle import Bundle as Stu3Bundle

from parity.errors import Problem, ValidationError

ITK_MESSAGE_EVENT = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2"
ITK_RESPONSE_CODES = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-ResponseCodes-1"
ITK_RECIPIENT_TYPE = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-RecipientType-1"
ITK_HANDLING = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-ITK-MessageHandling-2"
ITK_MESSAGE_BUNDLE = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Message-Bundle-1"
ITK_HEADER = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-MessageHeader-2"
SEND_DOCUMENT_DEFINITION = "https://fhir.nhs.uk/STU3/MessageDefinition/ITK-GPConnectSendDocument-MessageDefinition-1"
RESPONSE_DEFINITION = "https://fhir.nhs.uk/STU3/MessageDefinition/ITK-Response-MessageDefinition-1"
RFC4122 = "https://tools.ietf.org/html/rfc4122"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
SNOMED = "http://snomed.info/sct"
#: Parity's reason codes beside the ITK code (docs/receiving-checks.md, "Replies"); a URN because
#: the code system is Parity's own and has no registered address.
PARITY_REASONS = "urn:parity:receiving-checks:reason"

SEND_DOCUMENT_WORKFLOW = "GPCONNECT_SEND_DOCUMENT"
EVENT_SEND_DOCUMENT = "ITK007C"
EVENT_RESPONSE = "ITK008M"
#: SNOMED CT 371531000 "Report of clinical encounter": the Send Document Composition.type (GPCM-SD-115).
REPORT_OF_CLINICAL_ENCOUNTER = "371531000"

#: ITK3 response codes Parity sends or understands: code -> (display, positive).
ITK_CODES: dict[str, tuple[str, bool]] = {
    "10009": ("Unreadable message received", False),
    "20008": ("Duplicate Document received", False),
    "20009": ("Payload validation failure", False),
    "20010": ("Unrecognised Payload Recipient Organisation", False),
    "20013": ("Success", True),
    "30001": ("Patient known here", True),
    "30002": ("Patient not known here", False),
    "30003": ("Patient no longer at this clinical setting", False),
}

#: Parity reason code -> (ITK code, fixed text). The ITK code says whether it is infrastructure (1/2xxxx)
#: or business (3xxxx) and positive or negative; the reason says exactly which rule.
REASONS: dict[str, tuple[str, str]] = {
    "received": ("20013", "the message was read"),
    "malformed": ("20009", "the message is not a check Parity can read: see the issues"),
    "unreadable": ("10009", "the message is not JSON FHIR"),
    "filed": ("30001", "the results were filed in the patient's GP record"),
    "already-filed": ("30001", "these results were already filed; nothing was filed twice"),
    "letter-filed": ("30001", "the letter was filed on the patient's record for coding by hand"),
    "filed-by-hand": ("30001", "the practice resolved the exception and filed the results"),
    "unknown-patient": ("30002", "the NHS number is not in the practice record"),
    "dob-mismatch": ("30002", "the date of birth does not match the practice record"),
    "not-registered": ("30003", "the patient was not registered at the practice on the date of the check"),
    "other-practice": ("20010", "the check is addressed to another practice"),
    "amended-held": ("20008", "an amended version of a check already filed: held for the practice to review"),
    "dismissed": ("30002", "the practice closed the exception without filing"),
}


class ItkError(ValidationError):
    """An ITK3 message could not be read; problems name the path and reason, never a value."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"the ITK3 message has {len(problems)} problem(s)", problems)


def _problem(path: str | None, reason: str) -> Problem:
    return Problem("itk", None, path, reason)


def _validated(bundle: dict[str, Any]) -> str:
    """STU3 JSON text of ``bundle`` after the fhir.resources STU3 models accept it."""
    try:
        return Stu3Bundle.model_validate(bundle).model_dump_json(exclude_none=True)
    except pydantic.ValidationError as exc:  # a bug in Parity: never send an invalid message
        raise ItkError([_problem(".".join(str(x) for x in e.get("loc", ())), "is not valid STU3")
                        for e in exc.errors()[:20]]) from None


def _handling(*, bus_ack: bool, inf_ack: bool, recipient: str, definition: str, sender_reference: str,
              local: str) -> dict[str, Any]:
    display = {"FA": "For Action", "FI": "For Information"}[recipient]
    return {"url": ITK_HANDLING, "extension": [
        {"url": "BusAckRequested", "valueBoolean": bus_ack},
        {"url": "InfAckRequested", "valueBoolean": inf_ack},
        {"url": "RecipientType", "valueCoding": {"system": ITK_RECIPIENT_TYPE, "code": recipient, "display": display}},
        {"url": "MessageDefinition", "valueReference": {"reference": definition}},
        {"url": "SenderReference", "valueString": sender_reference or "None"},
        {"url": "LocalExtension", "valueString": local},
    ]}


def _org(ods: str, profile: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "meta": {"profile": [profile]},
            "identifier": [{"system": ODS_SYSTEM, "value": ods}]}


# == responses =====================================================================================

@dataclass(frozen=True)
class Response:
    """An ITK3 Response as read: which message it answers, its ITK code and Parity reason (if any)."""

    in_reply_to: str
    itk_code: str
    positive: bool
    kind: str              # "infrastructure" (1xxxx, 2xxxx) or "business" (3xxxx)
    reason: str | None     # Parity's reason code, when the responder is Parity
    text: str              # fixed wording: the ITK display, or Parity's reason text
    issues: tuple[str, ...] = ()


def as_fhir_id(value: str) -> str:
    """``value`` as an STU3 ``id`` (what MessageHeader.response.identifier holds): a ``urn:uuid`` loses
    its prefix; anything else that is not an id becomes a uuid5 of it."""
    value = value.removeprefix("urn:uuid:")
    if re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", value):
        return value
    return str(uuid.uuid5(uuid.NAMESPACE_URL, value))


def kind_of(itk_code: str) -> str:
    return "business" if itk_code.startswith("3") else "infrastructure"


def build_response(*, in_reply_to: str, reason: str, responder_ods: str, mailbox: str,
                   sender_reference: str = "", issues: Sequence[tuple[str | None, str]] = (),
                   at: datetime | None = None) -> str:
    """An ITK3 Response message (JSON text) answering message ``in_reply_to`` with Parity ``reason``.

    ``issues`` are (FHIR path, reason) pairs of a refused message; they carry no values.
    """
    itk, text = REASONS[reason]
    display, positive = ITK_CODES[itk]
    at = at or datetime.now().astimezone()
    header_id = str(uuid.uuid4())
    org_url, outcome_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    details = [{"system": ITK_RESPONSE_CODES, "code": itk, "display": display},
               {"system": PARITY_REASONS, "code": reason, "display": text}]
    outcome_issues = [{"severity": "information" if positive else "error",
                       "code": "informational" if positive else ("invalid" if itk == "20009" else "processing"),
                       "details": {"coding": details}, "diagnostics": text}]
    for path, why in list(issues)[:50]:
        outcome_issues.append({"severity": "error", "code": "invalid", "diagnostics": why[:500],
                               **({"expression": [path]} if path else {})})
    bundle = {
        "resourceType": "Bundle", "id": str(uuid.uuid4()), "meta": {"profile": [ITK_MESSAGE_BUNDLE]},
        "identifier": {"system": RFC4122, "value": str(uuid.uuid4())}, "type": "message",
        "entry": [
            {"fullUrl": f"urn:uuid:{header_id}", "resource": {
                "resourceType": "MessageHeader", "id": header_id, "meta": {"profile": [ITK_HEADER]},
                "extension": [_handling(bus_ack=False, inf_ack=False, recipient="FI", definition=RESPONSE_DEFINITION,
                                        sender_reference=sender_reference, local="None")],
                "event": {"system": ITK_MESSAGE_EVENT, "code": EVENT_RESPONSE, "display": "ITK Response"},
                "sender": {"reference": org_url},
                "timestamp": at.isoformat(timespec="seconds"),
                "source": {"endpoint": mailbox},
                "response": {"identifier": as_fhir_id(in_reply_to), "code": "ok" if positive else "fatal-error",
                             "details": {"reference": outcome_url}},
            }},
            {"fullUrl": org_url, "resource": _org(responder_ods,
                                                  "https://fhir.nhs.uk/STU3/StructureDefinition/"
                                                  "CareConnect-ITK-Header-Organization-1")},
            {"fullUrl": outcome_url, "resource": {"resourceType": "OperationOutcome", "issue": outcome_issues}},
        ],
    }
    return _validated(bundle)


def _json(payload: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(payload.decode("utf-8-sig") if isinstance(payload, bytes) else payload)
    except (UnicodeDecodeError, ValueError):
        raise ItkError([_problem(None, "is not JSON")]) from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise ItkError([_problem("resourceType", "must be Bundle")])
    return data


def _resources(bundle: Mapping[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    out = []
    for e in bundle.get("entry") or []:
        if isinstance(e, dict) and isinstance(e.get("resource"), dict):
            out.append((e.get("fullUrl"), e["resource"]))
    return out


def _by_ref(bundle: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for url, res in _resources(bundle):
        if isinstance(url, str):
            found[url] = res
        if isinstance(res.get("id"), str):
            found.setdefault(f"{res.get('resourceType')}/{res['id']}", res)
    return found


def _header(bundle: Mapping[str, Any]) -> dict[str, Any]:
    entries = _resources(bundle)
    if bundle.get("type") != "message" or not entries or entries[0][1].get("resourceType") != "MessageHeader":
        raise ItkError([_problem("entry[0].resource", "must be the MessageHeader of a message Bundle")])
    return entries[0][1]


def parse_response(payload: bytes | str) -> Response:
    """Read an ITK3 Response (Parity's own or a GP system's), or raise ``ItkError``."""
    bundle = _json(payload)
    header = _header(bundle)
    response = header.get("response") if isinstance(header.get("response"), dict) else None
    if response is None or not isinstance(response.get("identifier"), str):
        raise ItkError([_problem("entry[0].resource.response.identifier", "is required in an ITK3 Response")])
    refs = _by_ref(bundle)
    outcome = refs.get(str((response.get("details") or {}).get("reference")), {})
    itk_code, reason, text, issues = None, None, "", []
    for issue in outcome.get("issue") or []:
        for coding in ((issue.get("details") or {}).get("coding") or []):
            if coding.get("system") == ITK_RESPONSE_CODES and itk_code is None:
                itk_code = str(coding.get("code"))
                text = text or str(coding.get("display") or "")
            elif coding.get("system") == PARITY_REASONS and reason is None:
                reason = str(coding.get("code"))
                text = str(coding.get("display") or text)
        if not (issue.get("details") or {}).get("coding") and issue.get("diagnostics"):
            where = (issue.get("expression") or [""])[0]
            issues.append(f"{where}: {issue['diagnostics']}" if where else str(issue["diagnostics"]))
    if itk_code is None:  # a response with no OperationOutcome: "ok" is a success (ITK3 "Infrastructure ACK: OK")
        ok = response.get("code") == "ok"
        itk_code, text = ("20013", "Success") if ok else ("20009", "Payload validation failure")
    positive = ITK_CODES.get(itk_code, ("", response.get("code") == "ok"))[1]
    return Response(in_reply_to=response["identifier"], itk_code=itk_code, positive=positive,
                    kind=kind_of(itk_code), reason=reason, text=text[:300], issues=tuple(i[:300] for i in issues[:20]))


# == GP Connect Send Document ======================================================================

@dataclass(frozen=True)
class Letter:
    """What Send Document carries about one letter (the trust side's input)."""

    nhs_number: str
    date_of_birth: date
    family_name: str
    given_name: str
    trust_code: str
    trust_name: str
    practice_code: str
    performed_on: date
    performed_by: str
    pdf: bytes
    title: str = "Physical health check letter"


def message_id_for(local_id: str, send: int) -> str:
    """The MessageHeader id of the ``send``-th sending of an outbox entry (its ITK3 responses quote it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"parity:send-document:{local_id}#{send}"))


def gpprovider_address(nhs_number: str, date_of_birth: date, family_name: str) -> str:
    """``GPPROVIDER_<NHS number>_<date of birth>_<surname>``: MESH routing to the registered practice.

    The date is YYYYMMDD, as the NHS MESH guidance and Send Document v2 say (the 2020 GP Connect page
    says DDMMYYYY; interop-and-peers.md §1.5 follows the newer sources).
    """
    surname = "".join(ch for ch in family_name.upper() if ch.isalpha() or ch in "-'")[:35] or "UNKNOWN"
    return f"GPPROVIDER_{nhs_number}_{date_of_birth.strftime('%Y%m%d')}_{surname}"


def build_send_document(letter: Letter, *, message_id: str, sender_mailbox: str, version: int,
                        sender_reference: str, at: datetime | None = None) -> str:
    """A GP Connect Send Document message (JSON text): the letter PDF for the patient's practice."""
    at = at or datetime.now().astimezone()
    u = {k: f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{message_id}#{k}')}" for k in
         ("header-org", "document", "composition", "binary", "practitioner", "custodian", "patient")}
    patient = {
        "resourceType": "Patient", "meta": {"profile": [
            "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Patient-1"]},
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": letter.nhs_number}],
        "name": [{"use": "official", "family": letter.family_name or "Unknown",
                  **({"given": [letter.given_name]} if letter.given_name else {})}],
        "birthDate": letter.date_of_birth.isoformat(),
    }
    composition = {
        "resourceType": "Composition", "meta": {"profile": [
            "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Composition-1"]},
        "identifier": {"system": RFC4122, "value": sender_reference},
        "status": "final",
        "type": {"coding": [{"system": SNOMED, "code": REPORT_OF_CLINICAL_ENCOUNTER,
                             "display": "Report of clinical encounter"}]},
        "date": at.isoformat(timespec="seconds"),
        "confidentiality": "N",
        "title": letter.title,
        "subject": {"reference": u["patient"]},
        "author": [{"reference": u["practitioner"]}],
        "custodian": {"reference": u["custodian"]},
        "section": [{"title": f"{letter.title}, version {version}", "entry": [{"reference": u["binary"]}]}],
    }
    document = {
        "resourceType": "Bundle", "meta": {"profile": ["https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Document-Bundle-1"]},
        "identifier": {"system": RFC4122, "value": sender_reference}, "type": "document",
        "entry": [
            {"fullUrl": u["composition"], "resource": composition},
            {"fullUrl": u["binary"], "resource": {
                "resourceType": "Binary", "meta": {"profile": [
                    "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Attachment-Binary-1"]},
                "contentType": "application/pdf", "content": base64.b64encode(letter.pdf).decode("ascii")}},
            {"fullUrl": u["practitioner"], "resource": {
                "resourceType": "Practitioner", "meta": {"profile": [
                    "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Practitioner-1"]},
                "name": [{"use": "official", "text": letter.performed_by[:200] or "Unknown"}]}},
            {"fullUrl": u["custodian"], "resource": {
                **_org(letter.trust_code, "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Organization-1"),
                "name": letter.trust_name or letter.trust_code}},
            {"fullUrl": u["patient"], "resource": patient},
        ],
    }
    bundle = {
        "resourceType": "Bundle", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{message_id}#bundle")),
        "meta": {"profile": [ITK_MESSAGE_BUNDLE]},
        "identifier": {"system": RFC4122, "value": message_id}, "type": "message",
        "entry": [
            {"fullUrl": f"urn:uuid:{message_id}", "resource": {
                "resourceType": "MessageHeader", "id": message_id, "meta": {"profile": [ITK_HEADER]},
                "extension": [_handling(bus_ack=True, inf_ack=True, recipient="FA", definition=SEND_DOCUMENT_DEFINITION,
                                        sender_reference=sender_reference, local="SendDocument-ConsultationReport")],
                "event": {"system": ITK_MESSAGE_EVENT, "code": EVENT_SEND_DOCUMENT,
                          "display": "ITK GP Connect Send Document"},
                "sender": {"reference": u["header-org"]},
                "timestamp": at.isoformat(timespec="seconds"),
                "source": {"endpoint": sender_mailbox},
                "focus": [{"reference": u["document"]}],  # STU3 MessageHeader.focus is 0..*
            }},
            {"fullUrl": u["header-org"], "resource": _org(
                letter.trust_code, "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-ITK-Header-Organization-1")},
            {"fullUrl": u["document"], "resource": document},
        ],
    }
    return _validated(bundle)


@dataclass(frozen=True)
class ReceivedDocument:
    """A Send Document message as read at a practice: the message it answers to, the patient and the PDF."""

    message_id: str
    sender_reference: str
    bus_ack: bool
    inf_ack: bool
    nhs_number: str
    birth_date: date
    sender_ods: str | None
    documented_on: date
    title: str
    pdf: bytes


def _handling_flags(header: Mapping[str, Any]) -> tuple[bool, bool, str]:
    bus, inf, ref = True, True, ""
    for ext in header.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == ITK_HANDLING:
            for sub in ext.get("extension") or []:
                if sub.get("url") == "BusAckRequested":
                    bus = sub.get("valueBoolean") is not False
                elif sub.get("url") == "InfAckRequested":
                    inf = sub.get("valueBoolean") is not False
                elif sub.get("url") == "SenderReference":
                    ref = str(sub.get("valueString") or "")
    return bus, inf, ref


def message_reference(payload: bytes | str) -> str | None:
    """The id a response should quote: the MessageHeader id, else the Bundle id or identifier (or None)."""
    try:
        bundle = _json(payload)
    except ItkError:
        return None
    entries = _resources(bundle)
    if entries and entries[0][1].get("resourceType") == "MessageHeader" and isinstance(entries[0][1].get("id"), str):
        return str(entries[0][1]["id"])
    if isinstance(bundle.get("id"), str):
        return str(bundle["id"])
    ident = bundle.get("identifier") if isinstance(bundle.get("identifier"), dict) else {}
    return str(ident["value"]) if isinstance(ident.get("value"), str) else None


def parse_send_document(payload: bytes | str, *, today: date | None = None) -> ReceivedDocument:
    """Read a GP Connect Send Document message, or raise ``ItkError`` naming each problem's path."""
    from nhs_number import is_valid

    bundle = _json(payload)
    try:
        Stu3Bundle.model_validate(bundle)
    except pydantic.ValidationError as exc:
        raise ItkError([_problem(".".join(str(x) for x in e.get("loc", ())) or None, "is not valid FHIR STU3")
                        for e in exc.errors()[:20]]) from None
    except Exception:  # noqa: BLE001 - fhir-core raises KeyError for an unknown resourceType
        raise ItkError([_problem(None, "is not a FHIR STU3 Bundle")]) from None
    header = _header(bundle)
    problems: list[Problem] = []
    event = header.get("event") if isinstance(header.get("event"), dict) else {}
    if event.get("code") != EVENT_SEND_DOCUMENT:
        problems.append(_problem("entry[0].resource.event",
                                 f"must be {EVENT_SEND_DOCUMENT} (GP Connect Send Document)"))
    refs = _by_ref(bundle)
    focus = header.get("focus")
    focus = (focus or [{}])[0] if isinstance(focus, list) else (focus or {})
    document = refs.get(str(focus.get("reference") if isinstance(focus, dict) else None), {})
    if document.get("resourceType") != "Bundle":
        raise ItkError(problems + [_problem("entry[0].resource.focus", "must refer to the document Bundle")])
    inner = _by_ref(document)
    compositions = [r for _, r in _resources(document) if r.get("resourceType") == "Composition"]
    if len(compositions) != 1:
        raise ItkError(problems + [_problem("focus.entry", "must hold exactly one Composition")])
    comp = compositions[0]
    patient = inner.get(str((comp.get("subject") or {}).get("reference")), {})
    nhs = next((str(i.get("value")) for i in patient.get("identifier") or []
                if isinstance(i, dict) and i.get("system") == NHS_NUMBER_SYSTEM), "")
    if not (len(nhs) == 10 and nhs.isdigit() and is_valid(nhs)):
        problems.append(_problem("Composition.subject.identifier", "must hold a valid NHS number"))
    try:
        birth = date.fromisoformat(str(patient.get("birthDate"))[:10])
    except ValueError:
        birth = None
        problems.append(_problem("Composition.subject.birthDate", "is missing or not a full date"))
    custodian = inner.get(str((comp.get("custodian") or {}).get("reference")), {})
    sender_ods = next((str(i.get("value")).upper() for i in custodian.get("identifier") or []
                       if isinstance(i, dict) and i.get("system") == ODS_SYSTEM), None)
    try:
        documented = date.fromisoformat(str(comp.get("date"))[:10])
    except ValueError:
        documented = None
        problems.append(_problem("Composition.date", "is missing or not a date"))
    if documented and today and documented > today:
        problems.append(_problem("Composition.date", "is in the future"))
    pdf = None
    for section in comp.get("section") or []:
        for entry in section.get("entry") or []:
            binary = inner.get(str(entry.get("reference")), {})
            if binary.get("resourceType") == "Binary" and pdf is None:
                try:
                    pdf = base64.b64decode(str(binary.get("content")), validate=True)
                except ValueError:
                    pdf = None
                if binary.get("contentType") != "application/pdf" or not (pdf or b"").startswith(b"%PDF"):
                    problems.append(_problem("Binary.content", "the primary attachment must be a base64 PDF"))
                    pdf = None
    if pdf is None and not any(p.column == "Binary.content" for p in problems):
        problems.append(_problem("Composition.section.entry", "must refer to the letter (a Binary PDF)"))
    if problems:
        raise ItkError(problems)
    assert birth is not None and documented is not None and pdf is not None
    bus, inf, ref = _handling_flags(header)
    return ReceivedDocument(message_id=str(header.get("id") or ""), sender_reference=ref, bus_ack=bus, inf_ack=inf,
                            nhs_number=nhs, birth_date=birth, sender_ods=sender_ods, documented_on=documented,
                            title=str(comp.get("title") or "Letter")[:200], pdf=pdf)
