"""Sign in and out (browser sessions). API clients use bearer tokens instead (``parity users token``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from parity.access import authenticate, known_username, record
from parity.errors import AuthenticationError, TooManyAttempts
from parity.web.deps import base_context, get_state, optional_actor
from parity.web.security import check_csrf, safe_next, sign_in, sign_out

router = APIRouter(tags=["auth"], include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the sign-in page cannot be used to redirect people elsewhere, and none
    that names a patient (issue 12 finding 8): see ``parity.web.security.safe_next``."""
    return safe_next(target)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query name
    state = get_state(request)
    if optional_actor(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    context = base_context(request, None, title="Sign in", next=_safe_next(next), errors=[], username="")
    return state.templates.TemplateResponse(request, "login.html", context)


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=1000)] = "",
          csrf_token: Annotated[str, Form(max_length=200)] = "",
          next: Annotated[str, Form(max_length=2000)] = "/") -> Response:  # noqa: A002
    state = get_state(request)
    check_csrf(request, csrf_token)
    ip = request.client.host if request.client else None
    target = _safe_next(next)
    # What was typed is recorded only when it names a real account (issue 12 finding 8): it may be a
    # password typed in the wrong box, or an NHS number.
    known = known_username(state.db, username)
    who = {"username": known} if known else {}
    try:
        attempt = state.throttle.begin(username, ip)
    except TooManyAttempts as exc:
        record(state.db, None, "login_refused", None, "denied", "rate limited" + ("" if known else "; unknown user"),
               **who)
        return _login_error(request, username, target, str(exc), 429, {"Retry-After": str(exc.retry_after)})
    try:
        user = authenticate(state.db, username, password)
    except AuthenticationError as exc:
        state.throttle.failed(attempt)
        record(state.db, None, "login_failed", None, "denied", None if known else "unknown user", **who)
        return _login_error(request, username, target, str(exc), 401)
    state.throttle.succeeded(attempt, username, ip)
    sign_in(request, user.username)
    record(state.db, user, "login", None, "allowed")
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    check_csrf(request, csrf_token)
    actor = optional_actor(request)
    sign_out(request)  # ends the session on the server too: the old cookie is worth nothing now
    if actor is not None:
        record(get_state(request).db, actor, "logout", None, "allowed")
    return RedirectResponse("/login", status_code=303)


def _login_error(request: Request, username: str, target: str, message: str, status: int,
                 headers: dict[str, str] | None = None) -> Response:
    state = get_state(request)
    context = base_context(request, None, title="Sign in", next=target, username=username,
                           errors=[{"text": message, "href": "#username"}])
    return state.templates.TemplateResponse(request, "login.html", context, status_code=status, headers=headers)
