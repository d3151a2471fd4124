"""Shared helpers for the web tests (constants, the test world, signing in)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import date

import pytest
from fastapi.testclient import TestClient

from parity.settings import Settings

AS_OF = date(2026, 9, 30)
TODAY = date(2026, 11, 22)
ICB = "QNQ"  # NHS Frimley ICB (2022-23 structure): the smallest South East ICB
PASSWORD = "correct-horse-battery"
SECRET = "test-secret-key-0123456789-abcdefghijklmnop"


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(reason: str) -> None:
    """Skip locally, fail under CI (as tests/conftest.py)."""
    if IN_CI:
        pytest.fail(f"required test component missing under CI: {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class WebWorld:
    """Organisations and users of the loaded test data."""

    url: str
    kind: str
    practice: str           # the practice user's practice
    other_practice: str     # a practice in another PCN of the same ICB
    pcn: str
    icb: str
    trust: str
    caseload_patient: str   # on the trust's caseload
    own_patient: str        # registered at ``practice`` on AS_OF
    other_patient: str      # registered at ``other_practice`` and not on the trust's caseload
    tokens: dict[str, str]  # username -> API token


def settings_for(world: WebWorld) -> Settings:
    return replace(Settings(database_url=world.url), secret_key=SECRET, today=TODAY, synthetic=True,
                   structure="2022-23")


def bearer(world: WebWorld, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[username]}"}


def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    """Sign in through the form, as a browser would (fetches the CSRF token first)."""

    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": token, "next": "/"})
    assert r.status_code == 303, r.text[:300]


