"""The Ibis engine: runs measures inside DuckDB, PostgreSQL or Spark with one set of Ibis expressions.

The engine receives an Ibis connection and its dialect (``parity.db.dialect``); what differs between
backends (planner settings, how an intermediate table is kept, whether to watch for new data) is the
dialect's, never a branch here.

How a run works (Parity rules v1, shared/docs/product.md "Counting rules"):

1. The measure's clusters are resolved to codes and compiled into *features*, one per distinct
   code set (``ibis_plan``). The events with any of those codes are cut once into a temporary
   table with one row per patient and day and a bit mask of the features recorded that day
   (several checks are usually done on the same day), plus, where a rule needs a recorded value,
   a table of values per patient, feature and day.
2. For a reporting date, one grouped aggregate gives every patient the latest date on or before
   ``as_of`` of each feature (``max(date) FILTER (WHERE mask & bit <> 0)``); a second, smaller
   one gives the value recorded on a latest date where needed. Windows are comparisons of those
   dates with window starts computed in Python (``Window.start``) and bound as literals: no SQL
   date arithmetic, so every backend counts the same days as the reference engine.
3. Registration, death, the register, the lower-risk lipid window, the personalised care
   adjustment and each check's status are column expressions over that one row per patient,
   built in layers so that no expression is repeated in the SQL.
4. Aggregates count per registered practice in the database, then roll the (few thousand)
   practice rows up to each level with ``parity.engine.levels``, exactly as the reference engine
   groups: ``UNMAPPED`` for a practice missing from the structure, names and parents from the
   organisation files and the ``practices`` table.

The temporary tables and the per-practice counts of each date are kept by the engine for later
calls (see ``IbisEngine``), so a trend, a report at several levels or a web server pays for the
cut once.

Results follow the output contract in ``parity.engine.base`` and must equal the reference
engine's (``parity.engine.reference``) on the same data.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis import _

from parity.db.dialect import Dialect, check_table_name
from parity.engine import bitwise
from parity.engine.base import LEVELS, aggregate_columns, normalise_status
from parity.engine.ibis_exprs import bit_or, count, temp_name
from parity.engine.ibis_plan import BITS, CodesFor, FeaturePlan, build_plan
from parity.engine.ibis_status import bnf_starts, status_columns
from parity.engine.rollup import Hierarchy
from parity.rules.model import Measure, Window

# Tables whose row counts are checked on every call: a change (a load, an append) empties the
# engine's caches. ``loads`` gets a row for every load, so a replacement extract of the same size
# is seen too.
_WATCHED = ("events", "medications", "registrations", "patients", "loads")

# Reporting dates counted together by the per-patient status query: one date is fastest alone, and
# memory grows with the dates (measured at England scale, issue 16).
DATES_PER_QUERY = 4

# Kept feature tables: ``<prefix><data stamp>_<key digest>`` (``IbisEngine._cached``).
FEATURE_PREFIX = "_parity_feature_"

# Temporary tables of engines that were garbage collected, per backend, dropped by the next
# engine call on that backend (never from the garbage collector itself, which may run mid-query).
_ORPHANS: dict[int, list[str]] = {}


def _engine_call(method: Callable) -> Callable:
    """A public engine call: planner settings (``_session``), then the cache check (``_sync``)."""

    @functools.wraps(method)
    def call(self: IbisEngine, *args: Any, **kwargs: Any) -> Any:
        with self._session():
            if self._depth == 1:
                self._sync()
            return method(self, *args, **kwargs)

    return call


class IbisEngine:
    """Runs measures on the Ibis connection ``con`` with its ``dialect`` (DuckDB, PostgreSQL or
    Spark). ``IbisEngine(db)`` with an application ``Database`` uses its connection and dialect.

    The engine keeps, per measure, temporary tables of the relevant events and the counts per
    practice of each reporting date it has aggregated. Both are dropped when the row count of
    events, medications, registrations, patients or loads changes (checked on every call); after
    any other change to the data call ``clear_cache``, or use a new engine. (A dialect that
    reads one snapshot, Spark's, is not watched.)
    """

    name = "ibis"

    def __init__(self, con: Any, dialect: Dialect | None = None, *, codes_for: CodesFor | None = None,
                 keep: Callable[[], contextlib.AbstractContextManager[Any]] | None = None) -> None:
        if dialect is None:  # an application Database: only its Ibis connection and dialect are used
            con, dialect = con.ibis, con.dialect
        self.con = con
        self.dialect = dialect
        self._codes_for = codes_for
        self._plans: dict[Measure, FeaturePlan] = {}
        self._tables: dict[tuple, str] = {}
        # Feature tables kept in the database (``FEATURE_PREFIX``), by key: read by every engine whose
        # data stamp matches; made only by an engine given ``keep`` (the precompute after a load).
        self.keep = keep
        self._kept: dict[tuple, str] = {}
        self._kept_names: set[str] | None = None
        self._stamp = ""
        self._version: tuple[int, ...] | None = None
        self._counts: dict[tuple[Measure, date], pd.DataFrame] = {}
        self._hierarchies: dict[str, Hierarchy] = {}
        self._depth = 0
        orphans = _ORPHANS.setdefault(id(con), [])
        weakref.finalize(self, _forget, orphans, self._tables)

    def __repr__(self) -> str:
        return f"IbisEngine(kind={self.dialect.name!r})"

    # -- public API --------------------------------------------------------------------------
    @_engine_call
    def patient_status(self, measure: Measure, as_of: date) -> pd.DataFrame:
        """Per-patient status on ``as_of`` (``parity.engine.base`` contract)."""
        plan = self._plan(measure)
        cal = self._calendar(plan, [as_of])
        df = self._frame(self._status(measure, plan, cal, self._latest(plan, cal), values=True).drop("as_of"))
        return normalise_status(df, measure)

    def aggregate(self, measure: Measure, as_of: date, level: str, structure: str) -> pd.DataFrame:
        """Counts per organisation at ``level`` of organisation ``structure``."""
        return self.aggregate_all(measure, as_of, structure, (level,))[level]

    @_engine_call
    def aggregate_all(
        self, measure: Measure, as_of: date, structure: str, levels: Iterable[str] = LEVELS
    ) -> dict[str, pd.DataFrame]:
        """``aggregate`` at every level in ``levels``, computing patient status once."""
        levels = list(dict.fromkeys(levels))
        for level in levels:
            _check_level(level)
        counts = self._practice_counts(measure, as_of)
        hierarchy = self._hierarchy(structure)
        return {level: hierarchy.roll_up(counts, measure, level) for level in levels}

    @_engine_call
    def keep_features(self, measure: Measure) -> None:
        """Build (and, with ``keep``, keep) every feature table ``measure``'s counts and patient
        status read, without computing a date: what the precompute leaves for later processes."""
        plan = self._plan(measure)
        self._dates(plan)
        for valued in {tuple(sorted(plan.valued)), tuple(sorted(plan.valued | set(plan.done.values())))}:
            if valued:
                self._values(plan, valued)
        if plan.med_prefixes:
            self._medications(plan)

    @_engine_call
    def practice_counts(self, measure: Measure, as_of: date) -> pd.DataFrame:
        """The aggregate's counts per registered practice (``practice_code`` then the count columns):
        every level is a roll-up of these (``roll_up``)."""
        return self._practice_counts(measure, as_of).copy()

    @_engine_call
    def trend(
        self, measure: Measure, as_of_dates: Sequence[date], level: str, structure: str
    ) -> pd.DataFrame:
        """``aggregate`` for each date, stacked in the order given, with ``as_of`` as the first
        column (the reference engine's layout)."""
        _check_level(level)
        dates = list(as_of_dates)
        if not dates:
            cols = ["as_of", *aggregate_columns(measure)]
            return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
        return self._stacked(measure, dates, structure, [level])[level]

    @_engine_call
    def trend_all(
        self, measure: Measure, as_of_dates: Sequence[date], structure: str, levels: Iterable[str] = LEVELS
    ) -> dict[str, pd.DataFrame]:
        """``trend`` at every level in ``levels``, computing patient status once per date."""
        levels = list(dict.fromkeys(levels))
        for level in levels:
            _check_level(level)
        return self._stacked(measure, list(as_of_dates), structure, levels)

    def _stacked(self, measure: Measure, dates: list[date], structure: str,
                 levels: list[str]) -> dict[str, pd.DataFrame]:
        """Per level, the aggregate of each date stacked in the order of ``dates`` (``as_of`` first):
        the practice counts of every date rolled up in one grouping per level."""
        cols = ["as_of", *aggregate_columns(measure)]
        if not dates:
            return {level: pd.DataFrame({c: pd.Series(dtype=object) for c in cols}) for level in levels}
        by_date = self._practice_counts_by_date(measure, dates)
        order = {d: i for i, d in enumerate(dict.fromkeys(dates))}
        stacked = pd.concat([by_date[d].assign(as_of=d) for d in order], ignore_index=True)
        hierarchy = self._hierarchy(structure)
        out: dict[str, pd.DataFrame] = {}
        for level in levels:
            frame = hierarchy.roll_up(stacked, measure, level)
            # Repeated dates are given their rows again, in the order asked.
            blocks = dict(list(frame.groupby("as_of", sort=False)))
            rows = [blocks[d] for d in dates if d in blocks]
            out[level] = (pd.concat(rows, ignore_index=True)[cols] if rows
                          else pd.DataFrame({c: pd.Series(dtype=object) for c in cols}))
        return out

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        """Around one public call: the dialect's engine session (on PostgreSQL one transaction on the
        Ibis connection with planner settings for analytic queries, ``SET LOCAL``, so nothing
        outlives the call). Nested calls join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth += 1
        try:
            with self.dialect.engine_session(self.con):
                yield
        except BaseException:
            if self.dialect.engine_transaction:
                # Temporary tables created in a failed transaction are gone with it.
                self._tables.clear()
                self._counts.clear()
                self._hierarchies.clear()
                self._version = None
            raise
        finally:
            self._depth -= 1

    def _frame(self, expr: ir.Table) -> pd.DataFrame:
        """Run ``expr`` into pandas through Arrow (dates come back as ``datetime.date``). Ibis's own
        ``to_pandas`` reads a pandas option that pandas 3 deprecates, which warns."""
        return self.dialect.fetch_arrow(self.con, expr).to_pandas()

    def clear_cache(self) -> None:
        """Drop the cached relevant-event tables (they are rebuilt on the next call)."""
        for name in self._tables.values():
            self._drop(name)
        self._tables.clear()
        self._kept.clear()
        self._kept_names = None
        self._counts.clear()
        self._hierarchies.clear()
        self._version = None

    # -- caching -----------------------------------------------------------------------------
    def _sync(self) -> None:
        orphans = _ORPHANS.get(id(self.con), [])
        while orphans:
            self._drop(orphans.pop())
        if not self.dialect.watch_row_counts:
            return
        version = _data_stamp(self.con, self.dialect)
        if version != self._version:
            self.clear_cache()
            self._version = version
            self._stamp = _digest(repr(version))

    def _plan(self, measure: Measure) -> FeaturePlan:
        plan = self._plans.get(measure)
        if plan is None:
            codes_for = self._codes_for
            if codes_for is None:
                from parity import codes

                codes_for = codes.codes_for
            plan = self._plans[measure] = build_plan(measure, codes_for)
        return plan

    def _cached(self, key: tuple, build: Callable[[], ir.Table]) -> ir.Table:
        """The table of ``key``: this engine's temporary one, else a kept one for this data stamp
        (``parity load`` keeps them, so a new process starts warm), else one made now: kept when this
        engine may (``keep``), temporary otherwise."""
        name = self._tables.get(key) or self._kept.get(key)
        if name is not None:
            return self.con.table(name)
        if self.dialect.stores_tables and self._stamp:
            kept = f"{FEATURE_PREFIX}{self._stamp}_{_digest(repr(_canonical(key)))}"
            if kept in self._kept_tables():
                self._kept[key] = kept
                return self.con.table(kept)
            if self.keep is not None:
                with self.keep():
                    self.dialect.keep(self.con, kept, build())
                self._kept[key] = kept
                assert self._kept_names is not None
                self._kept_names.add(kept)
                return self.con.table(kept)
        name = temp_name()
        self.dialect.materialise(self.con, name, build())
        self._tables[key] = name
        return self.con.table(name)

    def _kept_tables(self) -> set[str]:
        """Names of the kept feature tables in the database (listed once per data stamp)."""
        if self._kept_names is None:
            self._kept_names = set(self._feature_tables())
        return self._kept_names

    def _feature_tables(self) -> list[str]:
        """Kept feature tables in the current schema."""
        return self.dialect.tables_like(self.con, FEATURE_PREFIX)

    def drop_stale_features(self) -> int:
        """Drop kept feature tables of other data stamps (after a load: ``ResultStore.refresh``);
        returns how many. A table another process still reads is left for the next load."""
        with self._session():
            self._sync()
            stale = [n for n in self._feature_tables() if not n.startswith(f"{FEATURE_PREFIX}{self._stamp}_")]
        dropped = 0
        for name in stale:
            with self.keep() if self.keep is not None else contextlib.nullcontext():
                dropped += self.dialect.release(self.con, name) is not False
        return dropped

    def _dates(self, plan: FeaturePlan) -> ir.Table:
        """The measure's events cut to one row per patient and day: ``nhs_number, date`` and
        ``m<w>``, the bits of every feature recorded that day (``plan.code_masks``).

        Several checks are usually recorded on the same day, so this is a fraction of the
        events, and finding each feature's latest date reads it once.
        """

        def build() -> ir.Table:
            masks = plan.code_masks()
            mapping = ibis.memtable(pa.table({c: pa.array(v, pa.int64()) for c, v in masks.items()}))
            ev = self.con.table("events")
            joined = ev.join(mapping, ev.snomed_code == mapping.code)
            bits = {
                f"m{w}": bit_or(_[f"m{w}"] | ibis.ifelse(_.value.notnull(), _[f"v{w}"], 0))
                for w in range(plan.mask_words)
            }
            return joined.group_by("nhs_number", "date").aggregate(**bits)

        return self._cached(("dates", *plan.key), build)

    def _values(self, plan: FeaturePlan, features: tuple[int, ...]) -> ir.Table:
        """Recorded values of ``features``: ``nhs_number, date, feature, value``, the largest
        value per patient, feature and day (events without a value left out)."""

        def build() -> ir.Table:
            codes, feats = plan.code_rows(features)
            mapping = ibis.memtable(
                pa.table({"code": pa.array(codes, pa.int64()), "feature": pa.array(feats, pa.int32())})
            )
            ev = self.con.table("events")
            ev = ev.filter(ev.value.notnull())
            return (
                ev.join(mapping, ev.snomed_code == mapping.code)
                .group_by("nhs_number", "date", "feature")
                .aggregate(value=_.value.max())
            )

        return self._cached(("values", *plan.key, features), build)

    def _medications(self, plan: FeaturePlan) -> ir.Table:
        """Prescriptions with a BNF prefix the measure reads, one row per patient and day:
        ``nhs_number, date, m`` (bit ``i``: a prescription starting with ``med_prefixes[i]``)."""
        prefixes = tuple(plan.med_prefixes)

        def build() -> ir.Table:
            med = self.con.table("medications")
            bits = [ibis.ifelse(bnf_starts(med.bnf_code, p), 1 << i, 0) for i, p in enumerate(prefixes)]
            mask = bits[0]
            for bit in bits[1:]:
                mask = mask | bit
            return (
                med.filter(ibis.or_(*[bnf_starts(med.bnf_code, p) for p in prefixes]))
                .select("nhs_number", "date", m=mask.cast("int64"))
                .group_by("nhs_number", "date")
                .aggregate(m=bit_or(_.m))
            )

        return self._cached(("medications", prefixes), build)

    def _drop(self, name: str) -> None:
        self.dialect.release(self.con, name)

    # -- per-patient status ------------------------------------------------------------------
    def _calendar(self, plan: FeaturePlan, dates: Sequence[date]) -> ir.Table:
        """One row per reporting date: ``as_of``, ``_s<m>`` (the first day of the window of ``m``
        months, for every window the plan reads), ``_early`` (the earliest windowed-feature start) and
        ``_medearly`` (the earliest medication window start). Window starts come from ``Window.start``
        in Python, so every backend counts the same days as the reference engine."""
        months = sorted(plan.window_months | plan.med_months)
        cols: dict[str, pa.Array] = {"as_of": pa.array(list(dates), pa.date32())}
        for m in months:
            cols[f"_s{m}"] = pa.array([Window(m).start(d) for d in dates], pa.date32())
        cols["_early"] = pa.array([min(Window(m).start(d) for m in plan.window_months) for d in dates], pa.date32())
        if plan.med_months:
            cols["_medearly"] = pa.array([min(Window(m).start(d) for m in plan.med_months) for d in dates],
                                         pa.date32())
        return ibis.memtable(pa.table(cols))

    def _latest(self, plan: FeaturePlan, cal: ir.Table) -> ir.Table:
        """Per patient with any relevant event and reporting date of ``cal``: ``_d<k>``, the latest
        date on or before ``as_of`` of each feature ``k`` (for ``valued`` features, of events with a
        value). All dates in one grouped aggregate, so an 8-quarter trend reads the day masks once.

        Days before the earliest window start that hold no history feature are skipped: a
        windowed feature's latest date only matters when it is inside its window.
        """
        days = self._dates(plan)
        history = [(days[f"m{w}"] & bits) != 0 for w, bits in enumerate(plan.history_masks()) if bits]
        when = cal.select("as_of", "_early")
        joined = days.join(when, [days.date <= when.as_of, ibis.or_(days.date >= when._early, *history)])
        pivot: dict[str, Any] = {}
        for k in range(len(plan.features)):
            word, bit = plan.bit(k)
            pivot[f"_d{k}"] = _.date.max(where=(_[f"m{word}"] & bit) != 0)
        return joined.group_by("nhs_number", "as_of").aggregate(**pivot)

    def _status(
        self, measure: Measure, plan: FeaturePlan, cal: ir.Table, latest: ir.Table, *, values: bool
    ) -> ir.Table:
        """One row per patient in scope and reporting date of ``cal`` with ``as_of`` and the contract's
        status columns (without the ``_value`` columns unless ``values``)."""
        con = self.con
        d_diag, d_rem = f"_d{plan.register_diagnosis}", f"_d{plan.register_remission}"
        people = latest.filter(_[d_diag].notnull() | _[d_rem].notnull())

        # Registered on as_of: latest start wins, ties go to the smallest practice code.
        regs = con.table("registrations")
        when = cal.select("as_of")
        regs = regs.join(when, [regs.start_date <= when.as_of,
                                regs.end_date.isnull() | (regs.end_date >= when.as_of)])
        # Most people have one registration on a date: one grouping answers them; only the few with
        # several go back for the latest start (then the smallest code).
        grouped = regs.group_by("nhs_number", "as_of").aggregate(
            _start=_.start_date.max(), _code=_.practice_code.min(), _n=_.count()
        )
        single = grouped.filter(_._n == 1).select("nhs_number", "as_of", practice_code=_._code)
        several = grouped.filter(_._n > 1)
        current = single.union(
            regs.join(several, ["nhs_number", "as_of", regs.start_date == several._start])
            .group_by("nhs_number", "as_of")
            .aggregate(practice_code=_.practice_code.min())
        )
        patients = con.table("patients").select("nhs_number", "ethnicity", _dod=_.date_of_death)
        base = (
            people.join(current, ["nhs_number", "as_of"])
            .join(patients, "nhs_number")
            .filter(_._dod.isnull() | (_._dod > _.as_of))
            .drop("_dod")
            .join(cal, "as_of")
        )

        # The value recorded on a latest date, where needed (largest if several that day). A
        # check's value is only reported when its date is inside the check's window.
        valued = sorted(plan.valued | (set(plan.done.values()) if values else set()))
        if valued:
            on_dates = base.select("nhs_number", "as_of", "_early", *[f"_d{k}" for k in valued])
            vals = self._values(plan, tuple(valued))
            in_reach = vals.date >= on_dates._early
            if plan.valued:
                in_reach = in_reach | vals.feature.isin(sorted(plan.valued))
            vals = (
                vals.join(on_dates, [vals.nhs_number == on_dates.nhs_number, vals.date <= on_dates.as_of, in_reach])
                .group_by("nhs_number", "as_of")
                .aggregate(
                    **{f"_v{k}": _.value.max(where=(_.feature == k) & (_.date == _[f"_d{k}"])) for k in valued}
                )
            )
            base = base.left_join(vals, ["nhs_number", "as_of"]).drop("nhs_number_right", "as_of_right")

        if plan.med_prefixes:
            # Only prescriptions inside the widest medication window can count.
            med = self._medications(plan)
            reach = cal.select("as_of", "_medearly")
            meds = (
                med.join(reach, [med.date <= reach.as_of, med.date >= reach._medearly])
                .group_by("nhs_number", "as_of")
                .aggregate(**{f"_m{i}": _.date.max(where=(_.m & (1 << i)) != 0) for i in range(len(plan.med_prefixes))})
            )
            base = base.left_join(meds, ["nhs_number", "as_of"]).drop("nhs_number_right", "as_of_right")

        return status_columns(base, measure, plan, values)

    # -- aggregates --------------------------------------------------------------------------
    def _practice_counts(self, measure: Measure, as_of: date) -> pd.DataFrame:
        """The aggregate counts per registered practice on ``as_of`` (every level is a roll-up
        of these: a practice belongs to one organisation per level). Kept for later calls, so a
        trend at another level, or a report after a chart, does not count again."""
        return self._practice_counts_by_date(measure, [as_of])[as_of]

    def _practice_counts_by_date(self, measure: Measure, dates: Sequence[date]) -> dict[date, pd.DataFrame]:
        """``_practice_counts`` for each distinct date. Several dates of a plain-window measure are
        counted in one bitwise query (``parity.engine.bitwise``); otherwise a few dates per query (each
        date's rows are its own, so a query's memory grows with its dates)."""
        wanted = sorted(set(dates))
        missing = [d for d in wanted if (measure, d) not in self._counts]
        if missing:
            plan = self._plan(measure)
            if len(missing) > 1 and bitwise.plain_windows(measure, plan):
                for start in range(0, len(missing), BITS):
                    bitwise.bitwise_counts(self, measure, plan, missing[start:start + BITS])
            else:
                for start in range(0, len(missing), DATES_PER_QUERY):
                    self._status_counts(measure, plan, missing[start:start + DATES_PER_QUERY])
        return {d: self._counts[(measure, d)] for d in wanted}

    def _status_counts(self, measure: Measure, plan: FeaturePlan, dates: list[date]) -> None:
        """``_practice_counts`` of ``dates`` from the per-patient status (``_status``), in one query."""
        cal = self._calendar(plan, dates)
        status = self._status(measure, plan, cal, self._latest(plan, cal), values=False)
        den = _.in_denominator
        counts: dict[str, Any] = {"register": count(den), "all_six": count(_.all_six)}
        for c in measure.checks:
            counts[c.id] = count(den & _[c.id])
        for c in measure.checks:
            counts[f"{c.id}_declined"] = count(den & (_[f"{c.id}_status"] == "declined"))
        counts["all_checks"] = count(_.all_checks)
        counts["excluded"] = count(_.on_register & ~_.in_denominator)
        df = self._frame(status.group_by("as_of", "practice_code").aggregate(**counts))
        days = pd.to_datetime(df["as_of"]).dt.date
        for d in dates:
            self._counts[(measure, d)] = df[days == d].drop(columns="as_of").reset_index(drop=True)

    def _hierarchy(self, structure: str) -> Hierarchy:
        """The practices of ``structure`` and their organisations at every level, read once per
        engine (the ``practices`` table changes only with a load, which clears the cache)."""
        hierarchy = self._hierarchies.get(structure)
        if hierarchy is None:
            t = self.con.table("practices")
            rows = self.dialect.fetch_arrow(self.con, t.filter(t.structure == structure)).to_pylist()
            hierarchy = self._hierarchies[structure] = Hierarchy(structure, rows)
        return hierarchy


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def _data_stamp(con: Any, dialect: Dialect) -> tuple:
    """The row counts of ``_WATCHED`` and when the newest load committed, in one statement (SQL
    databases answer counts from metadata or one fast scan): a replacement extract of the same size
    is a new stamp too."""
    counts = ", ".join(f"(SELECT count(*) FROM {check_table_name(t)})" for t in _WATCHED)
    row = dialect.fetch_rows(con, f"SELECT {counts}, (SELECT max(loaded_at) FROM loads)")[0]
    return (*(int(n) for n in row[:-1]), str(row[-1]))


def _canonical(value: Any) -> Any:
    """``value`` with every set sorted, so its ``repr`` is the same in every process."""
    if isinstance(value, frozenset | set):
        return tuple(sorted(_canonical(v) for v in value))
    if isinstance(value, tuple | list):
        return tuple(_canonical(v) for v in value)
    return value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _forget(orphans: list[str], tables: dict[tuple, str]) -> None:
    orphans.extend(tables.values())
