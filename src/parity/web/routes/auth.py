"""Sign in and out (browser sessions). API clients use bearer tokens instead (``parity users token``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from parity.access import authenticate, record
from parity.errors import AuthenticationError, TooManyAttempts
from parity.web.deps import base_context, get_state, optional_actor
from parity.web.security import check_csrf, sign_in, sign_out

router = APIRouter(tags=["auth"], include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only same-site paths, so the sign-in page cannot be used to redirect people elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


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
    try:
        state.throttle.check(username, ip)
        user = authenticate(state.db, username, password)
    except TooManyAttempts as exc:
        record(state.db, None, "login_refused", None, "denied", "rate limited", username=username)
        return _login_error(request, username, target, str(exc), 429, {"Retry-After": str(exc.retry_after)})
    except AuthenticationError as exc:
        state.throttle.failure(username, ip)
        record(state.db, None, "login_failed", None, "denied", username=username)
        return _login_error(request, username, target, str(exc), 401)
    state.throttle.success(username, ip)
    sign_in(request, user.username)
    record(state.db, user, "login", None, "allowed")
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    check_csrf(request, csrf_token)
    sign_out(request)
    return RedirectResponse("/login", status_code=303)


def _login_error(request: Request, username: str, target: str, message: str, status: int,
                 headers: dict[str, str] | None = None) -> Response:
    state = get_state(request)
    context = base_context(request, None, title="Sign in", next=target, username=username,
                           errors=[{"text": message, "href": "#username"}])
    return state.templates.TemplateResponse(request, "login.html", context, status_code=status, headers=headers)
