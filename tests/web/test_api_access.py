"""Role boundaries, enforced in the API layer and audited (issue: every patient-level view is logged).

Runs on DuckDB and PostgreSQL. Each role reads what it may and is refused what it may not; every
refusal of patient-level data is a 403 *and* an audit entry naming who, what and when.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from webkit import AS_OF, WebWorld, bearer

from parity.access import entries, verify_chain
from parity.db import open_database

Q = f"?as_of={AS_OF.isoformat()}"


def last_audit(world: WebWorld, username: str):  # noqa: ANN201 - AuditEntry
    with open_database(world.url, create=False) as db:
        return entries(db, limit=1, username=username)[0]


def audit_count(world: WebWorld) -> int:
    with open_database(world.url, create=False) as db:
        return int(db.execute("SELECT COUNT(*) FROM audit_log")[0][0])


def test_practice_token_reads_own_practice_worklist(client: TestClient, world: WebWorld) -> None:
    r = client.get(f"/api/v1/practices/{world.practice}/patients{Q}", headers=bearer(world, "practice1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] > 0 and len(body["patients"]) == body["total"]
    assert {p["practice_code"] for p in body["patients"]} == {world.practice}
    entry = last_audit(world, "practice1")
    assert (entry.action, entry.resource, entry.outcome, entry.via) == (
        "api_worklist", f"practice/{world.practice}", "allowed", "token")


def test_practice_token_reading_another_practice_gets_403_and_is_audited(client: TestClient,
                                                                         world: WebWorld) -> None:
    before = audit_count(world)
    r = client.get(f"/api/v1/practices/{world.other_practice}/patients{Q}", headers=bearer(world, "practice1"))
    assert r.status_code == 403
    assert r.json() == {"ok": False, "status": 403, "error": "Forbidden",
                        "detail": "you can only see patients of your own organisation"}
    assert audit_count(world) == before + 1
    entry = last_audit(world, "practice1")
    assert (entry.action, entry.resource, entry.outcome) == ("api_worklist", f"practice/{world.other_practice}",
                                                             "denied")
    assert entry.role == "practice" and entry.org_code == world.practice and entry.at is not None


def test_practice_token_patient_boundaries(client: TestClient, world: WebWorld) -> None:
    h = bearer(world, "practice1")
    own = client.get(f"/api/v1/patients/{world.own_patient}{Q}", headers=h)
    assert own.status_code == 200, own.text
    assert own.json()["practice_code"] == world.practice
    assert [c["check"] for c in own.json()["checks"]][:6] == ["bmi", "blood_pressure", "lipids", "glucose",
                                                               "alcohol", "smoking"]
    other = client.get(f"/api/v1/patients/{world.other_patient}{Q}", headers=h)
    assert other.status_code == 403
    assert world.other_patient not in other.text  # the refusal never echoes the NHS number
    entry = last_audit(world, "practice1")
    assert (entry.action, entry.resource, entry.outcome) == ("api_patient", f"patient/{world.other_patient}",
                                                             "denied")
    # Someone who does not exist looks exactly like someone registered elsewhere.
    ghost = client.get(f"/api/v1/patients/9999999999{Q}", headers=h)
    assert ghost.status_code == 403 and ghost.json()["detail"] == other.json()["detail"]


def test_pcn_token_sees_its_practices_only(client: TestClient, world: WebWorld) -> None:
    h = bearer(world, "pcn1")
    assert client.get(f"/api/v1/practices/{world.practice}/patients{Q}", headers=h).status_code == 200
    assert client.get(f"/api/v1/practices/{world.other_practice}/patients{Q}", headers=h).status_code == 403
    assert client.get(f"/api/v1/patients/{world.own_patient}{Q}", headers=h).status_code == 200
    assert client.get(f"/api/v1/patients/{world.other_patient}{Q}", headers=h).status_code == 403


def test_icb_token_sees_every_practice_in_the_icb(client: TestClient, world: WebWorld) -> None:
    h = bearer(world, "icb1")
    for code in (world.practice, world.other_practice):
        assert client.get(f"/api/v1/practices/{code}/patients{Q}", headers=h).status_code == 200
    assert client.get(f"/api/v1/patients/{world.other_patient}{Q}", headers=h).status_code == 200


def test_trust_token_sees_its_caseload_only(client: TestClient, world: WebWorld) -> None:
    from parity.access import trust_caseload

    h = bearer(world, "trust1")
    with open_database(world.url, create=False) as db:
        caseload = trust_caseload(db, world.trust, AS_OF)
    r = client.get(f"/api/v1/practices/{world.other_practice}/patients{Q}", headers=h)
    assert r.status_code == 200
    assert {p["nhs_number"] for p in r.json()["patients"]} <= caseload
    assert client.get(f"/api/v1/patients/{world.caseload_patient}{Q}", headers=h).status_code == 200
    assert client.get(f"/api/v1/patients/{world.other_patient}{Q}", headers=h).status_code == 403


@pytest.mark.parametrize("username", ["programme1", "admin1"])
def test_aggregate_only_roles_get_no_patients(client: TestClient, world: WebWorld, username: str) -> None:
    h = bearer(world, username)
    assert client.get(f"/api/v1/measures{Q}&level=icb", headers=h).status_code == 200
    assert client.get(f"/api/v1/practices/{world.practice}/patients{Q}", headers=h).status_code == 403
    assert client.get(f"/api/v1/patients/{world.own_patient}{Q}", headers=h).status_code == 403
    assert last_audit(world, username).outcome == "denied"


def test_only_admins_read_the_audit_log(client: TestClient, world: WebWorld) -> None:
    r = client.get("/api/v1/audit?limit=5", headers=bearer(world, "admin1"))
    assert r.status_code == 200 and len(r.json()) == 5
    assert [e["seq"] for e in r.json()] == sorted((e["seq"] for e in r.json()), reverse=True)
    for username in ("practice1", "icb1", "programme1", "trust1"):
        assert client.get("/api/v1/audit", headers=bearer(world, username)).status_code == 403
    with open_database(world.url, create=False) as db:
        assert verify_chain(db) is None


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer parity_not-a-real-token"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"}])
def test_missing_or_bad_credentials_get_401(client: TestClient, world: WebWorld, headers: dict) -> None:
    r = client.get(f"/api/v1/measures{Q}", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["ok"] is False and r.json()["status"] == 401


def test_revoked_token_stops_working(client: TestClient, world: WebWorld) -> None:
    from parity.access import issue_token, revoke_token

    with open_database(world.url, create=False) as db:
        token = issue_token(db, "icb1", "short-lived")
    h = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=h).json()["username"] == "icb1"
    with open_database(world.url, create=False) as db:
        assert revoke_token(db, token)
    assert client.get("/api/v1/me", headers=h).status_code == 401


def test_me_describes_scope(client: TestClient, world: WebWorld) -> None:
    assert client.get("/api/v1/me", headers=bearer(world, "practice1")).json() == {
        "username": "practice1", "role": "practice", "org_code": world.practice, "via": "token",
        "patient_level": True}
    assert client.get("/api/v1/me", headers=bearer(world, "programme1")).json()["patient_level"] is False
