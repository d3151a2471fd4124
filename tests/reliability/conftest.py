"""A small signed-in site for the reliability tests: the valid mini extract loaded into a DuckDB file
or a PostgreSQL schema, users of each role, and a TestClient over the app (module-scoped)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from parity.access import add_user
from parity.db import Database, open_database
from parity.ingest import load_extract
from parity.settings import Settings
from parity.web import create_app

from .world import PRACTICE, postgres_schema, write_extract

PASSWORD = "correct horse battery staple"
SECRET = "reliability-tests-session-secret-0123456789abcdef"


@dataclass
class Site:
    url: str
    db: Database
    client: TestClient
    icb: str
    other_icb: str
    region: str


def _users(db: Database) -> tuple[str, str, str]:
    icb, region = db.execute("SELECT icb_code, region_code FROM practices WHERE structure = '2022-23' "
                             "AND practice_code = ?", [PRACTICE])[0]
    other = db.execute("SELECT min(icb_code) FROM practices WHERE structure = '2022-23' AND icb_code <> ?",
                       [icb])[0][0]
    for username, role, org in (("practice1", "practice", PRACTICE), ("icb1", "icb", icb),
                                ("programme1", "programme", None), ("admin1", "admin", None),
                                ("victim1", "practice", PRACTICE)):
        add_user(db, username, role, org, PASSWORD)
    return str(icb), str(other), str(region)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = write_extract(tmp_path_factory.mktemp("site") / "extract")

    def build(url: str) -> Iterator[Site]:
        db = open_database(url)
        load_extract(db, folder)
        icb, other, region = _users(db)
        settings = replace(Settings(database_url=url), secret_key=SECRET, today=date(2026, 6, 30),
                           structure="2022-23")
        with TestClient(create_app(settings, db=db), follow_redirects=False) as client:
            yield Site(url, db, client, icb, other, region)
        db.close()

    if request.param == "duckdb":
        yield from build(str(Path(tmp_path_factory.mktemp("sitedb")) / "parity.duckdb"))
    else:
        with postgres_schema() as url:
            yield from build(url)


@pytest.fixture
def web(site: Site) -> TestClient:
    site.client.cookies.clear()
    return site.client


def csrf(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> None:
    token = csrf(client)
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": token, "next": "/"})
    assert r.status_code == 303, r.text[:300]
