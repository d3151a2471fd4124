"""Systems that are not Parity, over NHS Digital's real mesh-sandbox, on DuckDB and PostgreSQL.

A foreign trust (``X26ABC1``) sends hand-built UK Core Bundles (tests/interop/foreign.py, from NHS
Digital's UK Core examples) with plain mesh-client, never Parity's builder; the Parity deployment here
owns only the practice mailbox (``X26ABC2``), files, and replies. The GP system of a practice not on
Parity (``X26ABC3``) is played by the test with GP Connect fixtures (tests/interop/fixtures/).
"""

from __future__ import annotations

import base64
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.STU3.bundle import Bundle as Stu3Bundle

from parity.db import Database
from parity.ingest import load_extract
from parity.interop import itk
from parity.interop.checks import payload_source, send_document_payload, set_route, stored_letter, submit_check
from parity.interop.mesh import Mailbox, inbox, outbox, parse_mesh_config, replies
from parity.interop.mesh.client import mesh_client
from parity.interop.mesh.worker import run_pass
from parity.reports.measures import patient_table
from parity.rules import load_measure
from parity.rules.template import load_template

from . import world as _world
from .conftest import OTHER_MAILBOX, PRACTICE_MAILBOX, TRUST, TRUST_MAILBOX, Sandbox
from .foreign import REFUSALS, VARIATIONS, base, example, fixture, for_patient, resources
from .world import OTHER_PRACTICE, PRACTICE, SMI_DIAGNOSIS, smoking_check

WORKFLOW = "PARITY_SMI_PHC"
DOB = "1957-01-09"
AS_OF = date(2026, 11, 20)
PATIENTS = _world.test_range_numbers(40, start=900_000_300)
LEFT = PATIENTS[-1]          # registered at the practice until 2026-11-19 only
ELSEWHERE = PATIENTS[-2]     # registered at the other practice (Send Document)
STRANGER = "9000000009"      # valid, in the test range, not in the practice record


@pytest.fixture
def world(any_db: Database, tmp_path: Path) -> Database:
    """Patients with SMI and no checks this year, registered at PRACTICE (LEFT left the day before)."""
    folder = tmp_path / "extract"
    folder.mkdir()
    (folder / "patients.csv").write_text("nhs_number,date_of_birth,sex\n" + "".join(
        f"{n},{DOB},male\n" for n in PATIENTS))
    regs = [f"{n},{PRACTICE},2010-01-01," for n in PATIENTS[:-2]]
    regs += [f"{LEFT},{PRACTICE},2010-01-01,2026-11-19", f"{ELSEWHERE},{OTHER_PRACTICE},2010-01-01,"]
    (folder / "registrations.csv").write_text("nhs_number,practice_code,start_date,end_date\n" + "\n".join(regs) + "\n")
    (folder / "events.csv").write_text("nhs_number,date,snomed_code,value,unit,recorded_by\n" + "".join(
        f"{n},2015-02-01,{SMI_DIAGNOSIS},,,\n" for n in PATIENTS))
    load_extract(any_db, folder, mode="replace")
    return any_db


def practice_config(sandbox: Sandbox):
    """A Parity deployment owning only the practice's mailbox (the sender is someone else's system)."""
    return parse_mesh_config({"url": sandbox.url, "shared_key": sandbox.shared_key, "backoff_seconds": 0,
                              "mailboxes": [{"mailbox": PRACTICE_MAILBOX, "ods": PRACTICE, "password": "password"}]},
                             env={})


def foreign_send(sandbox: Sandbox, bundles: list[tuple[str, Any]], workflow: str = WORKFLOW,
                 to: str = PRACTICE_MAILBOX) -> None:
    """The foreign system sends each (local id, body) with plain mesh-client."""
    config = practice_config(sandbox)
    with mesh_client(config, Mailbox(TRUST_MAILBOX, "RXY", "password")) as client:
        for local_id, body in bundles:
            text = body if isinstance(body, bytes) else json.dumps(body).encode()
            client.send_message(to, text, workflow_id=workflow, local_id=local_id, subject="PHC",
                                content_type="application/fhir+json")


def foreign_inbox(sandbox: Sandbox, mailbox: str = TRUST_MAILBOX) -> list[tuple[str, str | None, bytes]]:
    """What came back to a mailbox: (workflow, local id, body), acknowledged."""
    config = practice_config(sandbox)
    out = []
    with mesh_client(config, Mailbox(mailbox, "X", "password")) as client:
        for mid in client.list_messages():
            m = client.retrieve_message(mid)
            out.append((m.workflow_id, m.local_id, m.read()))
            m.acknowledge()
    return out


def read_replies(sandbox: Sandbox) -> dict[str, list[itk.Response]]:
    got: dict[str, list[itk.Response]] = {}
    for workflow, local_id, body in foreign_inbox(sandbox):
        assert workflow == WORKFLOW + "_ACK"
        Stu3Bundle.model_validate_json(body)  # a valid FHIR STU3 ITK3 message
        got.setdefault(str(local_id), []).append(itk.parse_response(body))
    return got


def all_six(db: Database) -> set[str]:
    df = patient_table(db, load_measure("phsmi"), AS_OF)
    return set(df[df.all_six].nhs_number)


def test_a_foreign_uk_core_bundle_files_in_each_variation_and_the_sender_hears_back(world: Database,
                                                                                   sandbox: Sandbox) -> None:
    cases = [(name, mutate) for name, mutate in VARIATIONS]
    sent = []
    for n, (_, mutate) in enumerate(cases):
        bundle = base()
        mutate(bundle)
        sent.append((f"variation-{n}", for_patient(bundle, PATIENTS[n], DOB)))
    documented = for_patient(example("check-message.json"), PATIENTS[len(cases)], DOB)
    documented["identifier"]["value"] = "PHC-2026-000124"  # the variation above used its identifier
    sent.append(("docs-message-example", documented))
    assert all_six(world) == set()
    foreign_send(sandbox, sent)
    config = practice_config(sandbox)
    summary = inbox.poll(world, config)
    assert (summary.received, summary.filed, summary.exceptions) == (len(sent), len(sent), 0), summary
    assert replies.send_pending(world, config).sent == 2 * len(sent)
    filed_patients = {PATIENTS[n] for n in range(len(sent))}
    assert all_six(world) == filed_patients  # each variation took its patient from 0 to 6 of 6
    # Lab results are recorded by the lab, the rest by the trust.
    assert {r[0] for r in world.execute("SELECT DISTINCT recorded_by FROM events WHERE recorded_by IS NOT NULL")} \
        == {"RXY", "TD008362"}
    got = read_replies(sandbox)
    assert set(got) == {local_id for local_id, _ in sent}
    for local_id, responses in got.items():
        kinds = {(r.kind, r.itk_code, r.reason) for r in responses}
        assert kinds == {("infrastructure", "20013", "received"), ("business", "30001", "filed")}, local_id


def test_each_safety_rule_refuses_and_tells_the_sender_without_patient_data(world: Database,
                                                                             sandbox: Sandbox) -> None:
    cases: list[tuple[str, dict[str, Any], str, str]] = []
    for n, (name, mutate, reason, itk_code) in enumerate(REFUSALS):
        bundle = for_patient(base(), PATIENTS[n], DOB)
        mutate(bundle)
        cases.append((name, bundle, reason, itk_code))
    k = len(cases)
    cases.append(("unknown patient", for_patient(base(), STRANGER, DOB), "unknown-patient", "30002"))
    cases.append(("date of birth differs", for_patient(base(), PATIENTS[k], "1957-01-10"), "dob-mismatch", "30002"))
    cases.append(("not registered on the date", for_patient(base(), LEFT, DOB), "not-registered", "30003"))
    other = for_patient(base(), PATIENTS[k + 1], DOB)
    next(e for e in other["entry"] if e["resource"]["resourceType"] == "Organization"
         and e["resource"]["identifier"][0]["value"] == PRACTICE)["resource"]["identifier"][0]["value"] = OTHER_PRACTICE
    cases.append(("addressed to another practice", other, "other-practice", "20010"))
    foreign_send(sandbox, [(f"refusal-{n}", bundle) for n, (_, bundle, _, _) in enumerate(cases)])
    config = practice_config(sandbox)
    summary = inbox.poll(world, config)
    assert (summary.filed, summary.exceptions) == (0, len(cases))
    assert world.count("events WHERE recorded_by = 'RXY'") == 0
    replies.send_pending(world, config)
    raw = foreign_inbox(sandbox)
    for _, _, body in raw:
        for secret in [*PATIENTS, STRANGER, DOB, "1957-01-10"]:
            assert secret.encode() not in body  # reasons and paths only, never the values
    got: dict[str, list[itk.Response]] = {}
    for _, local_id, body in raw:
        got.setdefault(str(local_id), []).append(itk.parse_response(body))
    for n, (name, _, reason, itk_code) in enumerate(cases):
        negative = [r for r in got[f"refusal-{n}"] if not r.positive]
        assert [(r.reason, r.itk_code) for r in negative] == [(reason, itk_code)], name
        if reason == "malformed":
            assert negative[0].kind == "infrastructure" and negative[0].issues, name
        elif itk_code.startswith("2"):  # refused at infrastructure level: that is the only reply
            assert len(got[f"refusal-{n}"]) == 1, name
        else:
            assert {r.kind for r in got[f"refusal-{n}"]} == {"infrastructure", "business"}, name


def test_duplicates_and_a_crash_before_acknowledging_still_file_once(world: Database, sandbox: Sandbox) -> None:
    plain = for_patient(base(), PATIENTS[0], DOB)
    reshaped = for_patient(base(), PATIENTS[0], DOB)
    dict(VARIATIONS)["message Bundle with a MessageHeader"](reshaped)
    foreign_send(sandbox, [("first", plain), ("again", plain), ("reshaped", reshaped)])
    config = practice_config(sandbox)

    def stop(message_id: str) -> None:
        raise SystemExit("receiver stopped after committing, before acknowledging")

    with pytest.raises(SystemExit):
        inbox.poll(world, config, after_commit=stop)
    summary = inbox.poll(world, config)
    assert summary.redelivered == 1 and summary.filed == 0 and summary.duplicates == 2
    assert world.count("events WHERE recorded_by = 'RXY'") == 7  # seven results, once
    replies.send_pending(world, config)
    got = read_replies(sandbox)
    business = sorted(r.reason or "" for rs in got.values() for r in rs if r.kind == "business")
    assert business == ["already-filed", "already-filed", "filed"]  # one reply each, none repeated
    assert sum(len(rs) for rs in got.values()) == 6


def test_send_document_round_trip_to_a_practice_not_on_parity(world: Database, sandbox: Sandbox) -> None:
    config = parse_mesh_config({"url": sandbox.url, "shared_key": sandbox.shared_key, "backoff_seconds": 0,
                                "send_document_addressing": "directory",
                                "directory": {PRACTICE: PRACTICE_MAILBOX, OTHER_PRACTICE: OTHER_MAILBOX},
                                "mailboxes": [{"mailbox": TRUST_MAILBOX, "ods": TRUST, "password": "password"},
                                              {"mailbox": PRACTICE_MAILBOX, "ods": PRACTICE,
                                               "password": "password"}]}, env={})
    set_route(world, OTHER_PRACTICE, "send_document", "admin")
    record = smoking_check(ELSEWHERE, practice=OTHER_PRACTICE, dob=DOB)
    local_id = submit_check(world, record, load_template())
    entry = outbox.entry(world, local_id)
    assert entry.route == "send_document"
    assert outbox.send_due(world, config, payload_source(world, config)).sent == 1

    # The GP system of the practice (played here, reading the message as GP Connect specifies it).
    [(workflow, got_local, body)] = foreign_inbox(sandbox, OTHER_MAILBOX)
    assert workflow == "GPCONNECT_SEND_DOCUMENT" and got_local == local_id
    message = json.loads(body)
    Stu3Bundle.model_validate(message)
    header = message["entry"][0]["resource"]
    assert header["resourceType"] == "MessageHeader" and header["event"]["code"] == "ITK007C"
    handling = {x["url"]: x for x in header["extension"][0]["extension"]}
    assert handling["BusAckRequested"]["valueBoolean"] and handling["InfAckRequested"]["valueBoolean"]
    assert header["source"]["endpoint"] == TRUST_MAILBOX
    document = next(e["resource"] for e in message["entry"] if e["fullUrl"] == header["focus"][0]["reference"])
    kinds = [e["resource"]["resourceType"] for e in document["entry"]]
    assert document["type"] == "document" and kinds[0] == "Composition" and {"Patient", "Binary"} <= set(kinds)
    composition = document["entry"][0]["resource"]
    assert composition["type"]["coding"][0]["code"] == "371531000"
    binary = next(e["resource"] for e in document["entry"]
                  if e["fullUrl"] == composition["section"][0]["entry"][0]["reference"])
    assert base64.b64decode(binary["content"]) == stored_letter(world, record.check_id, 1)
    patient = next(r for r in resources(document, "Patient"))
    assert patient["identifier"][0]["value"] == ELSEWHERE and patient["birthDate"] == DOB

    def ack(name: str) -> bytes:
        text = json.dumps(fixture(name)).replace("{{IN_REPLY_TO}}", header["id"]).replace(
            "{{PRACTICE_ODS}}", OTHER_PRACTICE).replace("{{SENDER_REFERENCE}}", record.check_id)
        return text.encode()

    with mesh_client(config, Mailbox(OTHER_MAILBOX, OTHER_PRACTICE, "password")) as gp:
        for name in ("itk-response-infrastructure-ok.json", "itk-response-business-ok.json"):
            gp.send_message(TRUST_MAILBOX, ack(name), workflow_id="GPCONNECT_SEND_DOCUMENT_ACK",
                            content_type="application/fhir+json")
    polled = inbox.poll(world, config)
    assert polled.acks == 2
    latest = replies.latest_acks(world, [local_id])[local_id]
    assert (latest["infrastructure"].itk_code, latest["infrastructure"].positive) == ("20013", True)
    assert (latest["business"].itk_code, latest["business"].positive) == ("30001", True)
    outbox.track(world, config)
    assert outbox.entry(world, local_id).state == "acknowledged"
    # A resend of the same letter carries the next version in its subject (GPCM-SD-091/098).
    again = send_document_payload(world, outbox.entry(world, local_id), config)
    assert again.subject.endswith("version 2") and ELSEWHERE not in again.subject


def test_a_gp_system_refusing_a_letter_shows_as_negative(world: Database, sandbox: Sandbox) -> None:
    config = parse_mesh_config({"url": sandbox.url, "shared_key": sandbox.shared_key, "backoff_seconds": 0,
                                "send_document_addressing": "directory",
                                "directory": {OTHER_PRACTICE: OTHER_MAILBOX},
                                "mailboxes": [{"mailbox": TRUST_MAILBOX, "ods": TRUST, "password": "password"}]},
                               env={})
    set_route(world, OTHER_PRACTICE, "send_document", "admin")
    local_id = submit_check(world, smoking_check(ELSEWHERE, practice=OTHER_PRACTICE, dob=DOB), load_template())
    outbox.send_due(world, config, payload_source(world, config))
    [(_, _, body)] = foreign_inbox(sandbox, OTHER_MAILBOX)
    header_id = json.loads(body)["entry"][0]["resource"]["id"]
    refusal = json.dumps(fixture("itk-response-business-not-known.json")).replace("{{IN_REPLY_TO}}", header_id)
    with mesh_client(config, Mailbox(OTHER_MAILBOX, OTHER_PRACTICE, "password")) as gp:
        gp.send_message(TRUST_MAILBOX, refusal.encode(), workflow_id="GPCONNECT_SEND_DOCUMENT_ACK")
    inbox.poll(world, config)
    business = replies.latest_acks(world, [local_id])[local_id]["business"]
    assert (business.itk_code, business.positive) == ("30002", False)


def test_a_parity_practice_files_a_send_document_letter_for_coding_by_hand(world: Database,
                                                                           sandbox: Sandbox) -> None:
    message = fixture("send-document-gpconnect.json")
    patient = message["entry"][2]["resource"]["entry"][4]["resource"]
    patient["identifier"][0]["value"], patient["birthDate"] = PATIENTS[3], DOB
    foreign_send(sandbox, [("letter-1", message)], workflow="GPCONNECT_SEND_DOCUMENT")
    config = practice_config(sandbox)
    summary = inbox.poll(world, config)
    assert summary.letters == 1 and summary.filed == 0
    [letter] = inbox.letters_to_code(world, frozenset({PRACTICE}))
    assert letter.nhs_number == PATIENTS[3] and letter.trust_code == "GP0001"
    assert inbox.letter_pdf(world, letter.mesh_message_id).startswith(b"%PDF")
    assert [m.mesh_message_id for m in inbox.on_patient_record(world, frozenset({PRACTICE}), PATIENTS[3])] == [
        letter.mesh_message_id]
    assert world.count("events WHERE recorded_by = 'GP0001'") == 0  # a letter carries no coded results
    inbox.mark_coded(world, letter.mesh_message_id, "practice1")
    assert inbox.letters_to_code(world, frozenset({PRACTICE})) == []
    replies.send_pending(world, config)
    back = foreign_inbox(sandbox)
    assert {w for w, _, _ in back} == {"GPCONNECT_SEND_DOCUMENT_ACK"}
    responses = [itk.parse_response(b) for _, _, b in back]
    assert {(r.itk_code, r.reason) for r in responses} == {("20013", "received"), ("30001", "letter-filed")}
    assert {r.in_reply_to for r in responses} == {"ea7221b8-3cc0-4b11-bc95-585b056b5428"}


def test_parity_as_sender_shows_both_acknowledgements(world: Database, sandbox: Sandbox) -> None:
    config = sandbox.config({PRACTICE: PRACTICE_MAILBOX})
    local_id = submit_check(world, smoking_check(PATIENTS[5], dob=DOB), load_template())
    for _ in range(3):  # send; file and reply; read the replies
        run_pass(world, config)
    latest = replies.latest_acks(world, [local_id])[local_id]
    assert (latest["infrastructure"].reason, latest["infrastructure"].positive) == ("received", True)
    assert (latest["business"].reason, latest["business"].positive) == ("filed", True)
