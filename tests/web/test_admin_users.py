"""Administrators add, disable and reset users in the app; every change is audited, a made password is shown
once and never stored or echoed in an error, and nobody else can do it (DuckDB and PostgreSQL)."""

from __future__ import annotations

import re
import uuid

from fastapi.testclient import TestClient
from webkit import PASSWORD, WebWorld, login

from parity.access import entries


def token(client: TestClient) -> str:
    page = client.get("/admin/users")
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def can_sign_in(client: TestClient, username: str, password: str) -> bool:
    client.cookies.clear()
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf, "next": "/"})
    client.cookies.clear()
    return r.status_code == 303


def test_admin_adds_resets_and_disables_a_user(client: TestClient, world: WebWorld) -> None:
    login(client, "admin1")
    name = f"nurse-{uuid.uuid4().hex[:8]}"
    r = client.post("/admin/users", data={"csrf_token": token(client), "username": name, "role": "trust",
                                          "org_code": world.trust, "password": ""})
    assert r.status_code == 200 and f"User {name} added" in r.text
    made = re.search(r'<code id="new-password">([^<]+)</code>', r.text).group(1)
    assert len(made) >= 12
    assert f'data-user="{name}"' in r.text
    assert can_sign_in(client, name, made)

    login(client, "admin1")
    r = client.post(f"/admin/users/{name}/reset", data={"csrf_token": token(client)})
    fresh = re.search(r'<code id="new-password">([^<]+)</code>', r.text).group(1)
    assert fresh != made
    assert not can_sign_in(client, name, made) and can_sign_in(client, name, fresh)

    login(client, "admin1")
    r = client.post(f"/admin/users/{name}/disable", data={"csrf_token": token(client)})
    assert r.status_code == 303 and r.headers["location"] == f"/admin/users?result=disabled&user={name}"
    assert not can_sign_in(client, name, fresh)
    db = client.app.state.parity.db
    with db.lock:
        mine = [(e.action, e.resource, e.outcome) for e in entries(db, limit=20, username="admin1")
                if e.resource == f"user/{name}"]
    assert mine == [("disable_user", f"user/{name}", "allowed"), ("reset_password", f"user/{name}", "allowed"),
                    ("add_user", f"user/{name}", "allowed")]
    with db.lock:
        details = " ".join(e.detail or "" for e in entries(db, limit=50))
    assert made not in details and fresh not in details


def test_bad_new_user_is_refused_without_echoing_the_password(client: TestClient, world: WebWorld) -> None:
    login(client, "admin1")
    secret = "short-pw"
    r = client.post("/admin/users", data={"csrf_token": token(client), "username": "new-user-x", "role": "practice",
                                          "org_code": world.practice, "password": secret})
    assert r.status_code == 422 and "at least 12 characters" in r.text and secret not in r.text
    r = client.post("/admin/users", data={"csrf_token": token(client), "username": "new-user-y", "role": "practice",
                                          "org_code": "", "password": PASSWORD})
    assert r.status_code == 422 and 'class="nhsuk-error-summary"' in r.text
    assert "new-user-y" not in set(re.findall(r'data-user="([^"]+)"', r.text))
    # An admin cannot lock themself out.
    r = client.post("/admin/users/admin1/disable", data={"csrf_token": token(client)})
    assert r.status_code == 422 and "cannot disable your own account" in r.text


def test_only_administrators_manage_users(client: TestClient, world: WebWorld) -> None:
    login(client, "icb1")
    assert client.get("/admin/users").status_code == 403
    page = client.get(f"/orgs/icb/{world.icb}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/admin/users", data={"csrf_token": csrf, "username": "sneaky-user", "role": "admin",
                                          "org_code": "", "password": PASSWORD})
    assert r.status_code == 403
    r = client.post("/admin/users/practice1/disable", data={"csrf_token": csrf})
    assert r.status_code == 403
    assert can_sign_in(client, "practice1", PASSWORD)
