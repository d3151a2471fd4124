"""The organisation structure and codelist release a request asks for (issue 11).

Every page and API call takes ``?structure=2022-23|2026`` and ``?codelists=NAME`` (``shipped`` for Parity's
own lists); without them a figure uses the structure in force on its reporting date and this database's
default release. This pure ASGI middleware reads the two parameters once and makes them the current
``parity.reports.results.Choice`` for everything that serves the request; the values are checked where
they are used (an unknown structure is a 400, an unknown release a 404, through the one error mapping).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from parity.reports.results import Choice, reset_choice, set_choice

# Longest value accepted (a release name is at most 64 characters); anything longer is ignored, not echoed.
_MAX = 64


class ChoiceMiddleware:
    """Sets the request's ``Choice`` from its ``structure`` and ``codelists`` query parameters."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))

        def one(name: str) -> str | None:
            values = [v.strip() for v in query.get(name, []) if v.strip()]
            return values[0] if values and len(values[0]) <= _MAX else None

        token = set_choice(Choice(structure=one("structure"), codelists=one("codelists")))
        try:
            await self.app(scope, receive, send)
        finally:
            reset_choice(token)
