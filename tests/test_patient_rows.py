"""A patient page reads only that patient's rows (issue 16, target 3): indexes on NHS number after a load,
the page's queries answered by them, and the few-patient path giving the same findings as the whole-register
one. Behaviour only; the cost is measured in benchmarks/patient_page.py."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from parity.care.followup import findings
from parity.db import Database, open_database
from parity.db.indexes import PATIENT_INDEXES, _existing, ensure_patient_indexes
from parity.ingest import load_extract
from parity.reports.timeline import patient_timeline
from parity.rules import load_measure
from parity.synth import generate

AS_OF = date(2026, 6, 30)


@pytest.fixture(scope="module")
def extract(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rows")
    generate(folder, scale="practice", area="J82155", patients=300, seed=11, as_of=AS_OF, fmt="csv",
             structure="2022-23")
    return folder


def test_the_few_patient_path_finds_what_the_whole_register_finds(any_db: Database, extract) -> None:
    load_extract(any_db, extract)
    ensure_patient_indexes(any_db)
    everyone = findings(any_db, AS_OF)
    assert len(everyone) > 5  # a synthetic practice has red-zone results to find
    for nhs in sorted(set(everyone["nhs_number"]))[:8]:
        one = findings(any_db, AS_OF, nhs_numbers=[nhs]).reset_index(drop=True)
        expected = everyone[everyone["nhs_number"] == nhs].reset_index(drop=True)
        assert one.to_dict("records") == expected.to_dict("records")
    stored = {str(n) for (n,) in any_db.execute("SELECT nhs_number FROM patients")}
    clear = sorted(stored - set(everyone["nhs_number"]))
    assert findings(any_db, AS_OF, nhs_numbers=clear[:3]).empty  # and nobody else's


def test_indexes_made_once_and_the_timeline_reads_by_index(duckdb_db: Database, extract) -> None:
    load_extract(duckdb_db, extract)
    assert {n for n, _, _ in PATIENT_INDEXES} == set(ensure_patient_indexes(duckdb_db))
    assert ensure_patient_indexes(duckdb_db) == []  # idempotent
    seen: list[tuple[str, list]] = []
    original = duckdb_db.execute

    def spy(sql: str, params=None):  # noqa: ANN001, ANN202
        seen.append((sql, list(params or [])))
        return original(sql, params)

    nhs = str(duckdb_db.execute("SELECT nhs_number FROM events GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 1")[0][0])
    duckdb_db.execute = spy  # type: ignore[method-assign]
    try:
        rec = patient_timeline(duckdb_db, load_measure("phsmi"), nhs, AS_OF, "2022-23")
    finally:
        duckdb_db.execute = original  # type: ignore[method-assign]
    assert rec.entries  # the busiest patient has check codes
    events_sql = [(s, p) for s, p in seen if " FROM events" in s]
    assert events_sql
    for sql, params in events_sql:
        plan = "\n".join(str(r[1]) for r in duckdb_db.execute("EXPLAIN ANALYZE " + sql, params))
        assert "Index Scan" in plan, plan  # only this patient's rows are read


def test_parity_load_leaves_the_indexes_and_a_second_load_keeps_them(tmp_path, extract) -> None:
    file = tmp_path / "parity.duckdb"
    for _ in range(2):  # the second load builds a copy without them, then makes them again
        r = subprocess.run([sys.executable, "-m", "parity.cli", "load", str(extract), "--database", str(file),
                            "--no-precompute"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        with open_database(str(file), create=False) as db:
            assert {n for n, _, _ in PATIENT_INDEXES} <= _existing(db)
