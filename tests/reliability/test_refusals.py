"""Finding 8 (issue 12): every refusal audited, malformed path codes refused at the edge (404, never a
500), no NHS number in the sign-in URL or form, and a failed sign-in never stores what was typed."""

from __future__ import annotations

import pytest

from parity.access import audit

from .conftest import csrf, sign_in
from .world import PEOPLE, PRACTICE

LONG = "A" * 5000
ROUTES = [f"/practices/{LONG}/worklist", f"/practices/{LONG}/priorities", f"/practices/{LONG}/followup",
          f"/orgs/practice/{LONG}", f"/patients/{LONG}", f"/api/v1/practices/{LONG}/patients",
          f"/assessments/eds/icb/{LONG}", f"/published/icb/{LONG}", f"/patients/{PEOPLE[0]}x/passport.html"]


def _new_entries(site, since: int) -> list[audit.AuditEntry]:
    return [e for e in audit.entries(site.db, limit=50) if e.seq > since]


def _head(site) -> int:
    head = audit.chain_head(site.db)
    return head[0] if head else 0


@pytest.mark.parametrize("path", ROUTES, ids=lambda p: p.split("/")[1] + "-" + p.split("/")[-1][:12])
def test_overlong_codes_are_404_and_audited(site, web, path):
    sign_in(web, "practice1")
    since = _head(site)
    r = web.get(path)
    assert r.status_code == 404, r.status_code
    refused = [e for e in _new_entries(site, since) if e.outcome == "denied"]
    assert len(refused) == 1 and refused[0].username == "practice1"
    assert LONG not in (refused[0].resource or "") and len(refused[0].resource or "") <= 200


def test_csrf_refusal_is_audited(site, web):
    sign_in(web, "practice1")
    since = _head(site)
    assert web.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    refused = _new_entries(site, since)
    assert [(e.action, e.outcome, e.detail) for e in refused] == [("refused", "denied", "403 csrf")]


def test_unauthenticated_attempts_are_audited(site, web):
    since = _head(site)
    assert web.get(f"/practices/{PRACTICE}/worklist").status_code == 303
    assert web.get(f"/api/v1/practices/{PRACTICE}/patients").status_code == 401
    refused = _new_entries(site, since)
    assert len(refused) == 2 and all(e.outcome == "denied" and e.username is None for e in refused)
    assert {e.resource for e in refused} == {"/practices/{code}/worklist", "/practices/{code}/patients"}


def test_sign_in_url_and_form_never_carry_an_nhs_number(site, web):
    r = web.get(f"/patients/{PEOPLE[0]}")
    assert r.status_code == 303 and PEOPLE[0] not in r.headers["location"]
    page = web.get(f"/login?next=/patients/{PEOPLE[0]}")
    assert PEOPLE[0] not in page.text
    page = web.get(f"/login?next=/patients/{PEOPLE[0][:3]}%20{PEOPLE[0][3:6]}%20{PEOPLE[0][6:]}")
    assert PEOPLE[0][6:] not in page.text


def test_failed_sign_in_stores_no_typed_value(site, web):
    since = _head(site)
    token = csrf(web)
    for typed in (PEOPLE[1], "my secret password", "practice1"):
        web.post("/login", data={"username": typed, "password": "wrong password 1", "csrf_token": token})
    failed = [e for e in _new_entries(site, since) if e.action == "login_failed"]
    assert sorted(failed, key=lambda e: e.seq)[-1].username == "practice1"
    assert [e.username for e in failed].count(None) == 2 and len(failed) == 3
    text = " ".join(f"{e.username} {e.resource} {e.detail}" for e in failed)
    assert PEOPLE[1] not in text and "secret" not in text
    site.db.execute("DELETE FROM login_attempts")  # let later tests sign in
