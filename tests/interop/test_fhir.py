"""The FHIR R4 UK Core Bundle of a check: built from a record, read back, and bad Bundles refused.

Reference: interop-and-peers.md §2.1 (UK Core profiles, systems, blood pressure components) and §2.3
(what fhir.resources does not check). NHS numbers are synthetic test-range numbers (9000000000+).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from parity.errors import ValidationError
from parity.interop.fhir import BundleError, build_bundle, check_bundle, parse_bundle
from parity.interop.fhir.codes import BP_DIASTOLIC, BP_PANEL, BP_SYSTOLIC
from parity.interop.record import CheckRecord, record_from_form
from parity.rules.template import CheckTemplate, load_template

NHS = "9000000009"
DOB = "1980-05-17"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
PDF = b"%PDF-1.7\n% a tiny stand-in for the letter\n%%EOF\n"

FORM = {
    "nhs_number": NHS, "date_of_birth": DOB, "practice_code": "A81001", "performed_on": "2026-11-20",
    "performed_by": "A Nurse, RMN", "sex": "intersex", "family_name": "Testpatient", "given_name": "Alex",
    "bmi.weight": "82.4", "bmi.height": "171",              # BMI is derived from these
    "blood_pressure.systolic": "147", "blood_pressure.diastolic": "93",
    "lipids.status": "declined",
    "glucose.hba1c": "44",
    "alcohol.auditc": "3",
    "smoking.smoking_status": "77176002",                   # Current smoker
    "pulse.pulse_rate": "72",
}
# Values from FORM that must never appear in a problem reason (patient data).
SECRETS = (NHS, DOB, "82.4", "147", "93", "171")


@pytest.fixture(scope="module")
def template() -> CheckTemplate:
    return load_template()


@pytest.fixture(scope="module")
def record(template: CheckTemplate) -> CheckRecord:
    return record_from_form(template, FORM, trust_code="RX2", created_by="nurse", today=date(2026, 11, 27))


@pytest.fixture(scope="module")
def bundle_json(record: CheckRecord, template: CheckTemplate) -> str:
    return build_bundle(record, template, letter_pdf=PDF)


@pytest.fixture
def bundle(bundle_json: str) -> dict[str, Any]:
    """A fresh dict of the good Bundle, for a test to break."""
    return json.loads(bundle_json)


def resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def snomed_of(concept: dict[str, Any]) -> int:
    return next(int(c["code"]) for c in concept["coding"] if c["system"] == SNOMED)


def observation(bundle: dict[str, Any], snomed: int) -> dict[str, Any]:
    return next(o for o in resources(bundle, "Observation") if snomed_of(o["code"]) == snomed)


def entry_index(bundle: dict[str, Any], resource: dict[str, Any]) -> int:
    return next(i for i, e in enumerate(bundle["entry"]) if e["resource"] is resource)


def problems_of(payload: str | bytes | dict[str, Any]) -> list[str]:
    """Every problem of ``parse_bundle`` as ``column: reason`` (asserts it is refused)."""
    text = json.dumps(payload) if isinstance(payload, dict) else payload
    with pytest.raises(BundleError) as caught:
        parse_bundle(text)
    assert str(caught.value).startswith("the FHIR Bundle has ")
    return [f"{p.column}: {p.reason}" for p in caught.value.problems]


# -- building and reading back ---------------------------------------------------------------------

def test_round_trip_gives_the_records_items_and_digest(record: CheckRecord, template: CheckTemplate,
                                                       bundle_json: str) -> None:
    got = parse_bundle(bundle_json)
    want = Counter((r.snomed, r.value, r.ucum) for r in record.coded_items(template))
    assert Counter((i.snomed, i.value, i.ucum) for i in got.items) == want
    assert got.digest == record.content_digest(template)
    assert (got.check_id, got.version, got.nhs_number, got.birth_date) == (record.check_id, 1, NHS, date(1980, 5, 17))
    assert (got.practice_code, got.trust_code, got.performed_on) == ("A81001", "RX2", date(2026, 11, 20))
    assert {i.date for i in got.items} == {date(2026, 11, 20)}


def test_bundle_is_a_collection_identified_by_the_check(record: CheckRecord, bundle: dict[str, Any]) -> None:
    assert bundle["type"] == "collection"
    assert bundle["identifier"] == {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{record.check_id}"}
    assert bundle["meta"]["versionId"] == "1"
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in bundle["entry"])
    assert Bundle.model_validate(bundle).type == "collection"
    assert check_bundle(Bundle.model_validate(bundle)) == []


def test_a_resent_version_carries_its_version_and_the_same_digest(record: CheckRecord,
                                                                  template: CheckTemplate) -> None:
    again = parse_bundle(build_bundle(record.next_version(), template))
    assert again.version == 2
    assert again.digest == record.content_digest(template)


def test_timestamp_and_letter_date_are_sent_at(record: CheckRecord, template: CheckTemplate) -> None:
    sent = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    built = json.loads(build_bundle(record, template, letter_pdf=PDF, sent_at=sent))
    assert datetime.fromisoformat(built["timestamp"]) == sent
    assert datetime.fromisoformat(resources(built, "DocumentReference")[0]["date"]) == sent
    assert built["entry"] == json.loads(build_bundle(record, template, letter_pdf=PDF, sent_at=sent))["entry"]


def test_patient_has_the_nhs_number_and_the_practice(bundle: dict[str, Any]) -> None:
    [patient] = resources(bundle, "Patient")
    assert patient["meta"]["profile"] == ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]
    [ident] = patient["identifier"]
    assert ident["system"] == "https://fhir.nhs.uk/Id/nhs-number"
    assert ident["value"] == NHS
    status = ident["extension"][0]
    assert status["url"].endswith("Extension-UKCore-NHSNumberVerificationStatus")
    assert status["valueCodeableConcept"]["coding"][0]["code"] == "01"
    assert patient["birthDate"] == DOB
    assert patient["gender"] == "other"  # intersex has no FHIR code of its own
    assert patient["name"] == [{"use": "official", "family": "Testpatient", "given": ["Alex"]}]
    gp_url = patient["generalPractitioner"][0]["reference"]
    gp = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == gp_url)
    assert gp["identifier"] == [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A81001"}]


def test_blood_pressure_is_one_observation_with_two_components(bundle: dict[str, Any]) -> None:
    codes = [snomed_of(o["code"]) for o in resources(bundle, "Observation")]
    assert codes.count(BP_PANEL) == 1
    assert BP_SYSTOLIC not in codes and BP_DIASTOLIC not in codes
    bp = observation(bundle, BP_PANEL)
    assert bp["meta"]["profile"][0].endswith("UKCore-Observation-VitalSigns-BloodPressure")
    assert {"system": "http://loinc.org", "code": "85354-9"} in bp["code"]["coding"]
    assert "valueQuantity" not in bp
    readings = {snomed_of(c["code"]): c["valueQuantity"] for c in bp["component"]}
    assert readings == {
        BP_SYSTOLIC: {"value": 147.0, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        BP_DIASTOLIC: {"value": 93.0, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
    }
    loincs = [next(c["code"] for c in comp["code"]["coding"] if c["system"] == "http://loinc.org")
              for comp in bp["component"]]
    assert loincs == ["8480-6", "8462-4"]


def test_blood_pressure_codes_are_the_templates(template: CheckTemplate) -> None:
    bp = template.section("blood_pressure")
    assert (bp.panel_snomed, bp.field("systolic").snomed, bp.field("diastolic").snomed) == (
        BP_PANEL, BP_SYSTOLIC, BP_DIASTOLIC)


def test_each_observation_is_coded_as_its_template_field(template: CheckTemplate, bundle: dict[str, Any]) -> None:
    observations = [o for o in resources(bundle, "Observation") if snomed_of(o["code"]) != BP_PANEL]
    quantities = 0
    for obs in observations:
        assert obs["status"] == "final"
        assert obs["effectiveDateTime"] == "2026-11-20"
        code = snomed_of(obs["code"])
        section_id, field_id = template.all_codes()[code]
        if field_id is None:
            continue  # a declined code: see the next test
        f = template.field(field_id)
        if f.profile:
            assert obs["meta"]["profile"] == [f"https://fhir.hl7.org.uk/StructureDefinition/{f.profile}"]
        assert obs["category"][0]["coding"][0]["code"] == f.category
        if f.kind == "quantity":
            quantities += 1
            assert obs["valueQuantity"]["system"] == UCUM
            assert obs["valueQuantity"]["code"] == f.ucum, field_id
            if f.loinc:
                assert {"system": "http://loinc.org", "code": f.loinc} in obs["code"]["coding"]
        else:
            assert not any(k.startswith("value") for k in obs), "a coded answer is the code, not a value"
    assert quantities == 6  # weight, height, derived BMI, HbA1c, AUDIT-C, pulse


def test_a_declined_check_is_its_declined_code_without_a_value(template: CheckTemplate,
                                                               bundle: dict[str, Any]) -> None:
    declined = template.section("lipids").declined_code
    assert declined is not None
    obs = observation(bundle, declined)
    assert not any(k.startswith("value") for k in obs)
    item = next(i for i in parse_bundle(json.dumps(bundle)).items if i.snomed == declined)
    assert (item.value, item.ucum) == (None, "")


def test_letter_attachment_round_trip(bundle: dict[str, Any], bundle_json: str) -> None:
    [doc] = resources(bundle, "DocumentReference")
    assert doc["status"] == "current"
    assert doc["description"] == "Physical health check letter"
    att = doc["content"][0]["attachment"]
    assert att["contentType"] == "application/pdf"
    assert base64.b64decode(att["data"]) == PDF
    assert att["size"] == len(PDF)
    assert att["hash"] == base64.b64encode(hashlib.sha1(PDF).digest()).decode()
    assert parse_bundle(bundle_json).letter_pdf == PDF


def test_without_a_letter_there_is_no_document(record: CheckRecord, template: CheckTemplate) -> None:
    text = build_bundle(record, template)
    assert resources(json.loads(text), "DocumentReference") == []
    assert parse_bundle(text).letter_pdf is None


def test_an_invalid_record_is_never_built(record: CheckRecord, template: CheckTemplate) -> None:
    bad = replace(record, nhs_number="9000000018")  # wrong check digit
    with pytest.raises(BundleError) as caught:
        build_bundle(bad, template)
    assert isinstance(caught.value, ValidationError)
    assert "9000000018" not in str(caught.value)
    assert any(p.column == "entry[0].resource.identifier[0].value" for p in caught.value.problems)


# -- refusing bad Bundles --------------------------------------------------------------------------

def _wrong_resource_type(b: dict[str, Any]) -> None:
    b["resourceType"] = "Patient"


def _no_nhs_number(b: dict[str, Any]) -> None:
    resources(b, "Patient")[0]["identifier"] = []


def _bad_check_digit(b: dict[str, Any]) -> None:
    resources(b, "Patient")[0]["identifier"][0]["value"] = "9000000018"


def _no_snomed_coding(b: dict[str, Any]) -> None:
    obs = observation(b, 999791000000106)  # HbA1c
    obs["code"]["coding"] = [c for c in obs["code"]["coding"] if c["system"] != SNOMED]


def _invalid_snomed_id(b: dict[str, Any]) -> None:
    observation(b, 999791000000106)["code"]["coding"].append({"system": SNOMED, "code": "12345"})


def _quantity_without_ucum(b: dict[str, Any]) -> None:
    quantity = observation(b, 27113001)["valueQuantity"]  # body weight
    del quantity["system"], quantity["code"]


def _bp_without_diastolic(b: dict[str, Any]) -> None:
    bp = observation(b, BP_PANEL)
    bp["component"] = [c for c in bp["component"] if snomed_of(c["code"]) != BP_DIASTOLIC]


def _subject_references_nothing(b: dict[str, Any]) -> None:
    observation(b, 27113001)["subject"] = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}


def _status_bogus(b: dict[str, Any]) -> None:
    observation(b, 27113001)["status"] = "bogus"


def _future_date(b: dict[str, Any]) -> None:
    for obs in resources(b, "Observation"):
        obs["effectiveDateTime"] = "2099-01-01"


def _no_date(b: dict[str, Any]) -> None:
    del observation(b, 27113001)["effectiveDateTime"]


def _preliminary(b: dict[str, Any]) -> None:
    observation(b, 27113001)["status"] = "preliminary"


def _no_organisation_at_all(b: dict[str, Any]) -> None:
    for obs in resources(b, "Observation"):
        obs.pop("performer", None)
    resources(b, "DocumentReference")[0].pop("author")


def _not_a_pdf(b: dict[str, Any]) -> None:
    resources(b, "DocumentReference")[0]["content"][0]["attachment"]["data"] = base64.b64encode(b"<html>").decode()


def _not_a_collection(b: dict[str, Any]) -> None:
    b["type"] = "transaction"


def _date_is_the_nhs_number(b: dict[str, Any]) -> None:
    observation(b, 27113001)["effectiveDateTime"] = NHS  # structural error: the message must not quote it


# (mutation, the path the problem names; "{weight}" etc. are the entry of that Observation)
BAD: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("wrong resourceType", _wrong_resource_type, "resourceType"),
    ("missing NHS number", _no_nhs_number, "entry[0].resource.identifier"),
    ("bad check digit", _bad_check_digit, "entry[0].resource.identifier[0].value"),
    ("no SNOMED coding", _no_snomed_coding, "{hba1c}.code.coding"),
    ("invalid SNOMED CT id", _invalid_snomed_id, "{hba1c}.code.coding[1].code"),
    ("quantity without UCUM", _quantity_without_ucum, "{weight}.valueQuantity.system"),
    ("BP without diastolic", _bp_without_diastolic, "{bp}.component"),
    ("subject referencing nothing", _subject_references_nothing, "{weight}.subject.reference"),
    ("status bogus", _status_bogus, "{weight}.status"),
    ("future date", _future_date, "{weight}.effectiveDateTime"),
    ("a result with no date", _no_date, "{weight}.effectiveDateTime"),
    ("preliminary result", _preliminary, "{weight}.status"),
    ("no organisation named", _no_organisation_at_all, "entry"),
    ("letter not a PDF", _not_a_pdf, "{letter}.content[0].attachment.data"),
    ("not a collection", _not_a_collection, "type"),
    ("malformed date", _date_is_the_nhs_number, "{weight}.effectiveDateTime"),
]


def _expected_path(bundle: dict[str, Any], path: str) -> str:
    where = {
        "hba1c": observation(bundle, 999791000000106), "weight": observation(bundle, 27113001),
        "bp": observation(bundle, BP_PANEL), "letter": resources(bundle, "DocumentReference")[0],
    }
    return path.format(**{k: f"entry[{entry_index(bundle, r)}].resource" for k, r in where.items()})


@pytest.mark.parametrize(("mutate", "path"), [(m, p) for _, m, p in BAD], ids=[name for name, _, _ in BAD])
def test_a_bad_bundle_is_refused_naming_the_path(bundle: dict[str, Any], mutate: Callable[[dict[str, Any]], None],
                                                 path: str) -> None:
    expected = _expected_path(bundle, path)
    mutate(bundle)
    problems = problems_of(bundle)
    assert any(p.split(": ", 1)[0] == expected for p in problems), problems
    for text in problems:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


def test_not_json_is_refused() -> None:
    with pytest.raises(BundleError) as caught:
        parse_bundle(b'{"resourceType": "Bundle", ')
    [problem] = caught.value.problems
    assert problem.line == 1
    assert "not valid JSON" in problem.reason


def test_not_utf8_is_refused() -> None:
    with pytest.raises(BundleError, match="1 problem"):
        parse_bundle(b"\xff\xfe{}")


def test_a_resource_type_fhir_does_not_have_is_refused(bundle: dict[str, Any]) -> None:
    bundle["entry"][1]["resource"] = {"resourceType": "Nonsense"}
    assert problems_of(bundle)  # not FHIR: the R4B models cannot read it


def test_a_fhir_resource_parity_does_not_use_is_ignored(bundle: dict[str, Any]) -> None:
    # docs/receiving-checks.md: unknown resources are ignored (here an Encounter, a Practitioner).
    bundle["entry"].append({"fullUrl": "urn:uuid:6c0e1c6e-2b8e-4c36-9d1a-0a4cba6d7d01",
                            "resource": {"resourceType": "Encounter", "status": "finished",
                                         "class": {"code": "AMB"}}})
    bundle["entry"].append({"fullUrl": "urn:uuid:6c0e1c6e-2b8e-4c36-9d1a-0a4cba6d7d02",
                            "resource": {"resourceType": "Practitioner", "name": [{"family": "Jones"}]}})
    assert check_bundle(bundle) == []


def test_fhir_resources_alone_accepts_what_check_bundle_refuses(bundle: dict[str, Any]) -> None:
    # interop-and-peers.md §2.3: the models do not check bindings, so the project's rules must.
    _status_bogus(bundle)
    Bundle.model_validate(bundle)
    assert check_bundle(bundle)


def test_check_bundle_takes_today(bundle: dict[str, Any]) -> None:
    assert check_bundle(bundle, today=date(2026, 11, 20)) == []
    assert any(p.reason == "is in the future" for p in check_bundle(bundle, today=date(2026, 11, 19)))


def test_no_problem_reason_contains_patient_data(bundle: dict[str, Any]) -> None:
    # Each case above is checked on its own; here many rules fire at once, and the structural pass
    # (pydantic, whose messages can echo input) gets values that are patient data.
    broken = copy.deepcopy(bundle)
    for mutate in (_bad_check_digit, _quantity_without_ucum, _bp_without_diastolic, _status_bogus,
                   _subject_references_nothing, _invalid_snomed_id, _preliminary, _not_a_pdf):
        mutate(broken)
    texts = [f"{p.column}: {p.reason}" for p in check_bundle(broken)]
    assert len(texts) >= 8
    resources(broken, "Patient")[0]["birthDate"] = f"{NHS}-{DOB}"
    observation(broken, BP_PANEL)["component"][0]["valueQuantity"]["value"] = f"{NHS} 147"
    structural = problems_of(broken)
    assert len(structural) == 2
    for text in texts + structural:
        for secret in SECRETS:
            assert secret not in text, (secret, text)
