"""Assessments pages (M10): a programme user records an EDS assessment through the form and sees it, with its
total and history; refused input re-shows the form (422) and stores nothing; a practice user can read but gets
403 on a post, audited as denied.

Every test uses its own service name, since the loaded database is shared by the session's tests.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from webkit import TODAY, WebWorld, login

from parity.access import entries
from parity.reports.assessments import history, latest
from parity.web.routes import assessments as assessments_routes


@pytest.fixture
def web(client: TestClient) -> TestClient:
    """The test client, with the assessments router included if ``create_app`` does not include it yet."""
    app = client.app
    if not any(getattr(r, "path", "") == "/assessments" for r in app.routes):
        app.include_router(assessments_routes.router)
    return client


def service() -> tuple[str, str]:
    name = f"Early intervention {uuid.uuid4().hex[:8]}"
    return name, f"/assessments/eds/service/{quote(name, safe='')}"


def csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def form(token: str, a: str, b: str, c: str, d: str, **extra: str) -> dict[str, str]:
    return {"csrf_token": token, "assessed_on": "2026-03-31", "score-1A": a, "score-1B": b, "score-1C": c,
            "score-1D": d, **extra}


def test_programme_user_records_an_eds_assessment(web: TestClient, world: WebWorld) -> None:
    login(web, "programme1")
    name, path = service()
    token = csrf(web, path)
    page = web.get(path)
    assert "has not been assessed" in page.text and 'name="score-1A"' in page.text

    r = web.post(path, data=form(token, "2", "1", "3", "0", **{"evidence-1A": "Access audit <2025>"}))
    assert r.status_code == 303, r.text[:500]
    assert r.headers["location"] == f"{path}#latest"
    db = web.app.state.parity.db
    with db.lock:
        saved = latest(db, "eds", "service", name)
    assert saved is not None and saved.total == 6 and saved.username == "programme1"

    page = web.get(path)
    assert page.status_code == 200
    assert "6 out of 12" in page.text and "6 / 12" in page.text and "First assessment" in page.text
    assert "Access audit &lt;2025&gt;" in page.text  # evidence is shown, escaped
    assert re.search(r'data-item="1C".*?Excelling', page.text, re.S)

    r = web.post(path, data=form(token, "3", "2", "3", "0", assessed_on=TODAY.isoformat()))
    assert r.status_code == 303
    page = web.get(path).text
    assert "Totals over time, oldest first: 6 → 8" in page and "Up 2" in page

    listing = web.get("/assessments")
    assert listing.status_code == 200
    assert f'href="{path}"' in listing.text
    row = re.search(rf'data-area="service/{re.escape(name)}">(.*?)</tr>', listing.text, re.S).group(1)
    assert "8 / 12" in row

    with db.lock:
        audited = entries(db, action="record_assessment", resource=f"assessment/eds/service/{name}")
    assert [e.outcome for e in audited] == ["allowed", "allowed"] and audited[0].username == "programme1"


def test_refused_input_is_422_and_stores_nothing(web: TestClient, world: WebWorld) -> None:
    login(web, "icb1")
    name, path = service()
    token = csrf(web, path)
    r = web.post(path, data=form(token, "4", "1", "", "0"))
    assert r.status_code == 422
    assert "nhsuk-error-summary" in r.text
    assert 'href="#score-1A"' in r.text and "Score for 1A must be one of 0, 1, 2, 3" in r.text
    assert 'href="#score-1C"' in r.text and "Choose a score for 1C" in r.text
    assert 'value="1" checked' in r.text  # the answers given are kept
    future = web.post(path, data=form(token, "1", "1", "1", "1", assessed_on="2099-01-01"))
    assert future.status_code == 422 and "cannot be after today" in future.text
    db = web.app.state.parity.db
    with db.lock:
        assert history(db, "eds", "service", name) == []
    assert web.post(path, data=form("wrong", "1", "1", "1", "1")).status_code == 403


def test_practice_user_reads_but_cannot_record(web: TestClient, world: WebWorld) -> None:
    login(web, "practice1")
    name, path = service()
    page = web.get(path)
    assert page.status_code == 200
    assert 'name="score-1A"' not in page.text and "Only programme, ICB and admin users" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = web.post(path, data=form(token, "2", "1", "3", "0"))
    assert r.status_code == 403
    db = web.app.state.parity.db
    with db.lock:
        assert history(db, "eds", "service", name) == []
        denied = entries(db, action="record_assessment", resource=f"assessment/eds/service/{name}")
    assert [(e.username, e.outcome) for e in denied] == [("practice1", "denied")]
    assert web.get("/assessments").status_code == 200


def test_bad_framework_or_area_and_sign_in(web: TestClient, world: WebWorld) -> None:
    assert web.get("/assessments").status_code == 303  # to the sign-in page
    login(web, "admin1")
    assert web.get("/assessments/cqc/icb/QNQ").status_code == 400
    assert web.get("/assessments/eds/ccg/QNQ").status_code == 400
    r = web.get("/assessments/area", params={"framework": "poe", "level": "icb", "code": world.icb.lower()})
    assert r.status_code == 303 and r.headers["location"] == f"/assessments/poe/icb/{world.icb}"
    page = web.get(f"/assessments/poe/icb/{world.icb}")
    assert page.status_code == 200 and "Smoking cessation" in page.text and 'value="amber"' in page.text
