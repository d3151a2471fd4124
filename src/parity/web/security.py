"""Browser security: response headers, CSRF tokens on forms, the signed-in user in the session."""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import unquote

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parity.errors import PermissionDenied

# Scripts and styles come only from this server (vendored NHS.UK frontend and Vega); charts render
# with Vega's expression interpreter, so no 'unsafe-eval' is needed. 'unsafe-inline' for styles only:
# Vega writes style attributes into its SVG.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
SESSION_USER = "username"
SESSION_ID = "sid"
SESSION_CSRF = "csrf"


class SecurityHeadersMiddleware:
    """Adds the headers above to every response, and ``Cache-Control: no-store`` to everything but
    static assets (pages can hold patient data and must not sit in shared caches). Over https (as
    uvicorn reports it: directly, or from a trusted proxy's X-Forwarded-Proto) every cookie is
    marked ``Secure``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if https:  # a cookie set over https is sent back over https only (issue 12 finding 5)
                    headers = [(k, v + b"; Secure") if k.lower() == b"set-cookie" and b"secure" not in v.lower()
                               else (k, v) for k, v in headers]
                headers += HEADERS
                headers.append((b"cache-control", b"public, max-age=3600" if static else b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use), for hidden form fields."""
    token = request.session.get(SESSION_CSRF)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a form post whose token does not match the session's (synchroniser-token pattern,
    OWASP CSRF cheat sheet); the session cookie is also SameSite=Strict."""
    expected = request.session.get(SESSION_CSRF)
    if not expected or not submitted or not hmac.compare_digest(str(expected), str(submitted)):
        raise PermissionDenied("the form has expired or did not come from this site; please try again")


def sign_in(request: Request, username: str) -> None:
    """Start a fresh session for ``username`` (a new CSRF token too, against session fixation).

    The cookie holds a server-side session id (``parity.access.sessions``), so the session can be
    ended: by signing out, disabling the user or changing the password (issue 12 finding 5).
    """
    from parity.access.sessions import start_session

    state = request.app.state.parity
    request.session.clear()
    request.session[SESSION_USER] = username
    request.session[SESSION_ID] = start_session(state.db, username, state.settings.session_hours)
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    """End the session on the server, then forget the cookie's contents."""
    from parity.access.sessions import end_session

    session_id = request.session.get(SESSION_ID)
    if session_id:
        end_session(request.app.state.parity.db, str(session_id))
    request.session.clear()


def session_username(request: Request) -> str | None:
    """The signed-in username if the cookie's session is still live on the server, else None (and the
    cookie's contents are cleared)."""
    from parity.access.sessions import session_username as live

    session_id = request.session.get(SESSION_ID)
    username = live(request.app.state.parity.db, str(session_id)) if session_id else None
    if username is None or username != request.session.get(SESSION_USER):
        if SESSION_USER in request.session:
            request.session.clear()
        return None
    return username


# A path segment that is (or holds) an NHS number: 10 digits, possibly spaced 3-3-4.
_PATIENT = re.compile(r"\d{3}[ -]?\d{3}[ -]?\d{4}")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a same-site path (never another site), and never one that names
    a patient, so an NHS number is not carried in the sign-in URL or form (issue 12 finding 8); a
    patient's page falls back to the home page, which links onwards."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    path = unquote(target.split("?", 1)[0].split("#", 1)[0])
    if _PATIENT.search(path) or _PATIENT.search(unquote(target)):
        return "/"
    return target[:500]


class RefusalAuditMiddleware:
    """Notes, per request, whether a refusal was already audited (``parity.access.audit.watch_refusals``),
    so the error handler can audit every other 401/403/404-at-the-edge exactly once (issue 12 finding 8:
    CSRF refusals and unauthenticated attempts were not audited)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            from parity.access.audit import watch_refusals

            watch_refusals()
        await self.app(scope, receive, send)


# Path parameters checked before any route runs (and so before any audit write): an ODS code, an NHS
# number, or short text. A 5000-character "code" used to reach the audit write and end as a 500.
_ODS_PARAM = re.compile(r"^[A-Za-z0-9_-]{1,16}$")  # ODS codes, and "U-03H" for practices outside a PCN
_NHS_PARAM = re.compile(r"^[0-9]{10}$")
MAX_PATH_PARAM = 100


def check_path_params(request: Request) -> None:
    """App-wide dependency: refuse malformed path parameters with 404 before the route runs.

    ``code`` is an ODS code (or, for a service assessment, a name of at most 100 characters);
    ``nhs_number`` ten digits; anything else at most 100 characters without control characters.
    """
    from parity.errors import NotFound

    params = request.path_params
    for name, value in params.items():
        text = str(value)
        if name == "nhs_number":
            ok = bool(_NHS_PARAM.match(text))
        elif name == "code" and params.get("level") != "service":
            ok = bool(_ODS_PARAM.match(text))
        else:
            ok = len(text) <= MAX_PATH_PARAM and not any(ord(c) < 32 or ord(c) == 127 for c in text)
        if not ok:
            raise NotFound(f"no such page: {name} is not valid here")
