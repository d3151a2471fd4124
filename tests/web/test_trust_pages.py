"""Trust-to-GP messaging pages: the trust check form, sent checks, bulk upload, and the practice's
results received (exceptions queue), on DuckDB and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from datetime import date

from fastapi.testclient import TestClient
from nhs_number import is_valid
from webkit import WebWorld, login

from parity.interop import checks as trust_checks
from parity.interop.mesh import inbox, outbox
from parity.interop.record import record_from_form
from parity.rules.template import load_template

CHECK_DAY = "2026-11-20"


def valid_nhs_numbers(count: int, start: int) -> list[str]:
    out: list[str] = []
    stem = start
    while len(out) < count:
        for check in range(10):
            if is_valid(f"{stem}{check}"):
                out.append(f"{stem}{check}")
                break
        stem += 1
    return out


def csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def check_form(world: WebWorld, nhs: str, **extra: str) -> dict[str, str]:
    return {"nhs_number": nhs, "date_of_birth": "1980-05-17", "practice_code": world.practice,
            "performed_on": CHECK_DAY, "performed_by": "Sam Jones, RMN", "family_name": "Example",
            "given_name": "Alex", "sex": "female", "blood_pressure.systolic": "150",
            "blood_pressure.diastolic": "85", "smoking.smoking_status": "77176002",
            "narrative": "Seen at the depot clinic.", **extra}


def db_of(client: TestClient):  # noqa: ANN201
    return client.app.state.parity.db


def born(client: TestClient, nhs: str) -> str:
    db = db_of(client)
    with db.lock:
        return db.execute("SELECT date_of_birth FROM patients WHERE nhs_number = ?", [nhs])[0][0].isoformat()


def test_form_starts_with_the_patient_and_renders_every_section(client: TestClient, world: WebWorld) -> None:
    login(client, "trust1")
    lookup = client.get("/trust/checks/new")
    assert lookup.status_code == 200 and 'id="find-patient"' in lookup.text
    assert 'id="blood_pressure.systolic"' not in lookup.text  # no check before the patient is known
    # From the caseload: the NHS number alone opens the form with the record's details.
    page = client.get(f"/trust/checks/new?nhs_number={world.caseload_patient}")
    assert page.status_code == 200
    text = page.text
    card = text[text.index('id="patient-card"'):]
    assert born_words(born(client, world.caseload_patient)) in card[:3000]
    assert f'name="date_of_birth" value="{born(client, world.caseload_patient)}"' in text
    assert 'id="blood_pressure.systolic"' in text and 'inputmode="decimal"' in text
    assert 'min="60" max="260"' in text and "Current smoker" in text
    assert "SNOMED" not in text  # codes are for the GP system, not the nurse
    assert text.index("Core checks") < text.index("Extended elements") < text.index("Pulse rate")
    # Not on the caseload: the NHS number and date of birth must both match the record.
    other = client.get(f"/trust/checks/new?nhs_number={world.other_patient}&date_of_birth=1900-01-01")
    assert other.status_code == 422 and "does not match the record" in other.text
    assert 'id="patient-card"' not in other.text and "1900" not in other.text.split("nhsuk-error-summary")[1][:600]
    ok = client.get(f"/trust/checks/new?nhs_number={world.other_patient}"
                    f"&date_of_birth={born(client, world.other_patient)}")
    assert ok.status_code == 200 and 'id="patient-card"' in ok.text
    made_up = client.get("/trust/checks/new?nhs_number=9434765919&date_of_birth=1980-05-17")
    assert made_up.status_code == 422 and "No patient with this NHS number" in made_up.text


def born_words(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.day} {d:%b %Y}"


def test_trust_records_a_check_and_sees_it_queued(client: TestClient, world: WebWorld) -> None:
    login(client, "trust1")
    token = csrf(client, "/trust/checks/new")
    nhs = world.caseload_patient
    form = {**check_form(world, nhs, date_of_birth=born(client, nhs)), "csrf_token": token}
    before = len(trust_checks.checks(db_of(client)))
    review = client.post("/trust/checks", data={**form, "step": "review"})
    assert review.status_code == 200 and "Check your answers before sending" in review.text
    assert "150/85 mmHg" in review.text and len(trust_checks.checks(db_of(client))) == before  # nothing sent yet
    changed = client.post("/trust/checks", data={**form, "step": "change"})
    assert changed.status_code == 200 and 'value="Sam Jones, RMN"' in changed.text
    r = client.post("/trust/checks", data={**form, "step": "send"})
    assert r.status_code == 303, r.text[:500]
    target = r.headers["location"]
    assert re.fullmatch(r"/trust/checks/[0-9a-f-]{36}/v1\?sent=1", target)
    detail = client.get(target)
    assert detail.status_code == 200 and "150/85 mmHg" in detail.text and "Queued" in detail.text
    assert 'id="sent-panel"' in detail.text and "Check recorded" in detail.text
    stored = trust_checks.checks(db_of(client))
    assert len(stored) == before + 1
    target = target.split("?")[0]
    listing = client.get("/trust/checks")
    assert listing.status_code == 200 and nhs in listing.text
    row = listing.text[listing.text.index(nhs):]
    assert 'data-state="queued"' in row[:2000]
    letter = client.get(target + "/letter.pdf")
    assert letter.status_code == 200 and letter.content.startswith(b"%PDF")
    assert letter.headers["content-type"] == "application/pdf"
    assert letter.headers["content-disposition"].startswith("inline")


def test_invalid_check_is_shown_again_with_errors_and_not_stored(client: TestClient, world: WebWorld) -> None:
    login(client, "trust1")
    token = csrf(client, "/trust/checks/new")
    before = len(trust_checks.checks(db_of(client)))
    form = {**check_form(world, "1234567890", **{"blood_pressure.systolic": "400"}), "csrf_token": token}
    r = client.post("/trust/checks", data=form)
    assert r.status_code == 422
    summary = r.text[r.text.index("nhsuk-error-summary"):]
    summary = summary[:summary.index("</ul>")]
    assert 'href="#nhs_number"' in summary and 'href="#blood_pressure.systolic"' in summary
    assert "must be between 60 and 260" in summary
    assert 'id="blood_pressure.systolic-error"' in r.text  # inline message
    assert 'value="Sam Jones, RMN"' in r.text  # values kept
    assert len(trust_checks.checks(db_of(client))) == before


def test_form_needs_csrf(client: TestClient, world: WebWorld) -> None:
    login(client, "trust1")
    nhs = valid_nhs_numbers(1, 943_100_000)[0]
    assert client.post("/trust/checks", data={**check_form(world, nhs), "csrf_token": "forged"}).status_code == 403


def test_only_trust_users_record_checks(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    assert client.get("/trust/checks/new").status_code == 403
    assert client.get("/trust/checks").status_code == 403


def test_trust_cannot_see_another_trusts_check(client: TestClient, world: WebWorld) -> None:
    template = load_template()
    nhs = valid_nhs_numbers(1, 943_200_000)[0]
    other = "RZZ" if world.trust != "RZZ" else "RYY"
    rec = record_from_form(template, check_form(world, nhs), trust_code=other, created_by="someone",
                           today=date(2026, 11, 22))
    db = db_of(client)
    with db.lock:
        trust_checks.submit_check(db, rec, template)
    login(client, "trust1")
    base = f"/trust/checks/{rec.check_id}/v1"
    assert client.get(base).status_code == 404
    assert client.get(base + "/letter.pdf").status_code == 404
    assert nhs not in client.get("/trust/checks").text
    token = csrf(client, "/trust/checks")
    r = client.post(f"/trust/outbox/{outbox.local_id_for(rec.check_id, 1)}/requeue", data={"csrf_token": token})
    assert r.status_code == 404


def _upload(client: TestClient, files: dict[str, str]) -> object:
    token = csrf(client, "/trust/upload")
    parts = [("files", (name, body.encode(), "text/csv")) for name, body in files.items()]
    return client.post("/trust/upload", data={"csrf_token": token}, files=parts)


def _extract(world: WebWorld, nhs: list[str], events: list[str]) -> dict[str, str]:
    return {
        "patients.csv": "nhs_number,date_of_birth,sex\n" + "".join(f"{n},1980-05-17,female\n" for n in nhs),
        "registrations.csv": "nhs_number,practice_code,start_date,end_date\n"
                             + "".join(f"{n},{world.practice},2010-01-01,\n" for n in nhs),
        "events.csv": "nhs_number,date,snomed_code,value,unit,recorded_by\n" + "\n".join(events) + "\n",
    }


def test_bulk_upload_queues_checks(client: TestClient, world: WebWorld) -> None:
    login(client, "trust1")
    nhs = valid_nhs_numbers(2, 943_300_000)
    events = [f"{nhs[0]},{CHECK_DAY},72313002,140,mm[Hg],{world.trust}",
              f"{nhs[0]},{CHECK_DAY},1091811000000102,80,mm[Hg],{world.trust}",
              f"{nhs[1]},{CHECK_DAY},77176002,,,{world.trust}"]
    r = _upload(client, _extract(world, nhs, events))
    assert r.status_code == 303, r.text[:2000]
    assert r.headers["location"] == "/trust/checks?queued=2"
    listing = client.get(r.headers["location"])
    assert "2 checks uploaded and queued" in listing.text
    assert nhs[0] in listing.text and nhs[1] in listing.text


def test_bulk_upload_with_a_bad_code_names_file_line_and_column(client: TestClient, world: WebWorld) -> None:
    login(client, "trust1")
    nhs = valid_nhs_numbers(1, 943_400_000)
    before = len(trust_checks.checks(db_of(client)))
    events = [f"{nhs[0]},{CHECK_DAY},72313002,140,mm[Hg],{world.trust}",
              f"{nhs[0]},{CHECK_DAY},22298006,,,{world.trust}"]
    r = _upload(client, _extract(world, nhs, events))
    assert r.status_code == 422
    table = r.text[r.text.index('id="problems"'):]
    assert re.search(r"<td[^>]*>events\.csv</td>\s*<td[^>]*>3</td>\s*<td[^>]*>snomed_code</td>", table), table[:1500]
    assert len(trust_checks.checks(db_of(client))) == before


def test_bulk_upload_refuses_other_file_names(client: TestClient, world: WebWorld) -> None:
    login(client, "trust1")
    r = _upload(client, {"notes.csv": "a,b\n1,2\n"})
    assert r.status_code == 422 and "only files named patients.csv" in r.text


def test_practice_sees_and_dismisses_exceptions(client: TestClient, world: WebWorld) -> None:
    db = db_of(client)
    message_id = f"MSG{uuid.uuid4().hex[:12].upper()}"
    with db.lock:
        inbox.receive(db, world.practice, "X26ABC2", message_id, b"not json")
    login(client, "practice1")
    page = client.get(f"/practices/{world.practice}/messages")
    assert page.status_code == 200
    open_table = page.text[page.text.index('id="exceptions"'):page.text.index('id="received"')]
    assert message_id in open_table and "malformed FHIR Bundle" in open_table
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post(f"/messages/{message_id}/dismiss", data={"csrf_token": "forged"}).status_code == 403
    # A malformed message cannot be filed: it stays open.
    r = client.post(f"/messages/{message_id}/retry", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"].endswith("result=malformed")
    r = client.post(f"/messages/{message_id}/dismiss", data={"csrf_token": token, "note": "trust will resend"})
    assert r.status_code == 303
    page = client.get(r.headers["location"])
    assert "The exception was dismissed" in page.text
    open_table = page.text[page.text.index('id="exceptions"'):page.text.index('id="received"')]
    assert message_id not in open_table


def test_other_practice_cannot_see_the_messages(client: TestClient, world: WebWorld) -> None:
    db = db_of(client)
    message_id = f"MSG{uuid.uuid4().hex[:12].upper()}"
    with db.lock:
        inbox.receive(db, world.practice, "X26ABC2", message_id, b"not json")
    login(client, "practice2")
    assert client.get(f"/practices/{world.practice}/messages").status_code == 403
    token = csrf(client, f"/practices/{world.other_practice}/messages")
    assert client.post(f"/messages/{message_id}/dismiss", data={"csrf_token": token}).status_code == 403
    assert client.get(f"/messages/{message_id}/letter.pdf").status_code == 403
    client.cookies.clear()
    login(client, "trust1")
    assert client.get(f"/practices/{world.practice}/messages").status_code == 403
    client.cookies.clear()
    login(client, "pcn1")
    assert client.get(f"/practices/{world.practice}/messages").status_code == 200


def test_patient_page_lists_letters_section(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    page = client.get(f"/patients/{world.own_patient}")
    assert page.status_code == 200 and "Letters from trusts" in page.text
