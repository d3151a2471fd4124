"""The API returns what the engine computes: aggregates, trends and worklists, checked independently."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from webkit import AS_OF, WebWorld, bearer

from parity.db import open_database
from parity.engine.ibis_engine import IbisEngine
from parity.rules import load_measure

Q = f"?as_of={AS_OF.isoformat()}"


@pytest.mark.parametrize("measure", ["phsmi", "qof-mh021"])
def test_measures_match_the_engine(client: TestClient, world: WebWorld, measure: str) -> None:
    r = client.get(f"/api/v1/measures{Q}&measure={measure}&level=sub_icb", headers=bearer(world, "programme1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["structure"] == "2022-23" and body["level"] == "sub_icb"
    with open_database(world.url, create=False) as db:
        expected = IbisEngine(db).aggregate(load_measure(measure), AS_OF, "sub_icb", "2022-23")
    got = pd.DataFrame([{"org_code": row["org_code"], "register": row["register"], "all_six": row["all_six"],
                         "percent": row["percent"], "bmi": row["checks"]["bmi"]["done"],
                         "lipids_declined": row["checks"]["lipids"]["declined"]} for row in body["rows"]])
    want = expected[["org_code", "register", "all_six", "percent", "bmi", "lipids_declined"]]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)


def test_children_add_up_to_their_parent(client: TestClient, world: WebWorld) -> None:
    h = bearer(world, "programme1")
    icb = client.get(f"/api/v1/measures{Q}&level=icb", headers=h).json()["rows"]
    assert [r["org_code"] for r in icb] == [world.icb]
    pcns = client.get(f"/api/v1/measures{Q}&level=practice&parent={world.pcn}", headers=h).json()["rows"]
    assert pcns and {r["parent_code"] for r in pcns} == {world.pcn}
    practices = client.get(f"/api/v1/measures{Q}&level=practice", headers=h).json()["rows"]
    assert sum(r["register"] for r in practices) == icb[0]["register"]
    assert sum(r["all_six"] for r in practices) == icb[0]["all_six"]


def test_trend_ends_at_as_of_and_matches_measures(client: TestClient, world: WebWorld) -> None:
    h = bearer(world, "icb1")
    trend = client.get(f"/api/v1/organisations/icb/{world.icb}/trend{Q}", headers=h).json()
    assert [p["as_of"] for p in trend["points"]][-2:] == ["2026-06-30", "2026-09-30"]
    assert len(trend["points"]) == 8
    now = client.get(f"/api/v1/measures{Q}&level=icb", headers=h).json()["rows"][0]
    assert trend["points"][-1]["all_six"] == now["all_six"] and trend["points"][-1]["register"] == now["register"]
    monthly = client.get(f"/api/v1/organisations/icb/{world.icb}/trend{Q}&interval=month", headers=h).json()
    assert [p["as_of"] for p in monthly["points"]][-3:] == ["2026-07-31", "2026-08-31", "2026-09-30"]


def test_worklist_matches_patient_status(client: TestClient, world: WebWorld) -> None:
    body = client.get(f"/api/v1/practices/{world.practice}/patients{Q}", headers=bearer(world, "practice1")).json()
    with open_database(world.url, create=False) as db:
        status = IbisEngine(db).patient_status(load_measure("phsmi"), AS_OF)
    mine = status[(status.practice_code == world.practice) & status.in_denominator]
    assert body["total"] == len(mine)
    by_nhs = mine.set_index("nhs_number")
    for p in body["patients"]:
        row = by_nhs.loc[p["nhs_number"]]
        assert p["checks_done"] == row["checks_done"]
        assert p["category"] == ("complete" if row["checks_done"] == 6 else
                                 "near_miss" if row["checks_done"] >= 4 else "incomplete")
        assert p["checks"]["bmi"]["status"] == row["bmi_status"]
        assert (p["due_status"] == "overdue") == (row["checks_done"] < 6)
    # near-misses come before the rest of the incomplete patients
    order = [p["checks_done"] for p in body["patients"] if p["checks_done"] < 6]
    assert order == sorted(order, reverse=True)
    assert body["summary"]["near_miss"] == sum(1 for p in body["patients"] if p["category"] == "near_miss")


def test_worklist_filters_and_paging(client: TestClient, world: WebWorld) -> None:
    h = bearer(world, "practice1")
    base = f"/api/v1/practices/{world.practice}/patients{Q}"
    near = client.get(f"{base}&category=near_miss", headers=h).json()
    assert near["patients"] and all(p["category"] == "near_miss" for p in near["patients"])
    lipids = client.get(f"{base}&missing=lipids", headers=h).json()
    assert all(p["checks"]["lipids"]["status"] != "done" for p in lipids["patients"])
    page = client.get(f"{base}&limit=2&offset=1", headers=h).json()
    full = client.get(base, headers=h).json()
    assert [p["nhs_number"] for p in page["patients"]] == [p["nhs_number"] for p in full["patients"][1:3]]
    bad = client.get(f"{base}&category=everyone", headers=h)
    assert bad.status_code == 400 and bad.json()["detail"].startswith("category must be one of")


@pytest.mark.parametrize(("url", "status"), [
    ("/api/v1/measures?level=ward", 422),
    ("/api/v1/measures?measure=nope", 422),
    ("/api/v1/measures?as_of=2026-13-01", 422),
    ("/api/v1/measures?as_of=1999-12-31", 400),
    ("/api/v1/measures?as_of=2099-01-01", 400),
    ("/api/v1/organisations/icb/NOPE/trend", 404),
    ("/api/v1/no-such-thing", 404),
])
def test_errors_have_one_shape(client: TestClient, world: WebWorld, url: str, status: int) -> None:
    r = client.get(url, headers=bearer(world, "icb1"))
    assert r.status_code == status
    body = r.json()
    assert body["ok"] is False and body["status"] == status and isinstance(body["detail"], str)
    assert set(body) <= {"ok", "status", "error", "detail", "errors"}


def test_openapi_document_lists_the_api(client: TestClient, world: WebWorld) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/measures", "/api/v1/practices/{code}/patients", "/api/v1/patients/{nhs_number}"} <= set(
        spec["paths"])
    assert not any(p.startswith(("/orgs", "/login", "/admin")) for p in spec["paths"])
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and "/api/v1/practices/{code}/patients" in docs.text
    assert "cdn" not in docs.text.lower()
