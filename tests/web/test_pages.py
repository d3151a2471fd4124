"""Pages and browser sessions: sign-in, CSRF, rate limiting, every level of the drill-down, exports."""

from __future__ import annotations

import io
import re

import pytest
from fastapi.testclient import TestClient
from webkit import AS_OF, PASSWORD, WebWorld, login

from parity.access import entries
from parity.db import open_database

Q = f"?as_of={AS_OF.isoformat()}"


def test_pages_need_a_session(client: TestClient, world: WebWorld) -> None:
    r = client.get(f"/orgs/icb/{world.icb}")
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/orgs/icb/{world.icb}"


def test_sign_in_lands_each_role_at_home(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    assert client.get("/").headers["location"] == f"/orgs/practice/{world.practice}"
    client.cookies.clear()
    login(client, "programme1")
    assert client.get("/").headers["location"] == "/orgs/icb/QNQ".replace("/orgs/icb/QNQ", "/orgs/region/Y59")


def test_session_cookie_is_signed_httponly_and_strict(client: TestClient, world: WebWorld) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"username": "icb1", "password": PASSWORD, "csrf_token": token, "next": "/"})
    cookie = r.headers["set-cookie"].lower()
    assert "parity_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    # A tampered cookie is not a session.
    value = client.cookies.get("parity_session")
    assert client.get(f"/orgs/icb/{world.icb}").status_code == 200
    client.cookies.clear()
    client.cookies.set("parity_session", value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB"))
    assert client.get(f"/orgs/icb/{world.icb}").status_code == 303


def test_login_without_csrf_token_is_refused(client: TestClient, world: WebWorld) -> None:
    client.get("/login")
    r = client.post("/login", data={"username": "icb1", "password": PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 403
    assert client.get(f"/orgs/icb/{world.icb}").status_code == 303  # still signed out


def test_logout_needs_csrf_and_ends_the_session(client: TestClient, world: WebWorld) -> None:
    login(client, "icb1")
    assert client.post("/logout", data={"csrf_token": "nope"}).status_code == 403
    page = client.get(f"/orgs/icb/{world.icb}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get(f"/orgs/icb/{world.icb}").status_code == 303


def test_wrong_password_is_audited_and_rate_limited(client: TestClient, world: WebWorld) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    form = {"username": "pcn1", "password": "wrong-password-123", "csrf_token": token, "next": "/"}
    for _ in range(5):
        r = client.post("/login", data=form)
        assert r.status_code == 401 and "unknown username or wrong password" in r.text
    r = client.post("/login", data={**form, "password": PASSWORD})  # even the right password, now
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    with open_database(world.url, create=False) as db:
        recent = entries(db, limit=6, username="pcn1")
    assert [e.action for e in recent] == ["login_refused"] + ["login_failed"] * 5
    client.app.state.parity.throttle.forget("pcn1", "testclient")  # let other tests sign in as pcn1


def test_next_cannot_redirect_off_site(client: TestClient, world: WebWorld) -> None:
    page = client.get("/login?next=//evil.example/")
    assert 'name="next" value="/"' in page.text


@pytest.mark.parametrize("level", ["region", "icb", "sub_icb", "pcn", "practice"])
def test_every_level_of_the_drill_down(client: TestClient, world: WebWorld, level: str) -> None:
    from parity.web import views

    login(client, "programme1")
    results = client.app.state.parity.results
    code = views.level_rows(results, "phsmi", AS_OF, level)[0]["org_code"]
    r = client.get(f"/orgs/{level}/{code}{Q}")
    assert r.status_code == 200
    row = views.org_row(results, "phsmi", AS_OF, level, code)
    assert f'data-testid="register">{row["register"]:,}<' in r.text
    assert 'class="parity-chart-spec"' in r.text
    if level != "practice":
        child = views.CHILD_LEVEL[level]
        first = views.children(results, "phsmi", AS_OF, level, code)[0]
        assert f'href="/orgs/{child}/{first["org_code"]}?' in r.text
        assert client.get(f"/orgs/{level}/{code}/variation{Q}").status_code == 200
        assert client.get(f"/orgs/{level}/{code}/checks{Q}").status_code == 200


def test_unknown_organisation_and_bad_parameters(client: TestClient, world: WebWorld) -> None:
    login(client, "icb1")
    assert client.get("/orgs/icb/NOPE").status_code == 404
    assert client.get("/orgs/ward/X").status_code == 400
    r = client.get(f"/orgs/icb/{world.icb}?as_of=yesterday")
    assert r.status_code == 422 and "query.as_of: Input should be a valid date" in r.text
    assert client.get(f"/orgs/icb/{world.icb}?as_of=2099-03-31").status_code == 400


def test_practice_user_worklist_page_and_patient_page(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    r = client.get(f"/practices/{world.practice}/worklist{Q}&category=near_miss")
    assert r.status_code == 200
    assert "Near-miss" in r.text and 'id="worklist"' in r.text
    r = client.get(f"/patients/{world.own_patient}{Q}")
    assert r.status_code == 200 and 'id="timeline"' in r.text
    denied = client.get(f"/practices/{world.other_practice}/worklist{Q}")
    assert denied.status_code == 403 and "only see patients of your own organisation" in denied.text
    with open_database(world.url, create=False) as db:
        last = entries(db, limit=3, username="practice1")
    assert [(e.action, e.outcome) for e in last] == [("view_worklist", "denied"), ("view_patient", "allowed"),
                                                     ("view_worklist", "allowed")]
    assert last[0].via == "session"


def test_exports_match_the_filtered_page(client: TestClient, world: WebWorld) -> None:
    import openpyxl
    import pandas as pd

    login(client, "practice1")
    page = client.get(f"/practices/{world.practice}/worklist{Q}&due_status=overdue")
    shown = int(re.search(r'data-testid="shown">Showing ([\d,]+) of', page.text).group(1).replace(",", ""))
    csv = client.get(f"/practices/{world.practice}/worklist.csv{Q}&due_status=overdue")
    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    frame = pd.read_csv(io.BytesIO(csv.content), dtype=str, encoding="utf-8-sig")
    assert len(frame) == shown and set(frame["Due status"]) == {"Overdue"}
    assert frame["NHS number"].str.fullmatch(r"\d{10}").all()
    xlsx = client.get(f"/practices/{world.practice}/worklist.xlsx{Q}&due_status=overdue")
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    sheet = book.active
    assert sheet.max_row - 2 == shown  # title row + header row
    with open_database(world.url, create=False) as db:
        actions = [e.action for e in entries(db, limit=2, username="practice1")]
    assert actions == ["export_worklist_xlsx", "export_worklist_csv"]


def test_admin_pages(client: TestClient, world: WebWorld) -> None:
    login(client, "admin1")
    audit = client.get("/admin/audit")
    assert audit.status_code == 200 and "Every entry is intact" in audit.text
    assert "practice1" in client.get("/admin/audit?user=practice1").text
    assert "trust1" in client.get("/admin/users").text
    client.cookies.clear()
    login(client, "icb1")
    assert client.get("/admin/audit").status_code == 403


def test_security_headers(client: TestClient, world: WebWorld) -> None:
    login(client, "icb1")
    r = client.get(f"/orgs/icb/{world.icb}")
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    assert "unsafe-eval" not in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"
    found = re.findall(r"(?:src|href)=\"https?://[^\"]*", r.text)
    assert not found  # nothing loads from elsewhere


def test_trust_caseload_page(client: TestClient, world: WebWorld) -> None:
    from parity.access import trust_caseload

    login(client, "trust1")
    r = client.get(f"/caseload{Q}")
    assert r.status_code == 200
    with open_database(world.url, create=False) as db:
        caseload = trust_caseload(db, world.trust, AS_OF)
    listed = set(re.findall(r'href="/patients/(\d{10})\?', r.text))
    assert listed and listed <= caseload
    client.cookies.clear()
    login(client, "practice1")
    assert client.get(f"/caseload{Q}").status_code == 403
