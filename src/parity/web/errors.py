"""One place that turns errors into HTTP responses: JSON for the API, an HTML page for browsers.

Every JSON error has the same shape (datasette's ``error_body``, shared/docs/style-anchors.md):
``{"ok": false, "status": 403, "error": "Forbidden", "detail": "..."}``. Messages come from
``ParityError``s, which never carry patient data; anything unexpected is a bare 500 with no detail.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from parity.errors import (
    AuthenticationError,
    ConfigurationError,
    DatabaseError,
    NotFound,
    ParityError,
    PermissionDenied,
    RuleError,
    TooManyAttempts,
    ValidationError,
)

log = logging.getLogger("parity.web")

# The single mapping from Parity's exception tree to HTTP statuses (the CLI maps the same tree to
# exit codes in parity.errors).
STATUS_FOR: list[tuple[type[ParityError], int]] = [
    (AuthenticationError, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (TooManyAttempts, 429),
    (ConfigurationError, 400),
    (RuleError, 400),
    (ValidationError, 422),
    (DatabaseError, 503),
]


def status_for(exc: ParityError) -> int:
    """The HTTP status for a Parity error (500 for one not in ``STATUS_FOR``)."""
    for cls, status in STATUS_FOR:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(status: int, detail: str, errors: list[dict] | None = None) -> dict:
    """The one JSON error shape."""
    body: dict = {"ok": False, "status": status, "error": HTTPStatus(status).phrase, "detail": detail}
    if errors:
        body["errors"] = errors
    return body


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(request: Request, status: int, detail: str, errors: list[dict] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """JSON under /api/, otherwise the HTML error page (or the sign-in page for a 401)."""
    if wants_json(request):
        headers = dict(headers or {})
        if status == 401:
            headers.setdefault("WWW-Authenticate", 'Bearer realm="parity"')
        return JSONResponse(error_body(status, detail, errors), status_code=status, headers=headers)
    if status == 401:
        from urllib.parse import quote

        from parity.web.security import safe_next

        # safe_next drops a patient's path: an NHS number must not travel in the sign-in URL.
        return RedirectResponse(f"/login?next={quote(safe_next(request.url.path), safe='/')}", status_code=303)
    state = getattr(request.app.state, "parity", None)
    if state is None:
        return HTMLResponse(f"<h1>{HTTPStatus(status).phrase}</h1>", status_code=status)
    from parity.web.deps import base_context

    context = base_context(request, None, title=HTTPStatus(status).phrase)
    context.update(status=status, detail=detail)
    return state.templates.TemplateResponse(request, "error.html", context, status_code=status, headers=headers)


# Refusals the error handler audits when the route did not (issue 12 finding 8): not signed in, not
# allowed (CSRF included), too many attempts, and malformed paths refused at the edge.
AUDITED_STATUSES = frozenset({401, 403, 404, 429})


def audit_refusal(request: Request, status: int, exc: ParityError) -> None:
    """Record one "refused" entry for this request unless a route already recorded a refusal.

    ``resource`` is the route's template (``/patients/{nhs_number}``), never the URL, and ``detail``
    the status and kind of refusal; a 404 is recorded only when the edge check refused the path.
    """
    from parity.access.audit import _refusals, record

    seen = _refusals.get()
    if seen is None or seen:
        return
    if status == 404 and "is not valid here" not in str(exc):
        return  # an ordinary "no such practice" is an answer, not a refusal
    state = getattr(request.app.state, "parity", None)
    if state is None:
        return
    route = getattr(request.scope.get("route"), "path", None) or "-"
    actor = getattr(request.state, "actor", None)
    if actor is None:  # refused before the route looked (the edge check): who was it, if anyone?
        from parity.web.deps import optional_actor

        try:
            actor = optional_actor(request)
        except ParityError:
            actor = None
    kind = "csrf" if "form has expired" in str(exc) else type(exc).__name__
    try:
        record(state.db, actor, "refused", route[:200], "denied", f"{status} {kind}")
    except Exception as err:  # noqa: BLE001 - the refusal still goes out; log the type only
        log.error("could not audit a refusal: %s", type(err).__name__)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(ParityError)
    async def parity_error(request: Request, exc: ParityError) -> Response:
        status = status_for(exc)
        if status in AUDITED_STATUSES:
            await run_in_threadpool(audit_refusal, request, status, exc)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
        return error_response(request, status, str(exc), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # Name the parameter and the reason, never echo the value (it could be an NHS number).
        errors = [{"location": ".".join(str(p) for p in e.get("loc", ())), "reason": e.get("msg", "invalid")}
                  for e in exc.errors()]
        detail = "; ".join(f"{e['location']}: {e['reason']}" for e in errors) or "invalid request"
        return error_response(request, 422, detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return error_response(request, exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # Log the type and where, not the message: a message could quote patient data.
        route = getattr(request.scope.get("route"), "path", "?")  # the template (/patients/{nhs_number}), not the URL
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, route)
        return error_response(request, 500, "something went wrong; the error has been logged")
