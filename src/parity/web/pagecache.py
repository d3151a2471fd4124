"""Pages rendered once per data version (issue 16, target 3: 20 clients at p95 < 150 ms).

An organisation page, its variation and checks pages and the aggregate API answers are the same for
everyone who asks with the same address until the data changes, yet each cost a few milliseconds of Python
(indexes looked up, a template rendered, charts specified) on one core shared by every request. Here the
rendered bytes are kept in ``ResultStore.derived``, so they are dropped with everything else when the data
version changes (a load, a codelist release imported or chosen: ``parity.engine.results.data_version``) and
are kept apart by the request's choice of structure and codelists. The key is the path, the resolved
reporting date, the known query parameters and who is asking (user name, role and organisation: the
navigation and the header name them); a page whose address carries anything else is rendered every time,
so nothing a request makes up can fill the memory. The session's CSRF token is cut out of the stored page
and put back for each request. Only complete answers (200) are kept; "Computing figures …" never is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from parity.web.deps import get_state, today
from parity.web.security import csrf_token

#: ``PARITY_PAGE_CACHE=0`` renders every page afresh: the baseline of ``benchmarks/web_load.py`` (same run).
ENABLED = os.environ.get("PARITY_PAGE_CACHE", "1") != "0"
#: Query parameters a cached page may have (any other makes the request render afresh).
KNOWN_PARAMS = frozenset({"measure", "as_of", "structure", "codelists", "level", "parent", "interval"})
_TOKEN = b"\x00parity-csrf-token\x00"


class _NotKept(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("not kept")
        self.response = response


def _cacheable(request: Request) -> bool:
    params = request.query_params
    return all(k in KNOWN_PARAMS for k in params) and all(len(params.getlist(k)) == 1 for k in params)


def cached(request: Request, who: tuple[Any, ...], as_of: date, render: Callable[[], Response],
           *, also: tuple[Any, ...] = (), html: bool = True) -> Response:
    """``render()``'s response, rendered once per data version for this address, ``who`` and ``also``;
    ``html``: a page with forms (their CSRF token is the session's), else JSON (no session touched)."""
    if not ENABLED or not _cacheable(request):
        return render()
    state = get_state(request)
    token = csrf_token(request).encode() if html else b""
    # Today too: the reporting dates a page offers run up to the latest quarter end before it.
    key = ("page", request.url.path, tuple(sorted(request.query_params.items())), as_of, today(request), who, also)

    def build() -> tuple[bytes, str | None]:
        response = render()
        if response.status_code != 200 or not hasattr(response, "body"):
            raise _NotKept(response)
        body = bytes(response.body)
        return (body.replace(token, _TOKEN) if token else body), response.media_type

    try:
        body, media_type = state.results.derived(key, build)
    except _NotKept as kept:
        return kept.response
    return Response(body.replace(_TOKEN, token) if token else body, media_type=media_type)


def user_key(actor: Any) -> tuple[Any, ...]:
    """Who a page is for: it names the user and shows their role's navigation."""
    user = actor.user
    return (user.username, str(user.role), user.org_code)
