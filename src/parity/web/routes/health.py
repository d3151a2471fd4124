"""Liveness and readiness for load balancers and the demo (no data, no sign-in)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from parity.web.deps import get_state

router = APIRouter(tags=["health"])

# A load balancer gives up after a couple of seconds; while another request holds the database (a
# long engine run, or a PostgreSQL load holding its table locks) the server is alive but busy, and
# says so rather than keeping the probe waiting (issue 12: /healthz answers within 2 s throughout).
LOCK_WAIT_SECONDS = 0.5


@router.get("/healthz", include_in_schema=False)
def healthz(request: Request) -> dict[str, str | None]:
    """``{"status": "ok", "data_version": ...}`` when the database answers; ``"busy"`` (still 200)
    with the last known version when the database is in use for longer than half a second."""
    state = get_state(request)
    if not state.db.lock.acquire(timeout=LOCK_WAIT_SECONDS):
        return {"status": "busy", "data_version": state.results.known_version()}
    try:
        return {"status": "ok", "data_version": state.results.version()}
    finally:
        state.db.lock.release()
