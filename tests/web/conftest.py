"""Fixtures for the web app: one small synthetic ICB, loaded once per database, one user per role.

The app runs in-process (``TestClient``) against a real DuckDB file or a real PostgreSQL schema.
Browser tests serve the same app with uvicorn on a free 127.0.0.1 port (``live_server``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from webkit import AS_OF, ICB, PASSWORD, WebWorld, need, settings_for

from parity.access import add_user, issue_token
from parity.db import Database, open_database
from parity.demo import _busiest_trust
from parity.ingest import load_extract
from parity.reports.results import ResultStore
from parity.synth import generate
from parity.web import create_app


@pytest.fixture(scope="session")
def web_extract(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("web") / "extract"
    generate(out, scale="icb", area=ICB, patients=1500, seed=5, as_of=AS_OF, fmt="parquet", structure="2022-23")
    return out


def _build(db: Database, extract: Path, url: str) -> WebWorld:
    load_extract(db, extract, mode="replace")
    ResultStore(db).refresh(AS_OF, quarters=4, months=3)
    reg = db.execute(
        "SELECT r.practice_code, p.pcn_code, COUNT(*) n FROM registrations r JOIN practices p "
        "ON p.practice_code = r.practice_code AND p.structure = '2022-23' WHERE r.end_date IS NULL "
        "GROUP BY 1, 2 ORDER BY n DESC, 1")
    practice, pcn = reg[0][0], reg[0][1]
    other = next(r[0] for r in reg if r[1] != pcn)
    trust = _busiest_trust(db, AS_OF)
    assert trust is not None
    store = ResultStore(db)
    status = store.status("phsmi", AS_OF)
    from parity.access.scope import trust_caseload

    caseload = trust_caseload(db, trust, AS_OF)
    own = status[status.practice_code == practice].nhs_number.iloc[0]
    other_rows = status[(status.practice_code == other) & ~status.nhs_number.isin(caseload)]
    in_caseload = status[status.nhs_number.isin(caseload) & (status.practice_code != practice)]
    users = [("practice1", "practice", practice), ("practice2", "practice", other), ("pcn1", "pcn", pcn),
             ("icb1", "icb", ICB), ("trust1", "trust", trust), ("programme1", "programme", None),
             ("admin1", "admin", None)]
    tokens = {}
    for username, role, org in users:
        add_user(db, username, role, org, PASSWORD)
        tokens[username] = issue_token(db, username, "tests")
    return WebWorld(url, db.kind, practice, other, pcn, ICB, trust, str(in_caseload.nhs_number.iloc[0]), str(own),
                    str(other_rows.nhs_number.iloc[0]), tokens)


@pytest.fixture(scope="session")
def duckdb_world(web_extract: Path, tmp_path_factory: pytest.TempPathFactory) -> WebWorld:
    url = str(tmp_path_factory.mktemp("webdb") / "parity.duckdb")
    with open_database(url) as db:
        return _build(db, web_extract, url)


@pytest.fixture(scope="session")
def postgres_world(web_extract: Path) -> Iterator[WebWorld]:
    import psycopg

    base = os.environ.get("PARITY_TEST_POSTGRES_URL", "")
    if not base:
        need("PARITY_TEST_POSTGRES_URL is not set")
    schema = f"web_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        need(f"PostgreSQL not reachable: {type(exc).__name__}")
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    try:
        with open_database(url) as db:
            world = _build(db, web_extract, url)
        yield world
    finally:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session", params=["duckdb", "postgres"])
def world(request: pytest.FixtureRequest) -> WebWorld:
    """Each test using this runs on DuckDB and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_world")


@pytest.fixture(scope="session")
def client_for() -> Iterator:
    """``client_for(world)`` → a TestClient over one app per database (started once, stopped at the end)."""
    clients: dict[str, TestClient] = {}

    def get(w: WebWorld) -> TestClient:
        if w.url not in clients:
            c = TestClient(create_app(settings_for(w)), follow_redirects=False)
            c.__enter__()
            clients[w.url] = c
        return clients[w.url]

    yield get
    for c in clients.values():
        c.__exit__(None, None, None)


@pytest.fixture
def client(world: WebWorld, client_for) -> TestClient:  # noqa: ANN001
    c = client_for(world)
    c.cookies.clear()
    return c


@pytest.fixture(scope="session")
def live_server(duckdb_world: WebWorld) -> Iterator[str]:
    """The app served by uvicorn on a free 127.0.0.1 port, for Chromium."""
    import uvicorn

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server = uvicorn.Server(uvicorn.Config(create_app(settings_for(duckdb_world)), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
