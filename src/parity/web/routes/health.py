"""Liveness and readiness for load balancers and the demo (no data, no sign-in)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from parity.web.deps import get_state

router = APIRouter(tags=["health"])


@router.get("/healthz", include_in_schema=False)
def healthz(request: Request) -> dict[str, str]:
    """``{"status": "ok", "data_version": ...}`` when the database answers."""
    state = get_state(request)
    return {"status": "ok", "data_version": state.results.version()}
