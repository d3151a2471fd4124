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

import contextlib
import functools
import hashlib
import io
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from parity.codes.store import Codelists
from parity.dates import month_ends, quarter_ends_until
from parity.db import Database
from parity.engine.base import LEVELS, normalise_aggregate, normalise_status
from parity.errors import DatabaseError
from parity.rules import load_measure
from parity.rules.model import Measure

TREND_QUARTERS = 8   # quarterly trend: the latest quarter end and the 7 before it (two years)
TREND_MONTHS = 12    # monthly trend: the latest month end and the 11 before it
VERSION_TTL_SECONDS = 2.0  # how long a read of the data version is trusted before asking again
PRECOMPUTED_MEASURES = ("phsmi", "qof-mh021")
T = TypeVar("T")


@dataclass(frozen=True)
class Choice:
    """A request's choice of organisation structure and codelist release (None: the default)."""

    structure: str | None = None
    codelists: str | None = None


# The choice of the request being served (set by the web app for each request from its ``structure`` and
# ``codelists`` query parameters; the default everywhere else), so every view of one request reads the same
# structure and release without threading two more arguments through every page function.
_CHOICE: ContextVar[Choice | None] = ContextVar("parity_results_choice", default=None)
_DEFAULT_CHOICE = Choice()


def set_choice(choice: Choice) -> Token[Choice | None]:
    """Make ``choice`` the current one (returns a token for ``reset_choice``)."""
    return _CHOICE.set(choice)


def reset_choice(token: Token[Choice | None]) -> None:
    _CHOICE.reset(token)


def current_choice() -> Choice:
    """The current request's choice (the default outside a request)."""
    return _CHOICE.get() or _DEFAULT_CHOICE


def ensure_results_schema(db: Database) -> None:
    """Create ``result_cache`` if missing (idempotent)."""
    blob = db.dialect.blob_type
    db.execute(
        "CREATE TABLE IF NOT EXISTS result_cache (cache_key VARCHAR(200) NOT NULL, data_version VARCHAR(64) NOT NULL,"
        f" created_at TIMESTAMP NOT NULL, payload {blob} NOT NULL)"
    )


# DuckDB's memory for a refresh (issue 16 target 2: ``parity load`` with its precompute within 2 GB);
# beyond it DuckDB spills to disk.
REFRESH_MEMORY = "700MB"


@contextlib.contextmanager
def writing(db: Database) -> Iterator[None]:
    """Hold ``db`` for writing for a block of engine statements (a shared DuckDB file is attached
    read-only between writes, ``parity.db.shared``; other databases need nothing)."""
    if db.shared is None:
        yield
        return
    with db.lock, db.shared.writing():
        yield


def data_version(db: Database) -> str:
    """Fingerprint of the loaded data and codelists: changes whenever a load (replace or append) commits,
    a codelist release is imported or the default release is chosen (``parity codes``), so cached
    results are never served for other data or other codelists."""
    rows = db.execute("SELECT load_id, loaded_at FROM loads ORDER BY loaded_at, load_id")
    _ensure_codelist_tables(db)
    lists = db.execute("SELECT release, sha256 FROM codelist_files ORDER BY release, sha256")
    chosen = db.execute("SELECT chosen_at, release FROM codelist_choice ORDER BY chosen_at DESC LIMIT 1")
    state = repr(([(str(a), str(b)) for a, b in rows], [tuple(map(str, r)) for r in lists],
                  [tuple(map(str, r)) for r in chosen]))
    digest = hashlib.sha256(state.encode()).hexdigest()
    return f"{len(rows)}-{digest[:16]}"


_CODELIST_TABLES_READY: weakref.WeakSet[Database] = weakref.WeakSet()


def _ensure_codelist_tables(db: Database) -> None:
    """The codelist tables exist in a database made by an older Parity too; checked once per connection,
    not on every data-version read (every few seconds)."""
    if db not in _CODELIST_TABLES_READY:
        from parity.codes.store import ensure_codelist_schema

        ensure_codelist_schema(db)
        _CODELIST_TABLES_READY.add(db)


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

    def __init__(self, db: Database, *, structure: str | None = None, codelists: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self._structure = structure
        self._codelists_name = codelists
        self._lists: dict[str, Codelists] = {}
        self._engines: dict[str, object] = {}
        self._clock = clock
        self._lock = threading.RLock()
        self._memory: dict[tuple, object] = {}
        self._version: str | None = None
        self._version_read_at = -1e9
        self._measures: dict[str, Measure] = {}
        self._keeping = False  # inside ``refresh``: engines keep their feature tables
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
                self._engines.clear()
                self._lists.clear()
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
            self._engines.clear()
            self._lists.clear()

    # -- public results -----------------------------------------------------------------------
    def measure(self, measure_id: str) -> Measure:
        """The measure definition (raises ``RuleError`` for an unknown id)."""
        if measure_id not in self._measures:
            self._measures[measure_id] = load_measure(measure_id)
        return self._measures[measure_id]

    def structure_for(self, as_of: date, structure: str | None = None) -> str:
        """The organisation structure for figures on ``as_of``: ``structure`` if given, else the server's
        configured one (``PARITY_STRUCTURE``), else the one in force on ``as_of`` (issue 11)."""
        from parity.reports.measures import structure_for

        return structure_for(as_of, structure or current_choice().structure or self._structure)

    def codelists(self, name: str | None = None) -> Codelists:
        """The codelists a figure uses: release ``name``, else the server's configured one, else this
        database's default (``parity codes use``); read once per data version."""
        self.version()
        wanted = name or current_choice().codelists or self._codelists_name or ""
        with self._lock:
            if wanted in self._lists:
                return self._lists[wanted]
        from parity.codes.store import resolve_codelists

        lists = resolve_codelists(self.db, wanted or None)
        with self._lock:
            self._lists[wanted] = lists
        return lists

    def england_name(self, structure: str) -> str:
        """The top row's name: "England" only when the data covers every region (issue 11)."""
        from parity.reports.measures import england_name

        def build() -> str:
            with self.db.lock:
                return england_name(self.db, structure)

        return self.derived(("england_name", structure), build)

    def aggregates(self, measure_id: str, as_of: date, *, structure: str | None = None,
                   codelists: str | None = None) -> dict[str, pd.DataFrame]:
        """Aggregate frames at every level (``parity.engine.base`` contract) for one date, in ``structure``
        (default: in force on ``as_of``) with ``codelists`` (default: this database's release)."""
        measure = self.measure(measure_id)
        st = self.structure_for(as_of, structure)
        lists = self.codelists(codelists)
        return self._get((measure_id, as_of, "aggregates", st, lists.key),
                         lambda: self._compute_aggregates(measure, [as_of], st, lists)[as_of],
                         encode=_encode_levels, decode=lambda b: _decode_levels(b, measure))

    def trend(self, measure_id: str, dates: Sequence[date], *, structure: str | None = None,
              codelists: str | None = None) -> dict[str, pd.DataFrame]:
        """Aggregates for each date stacked (``as_of`` first column), per level; missing dates are
        computed together in one engine call. One structure for every date (default: the one in
        force on the latest date), so a trend line follows the same organisations throughout."""
        measure = self.measure(measure_id)
        dates = list(dict.fromkeys(dates))
        if not dates:
            return {level: pd.DataFrame() for level in LEVELS}
        st = self.structure_for(max(dates), structure)
        lists = self.codelists(codelists)
        missing = [d for d in dates if not self._has((measure_id, d, "aggregates", st, lists.key))]
        if missing:
            with self.db.lock:
                missing = [d for d in missing if not self._has((measure_id, d, "aggregates", st, lists.key))]
                if missing:
                    for d, frames in self._compute_aggregates(measure, missing, st, lists).items():
                        self._put((measure_id, d, "aggregates", st, lists.key), frames, _encode_levels)
        out: dict[str, list[pd.DataFrame]] = {level: [] for level in LEVELS}
        for d in dates:
            for level, frame in self.aggregates(measure_id, d, structure=st, codelists=codelists).items():
                block = frame.copy()
                block.insert(0, "as_of", d)
                out[level].append(block)
        return {level: (pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame())
                for level, blocks in out.items()}

    def status(self, measure_id: str, as_of: date, *, codelists: str | None = None) -> pd.DataFrame:
        """Per-patient status (``parity.engine.base`` contract) for one date."""
        measure = self.measure(measure_id)
        lists = self.codelists(codelists)
        return self._get((measure_id, as_of, "status", lists.key),
                         lambda: self._engine_for(lists).patient_status(measure, as_of),
                         encode=_encode_frame, decode=lambda b: normalise_status(_decode_frame(b), measure))

    def status_by_practice(self, measure_id: str, as_of: date, *,
                           codelists: str | None = None) -> dict[str, pd.DataFrame]:
        """``status`` split by practice code (built once; a worklist request is then a dict lookup)."""
        key = (measure_id, as_of, "status_by_practice", self.codelists(codelists).key)
        self.version()
        with self._lock:
            if key in self._memory:
                return self._memory[key]  # type: ignore[return-value]
        frame = self.status(measure_id, as_of, codelists=codelists)
        split = {str(code): part.reset_index(drop=True) for code, part in frame.groupby("practice_code", sort=False)}
        with self._lock:
            self._memory[key] = split
        return split

    def practice_worklist(self, measure_id: str, as_of: date, practice_code: str, *,
                          codelists: str | None = None) -> pd.DataFrame:
        """The whole worklist of one practice (``parity.reports.worklist.worklist``), built once per data
        version; shared by the web worklist, recall and the ranked care worklists."""

        def build() -> pd.DataFrame:
            status = self.status_by_practice(measure_id, as_of, codelists=codelists).get(practice_code)
            if status is None:
                status = self.status(measure_id, as_of, codelists=codelists).iloc[0:0]
            return self.worklist_of(status, measure_id, as_of)

        key = ("worklist", measure_id, as_of, practice_code, self.codelists(codelists).key)
        return self.derived(key, build)

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
        full = ("derived", current_choice(), *key)
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
        # The engines of this refresh keep their feature tables in the database, so every later
        # process (a CLI command, another server worker) starts warm (issue 16 target 1).
        self._keeping = True
        try:
            with self.db.dialect.capped_memory(self.db, REFRESH_MEMORY):
                for measure_id in ids:
                    self.trend(measure_id, dates)
                    if status:
                        self.status(measure_id, as_of)
                    # Results read back from ``result_cache`` built nothing: make sure the tables are kept.
                    with self.db.lock:
                        engine = self._engine_for(self.codelists())
                        engine.keep_features(self.measure(measure_id))  # type: ignore[attr-defined]
                    computed.append(measure_id)
                    # Stored in ``result_cache``: not held here too (a whole region's patients per
                    # measure would add up; ``parity load`` stays within its memory, issue 16).
                    with self._lock:
                        self._memory.clear()
                for engine in list(self._engines.values()):
                    engine.drop_stale_features()  # type: ignore[attr-defined]
        finally:
            self._keeping = False
            for engine in list(self._engines.values()):
                engine.keep = None  # type: ignore[attr-defined]
        with self.db.lock:
            stale = self.db.execute("SELECT COUNT(*) FROM result_cache WHERE data_version <> ?", [version])[0][0]
            self.db.execute("DELETE FROM result_cache WHERE data_version <> ?", [version])
        return RefreshSummary(version, ids, len(dates), time.perf_counter() - started, int(stale), computed)

    # -- internals ------------------------------------------------------------------------------
    def _engine_for(self, lists: Codelists):  # noqa: ANN202 - IbisEngine, imported lazily (heavy)
        """One engine per codelist release (its feature plans are built from that release's codes)."""
        from parity.engine.ibis_engine import IbisEngine

        with self._lock:
            engine = self._engines.get(lists.key)
            if engine is None:
                engine = self._engines[lists.key] = IbisEngine(self.db.ibis, self.db.dialect, codes_for=lists.codes_for)
            if self._keeping:
                engine.keep = functools.partial(writing, self.db)
        return engine

    def _compute_aggregates(self, measure: Measure, dates: list[date], structure: str,
                            lists: Codelists) -> dict[date, dict[str, pd.DataFrame]]:
        with self.db.lock:
            stacked = self._engine_for(lists).trend_all(measure, dates, structure)
        top = self.england_name(structure)
        out: dict[date, dict[str, pd.DataFrame]] = {d: {} for d in dates}
        for level, frame in stacked.items():
            for d in dates:
                part = frame[frame["as_of"] == d].drop(columns="as_of")
                if level == "england" and len(part):
                    part = part.assign(org_name=top)
                out[d][level] = normalise_aggregate(part, measure)
        return out

    def _key(self, key: tuple) -> str:
        return "|".join(str(k) for k in key)

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
            try:
                with self.db.transaction():
                    self.db.execute("DELETE FROM result_cache WHERE cache_key = ? AND data_version = ?",
                                    [self._key(key), version])
                    self.db.execute("INSERT INTO result_cache VALUES (?, ?, ?, ?)",
                                    [self._key(key), version, datetime.now(UTC).replace(tzinfo=None), encode(value)])
            except DatabaseError:
                # A command beside a running server on a DuckDB file cannot write (parity.db.shared):
                # the result is still right, only not kept for the next process.
                if self.db.shared is None:
                    raise
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


__all__ = [
    "Choice",
    "PRECOMPUTED_MEASURES",
    "RefreshSummary",
    "ResultStore",
    "TREND_MONTHS",
    "TREND_QUARTERS",
    "VERSION_TTL_SECONDS",
    "current_choice",
    "data_version",
    "ensure_results_schema",
    "reset_choice",
    "set_choice",
    "trend_dates",
]
