"""NHS Digital's real ``mesh-sandbox``, started by the tests in its own venv on a free 127.0.0.1 port.

The sandbox pins its own FastAPI, so it lives in ``.venv-mesh`` (``make test`` creates it; this
fixture creates it too if it is missing). It runs with ``AUTH_MODE=full``: every request carries
mesh-client's HMAC token, checked against a shared key made up for the session
(shared/docs/dependencies.md item 7). Its built-in mailboxes stand in for a trust (``X26ABC1``) and
two practices (``X26ABC2``, ``X26ABC3``); all have the password ``password``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from parity.interop.mesh import MeshConfig, parse_mesh_config

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_VERSION = "1.0.137"
TRUST = "RX2"           # a mental-health trust's ODS code (Sussex Partnership NHS Foundation Trust)
TRUST_MAILBOX = "X26ABC1"
PRACTICE_MAILBOX = "X26ABC2"
OTHER_MAILBOX = "X26ABC3"


def need(reason: str) -> None:
    """Skip locally, fail under CI (as tests/conftest.py ``need``)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"required test component missing under CI: {reason}")
    pytest.skip(reason)


@dataclass
class Sandbox:
    url: str
    shared_key: str
    process: subprocess.Popen

    def reset(self) -> None:
        requests.delete(f"{self.url}/admin/reset", timeout=10).raise_for_status()

    def config(self, practices: dict[str, str], *, trust_password: str = "password",
               practice_password: str = "password", shared_key: str | None = None, **extra: object) -> MeshConfig:
        """A deployment owning the trust mailbox and every practice mailbox in ``practices`` (ODS -> mailbox)."""
        mailboxes = [{"mailbox": TRUST_MAILBOX, "ods": TRUST, "password": trust_password}]
        mailboxes += [{"mailbox": mb, "ods": ods, "password": practice_password} for ods, mb in practices.items()]
        raw = {"url": self.url, "shared_key": shared_key or self.shared_key, "mailboxes": mailboxes,
               "directory": dict(practices), "backoff_seconds": 0, **extra}
        return parse_mesh_config(raw, env={})


def _venv() -> Path:
    venv = Path(os.environ.get("PARITY_MESH_SANDBOX_VENV", ROOT / ".venv-mesh"))
    uvicorn = venv / "bin" / "uvicorn"
    if uvicorn.exists():
        return venv
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"mesh-sandbox=={SANDBOX_VERSION}"],
                       check=True, capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        need(f"cannot install mesh-sandbox into {venv}: {type(exc).__name__}")
    return venv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def mesh_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    venv = _venv()
    port = _free_port()
    key = secrets.token_hex(16)
    log = tmp_path_factory.mktemp("mesh") / "sandbox.log"
    env = {**os.environ, "AUTH_MODE": "full", "STORE_MODE": "memory", "SHARED_KEY": key,
           "MAILBOXES_DATA_DIR": str(log.parent / "store")}
    with log.open("wb") as out:
        proc = subprocess.Popen([str(venv / "bin" / "uvicorn"), "mesh_sandbox.api:app", "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "1"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            need(f"mesh-sandbox exited at start (exit {proc.returncode}); log {log}")
        try:
            # Our process and no other: a port taken by someone else would answer without this body
            # (dependencies.md pitfall 4).
            if requests.get(f"{url}/health", timeout=1).json().get("status") == "running":
                break
        except (requests.RequestException, ValueError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
            need("mesh-sandbox did not start within 60 s")
        time.sleep(0.2)
    yield Sandbox(url, key, proc)
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def sandbox(mesh_sandbox: Sandbox) -> Sandbox:
    """The session's sandbox with every mailbox emptied."""
    mesh_sandbox.reset()
    return mesh_sandbox
