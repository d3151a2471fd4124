"""A patient page costs what that patient's records cost (issue 16, target 3): behaviour, not timings.

* every statement the page sends to a table that grows with the data (events, registrations, medications,
  patients) finds the patient's rows through the NHS number index: on DuckDB its plan is an index scan,
  never a scan of the table;
* the one-patient paths give exactly the answers of the whole-population paths they stand in for: findings
  and follow-up (``parity.care.followup``) and the patient's check summary (the reference engine's row).
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from webkit import AS_OF, WebWorld, bearer

from parity.care.followup import _evaluate, findings
from parity.care.referrals import record_referral
from parity.db import open_database
from parity.db.connection import Database
from parity.reports.results import ResultStore
from parity.reports.timeline import patient_timeline
from parity.rules import load_measure

GROWING = ("events", "registrations", "medications", "patients")


def _statements(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    original = Database.execute

    def spy(self: Database, sql: str, params: Any = None) -> list[tuple]:
        seen.append((sql, params))
        return original(self, sql, params)

    monkeypatch.setattr(Database, "execute", spy)
    return seen


def _reads_growing_table(sql: str) -> bool:
    return bool(re.search(r"\bFROM\s+(" + "|".join(GROWING) + r")\b", sql, re.IGNORECASE)) and \
        sql.lstrip().upper().startswith("SELECT")


def test_patient_page_reads_each_growing_table_by_index(duckdb_world: WebWorld, client_for,  # noqa: ANN001
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    client: TestClient = client_for(duckdb_world)
    url = f"/patients/{duckdb_world.own_patient}?as_of={AS_OF}"
    assert client.get(url, headers=bearer(duckdb_world, "practice1")).status_code == 200  # warm: results read
    seen = _statements(monkeypatch)
    for path in (url, f"/patients/{duckdb_world.own_patient}/passport.html?as_of={AS_OF}"):
        r = client.get(path, headers=bearer(duckdb_world, "practice1"))
        assert r.status_code == 200, r.text[:300]
    reads = [(sql, p) for sql, p in seen if _reads_growing_table(sql)]
    assert {t for sql, _ in reads for t in GROWING if re.search(rf"\bFROM\s+{t}\b", sql)} >= {"events", "patients",
                                                                                            "registrations"}
    monkeypatch.undo()
    with open_database(duckdb_world.url, create=False) as db:
        for sql, params in reads:
            plan = "\n".join(str(r[1]) for r in db.execute("EXPLAIN ANALYZE " + sql, params))
            assert "Sequential Scan" not in plan and "Index Scan" in plan, f"scans a whole table: {sql[:120]}"


def _practice_patients(db: Database, practice: str) -> list[str]:
    return [str(r[0]) for r in db.execute(
        "SELECT DISTINCT nhs_number FROM registrations WHERE practice_code = ? ORDER BY 1", [practice])]


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_one_patients_findings_equal_the_population_path(backend: str, request: pytest.FixtureRequest) -> None:
    """For every patient of a practice (and one with referrals recorded): the one-patient findings equal the
    rows the pandas path gives for the whole population, column for column."""
    world: WebWorld = request.getfixturevalue(f"{backend}_world")
    with open_database(world.url, create=False) as db:
        patients = _practice_patients(db, world.practice)
        whole = findings(db, AS_OF)
        with_findings = whole[whole["nhs_number"].isin(patients)]
        assert len(with_findings) > 5  # the comparison below is not vacuous
        # Someone no other test of the shared world has referred (tests share it, in any order).
        free = [str(n) for n in dict.fromkeys(with_findings["nhs_number"])
                if not db.execute("SELECT 1 FROM referrals WHERE nhs_number = ?", [str(n)])]
        assert free, "a patient with findings and no referral yet"
        first = with_findings[with_findings["nhs_number"].astype(str) == free[0]].iloc[0]
        someone, intervention, found_on = free[0], str(first["intervention_id"]), first["finding_date"]
        at = datetime.combine(found_on, time(9)) + timedelta(days=1)
        rid = record_referral(db, someone, world.practice, intervention, "offered", "tests", at=at)
        record_referral(db, someone, world.practice, intervention, "accepted", "tests", referral_id=rid,
                        at=at + timedelta(hours=1))
        whole = findings(db, AS_OF)
        register = set(ResultStore(db).status("phsmi", AS_OF).query("in_denominator")["nhs_number"].astype(str))
        for nhs in patients:
            fast = findings(db, AS_OF, nhs_numbers=[nhs]).reset_index(drop=True)
            slow = _evaluate(db, AS_OF, None, [nhs])[1].reset_index(drop=True)
            pd.testing.assert_frame_equal(fast, slow, check_dtype=False, check_index_type=False)
            expected = whole[whole["nhs_number"] == nhs].reset_index(drop=True)
            pd.testing.assert_frame_equal(fast, expected, check_dtype=False, check_index_type=False)
            scoped = findings(db, AS_OF, nhs_numbers=[nhs], register=register, practice_codes=[world.other_practice])
            assert scoped.empty  # registered elsewhere: not this practice's finding
        assert findings(db, AS_OF, nhs_numbers=[someone])["referral_state"].tolist().count("accepted") == 1


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_patient_summary_equals_the_stored_status(backend: str, request: pytest.FixtureRequest) -> None:
    """The page's per-check summary (the reference engine's row for one patient) says what the worklist says."""
    world: WebWorld = request.getfixturevalue(f"{backend}_world")
    measure = load_measure("phsmi")
    with open_database(world.url, create=False) as db:
        status = ResultStore(db).status("phsmi", AS_OF)
        rows = status[status["practice_code"] == world.practice]
        assert len(rows) > 10
        for row in rows.to_dict("records"):
            rec = patient_timeline(db, measure, row["nhs_number"], AS_OF, "2022-23")
            assert rec.practice_code == row["practice_code"]
            assert rec.in_denominator == bool(row["in_denominator"])
            for check in rec.checks:
                assert check.status == row[f"{check.check_id}_status"], check.check_id
                want = row[f"{check.check_id}_date"]
                assert check.last_date == (None if want is None or pd.isna(want) else want), check.check_id
