"""Programme pages (M7) on the published series: the trajectory page in Chromium, the initiatives form and the
highlight report through the app.

The web test world (``duckdb_world``) gets NHS England's published series imported (the real xlsx); the
browser test uses ``test_browser``'s Chromium fixtures and the shared ``live_server``.
``PARITY_SCREENSHOTS=1`` saves the trajectory chart to ``docs/trajectory.png`` (the README picture).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_browser import TIMEOUT, browse, chromium, sign_in  # noqa: F401 - browse and chromium are fixtures
from webkit import WebWorld, login, need, settings_for

from parity.db import open_database
from parity.reports.published import packaged_series
from parity.web import create_app

XLSX = packaged_series()  # byte-identical to shared/data/published (tests/test_published.py)
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "trajectory.png"


@pytest.fixture(scope="module")
def published_world(duckdb_world: WebWorld) -> WebWorld:
    if not XLSX.exists():
        need(f"{XLSX} is missing")
    from parity.reports.published import import_published, periods

    with open_database(duckdb_world.url) as db:
        if "2023-24-Q4" not in periods(db):
            import_published(db, XLSX)
    return duckdb_world


def test_trajectory_page_in_browser(browse: Any, live_server: str, published_world: WebWorld) -> None:  # noqa: F811
    page, watch = browse()
    sign_in(page, live_server, "programme1")
    page.goto(f"{live_server}/programme/trajectory")
    assert page.locator("main h1").inner_text().strip() == "Trajectory to the target"
    page.get_by_label("Level").select_option("icb")
    page.get_by_label("Area code").fill("Y59")
    page.get_by_label("Baseline quarter").select_option("2022-23-Q4")
    page.get_by_label("Target rate").select_option("0.75")
    page.get_by_label("Target date").fill("2024-03-31")
    page.get_by_label("Split across ICBs").select_option("to_equal_rate")
    page.get_by_role("button", name="Show trajectory").click()
    page.wait_for_url(re.compile(r"level=icb.*method=to_equal_rate"))
    rows = page.locator("#trajectory-table tbody tr")
    assert rows.count() >= 2
    additional = [int(t.replace(",", "")) for t in page.get_by_test_id("additional").all_inner_texts()]
    summary = page.get_by_test_id("summary").inner_text()
    assert f"{sum(additional):,} more people by 31 Mar 2024" in summary, summary
    page.wait_for_selector('#chart-trajectory[data-rendered="true"]', timeout=TIMEOUT)
    assert page.locator("#chart-trajectory svg").count() >= 1
    if os.environ.get("PARITY_SCREENSHOTS") == "1":
        page.wait_for_load_state("networkidle")
        page.locator("figure", has=page.locator("#chart-trajectory")).screenshot(path=str(SCREENSHOT))
    page.wait_for_load_state("networkidle")
    watch.assert_clean()


@pytest.fixture(scope="module")
def client(published_world: WebWorld) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(published_world)), follow_redirects=False) as c:
        yield c


def _token(client: TestClient, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


FORM = {"area_level": "icb", "area_code": "QKS", "title": "Browser-free outreach", "owner": "Pat Lead",
        "level": "pcn", "start": "2023-06-01", "end": "", "ease": "medium", "impact": "high",
        "extra_per_month": "25", "status": "active", "note": ""}


def test_initiatives_add_roles_and_csrf(client: TestClient, published_world: WebWorld) -> None:
    client.cookies.clear()
    login(client, "practice1")
    page = client.get("/programme/initiatives")
    assert page.status_code == 200 and "Add an initiative" not in page.text
    r = client.post("/programme/initiatives", data={**FORM, "csrf_token": _token(client, "/programme/initiatives")})
    assert r.status_code == 403
    client.cookies.clear()
    login(client, "programme1")
    assert client.post("/programme/initiatives", data={**FORM, "csrf_token": "wrong"}).status_code in (400, 403)
    token = _token(client, "/programme/initiatives")
    bad = client.post("/programme/initiatives", data={**FORM, "csrf_token": token, "ease": "trivial", "start": ""})
    assert bad.status_code == 422 and "Enter the start date" in bad.text
    r = client.post("/programme/initiatives", data={**FORM, "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/programme/initiatives?area=QKS"
    listed = client.get(r.headers["location"])
    assert "Browser-free outreach" in listed.text and "Pat Lead" in listed.text
    with open_database(published_world.url) as db:
        actions = {row[0] for row in db.execute("SELECT action FROM audit_log")}
    assert "record_initiative" in actions
    chart = client.get("/programme/trajectory?level=icb&org=QKS&baseline=2022-23-Q4&target=0.75&by=2024-03-31")
    assert chart.status_code == 200 and "Forecast (initiatives)" in chart.text


def test_highlight_page_and_pdf(client: TestClient) -> None:
    client.cookies.clear()
    login(client, "icb1")
    r = client.get("/programme/highlight?region=Y59")
    assert r.status_code == 200 and "South East (Y59)" in r.text and "RAG rule" in r.text
    pdf = client.get("/programme/highlight.pdf?region=Y59")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert 'filename="highlight-Y59-2023-24-Q4.pdf"' in pdf.headers["content-disposition"]
    assert client.get("/programme/highlight?region=Y99").status_code == 422
    assert client.get("/programme/trajectory?level=icb&org=ZZZ&baseline=2022-23-Q4").status_code == 422


