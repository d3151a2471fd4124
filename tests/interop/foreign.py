"""Check Bundles as another trust's system would send them, built without Parity's builder.

The base is ``docs/examples/check-collection.json`` (the published receiving contract's first example),
written by hand from NHS Digital's UK Core examples (``NHSDigital/FHIR-R4-UKCORE-STAGING-MAIN`` at
3d2827e3, ``examples/``): ``UKCore-Patient-RichardSmith-Example`` (the NHS number verification
extension, name, birth date), ``UKCore-Observation-VitalSigns-BMI-Example`` (SNOMED 60621009 + LOINC
39156-5, ``kg/m2``), ``UKCore-Observation-VitalSigns-BloodPressure-Example`` (75367002 with components
72313002 / 1091811000000102), ``UKCore-Observation-Lab-Albumin-Example`` (the lab shape: PBCL and PaLM
codings on one code, performer the pathology lab ``TD008362``, a Specimen), and
``UKCore-Observation-HeavyDrinker-Example`` (1082631000000102 units per day, ``/d``). Values and the
patient are synthetic (NHS numbers in the test range). Every SNOMED CT code is from a codelist Parity
ships (parity.codes) or the UK Core examples.

``VARIATIONS`` change one legitimate thing at a time, as the issue asked; ``REFUSALS`` break one
safety rule at a time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SNOMED = "http://snomed.info/sct"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
FOREIGN_TRUST = "RXY"
LAB = "TD008362"
CHECK_DAY = "2026-11-20"
BLOODS_DAY = "2026-11-18"
#: Codes the six-check base Bundle files (BP as its two components).
BASE_CODES = {60621009, 72313002, 1091811000000102, 1005671000000105, 999791000000106, 1082631000000102, 77176002}

Bundle = dict[str, Any]


def example(name: str) -> Bundle:
    return json.loads((EXAMPLES / name).read_text())


def base() -> Bundle:
    return example("check-collection.json")


def for_patient(bundle: Bundle, nhs_number: str, birth_date: str) -> Bundle:
    """The same Bundle about another (synthetic) patient."""
    b = copy.deepcopy(bundle)
    for e in b["entry"]:
        res = e["resource"]
        if res["resourceType"] == "Patient":
            for ident in res["identifier"]:
                if ident.get("system") == NHS_SYSTEM:
                    ident["value"] = nhs_number
            res["birthDate"] = birth_date
    return b


def resources(b: Bundle, kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == kind]


def observation(b: Bundle, code: str) -> dict[str, Any]:
    for obs in resources(b, "Observation"):
        if any(c.get("code") == code for c in obs.get("code", {}).get("coding", [])):
            return obs
        if any(c.get("code") == code for c in obs.get("valueCodeableConcept", {}).get("coding", [])):
            return obs
    raise KeyError(code)


def _url(b: Bundle, kind: str, index: int = 0) -> str:
    return [e["fullUrl"] for e in b["entry"] if e["resource"]["resourceType"] == kind][index]


def _trust_url(b: Bundle) -> str:
    return next(e["fullUrl"] for e in b["entry"] if e["resource"]["resourceType"] == "Organization"
                and e["resource"]["identifier"][0]["value"] == FOREIGN_TRUST)


# -- legitimate variations, one at a time ----------------------------------------------------------

def any_identifier(b: Bundle) -> None:
    b["identifier"] = {"system": "https://fhir.example-trust.nhs.uk/Id/phc", "value": "PHC-2026-000123"}


def server_version_id(b: Bundle) -> None:
    b["meta"] = {"versionId": "7", "lastUpdated": "2026-11-20T15:30:00+00:00"}


def pbcl_and_palm(b: Bundle) -> None:
    # UKCore-Observation-Lab-Albumin-Example: "Equivalent codes from the PBCL and PaLM SNOMED CT
    # reference sets"; the PaLM-style concepts are from IFCCHBAM_COD and CHOL2_COD.
    observation(b, "1005671000000105")["code"]["coding"].append(
        {"system": SNOMED, "code": "1106541000000101", "display": "Substance concentration of cholesterol in serum"})
    observation(b, "999791000000106")["code"]["coding"].append(
        {"system": SNOMED, "code": "1107481000000106",
         "display": "Substance concentration of haemoglobin A1c in blood"})


def palm_first(b: Bundle) -> None:
    # The PaLM coding before the PBCL one: either is in Parity's lists, the first known is filed.
    obs = observation(b, "999791000000106")
    obs["code"]["coding"].insert(0, {"system": SNOMED, "code": "1107481000000106"})


def absolute_full_urls(b: Bundle) -> None:
    base_url = "https://fhir.example-trust.nhs.uk/R4/"
    mapping = {}
    for n, e in enumerate(b["entry"]):
        kind = e["resource"]["resourceType"]
        e["resource"]["id"] = f"{kind.lower()}-{n}"
        mapping[e["fullUrl"]] = f"{kind}/{kind.lower()}-{n}"  # references become relative
        e["fullUrl"] = base_url + mapping[e["fullUrl"]]

    def remap(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: (mapping.get(v, v) if k == "reference" else remap(v)) for k, v in x.items()}
        if isinstance(x, list):
            return [remap(v) for v in x]
        return x

    b["entry"] = remap(b["entry"])


def practitioner_and_encounter(b: Bundle) -> None:
    prac, enc = "urn:uuid:1f0c7a2e-0d7b-4a55-8f3e-5b8b9f1c2a01", "urn:uuid:1f0c7a2e-0d7b-4a55-8f3e-5b8b9f1c2a02"
    b["entry"].append({"fullUrl": prac, "resource": {
        "resourceType": "Practitioner", "identifier": [{"system": "https://fhir.nhs.uk/Id/sds-user-id",
                                                        "value": "033345750518"}],
        "name": [{"family": "Jones", "given": ["Sam"]}]}})
    b["entry"].append({"fullUrl": enc, "resource": {
        "resourceType": "Encounter", "status": "finished", "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": _url(b, "Patient")}}})
    for obs in resources(b, "Observation"):
        obs["performer"].insert(0, {"reference": prac})
        obs["encounter"] = {"reference": enc}


def practice_by_identifier(b: Bundle) -> None:
    gp_url = resources(b, "Patient")[0]["generalPractitioner"][0]["reference"]
    resources(b, "Patient")[0]["generalPractitioner"] = [
        {"type": "Organization", "identifier": {"system": ODS, "value": "J82155"}}]
    b["entry"] = [e for e in b["entry"] if e["fullUrl"] != gp_url]


def trust_by_identifier(b: Bundle) -> None:
    trust_url = _trust_url(b)
    for obs in resources(b, "Observation"):
        obs["performer"] = [{"type": "Organization", "identifier": {"system": ODS, "value": FOREIGN_TRUST}}]
    b["entry"] = [e for e in b["entry"] if e["fullUrl"] != trust_url]


def lab_performs_bloods(b: Bundle) -> None:
    lab = "urn:uuid:1f0c7a2e-0d7b-4a55-8f3e-5b8b9f1c2a10"
    b["entry"].append({"fullUrl": lab, "resource": {
        "resourceType": "Organization", "identifier": [{"system": ODS, "value": LAB}], "name": "PATH LAB 001"}})
    for code in ("1005671000000105", "999791000000106"):
        observation(b, code)["performer"] = [{"reference": lab}]


def bloods_another_day(b: Bundle) -> None:
    for code in ("1005671000000105", "999791000000106"):
        observation(b, code)["effectiveDateTime"] = f"{BLOODS_DAY}T09:05:00+00:00"


def ctv3_beside_snomed(b: Bundle) -> None:
    observation(b, "60621009")["code"]["coding"].append(
        {"system": "http://read.info/ctv3", "code": "22K..", "display": "Body Mass Index"})


def message_with_header(b: Bundle) -> None:
    b["type"] = "message"
    b["entry"].insert(0, {"fullUrl": "urn:uuid:3f7c9b52-0c8e-4f7d-9a51-2d6f0e4b8a10", "resource": {
        "resourceType": "MessageHeader", "eventUri": "https://fhir.example-trust.nhs.uk/event/phc",
        "sender": {"reference": _trust_url(b)}, "source": {"endpoint": "X26ABC1"},
        "focus": [{"reference": e["fullUrl"]} for e in b["entry"] if e["resource"]["resourceType"] == "Observation"]}})


def smoking_as_coded_value(b: Bundle) -> None:
    obs = observation(b, "77176002")
    obs["code"] = {"coding": [{"system": "http://loinc.org", "code": "72166-2", "display": "Tobacco smoking status"}]}
    obs["valueCodeableConcept"] = {"coding": [{"system": SNOMED, "code": "77176002", "display": "Current smoker"}]}


def unknown_resources(b: Bundle) -> None:
    b["entry"].append({"fullUrl": "urn:uuid:1f0c7a2e-0d7b-4a55-8f3e-5b8b9f1c2a20", "resource": {
        "resourceType": "Specimen", "subject": {"reference": _url(b, "Patient")}}})
    b["entry"].append({"fullUrl": "urn:uuid:1f0c7a2e-0d7b-4a55-8f3e-5b8b9f1c2a21", "resource": {
        "resourceType": "Provenance", "target": [{"reference": _url(b, "Patient")}],
        "recorded": "2026-11-20T15:30:00+00:00", "agent": [{"who": {"reference": _trust_url(b)}}]}})


VARIATIONS: list[tuple[str, Callable[[Bundle], None]]] = [
    ("no identifier and no versionId (the base)", lambda b: None),
    ("any Bundle identifier", any_identifier),
    ("a server's meta.versionId", server_version_id),
    ("PBCL and PaLM codings", pbcl_and_palm),
    ("PaLM coding first", palm_first),
    ("absolute entry addresses", absolute_full_urls),
    ("Practitioner and Encounter in the Bundle", practitioner_and_encounter),
    ("practice by ODS identifier, no Organization entry", practice_by_identifier),
    ("trust by ODS identifier, no Organization entry", trust_by_identifier),
    ("lab results performed by the lab", lab_performs_bloods),
    ("bloods on another day", bloods_another_day),
    ("CTV3 beside SNOMED CT", ctv3_beside_snomed),
    ("message Bundle with a MessageHeader", message_with_header),
    ("smoking status as a coded value", smoking_as_coded_value),
    ("unknown resources", unknown_resources),
]


def codes_after(name: str) -> set[int]:
    """What a variation files: the base codes, except that the first known coding is the one filed."""
    if name == "PaLM coding first":
        return BASE_CODES - {999791000000106} | {1107481000000106}
    return BASE_CODES


# -- safety rules, one broken at a time: (name, mutation, reason code Parity replies with) -----------

def _nhs(value: str) -> Callable[[Bundle], None]:
    def mutate(b: Bundle) -> None:
        resources(b, "Patient")[0]["identifier"][0]["value"] = value
    return mutate


def bad_check_digit(b: Bundle) -> None:
    ident = resources(b, "Patient")[0]["identifier"][0]
    ident["value"] = ident["value"][:9] + str((int(ident["value"][9]) + 1) % 10)


def preliminary(b: Bundle) -> None:
    observation(b, "60621009")["status"] = "preliminary"


def future_date(b: Bundle) -> None:
    observation(b, "60621009")["effectiveDateTime"] = "2099-01-01"


def not_ucum(b: Bundle) -> None:
    q = observation(b, "60621009")["valueQuantity"]
    q["system"] = "http://example.org/units"


def no_snomed(b: Bundle) -> None:
    observation(b, "60621009")["code"]["coding"] = [{"system": "http://loinc.org", "code": "39156-5"}]


def ambiguous_unknown_codes(b: Bundle) -> None:
    # Two SNOMED CT codings, neither in Parity's lists (albumin, from the UK Core lab example).
    observation(b, "60621009")["code"]["coding"] = [
        {"system": SNOMED, "code": "1000821000000103"}, {"system": SNOMED, "code": "1105861000000106"}]


def two_patients(b: Bundle) -> None:
    b["entry"].append({"fullUrl": "urn:uuid:1f0c7a2e-0d7b-4a55-8f3e-5b8b9f1c2a30",
                       "resource": copy.deepcopy(resources(b, "Patient")[0])})


def no_birth_date(b: Bundle) -> None:
    del resources(b, "Patient")[0]["birthDate"]


#: (name, mutation, reason code, ITK code) of each refusal; ``{patient}`` problems use the world.
REFUSALS: list[tuple[str, Callable[[Bundle], None], str, str]] = [
    ("NHS number with a wrong check digit", bad_check_digit, "malformed", "20009"),
    ("no birth date", no_birth_date, "malformed", "20009"),
    ("two Patients", two_patients, "malformed", "20009"),
    ("a preliminary result", preliminary, "malformed", "20009"),
    ("a future date", future_date, "malformed", "20009"),
    ("a quantity not in UCUM", not_ucum, "malformed", "20009"),
    ("no SNOMED CT code", no_snomed, "malformed", "20009"),
    ("several unknown SNOMED CT codes", ambiguous_unknown_codes, "malformed", "20009"),
]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())
