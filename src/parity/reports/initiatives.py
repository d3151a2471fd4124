"""Register of improvement initiatives (mission feature M7): who does what, where, when, and what it should add.

Each initiative belongs to an area (``area_level``/``area_code``: an ICB or region, where the programme tracks it),
is run at a ``level`` (practice, PCN, ICB or region), has an owner, a timeframe, an ease and an expected impact
(low/medium/high), the extra patients with all six checks it should bring each month, and a status. Every change is
a new version in the append-only ``initiatives`` table (on PostgreSQL a trigger refuses UPDATE and DELETE); the
register shows the latest version of each.

``forecast`` is the bottom-up view: from the baseline all-six count, add each counted initiative's extra patients
for every month of its timeframe, to set against the top-down trajectory (``parity.reports.trajectory``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd

from parity.db import Database
from parity.db.append_only import ensure_table, lock
from parity.db.locks import LockKey
from parity.db.transactions import atomic, utc_now
from parity.errors import ConfigurationError, NotFound
from parity.reports.trajectory import monthly_line

AREA_LEVELS = ("practice", "pcn", "sub_icb", "icb", "region", "england")
LEVELS = ("practice", "pcn", "icb", "region")
RATINGS = ("low", "medium", "high")
STATUSES = ("proposed", "active", "paused", "completed", "stopped")
#: Statuses whose extra patients the forecast counts, within the initiative's timeframe. Completed initiatives
#: delivered during their timeframe, so they stay in; proposed, paused and stopped ones add nothing.
FORECAST_STATUSES = frozenset({"active", "completed"})

INITIATIVES_DDL = """CREATE TABLE IF NOT EXISTS initiatives (
    initiative_id VARCHAR(36) NOT NULL,
    version INTEGER NOT NULL,
    area_level VARCHAR(10) NOT NULL,
    area_code VARCHAR(20) NOT NULL,
    title VARCHAR(200) NOT NULL,
    owner VARCHAR(120) NOT NULL,
    level VARCHAR(10) NOT NULL,
    start_date DATE NOT NULL,
    end_date DATE,
    ease VARCHAR(6) NOT NULL,
    impact VARCHAR(6) NOT NULL,
    extra_per_month DOUBLE PRECISION NOT NULL,
    status VARCHAR(10) NOT NULL,
    recorded_at TIMESTAMP NOT NULL,     -- UTC, naive
    username VARCHAR(64) NOT NULL,
    note VARCHAR(1000),
    PRIMARY KEY (initiative_id, version)
)"""
_INDEX = "CREATE INDEX IF NOT EXISTS initiatives_area ON initiatives (area_level, area_code)"
PG_LOCK_KEY = LockKey.INITIATIVES

COLUMNS = ["initiative_id", "version", "area_level", "area_code", "title", "owner", "level", "start_date",
           "end_date", "ease", "impact", "extra_per_month", "status", "recorded_at", "username", "note"]

def ensure_initiatives_schema(db: Database) -> None:
    """Create the ``initiatives`` table (and on PostgreSQL its append-only trigger) if missing; idempotent."""
    ensure_table(db, "initiatives", (INITIATIVES_DDL, _INDEX), PG_LOCK_KEY)


@dataclass(frozen=True)
class Initiative:
    """What is recorded about an initiative in one version."""

    area_level: str
    area_code: str
    title: str
    owner: str
    level: str
    start: date
    end: date | None
    ease: str
    impact: str
    extra_per_month: float
    status: str = "proposed"
    note: str = ""

    def validate(self) -> None:
        problems = []
        if self.area_level not in AREA_LEVELS:
            problems.append(f"area level must be one of {', '.join(AREA_LEVELS)}")
        if not self.area_code.strip():
            problems.append("enter the area code")
        if not self.title.strip():
            problems.append("enter a title")
        if not self.owner.strip():
            problems.append("enter the owner")
        if self.level not in LEVELS:
            problems.append(f"level must be one of {', '.join(LEVELS)}")
        if self.ease not in RATINGS:
            problems.append(f"ease must be one of {', '.join(RATINGS)}")
        if self.impact not in RATINGS:
            problems.append(f"expected impact must be one of {', '.join(RATINGS)}")
        if self.status not in STATUSES:
            problems.append(f"status must be one of {', '.join(STATUSES)}")
        if self.end is not None and self.end < self.start:
            problems.append("the end date cannot be before the start date")
        if not (0 <= float(self.extra_per_month) <= 1_000_000):
            problems.append("expected extra patients per month must be between 0 and 1,000,000")
        if len(self.title) > 200 or len(self.owner) > 120 or len(self.note) > 1000:
            problems.append("title, owner or note is too long")
        if problems:
            raise ConfigurationError("; ".join(problems))


def record_initiative(db: Database, initiative: Initiative, username: str, initiative_id: str | None = None,
                      at: datetime | None = None) -> str:
    """Append a version of an initiative (a new one without ``initiative_id``) and return its id."""
    initiative.validate()
    ensure_initiatives_schema(db)
    recorded_at = at or utc_now()
    with atomic(db):
        lock(db, PG_LOCK_KEY)
        version = 1
        if initiative_id is None:
            initiative_id = uuid.uuid4().hex
        else:
            rows = db.execute("SELECT MAX(version) FROM initiatives WHERE initiative_id = ?", [initiative_id])
            if not rows or rows[0][0] is None:
                raise NotFound("unknown initiative")
            version = int(rows[0][0]) + 1
        i = initiative
        db.execute(
            "INSERT INTO initiatives (initiative_id, version, area_level, area_code, title, owner, level, start_date, "
            "end_date, ease, impact, extra_per_month, status, recorded_at, username, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [initiative_id, version, i.area_level, i.area_code.strip(), i.title.strip(), i.owner.strip(), i.level,
             i.start, i.end, i.ease, i.impact, float(i.extra_per_month), i.status, recorded_at, username, i.note])
    return initiative_id


def _rows(db: Database, where: str = "", params: list[Any] | None = None) -> pd.DataFrame:
    ensure_initiatives_schema(db)
    sql = f"SELECT {', '.join(COLUMNS)} FROM initiatives {where} ORDER BY initiative_id, version"
    df = pd.DataFrame(db.execute(sql, params or []), columns=COLUMNS)
    df["extra_per_month"] = df["extra_per_month"].astype("float64")
    return df


def initiatives(db: Database, area_level: str | None = None, area_code: str | None = None,
                area_codes: list[str] | None = None) -> pd.DataFrame:
    """The current (latest) version of each initiative, optionally of one area level / code (or any of
    ``area_codes``); ordered by start date then title."""
    where, params = [], []
    if area_level is not None:
        where.append("area_level = ?")
        params.append(area_level)
    if area_code is not None:
        where.append("area_code = ?")
        params.append(area_code)
    if area_codes is not None:
        if not area_codes:
            return pd.DataFrame(columns=COLUMNS)
        where.append(f"area_code IN ({', '.join('?' for _ in area_codes)})")
        params += list(area_codes)
    # A later version may not move area, but filter on the latest version anyway: take all rows of the matching
    # ids, then keep each id's latest.
    ids_sql = "WHERE initiative_id IN (SELECT initiative_id FROM initiatives" + (
        " WHERE " + " AND ".join(where) if where else "") + ")"
    df = _rows(db, ids_sql, params)
    latest = df.drop_duplicates("initiative_id", keep="last")
    if area_level is not None:
        latest = latest[latest["area_level"] == area_level]
    if area_code is not None:
        latest = latest[latest["area_code"] == area_code]
    if area_codes is not None:
        latest = latest[latest["area_code"].isin(area_codes)]
    return latest.sort_values(["start_date", "title", "initiative_id"]).reset_index(drop=True)


def history(db: Database, initiative_id: str) -> pd.DataFrame:
    """Every version of one initiative, oldest first."""
    df = _rows(db, "WHERE initiative_id = ?", [initiative_id])
    if df.empty:
        raise NotFound("unknown initiative")
    return df


def _day(value: Any) -> date | None:
    if value is None or (not isinstance(value, date) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, datetime):
        return value.date()
    return value


def forecast(trajectory_row: dict[str, Any] | pd.Series, initiatives: pd.DataFrame) -> pd.DataFrame:
    """``month_end, trajectory, forecast`` from the baseline to the target date of ``trajectory_row`` (a row of
    ``trajectory_table``/``build``: ``all_six, target_count, baseline_end, by``).

    The forecast is bottom-up: the baseline all-six count plus, for each month, ``extra_per_month`` of every
    initiative with a status in ``FORECAST_STATUSES`` whose timeframe overlaps that month (start on or before the
    month end; no end, or end on or after the month's first day), accumulated month by month.
    """
    row = dict(trajectory_row)
    baseline_end = _day(row["baseline_end"])
    by = _day(row["by"])
    assert baseline_end is not None and by is not None
    line = monthly_line(int(row["all_six"]), baseline_end, int(row["target_count"]), by)
    counted = initiatives[initiatives["status"].isin(FORECAST_STATUSES)] if not initiatives.empty else initiatives
    spans = [(_day(s), _day(e), float(x)) for s, e, x in
             zip(counted.get("start_date", []), counted.get("end_date", []), counted.get("extra_per_month", []),
                 strict=True)]
    level = float(row["all_six"])
    values = []
    for k, month_end in enumerate(line["month_end"]):
        if k > 0:
            month_start = date(month_end.year, month_end.month, 1)
            for start, end, extra in spans:
                if start is not None and start <= month_end and (end is None or end >= month_start):
                    level += extra
        values.append(round(level, 1))
    return pd.DataFrame({"month_end": line["month_end"], "trajectory": line["expected_all_six"],
                         "forecast": values})
