"""The extract's optional direct-care columns (``given_name``, ``family_name``, ``phone``, ``preferred_contact``):
shown to patient-level users, exported only when asked, never in aggregates, logs or error messages."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from webkit import AS_OF, WebWorld, login

from parity.care.people import contact_details
from parity.db import Database
from parity.errors import ValidationError
from parity.ingest import load_extract

Q = f"?as_of={AS_OF.isoformat()}"


def person(client: TestClient, nhs: str) -> dict[str, str]:
    db = client.app.state.parity.db
    with db.lock:
        row = db.execute("SELECT given_name, family_name, phone FROM patients WHERE nhs_number = ?", [nhs])[0]
    return {"given": row[0], "family": row[1], "phone": row[2]}


def test_synthetic_people_have_synthetic_names_and_drama_range_phones(client: TestClient, world: WebWorld) -> None:
    db = client.app.state.parity.db
    with db.lock:
        phones = [r[0] for r in db.execute("SELECT phone FROM patients")]
    assert phones and all(re.fullmatch(r"07700 900\d{3}", p) for p in phones)  # Ofcom's drama range


def test_practice_sees_names_and_phones_and_exports_them_only_when_asked(client: TestClient, world: WebWorld,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    login(client, "practice1")
    me = person(client, world.own_patient)
    with caplog.at_level(logging.DEBUG):
        page = client.get(f"/practices/{world.practice}/worklist{Q}&search={world.own_patient}")
        patient = client.get(f"/patients/{world.own_patient}{Q}")
        plain = client.get(f"/practices/{world.practice}/worklist.csv{Q}")
        asked = client.get(f"/practices/{world.practice}/worklist.csv{Q}&contacts=true")
    assert page.status_code == patient.status_code == plain.status_code == asked.status_code == 200
    row = page.text[page.text.index(f'data-nhs="{world.own_patient}"'):]
    assert f"{me['given']} {me['family'].upper()}" in row[:1500] and me["phone"] in row[:1500]
    assert f"<h1 class=\"nhsuk-heading-l\">{me['given']} {me['family'].upper()}" in patient.text
    assert me["phone"] in patient.text

    without = pd.read_csv(io.BytesIO(plain.content), dtype=str, encoding="utf-8-sig")
    assert not {"Name", "Phone", "Preferred contact"} & set(without.columns)
    assert me["phone"] not in plain.text and me["family"].upper() not in plain.text
    with_contacts = pd.read_csv(io.BytesIO(asked.content), dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert list(with_contacts.columns[:4]) == ["NHS number", "Name", "Phone", "Preferred contact"]
    mine = with_contacts[with_contacts["NHS number"] == world.own_patient].iloc[0]
    assert mine["Name"] == f"{me['given']} {me['family'].upper()}" and mine["Phone"] == me["phone"]
    # Never in the logs.
    assert me["phone"] not in caplog.text and me["family"] not in caplog.text.replace(me["family"].upper(), "")
    db = client.app.state.parity.db
    from parity.access import entries

    with db.lock:
        last = entries(db, limit=1, username="practice1")[0]
    assert last.action == "export_worklist_csv_contacts" and me["phone"] not in (last.detail or "")


def test_aggregate_pages_carry_no_names(client: TestClient, world: WebWorld) -> None:
    login(client, "icb1")
    me = person(client, world.own_patient)
    for path in (f"/orgs/icb/{world.icb}{Q}", f"/orgs/icb/{world.icb}/practices{Q}",
                 f"/orgs/icb/{world.icb}/areas.csv{Q}", f"/orgs/icb/{world.icb}/practices.csv{Q}"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert me["phone"] not in r.text, path


def test_a_bad_phone_is_refused_without_echoing_it(any_db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "x"
    folder.mkdir()
    secret = "0" * 40  # longer than the column's 32 characters
    (folder / "patients.csv").write_text("nhs_number,date_of_birth,sex,given_name,family_name,phone,preferred_contact\n"
                                         f"9000000009,1980-01-01,female,Alex,Example,{secret},phone\n")
    (folder / "registrations.csv").write_text("nhs_number,practice_code,start_date,end_date\n"
                                              "9000000009,J82155,2010-01-01,\n")
    (folder / "events.csv").write_text("nhs_number,date,snomed_code,value,unit\n")
    with pytest.raises(ValidationError) as caught:
        load_extract(any_db, folder)
    where = [(p.file, p.line, p.column) for p in caught.value.problems]
    assert ("patients.csv", 2, "phone") in where
    assert secret not in str(caught.value) and all(secret not in p.reason for p in caught.value.problems)
    # Nothing was loaded (all or nothing), so no details to read.
    assert contact_details(any_db, ["9000000009"]) == {}
