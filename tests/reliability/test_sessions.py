"""Finding 5 (issue 12): sessions end on the server — a cookie replayed after sign-out, after the
user is disabled or after a password change reads nothing; cookies are Secure over https."""

from __future__ import annotations

from parity.access import disable_user, set_password

from .conftest import PASSWORD, csrf, sign_in
from .world import PEOPLE, PRACTICE


def _cookie(web) -> str:
    return web.cookies.get("parity_session")


def _worklist(web, cookie: str):
    web.cookies.clear()
    web.cookies.set("parity_session", cookie)
    return web.get(f"/practices/{PRACTICE}/worklist")


def test_logout_replay_is_refused(site, web):
    sign_in(web, "practice1")
    assert web.get(f"/practices/{PRACTICE}/worklist").status_code == 200
    stolen = _cookie(web)
    token = csrf(web, f"/practices/{PRACTICE}/worklist")
    assert web.post("/logout", data={"csrf_token": token}).status_code == 303
    r = _worklist(web, stolen)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = web.get(f"/patients/{PEOPLE[0]}")
    assert r.status_code == 303 and PEOPLE[0] not in r.headers["location"]


def test_password_change_and_disable_end_sessions(site, web):
    sign_in(web, "victim1")
    kept = _cookie(web)
    assert _worklist(web, kept).status_code == 200
    set_password(site.db, "victim1", PASSWORD + "!")
    assert _worklist(web, kept).status_code == 303
    set_password(site.db, "victim1", PASSWORD)
    web.cookies.clear()
    sign_in(web, "victim1")
    again = _cookie(web)
    disable_user(site.db, "victim1")
    assert _worklist(web, again).status_code == 303


def test_session_cookie_is_secure_over_https(site, web):
    r = web.get("https://testserver/login")
    cookie = r.headers.get("set-cookie", "")
    assert "parity_session=" in cookie and "Secure" in cookie
    r = web.get("http://testserver/login")
    assert "Secure" not in r.headers.get("set-cookie", "")
