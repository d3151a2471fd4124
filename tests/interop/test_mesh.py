"""Trust to GP over NHS Digital's real mesh-sandbox: send, track, poll, file once, acknowledge.

Each test runs on DuckDB and PostgreSQL (``any_db``). The trust and the practice share one Parity
database here (one deployment owning both mailboxes), which is how the demo runs; nothing reaches
the practice record except through MESH.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from parity.access.schema import utc_now
from parity.db import Database
from parity.interop.checks import payload_source, submit_check
from parity.interop.mesh import inbox, outbox
from parity.interop.mesh.client import mesh_client
from parity.reports.measures import patient_table
from parity.rules import load_measure
from parity.rules.template import load_template

from .conftest import OTHER_MAILBOX, PRACTICE_MAILBOX, TRUST, TRUST_MAILBOX, Sandbox, need
from .world import CHECK_DAY, FIVE, MOVED, OTHER_PRACTICE, PRACTICE, STRANGER, load_world, smoking_check

TEMPLATE = load_template()
PRACTICES = {PRACTICE: PRACTICE_MAILBOX, OTHER_PRACTICE: OTHER_MAILBOX}


@pytest.fixture
def world(any_db: Database, tmp_path: Path) -> Database:
    load_world(any_db, tmp_path / "extract")
    return any_db


def _patient(db: Database, nhs: str):
    df = patient_table(db, load_measure("phsmi"), CHECK_DAY)
    return df[df.nhs_number == nhs].iloc[0]


def _events_by_trust(db: Database) -> int:
    return db.count("events WHERE recorded_by = 'RX2'")


def _send(db: Database, config, record=None) -> str:
    local_id = submit_check(db, record or smoking_check(), TEMPLATE)
    summary = outbox.send_due(db, config, payload_source(db))
    assert summary.sent == 1, summary
    return local_id


def test_check_at_trust_takes_patient_from_five_to_six_after_one_poll(world: Database, sandbox: Sandbox) -> None:
    config = sandbox.config(PRACTICES)
    before = _patient(world, FIVE)
    assert before.checks_done == 5 and not before.all_six and not before.smoking

    local_id = _send(world, config)
    assert outbox.entry(world, local_id).state == "sent"
    assert _patient(world, FIVE).checks_done == 5  # nothing reaches the record before the poll

    summary = inbox.poll(world, config)
    assert (summary.received, summary.filed, summary.acknowledged) == (1, 1, 1)
    after = _patient(world, FIVE)
    assert after.checks_done == 6 and after.all_six and after.smoking
    # Filed as events recorded by the trust: smoking status plus systolic and diastolic readings.
    assert world.execute("SELECT snomed_code, value FROM events WHERE recorded_by = ? ORDER BY snomed_code",
                         [TRUST]) == [(72313002, 150.0), (77176002, None), (1091811000000102, 85.0)]

    outbox.track(world, config)
    assert outbox.entry(world, local_id).state == "acknowledged"
    assert [h[1] for h in outbox.history(world, local_id)] == ["queued", "sending", "sent", "acknowledged"]

    # The letter came with the data and is kept with the message for the patient page.
    msg = inbox.messages(world, nhs_number=FIVE)[0]
    assert msg.outcome == "filed"
    pdf = inbox.letter_pdf(world, msg.mesh_message_id)
    assert pdf.startswith(b"%PDF")
    text = _pdftotext(pdf)
    summary_at = text.index("Summary of checks")
    for heading in ("Check", "Result", "Date", "Status", "Action needed"):
        assert heading in text[summary_at:summary_at + 400]
    assert "150/85 mmHg" in text and "Current smoker" in text
    assert summary_at < text.index("Narrative")


def test_the_same_message_delivered_twice_files_once(world: Database, sandbox: Sandbox) -> None:
    config = sandbox.config(PRACTICES)
    _send(world, config)
    with mesh_client(config, config.owned(PRACTICE_MAILBOX)) as client:
        message_id = client.list_messages()[0]
        body = client.retrieve_message(message_id).read()
    first = inbox.receive(world, PRACTICE, PRACTICE_MAILBOX, message_id, body)
    again = inbox.receive(world, PRACTICE, PRACTICE_MAILBOX, message_id, body)
    assert (first.outcome, again.outcome) == ("filed", "duplicate")
    assert _events_by_trust(world) == 3
    assert inbox.poll(world, config).redelivered == 1  # still in MESH: acknowledged now, not refiled
    assert _events_by_trust(world) == 3


def test_the_same_content_resent_as_a_new_message_files_nothing(world: Database, sandbox: Sandbox) -> None:
    config = sandbox.config(PRACTICES)
    _send(world, config, smoking_check())
    _send(world, config, smoking_check())  # a new check id, same patient, date and results
    summary = inbox.poll(world, config)
    assert (summary.received, summary.filed, summary.duplicates) == (2, 1, 1)
    assert _events_by_trust(world) == 3
    assert world.count("loads WHERE mode = 'mesh'") == 1


def test_receiver_stopped_after_filing_before_acknowledging(world: Database, sandbox: Sandbox) -> None:
    config = sandbox.config(PRACTICES)
    _send(world, config)

    def stop(message_id: str) -> None:
        raise SystemExit("receiver stopped")

    with pytest.raises(SystemExit):
        inbox.poll(world, config, after_commit=stop)
    assert _events_by_trust(world) == 3  # filed and committed
    with mesh_client(config, config.owned(PRACTICE_MAILBOX)) as client:
        assert len(client.list_messages()) == 1  # not acknowledged, so MESH delivers it again

    summary = inbox.poll(world, config)
    assert (summary.redelivered, summary.received, summary.acknowledged) == (1, 0, 1)
    assert _events_by_trust(world) == 3
    with mesh_client(config, config.owned(PRACTICE_MAILBOX)) as client:
        assert client.list_messages() == []


def test_wrong_credentials_fail_without_sending_or_filing(world: Database, sandbox: Sandbox) -> None:
    bad_password = sandbox.config(PRACTICES, trust_password="not-the-password")
    local_id = submit_check(world, smoking_check(), TEMPLATE)
    summary = outbox.send_due(world, bad_password, payload_source(world))
    entry = outbox.entry(world, local_id)
    assert (summary.sent, summary.failed, entry.state) == (0, 1, "failed")
    assert "403" in (entry.detail or "")  # refused credentials are permanent: no retries

    bad_key = sandbox.config(PRACTICES, shared_key="wrong-shared-key")
    polled = inbox.poll(world, bad_key)
    assert polled.received == 0 and polled.errors and all("403" in e for e in polled.errors)
    assert _events_by_trust(world) == 0

    outbox.requeue(world, local_id)
    assert outbox.send_due(world, sandbox.config(PRACTICES), payload_source(world)).sent == 1


@pytest.mark.parametrize("body", [b"not json at all", b'{"resourceType": "Bundle", "type": "collection"}',
                                  b'{"resourceType": "Patient"}'])
def test_malformed_bundle_goes_to_exceptions_with_reason(world: Database, sandbox: Sandbox, body: bytes) -> None:
    config = sandbox.config(PRACTICES)
    with mesh_client(config, config.owned(TRUST_MAILBOX)) as client:
        client.send_message(PRACTICE_MAILBOX, body, workflow_id=config.workflow_id, local_id="broken.v1")
    summary = inbox.poll(world, config)
    assert (summary.exceptions, summary.filed, summary.acknowledged) == (1, 0, 1)
    [msg] = inbox.messages(world, open_only=True)
    assert msg.reason and msg.reason.startswith("malformed FHIR Bundle:")
    assert _events_by_trust(world) == 0
    assert world.count("loads WHERE mode = 'mesh'") == 0


@pytest.mark.parametrize(("nhs", "dob", "reason"), [
    (STRANGER, None, "unknown patient"),
    (MOVED, None, "not registered at this practice"),
    (FIVE, "1981-01-01", "date of birth does not match"),
])
def test_patient_problems_go_to_exceptions_and_file_nothing(world: Database, sandbox: Sandbox, nhs: str,
                                                            dob: str | None, reason: str) -> None:
    config = sandbox.config(PRACTICES)
    _send(world, config, smoking_check(nhs, dob=dob))
    summary = inbox.poll(world, config)
    assert (summary.exceptions, summary.filed) == (1, 0)
    [msg] = inbox.messages(world, open_only=True)
    assert reason in (msg.reason or "")
    assert nhs not in (msg.reason or "")  # reasons never carry patient data
    assert _events_by_trust(world) == 0


def test_exception_filed_after_the_record_is_fixed(world: Database, sandbox: Sandbox) -> None:
    config = sandbox.config(PRACTICES)
    _send(world, config, smoking_check(MOVED, practice=PRACTICE))
    inbox.poll(world, config)
    [msg] = inbox.messages(world, open_only=True)
    world.execute("INSERT INTO registrations VALUES (?, ?, ?, NULL)", [MOVED, PRACTICE, CHECK_DAY - timedelta(days=1)])
    outcome = inbox.retry_exception(world, msg.mesh_message_id, "practice1")
    assert outcome.outcome == "filed" and _events_by_trust(world) == 3
    assert inbox.messages(world, open_only=True) == []


def test_messages_go_to_the_practice_in_the_directory(world: Database, sandbox: Sandbox) -> None:
    config = sandbox.config(PRACTICES)
    _send(world, config, smoking_check(MOVED, practice=OTHER_PRACTICE))
    assert inbox.poll(world, config, practice_codes={PRACTICE}).received == 0
    summary = inbox.poll(world, config, practice_codes={OTHER_PRACTICE})
    assert summary.filed == 1
    assert world.execute("SELECT practice_code FROM filed_checks") == [(OTHER_PRACTICE,)]


def test_unreachable_mesh_is_retried_with_back_off_then_failed(world: Database, sandbox: Sandbox) -> None:
    from parity.interop.mesh import parse_mesh_config

    closed = sandbox.config(PRACTICES)
    config = parse_mesh_config({"url": "http://127.0.0.1:9", "shared_key": "k", "backoff_seconds": 30,
                                "max_attempts": 3, "timeout_seconds": 2, "directory": PRACTICES,
                                "mailboxes": [{"mailbox": TRUST_MAILBOX, "ods": TRUST, "password": "p"}]}, env={})
    local_id = submit_check(world, smoking_check(), TEMPLATE)
    now = utc_now()
    first = outbox.send_due(world, config, payload_source(world), now=now)
    e = outbox.entry(world, local_id)
    assert (first.retrying, e.state, e.attempt) == (1, "queued", 1)
    assert e.next_attempt_at == now + timedelta(seconds=30)
    assert outbox.send_due(world, config, payload_source(world), now=now).retrying == 0  # not due yet
    outbox.send_due(world, config, payload_source(world), now=now + timedelta(seconds=30))
    assert outbox.entry(world, local_id).next_attempt_at == now + timedelta(seconds=30 + 60)  # doubled
    last = outbox.send_due(world, config, payload_source(world), now=now + timedelta(seconds=90))
    assert (last.failed, outbox.entry(world, local_id).state) == (1, "failed")
    assert outbox.send_due(world, closed, payload_source(world)).sent == 0  # failed stays failed until requeued


def test_an_entry_is_sent_once_even_when_asked_twice(world: Database, sandbox: Sandbox) -> None:
    config = sandbox.config(PRACTICES)
    record = smoking_check()
    local_id = submit_check(world, record, TEMPLATE)
    assert outbox.send_due(world, config, payload_source(world)).sent == 1
    assert outbox.send_due(world, config, payload_source(world)).sent == 0
    with mesh_client(config, config.owned(PRACTICE_MAILBOX)) as client:
        assert len(client.list_messages()) == 1
    assert outbox.enqueue(world, record.check_id, 1, TRUST, PRACTICE) == local_id
    assert outbox.entry(world, local_id).state == "sent"


def _pdftotext(pdf: bytes) -> str:
    if shutil.which("pdftotext") is None:
        need("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    return out.stdout.decode()


def test_the_server_worker_sends_and_files_without_anyone_polling(world: Database, sandbox: Sandbox,
                                                                    tmp_path: Path) -> None:
    import time

    from fastapi.testclient import TestClient

    from parity.settings import Settings
    from parity.web import create_app

    config = tmp_path / "mesh.toml"
    config.write_text(
        f'url = "{sandbox.url}"\nshared_key = "{sandbox.shared_key}"\n'
        f'[[mailboxes]]\nmailbox = "{TRUST_MAILBOX}"\nods = "{TRUST}"\npassword = "password"\n'
        f'[[mailboxes]]\nmailbox = "{PRACTICE_MAILBOX}"\nods = "{PRACTICE}"\npassword = "password"\n'
        f'[directory]\n{PRACTICE} = "{PRACTICE_MAILBOX}"\n')
    settings = Settings(database_url="unused", secret_key="x" * 40, mesh_config=str(config), mesh_poll_seconds=1)
    local_id = submit_check(world, smoking_check(), TEMPLATE)
    with TestClient(create_app(settings, db=world)):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and outbox.entry(world, local_id).state != "acknowledged":
            time.sleep(0.2)
    assert outbox.entry(world, local_id).state == "acknowledged"
    assert _patient(world, FIVE).all_six
