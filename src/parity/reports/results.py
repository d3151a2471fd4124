"""Precomputed results: measures, trends and patient status kept ready for the dashboard and API.

The engine takes about a second per reporting date on a region (and seconds per trend), far more
than a page may take (the target is p95 < 150 ms with 20 concurrent users). So results are
computed once per *data version* and kept twice:

* **in the database** (table ``result_cache``, one Parquet blob per measure, ``as_of`` and kind),
  so a restarted server, or a second server on the same PostgreSQL database, starts warm;
* **in memory** (plain pandas frames), so a request only slices a ready frame.

The data version is a fingerprint of the ``loads`` table, which every load writes to. After a load,
``refresh`` recomputes the default reporting dates (latest quarter end, the 8 quarters and 12
months before it, for each precomputed measure) and deletes entries of older versions; ``parity
load`` and ``parity demo`` call it. Any other date is computed on first request and stored, so
the cache grows only with dates people ask for.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from parity.dates import month_ends, quarter_ends_until
from parity.db import Database
from parity.engine.base import LEVELS, normalise_aggregate, normalise_status
from parity.rules import load_measure
from parity.rules.model import Measure

TREND_QUARTERS = 8   # quarterly trend: the latest quarter end and the 7 before it (two years)
TREND_MONTHS = 12    # monthly trend: the latest month end and the 11 before it
VERSION_TTL_SECONDS = 2.0  # how long a read of the data version is trusted before asking again
PRECOMPUTED_MEASURES = ("phsmi", "qof-mh021")
T = TypeVar("T")


def ensure_results_schema(db: Database) -> None:
    """Create ``result_cache`` if missing (idempotent)."""
    blob = "BLOB" if db.kind == "duckdb" else "BYTEA"
    db.execute(
        "CREATE TABLE IF NOT EXISTS result_cache (cache_key VARCHAR(200) NOT NULL, data_version VARCHAR(64) NOT NULL,"
        f" created_at TIMESTAMP NOT NULL, payload {blob} NOT NULL)"
    )


def data_version(db: Database) -> str:
    """Fingerprint of the loaded data: changes whenever a load (replace or append) commits."""
    rows = db.execute("SELECT load_id, loaded_at FROM loads ORDER BY loaded_at, load_id")
    digest = hashlib.sha256(repr([(str(a), str(b)) for a, b in rows]).encode()).hexdigest()
    return f"{len(rows)}-{digest[:16]}"


def trend_dates(as_of: date, quarters: int = TREND_QUARTERS,
                months: int = TREND_MONTHS) -> tuple[list[date], list[date]]:
    """(quarter ends, month ends) for the trend charts, oldest first, each ending at or before ``as_of``."""
    return quarter_ends_until(as_of, quarters), month_ends(as_of, months)


@dataclass
class RefreshSummary:
    """What ``ResultStore.refresh`` did, for the CLI and logs (counts only, never patient data)."""

    data_version: str
    measures: list[str]
    dates: int
    seconds: float
    stale_deleted: int = 0
    computed: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"precomputed {len(self.measures)} measures × {self.dates} reporting dates in {self.seconds:.1f} s "
                f"(data version {self.data_version})")


class ResultStore:
    """Measures and patient status by (measure, as_of), computed once per data version.

    Thread-safe: reads of ready results take a short lock; computing takes ``db.lock`` (the
    engine's queries share the connection), and a second request for the same result waits for
    the first instead of computing it again.
    """

    def __init__(self, db: Database, *, structure: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self._structure = structure
        self._clock = clock
        self._lock = threading.RLock()
        self._memory: dict[tuple, object] = {}
        self._version: str | None = None
        self._version_read_at = -1e9
        self._engine = None
        self._measures: dict[str, Measure] = {}
        with db.lock:
            ensure_results_schema(db)

    # -- versions ---------------------------------------------------------------------------
    def version(self) -> str:
        """The current data version (re-read at most every ``VERSION_TTL_SECONDS``).

        Lock order (one order everywhere, issue 12 finding 1): ``db.lock`` may be held when ``_lock``
        is taken, never the reverse. ``_lock`` guards only in-memory state and is never held across a
        database call, so the version is read from the database first and stored under ``_lock`` after.
        """
        now = self._clock()
        with self._lock:
            if self._version is not None and now - self._version_read_at <= VERSION_TTL_SECONDS:
                return self._version
        current = data_version(self.db)  # takes db.lock; _lock is not held here
        with self._lock:
            if current != self._version:
                self._memory.clear()
                self._engine = None
            self._version = current
            self._version_read_at = now
            return current

    def known_version(self) -> str | None:
        """The data version last read, without touching the database (None before the first read)."""
        with self._lock:
            return self._version

    def invalidate(self) -> None:
        """Forget everything held in memory and re-read the version on next use (after a load)."""
        with self._lock:
            self._memory.clear()
            self._version = None
            self._engine = None

    # -- public results -----------------------------------------------------------------------
    def measure(self, measure_id: str) -> Measure:
        """The measure definition (raises ``RuleError`` for an unknown id)."""
        if measure_id not in self._measures:
            self._measures[measure_id] = load_measure(measure_id)
        return self._measures[measure_id]

    @property
    def structure(self) -> str:
        """The organisation structure used for aggregates (given, or the one covering most practices)."""
        if self._structure is None:
            from parity.reports.measures import default_structure

            with self.db.lock:
                self._structure = default_structure(self.db)
        return self._structure

    def aggregates(self, measure_id: str, as_of: date) -> dict[str, pd.DataFrame]:
        """Aggregate frames at every level (``parity.engine.base`` contract) for one date."""
        measure = self.measure(measure_id)
        return self._get((measure_id, as_of, "aggregates"),
                         lambda: self._compute_aggregates(measure, [as_of])[as_of],
                         encode=_encode_levels, decode=lambda b: _decode_levels(b, measure))

    def trend(self, measure_id: str, dates: Sequence[date]) -> dict[str, pd.DataFrame]:
        """Aggregates for each date stacked (``as_of`` first column), per level; missing dates are
        computed together in one engine call."""
        measure = self.measure(measure_id)
        dates = list(dict.fromkeys(dates))
        missing = [d for d in dates if not self._has((measure_id, d, "aggregates"))]
        if missing:
            with self.db.lock:
                missing = [d for d in missing if not self._has((measure_id, d, "aggregates"))]
                if missing:
                    for d, frames in self._compute_aggregates(measure, missing).items():
                        self._put((measure_id, d, "aggregates"), frames, _encode_levels)
        out: dict[str, list[pd.DataFrame]] = {level: [] for level in LEVELS}
        for d in dates:
            for level, frame in self.aggregates(measure_id, d).items():
                block = frame.copy()
                block.insert(0, "as_of", d)
                out[level].append(block)
        return {level: (pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame())
                for level, blocks in out.items()}

    def status(self, measure_id: str, as_of: date) -> pd.DataFrame:
        """Per-patient status (``parity.engine.base`` contract) for one date."""
        measure = self.measure(measure_id)
        return self._get((measure_id, as_of, "status"), lambda: self._engine_for().patient_status(measure, as_of),
                         encode=_encode_frame, decode=lambda b: normalise_status(_decode_frame(b), measure))

    def status_by_practice(self, measure_id: str, as_of: date) -> dict[str, pd.DataFrame]:
        """``status`` split by practice code (built once; a worklist request is then a dict lookup)."""
        key = (measure_id, as_of, "status_by_practice")
        self.version()
        with self._lock:
            if key in self._memory:
                return self._memory[key]  # type: ignore[return-value]
        frame = self.status(measure_id, as_of)
        split = {str(code): part.reset_index(drop=True) for code, part in frame.groupby("practice_code", sort=False)}
        with self._lock:
            self._memory[key] = split
        return split

    def practice_worklist(self, measure_id: str, as_of: date, practice_code: str) -> pd.DataFrame:
        """The whole worklist of one practice (``parity.reports.worklist.worklist``), built once per data
        version; shared by the web worklist, recall and the ranked care worklists."""

        def build() -> pd.DataFrame:
            status = self.status_by_practice(measure_id, as_of).get(practice_code)
            if status is None:
                status = self.status(measure_id, as_of).iloc[0:0]
            return self.worklist_of(status, measure_id, as_of)

        return self.derived(("worklist", measure_id, as_of, practice_code), build)

    def worklist_of(self, status: pd.DataFrame, measure_id: str, as_of: date) -> pd.DataFrame:
        """``worklist`` for the patients in ``status``, joined only to their own demographics rows."""
        from parity.reports.worklist import worklist

        people = self.patients()
        people = people.loc[people.index.intersection(status["nhs_number"].astype(str))].reset_index(drop=True)
        return worklist(status, people, self.measure(measure_id), as_of)

    def patients(self) -> pd.DataFrame:
        """Demographics of every patient (for worklists): nhs_number, date_of_birth, sex, ethnicity,
        imd_decile, indexed by NHS number (so a practice's patients are one ``reindex`` away)."""
        key = ("patients",)
        self.version()
        with self._lock:
            if key in self._memory:
                return self._memory[key]  # type: ignore[return-value]
        with self.db.lock:
            frame = self.db.ibis.table("patients").select(
                "nhs_number", "date_of_birth", "sex", "ethnicity", "imd_decile").to_pandas()
        frame.index = pd.Index(frame["nhs_number"].astype(str), name=None)
        with self._lock:
            self._memory[key] = frame
        return frame

    def derived(self, key: tuple, build: Callable[[], T]) -> T:
        """A value derived from results (an index, a rendered fragment), kept until the data changes."""
        full = ("derived", *key)
        self.version()
        with self._lock:
            if full in self._memory:
                return self._memory[full]  # type: ignore[return-value]
        value = build()
        with self._lock:
            self._memory[full] = value
        return value

    # -- refresh ------------------------------------------------------------------------------
    def refresh(self, as_of: date, measures: Iterable[str] = PRECOMPUTED_MEASURES, *,
                quarters: int = TREND_QUARTERS, months: int = TREND_MONTHS, status: bool = True) -> RefreshSummary:
        """Compute and store the default results for the current data; delete older versions.

        Runs after each load: the quarterly and monthly trend dates up to ``as_of`` for every
        measure in ``measures``, and patient status on ``as_of`` (for worklists).
        """
        started = time.perf_counter()
        self.invalidate()
        version = self.version()
        q, m = trend_dates(as_of, quarters, months)
        dates = sorted({*q, *m, as_of})
        ids = list(measures)
        computed: list[str] = []
        for measure_id in ids:
            self.trend(measure_id, dates)
            if status:
                self.status(measure_id, as_of)
            computed.append(measure_id)
        with self.db.lock:
            stale = self.db.execute("SELECT COUNT(*) FROM result_cache WHERE data_version <> ?", [version])[0][0]
            self.db.execute("DELETE FROM result_cache WHERE data_version <> ?", [version])
        return RefreshSummary(version, ids, len(dates), time.perf_counter() - started, int(stale), computed)

    # -- internals ------------------------------------------------------------------------------
    def _engine_for(self):  # noqa: ANN202 - IbisEngine, imported lazily (heavy)
        from parity.engine.ibis_engine import IbisEngine

        if self._engine is None:
            self._engine = IbisEngine(self.db)
        return self._engine

    def _compute_aggregates(self, measure: Measure, dates: list[date]) -> dict[date, dict[str, pd.DataFrame]]:
        with self.db.lock:
            stacked = self._engine_for().trend_all(measure, dates, self.structure)
        out: dict[date, dict[str, pd.DataFrame]] = {d: {} for d in dates}
        for level, frame in stacked.items():
            for d in dates:
                part = frame[frame["as_of"] == d].drop(columns="as_of")
                out[d][level] = normalise_aggregate(part, measure)
        return out

    def _key(self, key: tuple) -> str:
        return "|".join(str(k) for k in key) + f"|{self.structure}"

    def _has(self, key: tuple) -> bool:
        version = self.version()
        with self._lock:
            if key in self._memory:
                return True
        rows = self.db.execute("SELECT COUNT(*) FROM result_cache WHERE cache_key = ? AND data_version = ?",
                               [self._key(key), version])
        return bool(rows[0][0])

    def _get(self, key: tuple, compute: Callable[[], object], *, encode: Callable[[object], bytes],
             decode: Callable[[bytes], object]) -> object:
        version = self.version()
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        with self.db.lock:
            with self._lock:
                if key in self._memory:
                    return self._memory[key]
            rows = self.db.execute("SELECT payload FROM result_cache WHERE cache_key = ? AND data_version = ?",
                                   [self._key(key), version])
            if rows:
                value = decode(bytes(rows[0][0]))
                with self._lock:
                    self._memory[key] = value
                return value
            value = compute()
            self._put(key, value, encode)
            return value

    def _put(self, key: tuple, value: object, encode: Callable[[object], bytes]) -> None:
        version = self.version()
        with self.db.lock:
            with self.db.transaction():
                self.db.execute("DELETE FROM result_cache WHERE cache_key = ? AND data_version = ?",
                                [self._key(key), version])
                self.db.execute("INSERT INTO result_cache VALUES (?, ?, ?, ?)",
                                [self._key(key), version, datetime.now(UTC).replace(tzinfo=None), encode(value)])
        with self._lock:
            self._memory[key] = value


def _encode_frame(frame: object) -> bytes:
    assert isinstance(frame, pd.DataFrame)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue()


def _decode_frame(payload: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(payload)).to_pandas()


def _encode_levels(levels: object) -> bytes:
    assert isinstance(levels, dict)
    return _encode_frame(pd.concat(levels.values(), ignore_index=True))


def _decode_levels(payload: bytes, measure: Measure) -> dict[str, pd.DataFrame]:
    frame = _decode_frame(payload)
    return {level: normalise_aggregate(frame[frame["level"] == level], measure) for level in LEVELS}
