"""Assessments of an area against a framework (mission feature M10), stored append-only, with history.

An *assessment* scores every item of a framework (``parity.rules.assessments``: the 10 parity of esteem
indicators, red/amber/green; EDS domain 1 outcomes 1A-1D, 0-3, total /12) for one area on one day, with
evidence per item. ``record_assessment`` appends one row per item to the append-only ``assessments`` table
(all items or none); the current state is a query: ``latest`` (the newest assessment of an area), ``history``
(every assessment, oldest first) and ``summary`` (the latest of every area).

Areas: the organisation levels (region, icb, sub_icb, pcn, practice, trust; ODS codes, upper case) and
``service`` for EDS "per service" scoring, where the code is a free service name or code (e.g. a trust
service). Codes are not checked against the organisation hierarchy: an assessment can be recorded for an
organisation that is not in the loaded data. "Newest" is by assessment date, then by the time it was recorded:
a correction recorded later for the same day replaces the earlier one; nothing is ever updated or deleted.

SQL is one text for DuckDB and PostgreSQL (``?`` parameters). On PostgreSQL a trigger refuses UPDATE, DELETE
and TRUNCATE; DuckDB has no triggers, so there append-only is kept by this API (no update or delete function).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd

from parity.db import Database
from parity.db.append_only import ensure_table, lock
from parity.db.locks import LockKey
from parity.db.transactions import atomic, utc_now
from parity.errors import ConfigurationError
from parity.rules.assessments import Framework, get_framework

#: Area levels an assessment can be for; ``service`` takes a free code or name.
AREA_LEVELS = ("region", "icb", "sub_icb", "pcn", "practice", "trust", "service")
MAX_AREA_CODE = 100
_ODS = re.compile(r"^[A-Z0-9]{2,10}$")
_SERVICE_BAD = re.compile(r"[\x00-\x1f\x7f/\\?#%]")

ASSESSMENTS_DDL = """CREATE TABLE IF NOT EXISTS assessments (
    assessment_id VARCHAR(32) NOT NULL,
    seq INTEGER NOT NULL,               -- the item's position in the framework, from 1
    framework VARCHAR(20) NOT NULL,
    area_level VARCHAR(10) NOT NULL,
    area_code VARCHAR(100) NOT NULL,
    item_id VARCHAR(40) NOT NULL,
    score VARCHAR(10) NOT NULL,         -- a value of the framework's scale: red/amber/green, 0-3
    evidence VARCHAR(2000),
    assessed_on DATE NOT NULL,
    recorded_at TIMESTAMP NOT NULL,     -- UTC, naive
    username VARCHAR(64) NOT NULL,
    PRIMARY KEY (assessment_id, seq)
)"""
ASSESSMENTS_INDEX = "CREATE INDEX IF NOT EXISTS assessments_area ON assessments (framework, area_level, area_code)"

# Arbitrary constant key for pg_advisory_xact_lock: serialises schema setup and appends.
PG_LOCK_KEY = LockKey.ASSESSMENTS

_COLUMNS = ["assessment_id", "seq", "framework", "area_level", "area_code", "item_id", "score", "evidence",
            "assessed_on", "recorded_at", "username"]

def ensure_assessments_schema(db: Database) -> None:
    """Create the ``assessments`` table (and on PostgreSQL its append-only triggers) if missing; idempotent."""
    ensure_table(db, "assessments", (ASSESSMENTS_DDL, ASSESSMENTS_INDEX), PG_LOCK_KEY)


def normalise_area(area_level: str, area_code: str) -> tuple[str, str]:
    """(level, code) as stored: ODS codes upper case; a service code trimmed. ``ConfigurationError`` if bad."""
    level = str(area_level or "").strip().lower()
    if level not in AREA_LEVELS:
        raise ConfigurationError(f"area level must be one of {', '.join(AREA_LEVELS)}")
    code = " ".join(str(area_code or "").split())
    if level == "service":
        if not code or len(code) > MAX_AREA_CODE or _SERVICE_BAD.search(code):
            raise ConfigurationError(f"a service code or name must be 1-{MAX_AREA_CODE} characters, "
                                     "without / \\ ? # % or control characters")
        return level, code
    code = code.upper()
    if not _ODS.match(code):
        raise ConfigurationError(f"a {level} code must be an ODS code: 2-10 letters or digits")
    return level, code


@dataclass(frozen=True)
class ItemScore:
    item_id: str
    name: str
    score: str
    label: str
    evidence: str = ""


@dataclass(frozen=True)
class Assessment:
    """One recorded assessment of an area: a score (and evidence) for every item of the framework."""

    assessment_id: str
    framework: str
    area_level: str
    area_code: str
    assessed_on: date
    recorded_at: datetime
    username: str
    items: tuple[ItemScore, ...]
    total: int | None = None        # frameworks with totals (EDS): the sum of the scores
    max_total: int | None = None    # ... and the highest possible sum (12)

    def score(self, item_id: str) -> str | None:
        return next((i.score for i in self.items if i.item_id == item_id), None)

    def counts(self) -> dict[str, int]:
        """How many items have each score (e.g. red/amber/green)."""
        out: dict[str, int] = {}
        for i in self.items:
            out[i.score] = out.get(i.score, 0) + 1
        return out


def record_assessment(db: Database, framework: str, area_level: str, area_code: str,
                      scores: Mapping[str, Any], evidence: Mapping[str, str] | None, assessed_on: date,
                      username: str, *, today: date | None = None) -> str:
    """Store one assessment (every item of ``framework`` scored) and return its id.

    ``scores``: item id -> score (``"green"``, ``2``; item ids and values are case-insensitive).
    ``evidence``: item id -> text (optional per item). Anything wrong raises ``ConfigurationError`` naming
    each item and reason, and nothing is stored. ``today`` (when given) refuses an assessment dated after it.
    """
    fw = get_framework(framework)
    level, code = normalise_area(area_level, area_code)
    if isinstance(assessed_on, datetime) or not isinstance(assessed_on, date):
        raise ConfigurationError("the assessment date must be a date")
    if today is not None and assessed_on > today:
        raise ConfigurationError("the assessment date cannot be after today")
    if not str(username or "").strip() or len(username) > 64:
        raise ConfigurationError("username must be 1-64 characters")
    problems = fw.problems(scores, evidence)
    if problems:
        raise ConfigurationError("; ".join(reason for _, reason in problems))
    stored = {fw.item(k).id: fw.normalise_score(v) for k, v in scores.items()}  # type: ignore[union-attr]
    notes = {fw.item(k).id: str(v or "").strip() for k, v in (evidence or {}).items()}  # type: ignore[union-attr]
    assessment_id = uuid.uuid4().hex
    recorded_at = utc_now()
    rows = [[assessment_id, n, fw.id, level, code, item.id, stored[item.id], notes.get(item.id) or None,
             assessed_on, recorded_at, username] for n, item in enumerate(fw.items, start=1)]
    ensure_assessments_schema(db)
    with atomic(db):
        lock(db, PG_LOCK_KEY)
        for row in rows:
            db.execute(f"INSERT INTO assessments ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
                       row)
    return assessment_id


def _day(value: Any) -> date:
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, datetime):
        return value.date()
    return value


def _assessments(db: Database, fw: Framework, area_level: str | None = None,
                 area_code: str | None = None) -> list[Assessment]:
    """Assessments of ``fw`` (optionally of one level / area), oldest first."""
    ensure_assessments_schema(db)
    where, params = ["framework = ?"], [fw.id]
    if area_level is not None:
        where.append("area_level = ?")
        params.append(area_level)
    if area_code is not None:
        where.append("area_code = ?")
        params.append(area_code)
    rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM assessments WHERE {' AND '.join(where)} "
                      "ORDER BY assessed_on, recorded_at, assessment_id, seq", params)
    names = {i.id: i.name for i in fw.items}
    grouped: dict[str, list[tuple]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    out = []
    for aid, group in grouped.items():
        first = dict(zip(_COLUMNS, group[0], strict=True))
        items = tuple(ItemScore(r[5], names.get(r[5], r[5]), r[6], fw.label(r[6]), r[7] or "") for r in group)
        out.append(Assessment(
            assessment_id=aid, framework=fw.id, area_level=first["area_level"], area_code=first["area_code"],
            assessed_on=_day(first["assessed_on"]), recorded_at=first["recorded_at"], username=first["username"],
            items=items, total=fw.total({i.item_id: i.score for i in items}), max_total=fw.max_total))
    return out


def history(db: Database, framework: str, area_level: str, area_code: str) -> list[Assessment]:
    """Every assessment of one area, oldest first (by assessment date, then time recorded)."""
    fw = get_framework(framework)
    level, code = normalise_area(area_level, area_code)
    return _assessments(db, fw, level, code)


def latest(db: Database, framework: str, area_level: str, area_code: str) -> Assessment | None:
    """The newest assessment of one area, or None if it has never been assessed."""
    found = history(db, framework, area_level, area_code)
    return found[-1] if found else None


def latest_per_area(db: Database, framework: str, area_level: str | None = None) -> list[Assessment]:
    """The newest assessment of every area (of ``area_level``, or of every level), by level then code."""
    fw = get_framework(framework)
    level = None
    if area_level is not None:
        level = str(area_level).strip().lower()
        if level not in AREA_LEVELS:
            raise ConfigurationError(f"area level must be one of {', '.join(AREA_LEVELS)}")
    newest: dict[tuple[str, str], Assessment] = {}
    for a in _assessments(db, fw, level):
        newest[(a.area_level, a.area_code)] = a  # oldest first, so the last one wins
    order = {lv: n for n, lv in enumerate(AREA_LEVELS)}
    return sorted(newest.values(), key=lambda a: (order[a.area_level], a.area_code))


def summary(db: Database, framework: str, area_level: str | None = None) -> pd.DataFrame:
    """One row per area with its latest assessment: ``area_level, area_code, assessed_on, username``, one
    column per item (the score), then ``total`` and ``max_total`` (frameworks with totals) or one count column
    per scale value (``red, amber, green``)."""
    fw = get_framework(framework)
    return _frame(fw, latest_per_area(db, framework, area_level))


def history_frame(db: Database, framework: str, area_level: str, area_code: str) -> pd.DataFrame:
    """``history`` as a frame (the columns of ``summary``), oldest first, with ``change`` in the total."""
    fw = get_framework(framework)
    df = _frame(fw, history(db, framework, area_level, area_code))
    if fw.totals:
        df["change"] = df["total"].diff().astype("Int64")
    return df


def _frame(fw: Framework, found: list[Assessment]) -> pd.DataFrame:
    cols = ["area_level", "area_code", "assessed_on", "username", *(i.id for i in fw.items)]
    cols += ["total", "max_total"] if fw.totals else list(fw.values)
    rows = []
    for a in found:
        row: dict[str, Any] = {"area_level": a.area_level, "area_code": a.area_code, "assessed_on": a.assessed_on,
                               "username": a.username}
        row.update({i.item_id: i.score for i in a.items})
        if fw.totals:
            row.update(total=a.total, max_total=a.max_total)
        else:
            counts = a.counts()
            row.update({v: counts.get(v, 0) for v in fw.values})
        rows.append(row)
    df = pd.DataFrame(rows, columns=cols)
    if fw.totals:
        df["total"] = df["total"].astype("int64")
        df["max_total"] = df["max_total"].astype("int64")
    else:
        for v in fw.values:
            df[v] = df[v].astype("int64")
    return df
