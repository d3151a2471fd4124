"""Opening ``mesh-client`` connections, and classifying what goes wrong with them.

``MeshClient`` does its own HTTP retries; Parity turns them off (``max_retries=0``) because the
outbox retries with back-off across passes and records every attempt. Error reasons are built
from the exception's type and status code only: a MESH error body can echo message headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from mesh_client import MeshClient, MeshError

from parity.interop.mesh.config import Mailbox, MeshConfig

# HTTP statuses worth retrying (MESH guidance and mesh-client's own retry list).
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@contextmanager
def mesh_client(config: MeshConfig, mailbox: Mailbox) -> Iterator[MeshClient]:
    """A signed-in client for ``mailbox`` (closed on exit, as mesh-client asks)."""
    with MeshClient(config.url, mailbox.mailbox, mailbox.password, shared_key=config.shared_key,
                    verify=config.verify, cert=config.cert, max_retries=0, timeout=config.timeout,
                    application_name="parity") as client:
        yield client


def status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def is_transient(exc: BaseException) -> bool:
    """Could the same request succeed later? Network trouble and 5xx/429 yes; refusals and MESH errors no."""
    if isinstance(exc, MeshError):
        return False
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return True
    status = status_of(exc)
    return status in TRANSIENT_STATUS if status is not None else False


def reason_for(exc: BaseException) -> str:
    """A short reason safe to store and show (no server text, which may echo headers)."""
    if isinstance(exc, MeshError):
        code = ""
        detail = exc.args[1] if len(exc.args) > 1 else None
        if isinstance(detail, dict):
            for d in detail.get("detail") or []:
                if isinstance(d, dict) and d.get("code"):
                    code = str(d["code"])
                    break
        known = {"12": "recipient mailbox not registered", "06": "malformed control file",
                 "17": "workflow not registered for the mailbox"}
        if code:
            return f"MESH error {code}: {known.get(code, 'refused')}"
        # A refused sign-in on send comes back as a MeshError, not an HTTP error (mesh-client 5.0).
        if "authentication" in str(exc.args[0] if exc.args else "").lower():
            return "HTTP 403: MESH refused the mailbox credentials"
        return "MESH error"
    status = status_of(exc)
    if status == 403:
        return "HTTP 403: MESH refused the mailbox credentials"
    if status is not None:
        return f"HTTP {status}"
    return type(exc).__name__
