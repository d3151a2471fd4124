"""The initiative register (M7): append-only versions on DuckDB and PostgreSQL, and the bottom-up forecast."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pandas as pd
import pytest

from parity.db import Database
from parity.errors import ConfigurationError, NotFound
from parity.reports.initiatives import Initiative, forecast, history, initiatives, record_initiative

OUTREACH = Initiative(area_level="icb", area_code="QNQ", title="Practice outreach calls", owner="Jo Bloggs",
                      level="practice", start=date(2024, 5, 1), end=date(2024, 7, 31), ease="medium",
                      impact="high", extra_per_month=10, status="active")


def test_versions_and_current(any_db: Database) -> None:
    first = record_initiative(any_db, OUTREACH, "prog1", at=datetime(2024, 4, 1, 9))
    other = record_initiative(any_db, replace(OUTREACH, area_code="QRL", title="Community clinics"), "prog1")
    record_initiative(any_db, replace(OUTREACH, status="paused", note="staff leave"), "prog2", initiative_id=first)
    now = initiatives(any_db, "icb", "QNQ")
    assert len(now) == 1
    row = now.iloc[0]
    assert (row["initiative_id"], row["version"], row["status"], row["username"]) == (first, 2, "paused", "prog2")
    assert set(initiatives(any_db)["initiative_id"]) == {first, other}
    assert set(initiatives(any_db, area_codes=["QRL"])["initiative_id"]) == {other}
    h = history(any_db, first)
    assert h["status"].tolist() == ["active", "paused"] and h["version"].tolist() == [1, 2]
    assert h["start_date"].iloc[0] == date(2024, 5, 1)
    with pytest.raises(NotFound):
        record_initiative(any_db, OUTREACH, "prog1", initiative_id="nope")


def test_append_only_on_postgres(postgres_db: Database) -> None:
    record_initiative(postgres_db, OUTREACH, "prog1")
    import psycopg

    with pytest.raises(psycopg.Error):
        postgres_db.execute("DELETE FROM initiatives")


@pytest.mark.parametrize("change", [
    {"ease": "easy"}, {"impact": "huge"}, {"status": "done"}, {"level": "nation"}, {"title": " "},
    {"end": date(2024, 1, 1)}, {"extra_per_month": -1}, {"area_level": "planet"},
])
def test_validation(duckdb_db: Database, change: dict) -> None:
    with pytest.raises(ConfigurationError):
        record_initiative(duckdb_db, replace(OUTREACH, **change), "prog1")


def test_forecast_adds_active_initiatives_within_timeframe() -> None:
    row = {"all_six": 350, "target_count": 400, "baseline_end": date(2024, 3, 31), "by": date(2025, 1, 31)}
    inits = pd.DataFrame([
        {"status": "active", "start_date": date(2024, 5, 1), "end_date": date(2024, 7, 31), "extra_per_month": 10.0},
        {"status": "active", "start_date": date(2024, 12, 15), "end_date": None, "extra_per_month": 2.5},
        {"status": "proposed", "start_date": date(2024, 4, 1), "end_date": None, "extra_per_month": 100.0},
        {"status": "stopped", "start_date": date(2024, 4, 1), "end_date": None, "extra_per_month": 100.0},
    ])
    f = forecast(row, inits)
    assert list(f.columns) == ["month_end", "trajectory", "forecast"]
    by_month = dict(zip(f["month_end"], f["forecast"], strict=True))
    assert by_month[date(2024, 3, 31)] == 350 and by_month[date(2024, 4, 30)] == 350
    assert by_month[date(2024, 5, 31)] == 360 and by_month[date(2024, 7, 31)] == 380
    assert by_month[date(2024, 11, 30)] == 380
    assert by_month[date(2024, 12, 31)] == 382.5 and by_month[date(2025, 1, 31)] == 385
    assert f["trajectory"].iloc[-1] == 400
    empty = forecast(row, pd.DataFrame(columns=["status", "start_date", "end_date", "extra_per_month"]))
    assert set(empty["forecast"]) == {350}
