"""Published statistics pages: England, a region and an ICB, the published series beside Parity's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from webkit import WebWorld, login, need

from parity.db import open_database
from parity.reports.published import import_published

RAW = Path(__file__).resolve().parents[3] / "shared" / "data" / "published" / "Physical-Health-Checks-SMI_Raw_Data.xlsx"
_imported: set[str] = set()


@pytest.fixture
def published(world: WebWorld) -> WebWorld:
    if not RAW.is_file():
        need(f"the published series is not at {RAW}")
    if world.url not in _imported:  # once per database: the world is shared by the session
        with open_database(world.url, create=False) as db:
            import_published(db, RAW)
        _imported.add(world.url)
    return world


def test_england_region_and_icb_pages(client: TestClient, published: WebWorld) -> None:
    login(client, "programme1")
    england = client.get("/published")
    assert england.status_code == 200
    # Q4 2023/24, England: 361,210 people with all six checks of 527,556 on the register (clinical-spec.md §5).
    assert "361,210" in england.text and "527,556" in england.text
    region = client.get("/published/region/Y59")
    assert region.status_code == 200 and "43,960" in region.text  # South East, Q4 2023/24
    icb = client.get("/published/icb/QRL")
    assert icb.status_code == 200 and "Hampshire" in icb.text
    assert client.get("/published/icb/ZZZ").status_code == 404


def test_published_pages_need_a_session(client: TestClient, published: WebWorld) -> None:
    assert client.get("/published").status_code == 303
