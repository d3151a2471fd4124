"""Administration pages: the audit log of patient-level access, and the user list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from parity.access import entries, list_users, verify_chain
from parity.web.deps import AdminDep, base_context, get_state

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


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, actor: AdminDep) -> Response:
    state = get_state(request)
    ctx = base_context(request, actor, title="Users", users=list_users(state.db))
    return state.templates.TemplateResponse(request, "users.html", ctx)
