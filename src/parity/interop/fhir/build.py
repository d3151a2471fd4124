"""Build the FHIR R4 UK Core Bundle of one completed physical health check (the trust side).

One check = one ``collection`` Bundle: the Patient, the GP practice and the trust (Organizations),
one Observation per coded item and, optionally, the letter as a DocumentReference. The models are
``fhir.resources.R4B``: fhir.resources 8 has no R4 module, and R4B serialises these resources the same
way as R4 (interop-and-peers.md §2.3, dependencies.md pitfall 6). Every Bundle built is checked by
``parity.interop.fhir.read`` before it is returned, so an invalid one is never queued.
"""


import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pydantic
from fhir.resources.R4B.bundle import Bundle

from parity.interop.fhir.codes import (
    _CATEGORY_DISPLAY,
    _GENDER,
    _LONDON,
    LETTER_DESCRIPTION,
    LETTER_TITLE,
    LOINC,
    NHS_NUMBER_SYSTEM,
    NHS_VERIFICATION_EXTENSION,
    NHS_VERIFICATION_SYSTEM,
    OBSERVATION_CATEGORY,
    ODS_SYSTEM,
    SNOMED,
    UCUM,
    UKCORE,
    URI_SYSTEM,
)
from parity.interop.fhir.read import BundleError, check_bundle, pydantic_problems
from parity.interop.record import CheckRecord, Result
from parity.rules.template import CheckTemplate, Section

# == building ======================================================================================

def build_bundle(record: CheckRecord, template: CheckTemplate, *, letter_pdf: bytes | None = None,
                 sent_at: datetime | None = None) -> str:
    """The check as a FHIR R4 UK Core ``collection`` Bundle, JSON text.

    Resource ids are ``urn:uuid`` values derived from the check id, so the same record gives the same
    Bundle apart from ``timestamp`` (``sent_at``, default now; a naive ``sent_at`` is local time).
    The output is validated (R4B models and ``check_bundle``) before it is returned; a failure is a
    bug in Parity and raises ``BundleError`` rather than sending it.
    """
    sent = (sent_at or datetime.now(_LONDON)).astimezone()  # a FHIR instant needs a time zone
    urn = _urns(record.check_id)
    patient, practice, trust = urn("patient"), urn("practice"), urn("trust")
    entries: list[tuple[str, dict[str, Any]]] = [
        (patient, _patient(record, practice)),
        (practice, _organization(record.practice_code)),
        (trust, _organization(record.trust_code)),
    ]
    for n, obs in enumerate(_observations(record, template, patient, trust)):
        entries.append((urn(f"observation/{n}"), obs))
    if letter_pdf is not None:
        entries.append((urn("letter"), _letter(letter_pdf, record, patient, trust, sent)))
    raw = {
        "resourceType": "Bundle",
        "meta": {"versionId": str(record.version)},
        "identifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{record.check_id}"},
        "type": "collection",
        "timestamp": sent.isoformat(timespec="seconds"),
        "entry": [{"fullUrl": url, "resource": res} for url, res in entries],
    }
    try:
        payload = Bundle.model_validate(raw).model_dump_json(exclude_none=True)
        Bundle.model_validate_json(payload)
    except pydantic.ValidationError as exc:
        raise BundleError(pydantic_problems(exc)) from None
    problems = check_bundle(json.loads(payload))
    if problems:
        raise BundleError(problems)
    return payload


def _urns(check_id: str) -> Callable[[str], str]:
    def urn(name: str) -> str:
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'urn:uuid:{check_id}#{name}')}"
    return urn


def _patient(record: CheckRecord, practice: str) -> dict[str, Any]:
    # UKCore-Patient: identifier:nhsNumber slice with the verification status extension
    # (interop-and-peers.md §2.1, copied from UKCore-Patient-RichardSmith-Example).
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {"profile": [UKCORE + "UKCore-Patient"]},
        "identifier": [{
            "extension": [{
                "url": NHS_VERIFICATION_EXTENSION,
                "valueCodeableConcept": {"coding": [{
                    "system": NHS_VERIFICATION_SYSTEM, "code": "01", "display": "Number present and verified"}]},
            }],
            "system": NHS_NUMBER_SYSTEM,
            "value": record.nhs_number,
        }],
        "gender": _GENDER.get(record.sex, "unknown"),
        "birthDate": record.date_of_birth.isoformat(),
        "generalPractitioner": [{"reference": practice}],
    }
    if record.family_name or record.given_name:
        name: dict[str, Any] = {"use": "official"}
        if record.family_name:
            name["family"] = record.family_name
        if record.given_name:
            name["given"] = [record.given_name]
        patient["name"] = [name]
    return patient


def _organization(ods_code: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "meta": {"profile": [UKCORE + "UKCore-Organization"]},
        "identifier": [{"system": ODS_SYSTEM, "value": ods_code}],
    }


def _coding(system: str, code: str | int, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": str(code)}
    if display:
        coding["display"] = display
    return coding


def _concept(snomed: int, display: str, loinc: str | None) -> dict[str, Any]:
    # UKCore-Observation-VitalSigns wants both a SNOMED CT and a LOINC coding (§2.1).
    codings = [_coding(SNOMED, snomed, display)]
    if loinc:
        codings.append(_coding(LOINC, loinc))
    return {"coding": codings, "text": display}


def _quantity(result: Result) -> dict[str, Any]:
    # UK Core requires UCUM units (§2.1); ``unit`` is the display unit the clinician reads.
    return {"value": result.value, "unit": result.unit or result.ucum, "system": UCUM, "code": result.ucum}


def _section_category(section: Section) -> str | None:
    if section.panel_snomed is not None:
        return "vital-signs"  # the blood pressure panel (UKCore-Observation-VitalSigns-BloodPressure)
    return next((f.category for f in section.fields if f.category), None)


def _observation(record: CheckRecord, patient: str, trust: str, concept: dict[str, Any], profile: str | None,
                 category: str | None) -> dict[str, Any]:
    obs: dict[str, Any] = {"resourceType": "Observation"}
    if profile:
        obs["meta"] = {"profile": [UKCORE + profile]}
    obs["status"] = "final"  # fixed by UKCore-Observation-VitalSigns (§2.1); a completed check is final
    if category:
        obs["category"] = [{"coding": [_coding(OBSERVATION_CATEGORY, category, _CATEGORY_DISPLAY.get(category))]}]
    obs.update({
        "code": concept,
        "subject": {"reference": patient},
        "effectiveDateTime": record.performed_on.isoformat(),
        "performer": [{"reference": trust}],
    })
    return obs


def _observations(record: CheckRecord, template: CheckTemplate, patient: str, trust: str) -> list[dict[str, Any]]:
    """One Observation per coded item, except that a panel's components (blood pressure) become one
    Observation with components, placed where its first reading is (§2.1 BloodPressure profile)."""
    items = record.coded_items(template)
    components: dict[str, list[Result]] = {}
    for r in items:
        if r.field_id:
            section = template.section(r.section_id)
            if section.panel_snomed is not None and section.field(r.field_id).component_of:
                components.setdefault(section.id, []).append(r)
    out: list[dict[str, Any]] = []
    emitted: set[str] = set()
    for r in items:
        section = template.section(r.section_id)
        if r.section_id in components and r in components[r.section_id]:
            if section.id in emitted:
                continue
            emitted.add(section.id)
            assert section.panel_snomed is not None
            panel = _concept(section.panel_snomed, section.label, section.panel_loinc)
            obs = _observation(record, patient, trust, panel, section.profile, "vital-signs")
            obs["component"] = []
            for c in components[section.id]:
                f = section.field(c.field_id)
                obs["component"].append({"code": _concept(c.snomed, f.label, f.loinc), "valueQuantity": _quantity(c)})
            out.append(obs)
        elif not r.field_id:
            # A declined check: the declined concept is the code; there is no value. The base
            # UKCore-Observation profile, since the vital-signs/lab profiles expect a result.
            out.append(_observation(record, patient, trust, _concept(r.snomed, r.display, None),
                                    "UKCore-Observation", _section_category(section)))
        else:
            f = section.field(r.field_id)
            if f.kind == "quantity":
                obs = _observation(record, patient, trust, _concept(r.snomed, f.label, f.loinc), f.profile, f.category)
                obs["valueQuantity"] = _quantity(r)
            else:
                # A coded answer: the chosen concept is the Observation code (GP systems file a code).
                obs = _observation(record, patient, trust, _concept(r.snomed, r.display, None), f.profile, f.category)
            out.append(obs)
    return out


def _letter(pdf: bytes, record: CheckRecord, patient: str, trust: str, sent: datetime) -> dict[str, Any]:
    # Attachment.hash is the base64 of the SHA-1 of the data (FHIR R4 Attachment.hash definition).
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": patient},
        "date": sent.isoformat(timespec="seconds"),
        "author": [{"reference": trust}],
        "description": LETTER_DESCRIPTION,
        "content": [{"attachment": {
            "contentType": "application/pdf",
            "data": base64.b64encode(pdf).decode("ascii"),
            "title": LETTER_TITLE,
            "size": len(pdf),
            "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),
        }}],
        # The date of the check the letter documents, so a Bundle with no Observation still has one.
        "context": {"period": {"start": record.performed_on.isoformat(), "end": record.performed_on.isoformat()}},
    }

