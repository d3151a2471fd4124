"""Request dependencies: the shared state, who is asking, and what they may see.

Access rules live in ``parity.access.scope``; this module only finds the actor (a bearer token or
the signed session cookie) and asks the scope. Routes declare what they need with the
``Annotated`` aliases at the bottom, so a route cannot forget to check.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from parity import dates
from parity.access import Actor, Role, Scope, get_user, resolve_token, scope_for
from parity.dates import default_as_of
from parity.errors import AuthenticationError, ConfigurationError, NotFound, ParityError, PermissionDenied
from parity.web.security import csrf_token, session_username

EARLIEST_AS_OF = date(2000, 1, 1)


def get_state(request: Request) -> Any:
    """The ``AppState`` built at start-up (``parity.web.app``)."""
    return request.app.state.parity


def optional_actor(request: Request) -> Actor | None:
    """The signed-in user, from ``Authorization: Bearer <token>`` or the session cookie, else None."""
    state = get_state(request)
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("use 'Authorization: Bearer <token>'")
        return Actor(resolve_token(state.db, token.strip()), "token")
    # A live server-side session, not merely a validly signed cookie (issue 12 finding 5).
    username = session_username(request)
    if not username:
        return None
    try:
        user = get_user(state.db, username)
    except NotFound:
        request.session.clear()
        return None
    if user.disabled:
        request.session.clear()
        return None
    return Actor(user, "session")


def require_actor(request: Request) -> Actor:
    """The signed-in user, or 401 (API) / a redirect to the sign-in page (browser)."""
    actor = optional_actor(request)
    if actor is None:
        raise AuthenticationError("sign in or send an API token")
    request.state.actor = actor
    return actor


def require_admin(actor: Annotated[Actor, Depends(require_actor)]) -> Actor:
    if actor.role != Role.admin:
        raise PermissionDenied("only administrators can see this page")
    return actor


def today(request: Request) -> date:
    """Today, or the ``PARITY_TODAY`` pinned for demos and tests (read once into settings)."""
    return dates.today(getattr(get_state(request).settings, "today", None))


def reporting_date(
    request: Request,
    as_of: Annotated[date | None, Query(description="Reporting date, YYYY-MM-DD, from 2000-01-01 to today "
                                                    "(default: the latest quarter end before today)")] = None,
) -> date:
    """The reporting date asked for, default the latest quarter end before today."""
    if as_of is None:
        return default_as_of(today(request))
    # Refused rather than computed: a future date means nothing here, and every new date costs an
    # engine run, so the range is bounded.
    if as_of > today(request):
        raise ConfigurationError("as_of cannot be after today")
    if as_of < EARLIEST_AS_OF:
        raise ConfigurationError(f"as_of cannot be before {EARLIEST_AS_OF.isoformat()}")
    return as_of


def actor_scope(request: Request, actor: Actor, as_of: date) -> Scope:
    """What ``actor`` may see on ``as_of`` (cached per request)."""
    cached = getattr(request.state, "scope", None)
    if cached is not None and cached[0] == as_of:
        return cached[1]
    state = get_state(request)
    scope = state.scopes.get(state.results.version(), actor.user, as_of,
                             lambda: scope_for(state.db, actor.user, state.results.structure_for(as_of), as_of))
    request.state.scope = (as_of, scope)
    return scope


def base_context(request: Request, actor: Actor | None, **extra: Any) -> dict[str, Any]:
    """What every page template needs: the user, navigation, CSRF token, breadcrumbs."""
    nav: list[tuple[str, str]] = []
    if actor is not None:
        nav.append(("Overview", "/"))
        if actor.role in (Role.practice,) and actor.org_code:
            nav.append(("Worklist", f"/practices/{actor.org_code}/worklist"))
            nav.append(("Priorities", f"/practices/{actor.org_code}/priorities"))
            nav.append(("Recall", f"/practices/{actor.org_code}/recall"))
            nav.append(("Follow-up", f"/practices/{actor.org_code}/followup"))
            nav.append(("Results received", f"/practices/{actor.org_code}/messages"))
        if actor.role == Role.trust:
            nav.append(("Caseload", "/caseload"))
            nav += [("Record a check", "/trust/checks/new"), ("Upload checks", "/trust/upload"),
                    ("Sent checks", "/trust/checks")]
        if actor.role == Role.admin:
            nav += [("Audit log", "/admin/audit"), ("Users", "/admin/users")]
        if actor.role in (Role.programme, Role.icb, Role.admin):
            nav += [("Trajectory", "/programme/trajectory"), ("Initiatives", "/programme/initiatives"),
                    ("Highlight report", "/programme/highlight")]
        nav.append(("Published", "/published"))
        nav.append(("Assessments", "/assessments"))
        nav.append(("API", "/api/v1/docs"))
    context: dict[str, Any] = {
        "user": actor.user if actor else None,
        "nav": nav,
        "csrf_token": csrf_token(request),
        "breadcrumbs": [],
        "title": "",
    }
    context.update(extra)
    if actor is not None and isinstance(extra.get("as_of"), date):
        context["figures"] = figures_context(request, extra["as_of"])
    return context


def _measure_clusters() -> set[str]:
    """Every cluster the dashboard's measures read (to name those a release lacks)."""
    from parity.rules import load_measure

    return load_measure("phsmi").clusters() | load_measure("qof-mh021").clusters()


def _release_names(db: Any) -> list[str]:
    """Names of the stored codelist releases; read once per data version (which changes with every import),
    not on every page."""
    from parity.codes.store import list_releases

    with db.lock:
        return [r.name for r in list_releases(db)]


def figures_context(request: Request, as_of: date) -> dict[str, Any] | None:
    """What the page's figures use, for the footer and its selector (issue 11): the organisation structure
    (in force on ``as_of`` unless chosen) and the codelist release, with the choices offered."""
    from parity.codes.store import SHIPPED
    from parity.orgs import STRUCTURES, structure_label

    state = get_state(request)
    try:
        structure = state.results.structure_for(as_of)
        lists = state.results.codelists()
        releases = state.results.derived(("codelist_release_names",), lambda: _release_names(state.db))
    except ParityError:
        return None  # an unknown ?structure= or ?codelists= is reported by the page itself
    keep = [(k, v) for k, v in request.query_params.multi_items() if k not in ("structure", "codelists")]
    return {"structure": structure, "structure_label": structure_label(structure),
            "structures": [(s, structure_label(s)) for s in STRUCTURES], "codelists": lists.release,
            "codelists_text": lists.describe(_measure_clusters()).removeprefix("codelists: "),
            "releases": [SHIPPED, *releases],
            "params": keep}


ActorDep = Annotated[Actor, Depends(require_actor)]
AdminDep = Annotated[Actor, Depends(require_admin)]
AsOfDep = Annotated[date, Depends(reporting_date)]
