"""Issue 16 target 1 on real DuckDB and PostgreSQL: a trend counted in one query, the bitwise path for
plain-window measures, and feature tables kept by the precompute so a new process starts warm.

Every answer is checked against the reference engine (or the engine's own per-date answers), never
against a time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from pandas.testing import assert_frame_equal

from parity.dates import quarter_ends_until
from parity.db.bulk import insert_rows
from parity.engine import bitwise
from parity.engine.base import LEVELS
from parity.engine.ibis_engine import FEATURE_PREFIX, IbisEngine
from parity.engine.reference import ReferenceEngine
from parity.engine.results import ResultStore
from parity.rules.registry import list_measures, load_measure
from test_engine_ibis import AS_OF, PRACTICE_A, PRACTICE_B, STRUCTURE, Builder, sample

DATES = quarter_ends_until(AS_OF, 8)


def changing() -> Builder:
    """``sample`` plus people whose answer changes between the quarter ends of ``DATES``."""
    b = Builder()
    b.ds = sample()
    b._n = len(b.ds.patients)
    # Moves practice in mid-2023: A before, B after (two registrations, one ended).
    mover = b.patient(PRACTICE_A, registered=date(2012, 1, 1))
    b.ds.registrations[-1]["end_date"] = date(2023, 7, 15)
    b.ds.registrations.append({"nhs_number": mover, "practice_code": PRACTICE_B, "start_date": date(2023, 7, 16)})
    b.all_six(mover, date(2023, 2, 1))
    # Two registrations covering the same days: the later start wins (then the smaller code).
    overlap = b.patient(PRACTICE_B, registered=date(2011, 1, 1))
    b.ds.registrations.append({"nhs_number": overlap, "practice_code": PRACTICE_A, "start_date": date(2022, 10, 1)})
    b.event(overlap, "BP_COD", date(2023, 11, 2), 130.0)
    # In remission from 2023, diagnosed again in 2024.
    relapse = b.patient(PRACTICE_B)
    b.event(relapse, "MHREM_COD", date(2023, 1, 10))
    b.event(relapse, "MH_COD", date(2024, 1, 5))
    b.event(relapse, "SMOKDEC_COD", date(2023, 12, 1))
    # Dies between two quarter ends; diagnosed only in 2023; registered only from 2023.
    b.all_six(b.patient(died=date(2023, 5, 2)), date(2022, 8, 1))
    late = b.patient(smi=False)
    b.event(late, "MH_COD", date(2023, 4, 20))
    b.event(b.patient(PRACTICE_B, registered=date(2023, 3, 1)), "BMIVAL_COD", date(2022, 12, 30), 24.0)
    # A check done exactly on a window's first and last days.
    edge = b.patient()
    b.event(edge, "BP_COD", date(2022, 4, 1), 120.0)   # first day of the window to 2023-03-31
    b.event(edge, "CHOL2_COD", date(2023, 3, 31), 4.0)  # its last day
    return b


@pytest.mark.parametrize("measure_id", list_measures())
def test_trend_in_one_query_matches_reference(any_db, measure_id):
    ds = changing().ds
    ds.write(any_db)
    engine, reference = IbisEngine(any_db), ReferenceEngine(ds)
    measure = load_measure(measure_id)
    every = engine.trend_all(measure, DATES, STRUCTURE)
    for level in LEVELS:
        assert_frame_equal(every[level], reference.trend(measure, DATES, level, STRUCTURE), obj=level)
    # The same counts, date by date, from a new engine asked one date at a time.
    single = IbisEngine(any_db)
    for d in DATES:
        one = single.aggregate(measure, d, "practice", STRUCTURE)
        block = every["practice"][every["practice"]["as_of"] == d].drop(columns="as_of").reset_index(drop=True)
        assert_frame_equal(block, one, obj=str(d))


def test_bitwise_path_equals_general_path(any_db, monkeypatch):
    ds = changing().ds
    ds.write(any_db)
    measure = load_measure("phsmi")
    assert bitwise.plain_windows(measure, IbisEngine(any_db)._plan(measure))
    assert not bitwise.plain_windows(load_measure("qof-mh021"), IbisEngine(any_db)._plan(load_measure("qof-mh021")))
    fast = IbisEngine(any_db).trend_all(measure, DATES, STRUCTURE)
    monkeypatch.setattr(bitwise, "plain_windows", lambda measure, plan: False)
    general = IbisEngine(any_db).trend_all(measure, DATES, STRUCTURE)
    for level in LEVELS:
        assert_frame_equal(fast[level], general[level], obj=level)
    # Repeated and unordered dates come back in the order asked.
    dates = [DATES[3], DATES[0], DATES[3]]
    trend = IbisEngine(any_db).trend(measure, dates, "icb", STRUCTURE)
    assert list(trend["as_of"].drop_duplicates()) == [DATES[3], DATES[0]]
    assert len(trend) == 3 * len(general["icb"][general["icb"]["as_of"] == DATES[0]])


def kept_tables(db) -> list[str]:
    return db.dialect.tables_like(db.ibis, FEATURE_PREFIX)


def test_precompute_keeps_feature_tables_for_new_engines(any_db):
    ds = changing().ds
    ds.write(any_db)
    measure = load_measure("phsmi")
    assert kept_tables(any_db) == []
    ResultStore(any_db).refresh(AS_OF, ["phsmi", "qof-mh021"], quarters=2, months=1, status=False)
    kept = kept_tables(any_db)
    assert kept, "the precompute keeps the measures' feature tables"
    # A refresh whose results are all in ``result_cache`` still makes sure the tables are there.
    for name in kept:
        any_db.execute(f"DROP TABLE {name}")
    ResultStore(any_db).refresh(AS_OF, ["phsmi", "qof-mh021"], quarters=2, months=1, status=False)
    assert sorted(kept_tables(any_db)) == sorted(kept)

    # A new engine (as in a new `parity measure` process) reads them and builds nothing of its own.
    warm = IbisEngine(any_db)
    got = warm.aggregate_all(measure, date(2023, 5, 31), STRUCTURE)
    assert warm._kept and not warm._tables
    expected = ReferenceEngine(ds)
    for level in LEVELS:
        assert_frame_equal(got[level], expected.aggregate(measure, date(2023, 5, 31), level, STRUCTURE), obj=level)

    # New data: the kept tables are of another data stamp, so they are not read; the answer sees the
    # new row. The next precompute keeps new tables and drops the stale ones.
    newcomer = "9000000099"
    ds.patients.append({"nhs_number": newcomer, "date_of_birth": date(1980, 1, 1), "sex": "male",
                        "ethnicity": None, "date_of_death": None})
    ds.registrations.append({"nhs_number": newcomer, "practice_code": PRACTICE_A, "start_date": date(2010, 1, 1)})
    ds.events.append({"nhs_number": newcomer, "date": AS_OF - timedelta(days=3), "snomed_code":
                      min(ds.events, key=lambda e: e["nhs_number"])["snomed_code"], "value": None})
    for table in ("events", "registrations", "patients", "practices"):
        any_db.execute(f"DELETE FROM {table}")
    ds.write(any_db)
    # As a load does: a ``loads`` row, so the precomputed results' data version changes too.
    insert_rows(any_db, "loads", [{"load_id": "test-load-2", "loaded_at": datetime(2024, 4, 2, 9, 0),
                                   "source": "test", "mode": "replace", "patients": len(ds.patients),
                                   "registrations": len(ds.registrations), "events": len(ds.events),
                                   "medications": 0, "warnings": 0}])
    fresh = IbisEngine(any_db)
    again = fresh.aggregate_all(measure, AS_OF, STRUCTURE)
    assert not fresh._kept and fresh._tables
    assert_frame_equal(again["practice"], ReferenceEngine(ds).aggregate(measure, AS_OF, "practice", STRUCTURE))
    ResultStore(any_db).refresh(AS_OF, ["phsmi"], quarters=1, months=1, status=False)
    now = kept_tables(any_db)
    assert now and not set(now) & set(kept), "stale feature tables are dropped by the next precompute"
