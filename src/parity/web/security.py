"""Browser security: response headers, CSRF tokens on forms, the signed-in user in the session."""

from __future__ import annotations

import hmac
import secrets

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
SESSION_CSRF = "csrf"


class SecurityHeadersMiddleware:
    """Adds the headers above to every response, and ``Cache-Control: no-store`` to everything but
    static assets (pages can hold patient data and must not sit in shared caches)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
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
    """Start a fresh session for ``username`` (a new CSRF token too, against session fixation)."""
    request.session.clear()
    request.session[SESSION_USER] = username
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    request.session.clear()
