"""The published receiving contract (docs/receiving-checks.md), read without a database: every example
in it is read as the document says, each legitimate variation is accepted and each safety rule refuses."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.STU3.bundle import Bundle as Stu3Bundle

from parity.interop import itk
from parity.interop.fhir import BundleError, parse_bundle

from .foreign import (
    BASE_CODES,
    BLOODS_DAY,
    EXAMPLES,
    FOREIGN_TRUST,
    LAB,
    REFUSALS,
    VARIATIONS,
    base,
    codes_after,
    example,
    fixture,
)

DOC = (EXAMPLES.parent / "receiving-checks.md").read_text()


def test_the_contract_names_each_example_and_each_is_tested() -> None:
    named = set(re.findall(r"examples/([\w.-]+\.json)", DOC))
    on_disk = {p.name for p in EXAMPLES.glob("*.json")}
    assert named == on_disk  # no example undocumented, none documented but missing
    assert {"check-collection.json", "check-message.json", "ack-business-filed.json",
            "ack-infrastructure-refused.json", "send-document.json"} <= on_disk


def test_the_collection_example_files_the_six_checks() -> None:
    got = parse_bundle(json.dumps(example("check-collection.json")), today=date(2026, 12, 1))
    assert {i.snomed for i in got.items} == BASE_CODES
    assert (got.nhs_number, got.practice_code, got.trust_code, got.performed_on) == (
        "9000000041", "J82155", FOREIGN_TRUST, date(2026, 11, 20))
    assert {i.recorded_by for i in got.items} == {FOREIGN_TRUST}
    Bundle.model_validate(example("check-collection.json"))


def test_the_message_example_files_each_result_with_its_own_date_and_performer() -> None:
    got = parse_bundle(json.dumps(example("check-message.json")), today=date(2026, 12, 1))
    by_code = {i.snomed: i for i in got.items}
    assert set(by_code) == BASE_CODES
    for code in (1005671000000105, 999791000000106):  # the bloods: PBCL coding chosen, lab, taken earlier
        assert (by_code[code].date, by_code[code].recorded_by) == (date.fromisoformat(BLOODS_DAY), LAB)
    assert (by_code[60621009].date, by_code[60621009].recorded_by) == (date(2026, 11, 20), FOREIGN_TRUST)
    assert by_code[77176002].value is None  # smoking status given as a coded value
    assert got.practice_code == "J82155" and got.performed_on == date(2026, 11, 20)


@pytest.mark.parametrize(("name", "mutate"), VARIATIONS, ids=[n for n, _ in VARIATIONS])
def test_each_legitimate_variation_is_accepted(name, mutate) -> None:
    bundle = base()
    mutate(bundle)
    Bundle.model_validate(bundle)  # still FHIR R4 (R4B models)
    got = parse_bundle(json.dumps(bundle), today=date(2026, 12, 1))
    assert {i.snomed for i in got.items} == codes_after(name)
    assert got.nhs_number == "9000000041" and got.trust_code == FOREIGN_TRUST


def test_bloods_on_another_day_keep_their_date() -> None:
    bundle = base()
    dict(VARIATIONS)["bloods on another day"](bundle)
    got = parse_bundle(json.dumps(bundle), today=date(2026, 12, 1))
    assert sorted({i.date for i in got.items}) == [date(2026, 11, 18), date(2026, 11, 20)]
    assert got.performed_on == date(2026, 11, 20)  # the day most results have


def test_a_resend_of_the_same_content_has_the_same_digest_whatever_its_shape() -> None:
    plain = parse_bundle(json.dumps(base()), today=date(2026, 12, 1))
    for name in ("any Bundle identifier", "absolute entry addresses", "message Bundle with a MessageHeader"):
        bundle = base()
        dict(VARIATIONS)[name](bundle)
        assert parse_bundle(json.dumps(bundle), today=date(2026, 12, 1)).digest == plain.digest, name


@pytest.mark.parametrize(("mutate",), [(m,) for _, m, _, _ in REFUSALS], ids=[n for n, *_ in REFUSALS])
def test_each_safety_rule_still_refuses(mutate) -> None:
    bundle = base()
    mutate(bundle)
    with pytest.raises(BundleError) as caught:
        parse_bundle(json.dumps(bundle), today=date(2026, 12, 1))
    for p in caught.value.problems:
        assert "9000000041" not in str(p) and "1957" not in str(p)


def test_the_reply_examples_are_itk3_responses_as_parity_sends_them() -> None:
    filed = itk.parse_response(json.dumps(example("ack-business-filed.json")))
    assert (filed.kind, filed.positive, filed.itk_code, filed.reason) == ("business", True, "30001", "filed")
    refused = itk.parse_response(json.dumps(example("ack-infrastructure-refused.json")))
    assert (refused.kind, refused.positive, refused.itk_code, refused.reason) == (
        "infrastructure", False, "20009", "malformed")
    assert refused.issues and all(":" in i for i in refused.issues)
    for name in ("ack-business-filed.json", "ack-infrastructure-refused.json", "send-document.json"):
        Stu3Bundle.model_validate(example(name))


def test_parity_replies_in_the_shape_of_its_examples() -> None:
    built = json.loads(itk.build_response(in_reply_to="urn:uuid:0b7c0e8e-9d43-4d2c-9a61-6a1f8e9f0c11",
                                          reason="filed", responder_ods="J82155", mailbox="X26ABC2"))
    shown = example("ack-business-filed.json")

    def shape(b: dict) -> list:
        return [(e["resource"]["resourceType"], sorted(e["resource"])) for e in b["entry"]]

    assert shape(built) == shape(shown)
    assert built["entry"][0]["resource"]["response"]["identifier"] == "0b7c0e8e-9d43-4d2c-9a61-6a1f8e9f0c11"


def test_the_send_document_example_reads_like_the_gp_connect_one() -> None:
    ours = itk.parse_send_document(json.dumps(example("send-document.json")))
    theirs = itk.parse_send_document(json.dumps(fixture("send-document-gpconnect.json")))
    for doc in (ours, theirs):
        assert doc.pdf.startswith(b"%PDF") and doc.bus_ack and doc.inf_ack
    assert ours.sender_ods == "RXY" and theirs.sender_ods == "GP0001"
