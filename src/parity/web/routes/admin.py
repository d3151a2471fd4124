"""Administration pages: the audit log of patient-level access, and users (add, disable, reset a password).

Each change is made by the ``parity.access`` functions the CLI uses (same rules: username shape, role,
organisation, password length) and audited with who did it; a reset password is made here, shown once to
the administrator and never stored or logged in clear.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parity.access import Role, add_user, disable_user, entries, list_users, record, set_password, verify_chain
from parity.errors import ConfigurationError, NotFound
from parity.web import views
from parity.web.deps import AdminDep, base_context, get_state
from parity.web.security import check_csrf

router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False)
PAGE_SIZE = 100


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, actor: AdminDep, user: Annotated[str | None, Query(max_length=64)] = None,
               action: Annotated[str | None, Query(max_length=40)] = None,
               page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    """Newest first, filterable by user and action, with the hash chain checked on every view."""
    state = get_state(request)
    with state.db.lock:
        rows = entries(state.db, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE,
                       username=user or None, action=action or None)
        broken = verify_chain(state.db)
    ctx = base_context(request, actor, title="Audit log", rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE,
                       page=page, filter_user=user or "", filter_action=action or "", broken=broken)
    return state.templates.TemplateResponse(request, "audit.html", ctx)


ROLE_WORDS = {Role.practice: "GP practice", Role.pcn: "Primary care network", Role.icb: "Integrated care board",
              Role.trust: "Mental-health trust", Role.programme: "Programme team", Role.admin: "Administrator"}
RESULTS = {"added": "User {u} added.", "disabled": "User {u} disabled: they can no longer sign in or use API tokens."}
Field = Annotated[str, Form(max_length=200)]


def _organisations(request: Request) -> list[tuple[str, str]]:
    """Codes and names offered as the organisation of a new user (practices, PCNs, ICBs in the data)."""
    state = get_state(request)
    from parity.web.deps import reporting_date

    as_of = reporting_date(request, None)
    index = views.aggregate_index(state.results, "phsmi", as_of)
    out = []
    for level in ("icb", "sub_icb", "pcn", "practice"):
        for code, row in sorted(index.rows.get(level, {}).items()):
            out.append((code, f"{row['org_name'] or code} ({views.LEVEL_LABELS[level]})"))
    return out


def _users_page(request: Request, actor: AdminDep, *, errors: list[dict[str, str]] | None = None,
                values: dict[str, str] | None = None, message: str | None = None, new_password: str | None = None,
                status: int = 200) -> Response:
    state = get_state(request)
    try:
        orgs = _organisations(request)
    except NotFound:
        orgs = []
    ctx = base_context(request, actor, title="Users", users=list_users(state.db), roles=ROLE_WORDS, orgs=orgs,
                       role_options=[(r.value, words) for r, words in ROLE_WORDS.items()],
                       errors=errors or [], values=values or {"username": "", "role": "practice", "org_code": ""},
                       message=message, new_password=new_password)
    return state.templates.TemplateResponse(request, "users.html", ctx, status_code=status)


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, actor: AdminDep, result: Annotated[str | None, Query(max_length=20)] = None,
               user: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    message = RESULTS[result].format(u=user or "") if result in RESULTS else None
    return _users_page(request, actor, message=message)


@router.post("/users")
def create_user(request: Request, actor: AdminDep, csrf_token: Field = "", username: Field = "", role: Field = "",
                org_code: Field = "", password: Field = "") -> Response:
    """Add a user. With no password typed, one is made and shown once."""
    check_csrf(request, csrf_token)
    state = get_state(request)
    made = not password
    secret = password or secrets.token_urlsafe(12)
    values = {"username": username, "role": role, "org_code": org_code}
    try:
        with state.db.lock:
            user = add_user(state.db, username, role, org_code or None, secret)
    except ConfigurationError as exc:  # the rule broken (never the password)
        record(state.db, actor, "add_user", f"user/{username.strip().lower()[:64]}", "denied", "invalid")
        field = "password" if "password" in str(exc) else "org_code" if "organisation" in str(exc) or "code" in str(
            exc) else "role" if "role" in str(exc) else "username"
        return _users_page(request, actor, errors=[{"text": str(exc)[:1].upper() + str(exc)[1:], "href": f"#{field}"}],
                           values=values, status=422)
    record(state.db, actor, "add_user", f"user/{user.username}", "allowed",
           f"{user.role.value} {user.org_code or ''}".strip())
    if made:
        return _users_page(request, actor, message=f"User {user.username} added. Give them this password; it is "
                                                   "shown only once:", new_password=secret)
    return RedirectResponse(f"/admin/users?result=added&user={user.username}", status_code=303)


@router.post("/users/{username}/disable")
def disable(request: Request, actor: AdminDep, username: str, csrf_token: Field = "") -> Response:
    check_csrf(request, csrf_token)
    state = get_state(request)
    if username.lower() == actor.username:
        return _users_page(request, actor, errors=[{"text": "You cannot disable your own account", "href": "#users"}],
                           status=422)
    with state.db.lock:
        user = disable_user(state.db, username)
    record(state.db, actor, "disable_user", f"user/{user.username}", "allowed")
    return RedirectResponse(f"/admin/users?result=disabled&user={user.username}", status_code=303)


@router.post("/users/{username}/reset")
def reset(request: Request, actor: AdminDep, username: str, csrf_token: Field = "") -> Response:
    """A new password for the user, made here and shown once; their sessions end."""
    check_csrf(request, csrf_token)
    state = get_state(request)
    secret = secrets.token_urlsafe(12)
    with state.db.lock:
        set_password(state.db, username, secret)
    record(state.db, actor, "reset_password", f"user/{username.lower()}", "allowed")
    return _users_page(request, actor, message=f"New password for {username.lower()}; give it to them, it is shown "
                                               "only once:", new_password=secret)
