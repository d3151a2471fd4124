"""Referrals after red-zone findings (mission feature M6): offered -> accepted/declined -> completed,
kept in the append-only ``referrals`` table (one row per change of state). ``parity.care.followup``
reads them to decide whether a finding was followed up. SQL is one text for DuckDB and PostgreSQL
(``?`` parameters); no patient data goes into exceptions or logs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import pandas as pd

from parity.db import Database
from parity.db.append_only import ensure_table, lock
from parity.db.locks import LockKey
from parity.db.transactions import atomic, utc_now
from parity.errors import ConfigurationError
from parity.rules.interventions import REFERRAL_STATES, load_interventions

# -- referrals: append-only ------------------------------------------------------------------------

REFERRALS_DDL = """CREATE TABLE IF NOT EXISTS referrals (
    referral_id VARCHAR(36) NOT NULL,
    seq INTEGER NOT NULL,               -- 1 for the offer, then one more per change of state
    nhs_number VARCHAR(10) NOT NULL,
    practice_code VARCHAR(10) NOT NULL,
    intervention_id VARCHAR(40) NOT NULL,
    state VARCHAR(10) NOT NULL,
    occurred_at TIMESTAMP NOT NULL,     -- UTC, naive
    username VARCHAR(64) NOT NULL,
    note VARCHAR(1000),
    PRIMARY KEY (referral_id, seq)
)"""
REFERRALS_INDEX = "CREATE INDEX IF NOT EXISTS referrals_nhs_number ON referrals (nhs_number)"

# Arbitrary constant key for pg_advisory_xact_lock: serialises schema setup and referral appends.
PG_LOCK_KEY = LockKey.REFERRALS

#: state -> states a referral may move to. A referral starts ``offered`` (the key None); declined and
#: completed are final (product.md M6: offered -> accepted/declined -> completed).
TRANSITIONS: dict[str | None, frozenset[str]] = {
    None: frozenset({"offered"}),
    "offered": frozenset({"accepted", "declined"}),
    "accepted": frozenset({"completed", "declined"}),
    "declined": frozenset(),
    "completed": frozenset(),
}

#: Follow-up must come within this many months of the finding (Parity choice; product.md M6).
FOLLOW_UP_MONTHS = 3

def ensure_followup_schema(db: Database) -> None:
    """Create the ``referrals`` table (and on PostgreSQL its append-only trigger) if missing; idempotent."""
    ensure_table(db, "referrals", (REFERRALS_DDL, REFERRALS_INDEX), PG_LOCK_KEY)


@dataclass(frozen=True)
class ReferralStep:
    """One recorded change of state of a referral."""

    seq: int
    state: str
    occurred_at: datetime
    username: str
    note: str = ""


@dataclass(frozen=True)
class Referral:
    """A referral's current state and its history (oldest step first)."""

    referral_id: str
    nhs_number: str
    practice_code: str
    intervention_id: str
    state: str
    opened_at: datetime
    updated_at: datetime
    history: tuple[ReferralStep, ...]


def _timestamp(at: datetime | date | None) -> datetime:
    if at is None:
        return utc_now()
    if isinstance(at, datetime):
        if at.tzinfo is not None:
            at = at.astimezone(UTC).replace(tzinfo=None)
        return at
    return datetime.combine(at, time())


def record_referral(db: Database, nhs_number: str, practice_code: str, intervention_id: str, state: str,
                    username: str, note: str = "", referral_id: str | None = None,
                    at: datetime | date | None = None) -> str:
    """Append one step to a referral and return its id.

    Without ``referral_id`` a new referral is opened (``state`` must be ``offered``); with it, ``state`` must
    be allowed after the referral's current state (``TRANSITIONS``), for the same patient and intervention,
    and not earlier than the last step. Anything else raises ``ConfigurationError``.
    """
    catalogue = load_interventions()
    if intervention_id not in catalogue.interventions:
        raise ConfigurationError(f"unknown intervention {intervention_id!r}")
    if state not in REFERRAL_STATES:
        raise ConfigurationError(f"referral state must be one of {', '.join(REFERRAL_STATES)}")
    occurred_at = _timestamp(at)
    ensure_followup_schema(db)
    with atomic(db):
        lock(db, PG_LOCK_KEY)
        current: str | None = None
        seq = 1
        if referral_id is None:
            referral_id = uuid.uuid4().hex
        else:
            rows = db.execute(
                "SELECT seq, state, occurred_at, nhs_number, intervention_id FROM referrals "
                "WHERE referral_id = ? ORDER BY seq DESC LIMIT 1", [referral_id])
            if not rows:
                raise ConfigurationError("unknown referral")
            last_seq, current, last_at, last_nhs, last_intervention = rows[0]
            if last_nhs != nhs_number or last_intervention != intervention_id:
                raise ConfigurationError("the referral is for another patient or intervention")
            if occurred_at < last_at:
                raise ConfigurationError("a referral step cannot be earlier than the previous one")
            seq = int(last_seq) + 1
        if state not in TRANSITIONS[current]:
            allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (final state)"
            raise ConfigurationError(f"invalid referral transition {current or 'new'} -> {state}; allowed: {allowed}")
        db.execute(
            "INSERT INTO referrals (referral_id, seq, nhs_number, practice_code, intervention_id, state, "
            "occurred_at, username, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [referral_id, seq, nhs_number, practice_code, intervention_id, state, occurred_at, username, note])
    return referral_id


def in_list(column: str, values: Sequence[Any]) -> str:
    return f"{column} IN ({', '.join('?' for _ in values)})"


#: Longer lists of NHS numbers or practices are not sent as SQL parameters (PostgreSQL allows 65535 per
#: statement); the rows are filtered in pandas instead.
_MAX_SQL_LIST = 1000


def sql_list(values: Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    out = sorted(set(values))
    return out if len(out) <= _MAX_SQL_LIST else None


def referral_rows(db: Database, nhs_numbers: Sequence[str] | None = None,
                   before: datetime | None = None) -> pd.DataFrame:
    ensure_followup_schema(db)
    cols = ["referral_id", "seq", "nhs_number", "practice_code", "intervention_id", "state", "occurred_at",
            "username", "note"]
    where, params = [], []
    if nhs_numbers is not None:
        if not nhs_numbers:
            return pd.DataFrame(columns=cols)
        where.append(in_list("nhs_number", nhs_numbers))
        params += list(nhs_numbers)
    if before is not None:
        where.append("occurred_at < ?")
        params.append(before)
    sql = f"SELECT {', '.join(cols)} FROM referrals"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return pd.DataFrame(db.execute(sql + " ORDER BY referral_id, seq", params), columns=cols)


def py_datetime(value: Any) -> datetime:
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def referrals(db: Database, nhs_number: str | None = None,
              practice_codes: Iterable[str] | None = None) -> list[Referral]:
    """Every recorded referral (optionally of one patient, or opened at one of ``practice_codes``), with its
    current state and history; newest first. Coded interventions in the record are not referrals here:
    ``findings`` counts them as follow-up."""
    df = referral_rows(db, [nhs_number] if nhs_number is not None else None)
    codes = set(practice_codes) if practice_codes is not None else None
    out: list[Referral] = []
    for rid, steps in df.groupby("referral_id", sort=False):
        steps = steps.sort_values("seq")
        first, last = steps.iloc[0], steps.iloc[-1]
        if codes is not None and first["practice_code"] not in codes:
            continue
        history = tuple(ReferralStep(int(s.seq), str(s.state), py_datetime(s.occurred_at), str(s.username),
                                     str(s.note or "")) for s in steps.itertuples(index=False))
        out.append(Referral(
            referral_id=str(rid), nhs_number=str(first["nhs_number"]), practice_code=str(first["practice_code"]),
            intervention_id=str(first["intervention_id"]), state=str(last["state"]),
            opened_at=history[0].occurred_at, updated_at=history[-1].occurred_at, history=history))
    out.sort(key=lambda r: (r.opened_at, r.referral_id), reverse=True)
    return out
