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
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis import _

from parity.db.dialect import Dialect
from parity.engine.base import LEVELS, aggregate_columns, normalise_aggregate, normalise_status
from parity.engine.ibis_plan import CodesFor, FeaturePlan, build_plan
from parity.engine.levels import describe, level_code, organisation_names
from parity.rules.model import CORE_CHECKS, Criterion, Measure, Window

# Tables whose row counts are checked on every call: a change (a load, an append) empties the
# engine's caches. ``loads`` gets a row for every load, so a replacement extract of the same size
# is seen too.
_WATCHED = ("events", "medications", "registrations", "patients", "loads")

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


@ibis.udf.agg.builtin
def bit_or(mask: int) -> int:  # type: ignore[empty-body]
    """SQL's ``bit_or`` aggregate, spelled the same in DuckDB, PostgreSQL and Spark SQL (Ibis 12's
    PySpark compiler has no rule for its own ``bit_or``)."""


def _day(d: date) -> ir.DateScalar:
    return ibis.literal(d, type="date")


def _flag(expr: ir.BooleanValue) -> ir.BooleanValue:
    """SQL's unknown counts as false, as a missing date does in the rules."""
    return expr.fill_null(False)


def _count(expr: Any) -> Any:
    return ibis.ifelse(expr, 1, 0).cast("int32").sum()


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

    def __init__(self, con: Any, dialect: Dialect | None = None, *, codes_for: CodesFor | None = None) -> None:
        if dialect is None:  # an application Database: only its Ibis connection and dialect are used
            con, dialect = con.ibis, con.dialect
        self.con = con
        self.dialect = dialect
        self._codes_for = codes_for
        self._plans: dict[Measure, FeaturePlan] = {}
        self._tables: dict[tuple, str] = {}
        self._version: tuple[int, ...] | None = None
        self._counts: dict[tuple[Measure, date], pd.DataFrame] = {}
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
        latest = self._latest(plan, as_of)
        df = self._frame(self._status(measure, plan, as_of, latest, values=True))
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
        practices = self._practice_rows(structure)
        return {level: roll_up(counts, measure, level, structure, practices) for level in levels}

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
        practices = self._practice_rows(structure)
        frames = {d: roll_up(counts, measure, level, structure, practices)
                  for d, counts in self._practice_counts_by_date(measure, dates).items()}
        blocks = []
        for d in dates:
            block = frames[d].copy()
            block.insert(0, "as_of", d)
            blocks.append(block)
        return pd.concat(blocks, ignore_index=True)

    @_engine_call
    def trend_all(
        self, measure: Measure, as_of_dates: Sequence[date], structure: str, levels: Iterable[str] = LEVELS
    ) -> dict[str, pd.DataFrame]:
        """``trend`` at every level in ``levels``, computing patient status once per date."""
        levels = list(dict.fromkeys(levels))
        for level in levels:
            _check_level(level)
        dates = list(as_of_dates)
        practices = self._practice_rows(structure)
        by_date = self._practice_counts_by_date(measure, dates) if dates else {}
        out: dict[str, pd.DataFrame] = {}
        for level in levels:
            blocks = []
            for d in dates:
                block = roll_up(by_date[d], measure, level, structure, practices)
                block.insert(0, "as_of", d)
                blocks.append(block)
            cols = ["as_of", *aggregate_columns(measure)]
            out[level] = pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame(columns=cols)
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
        self._counts.clear()
        self._version = None

    # -- caching -----------------------------------------------------------------------------
    def _sync(self) -> None:
        orphans = _ORPHANS.get(id(self.con), [])
        while orphans:
            self._drop(orphans.pop())
        if not self.dialect.watch_row_counts:
            return
        version = tuple(_row_count(self.con, t) for t in _WATCHED)
        if version != self._version:
            self.clear_cache()
            self._version = version

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
        name = self._tables.get(key)
        if name is None:
            name = _temp_name()
            self.dialect.materialise(self.con, name, build())
            self._tables[key] = name
        return self.con.table(name)

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
            bits = [ibis.ifelse(_bnf_starts(med.bnf_code, p), 1 << i, 0) for i, p in enumerate(prefixes)]
            mask = bits[0]
            for bit in bits[1:]:
                mask = mask | bit
            return (
                med.filter(ibis.or_(*[_bnf_starts(med.bnf_code, p) for p in prefixes]))
                .select("nhs_number", "date", m=mask.cast("int64"))
                .group_by("nhs_number", "date")
                .aggregate(m=bit_or(_.m))
            )

        return self._cached(("medications", prefixes), build)

    def _drop(self, name: str) -> None:
        self.dialect.release(self.con, name)

    # -- per-patient status ------------------------------------------------------------------
    def _latest(self, plan: FeaturePlan, as_of: date) -> ir.Table:
        """Per patient with any relevant event: ``_d<k>``, the latest date on or before ``as_of``
        of each feature ``k`` (for ``valued`` features, of events with a value).

        Days before the earliest window start that hold no history feature are skipped: a
        windowed feature's latest date only matters when it is inside its window.
        """
        earliest = min(Window(m).start(as_of) for m in plan.window_months)
        history = [
            (_[f"m{w}"] & bits) != 0 for w, bits in enumerate(plan.history_masks()) if bits
        ]
        days = self._dates(plan).filter(_.date <= _day(as_of), ibis.or_(_.date >= _day(earliest), *history))
        pivot: dict[str, Any] = {}
        for k in range(len(plan.features)):
            word, bit = plan.bit(k)
            pivot[f"_d{k}"] = _.date.max(where=(_[f"m{word}"] & bit) != 0)
        return days.group_by("nhs_number").aggregate(**pivot)

    def _status(
        self, measure: Measure, plan: FeaturePlan, as_of: date, latest: ir.Table, *, values: bool
    ) -> ir.Table:
        """One row per patient in scope on ``as_of`` with the contract's status columns
        (without the ``_value`` columns unless ``values``)."""
        con = self.con
        day = _day(as_of)
        d_diag, d_rem = f"_d{plan.register_diagnosis}", f"_d{plan.register_remission}"
        people = latest.filter(_[d_diag].notnull() | _[d_rem].notnull())

        # Registered on as_of: latest start wins, ties go to the smallest practice code.
        regs = con.table("registrations").filter(
            _.start_date <= day, _.end_date.isnull() | (_.end_date >= day)
        )
        starts = regs.group_by("nhs_number").aggregate(_start=_.start_date.max())
        current = (
            regs.join(starts, [regs.nhs_number == starts.nhs_number, regs.start_date == starts._start])
            .group_by("nhs_number")
            .aggregate(practice_code=_.practice_code.min())
        )
        alive = (
            con.table("patients")
            .filter(_.date_of_death.isnull() | (_.date_of_death > day))
            .select("nhs_number", "ethnicity")
        )
        base = people.join(current, "nhs_number").join(alive, "nhs_number")

        # The value recorded on a latest date, where needed (largest if several that day). A
        # check's value is only reported when its date is inside the check's window.
        valued = sorted(plan.valued | (set(plan.done.values()) if values else set()))
        if valued:
            on_dates = base.select("nhs_number", *[f"_d{k}" for k in valued])
            earliest = min(Window(m).start(as_of) for m in plan.window_months)
            in_reach = _.date >= _day(earliest)
            if plan.valued:
                in_reach = in_reach | _.feature.isin(sorted(plan.valued))
            vals = (
                self._values(plan, tuple(valued))
                .filter(_.date <= day, in_reach)
                .join(on_dates, "nhs_number")
                .group_by("nhs_number")
                .aggregate(
                    **{f"_v{k}": _.value.max(where=(_.feature == k) & (_.date == _[f"_d{k}"])) for k in valued}
                )
            )
            base = base.left_join(vals, "nhs_number").drop("nhs_number_right")

        if plan.med_prefixes:
            # Only prescriptions inside the widest medication window can count.
            earliest = min(Window(m).start(as_of) for m in plan.med_months)
            meds = (
                self._medications(plan)
                .filter(_.date <= day, _.date >= _day(earliest))
                .group_by("nhs_number")
                .aggregate(**{f"_m{i}": _.date.max(where=(_.m & (1 << i)) != 0) for i in range(len(plan.med_prefixes))})
            )
            base = base.left_join(meds, "nhs_number").drop("nhs_number_right")

        return self._status_columns(base, measure, plan, as_of, values)

    def _status_columns(
        self, t: ir.Table, measure: Measure, plan: FeaturePlan, as_of: date, values: bool
    ) -> ir.Table:
        """The rules as column expressions, in layers (each layer names what the next reuses)."""
        checks = list(enumerate(measure.checks))
        core = [i for i, c in checks if c.id in CORE_CHECKS]

        # Layer 1: each check's window start (the lower-risk window depends on the patient).
        starts: dict[str, Any] = {}
        for i, check in checks:
            start = _day(check.window.start(as_of))
            if check.lower_risk is not None:
                lower = _day(Window(check.lower_risk.months).start(as_of))
                crits = [
                    _criterion(t, crit, plan.criteria[(check.id, j)], as_of)
                    for j, crit in enumerate(check.lower_risk.higher_risk_if)
                ]
                start = ibis.ifelse(ibis.or_(*crits), start, lower) if crits else lower
            starts[f"_start{i}"] = start
        t = t.mutate(**starts)

        # Layer 2: done / declined per check, the register, the PCA exception code.
        def since(k: int, start: Any) -> ir.BooleanValue:
            return _flag(t[f"_d{k}"].notnull() & (t[f"_d{k}"] >= start))

        flags: dict[str, Any] = {}
        for i, check in checks:
            flags[f"_done{i}"] = since(plan.done[check.id], t[f"_start{i}"])
            # A decline counts only inside the check's own 12 months, never the longer lower-risk
            # lipid window (product.md "Declined / unsuitable"; issue 11: an older decline must not
            # remove a patient through the personalised care adjustment).
            flags[f"_decl{i}"] = since(plan.declined[check.id], _day(check.window.start(as_of)))
        d_diag, d_rem = t[f"_d{plan.register_diagnosis}"], t[f"_d{plan.register_remission}"]
        flags["_onreg"] = _flag(d_diag.notnull() & (d_rem.isnull() | (d_diag >= d_rem)))
        if measure.pca is not None and plan.pca is not None:
            flags["_pcacode"] = since(plan.pca, _day(measure.pca.window.start(as_of)))
        t = t.mutate(**flags)

        # Layer 3: the denominator.
        all_core = ibis.and_(*[t[f"_done{i}"] for i in core])
        if measure.pca is not None:
            # Excluded: not all six, and an exception code or a decline for every one not done.
            every_missing_declined = ibis.and_(*[t[f"_done{i}"] | t[f"_decl{i}"] for i in core])
            excluded = t._onreg & ~all_core & (t._pcacode | every_missing_declined)
            in_den = t._onreg & ~excluded
        else:
            in_den = t._onreg
        t = t.mutate(_inden=in_den, _allcore=all_core, _all=ibis.and_(*[t[f"_done{i}"] for i, _c in checks]))

        # Layer 4: the contract's columns.
        cols: dict[str, Any] = {
            "nhs_number": t.nhs_number,
            "practice_code": t.practice_code,
            "on_register": t._onreg,
            "in_denominator": t._inden,
        }
        for i, check in checks:
            done = t[f"_done{i}"]
            k = plan.done[check.id]
            cols[check.id] = done
            cols[f"{check.id}_status"] = ibis.cases(
                (done, "done"), (t[f"_decl{i}"], "declined"), else_="missing"
            )
            cols[f"{check.id}_date"] = ibis.ifelse(done, t[f"_d{k}"], ibis.null("date"))
            if values:
                cols[f"{check.id}_value"] = ibis.ifelse(done, t[f"_v{k}"], ibis.null("float64"))
        cols["checks_done"] = sum((t[f"_done{i}"].cast("int32") for i in core), ibis.literal(0, "int32"))
        cols["all_six"] = t._inden & t._allcore
        cols["all_checks"] = t._inden & t._all
        return t.select(**cols)

    # -- aggregates --------------------------------------------------------------------------
    def _practice_counts(self, measure: Measure, as_of: date) -> pd.DataFrame:
        """The aggregate counts per registered practice on ``as_of`` (every level is a roll-up
        of these: a practice belongs to one organisation per level). Kept for later calls, so a
        trend at another level, or a report after a chart, does not count again."""
        cached = self._counts.get((measure, as_of))
        if cached is not None:
            return cached
        plan = self._plan(measure)
        status = self._status(measure, plan, as_of, self._latest(plan, as_of), values=False)
        den = _.in_denominator
        counts: dict[str, Any] = {"register": _count(den), "all_six": _count(_.all_six)}
        for c in measure.checks:
            counts[c.id] = _count(den & _[c.id])
        for c in measure.checks:
            counts[f"{c.id}_declined"] = _count(den & (_[f"{c.id}_status"] == "declined"))
        counts["all_checks"] = _count(_.all_checks)
        counts["excluded"] = _count(_.on_register & ~_.in_denominator)
        df = self._counts[(measure, as_of)] = self._frame(status.group_by("practice_code").aggregate(**counts))
        return df

    def _practice_counts_by_date(self, measure: Measure, dates: Sequence[date]) -> dict[date, pd.DataFrame]:
        """``_practice_counts`` for each distinct date."""
        return {d: self._practice_counts(measure, d) for d in sorted(set(dates))}

    def _practice_rows(self, structure: str) -> list[dict[str, Any]]:
        """The ``practices`` rows of ``structure``, in table order."""
        t = self.con.table("practices")
        df = self._frame(t.filter(t.structure == structure))
        return [{k: (None if pd.isna(v) else v) for k, v in rec.items()} for rec in df.to_dict("records")]


def roll_up(
    counts: pd.DataFrame, measure: Measure, level: str, structure: str, practices: list[dict[str, Any]]
) -> pd.DataFrame:
    """One level's aggregate from per-practice counts: each practice's organisation, name and
    parent come from ``parity.engine.levels`` exactly as in the reference engine (a practice not
    in ``structure`` counts under ``UNMAPPED``)."""
    lookup = {p["practice_code"]: p for p in practices}
    keys = [level_code(lookup.get(pc), level) for pc in counts["practice_code"]]
    value_cols = [c for c in aggregate_columns(measure) if c not in _LABELS]
    df = counts[value_cols].astype("int64")
    df.insert(0, "org_code", keys)
    df = df.groupby("org_code", dropna=False, sort=False).sum().reset_index()
    df["org_code"] = [None if pd.isna(v) else v for v in df["org_code"]]
    names = organisation_names(structure, level, practices) if level != "england" else {}
    described = [describe(code, level, structure, names) for code in df["org_code"]]
    df["org_name"] = [name for name, _parent in described]
    df["parent_code"] = [parent for _name, parent in described]
    df["level"] = level
    df["percent"] = None
    return normalise_aggregate(df, measure)


def _criterion(t: ir.Table, crit: Criterion, feats: dict[str, int], as_of: date) -> ir.BooleanValue:
    """Whether one higher-risk criterion holds (kinds: ``parity.rules.model.Criterion``)."""

    def d(role: str) -> ir.DateColumn:
        return t[f"_d{feats[role]}"]

    if crit.kind == "ever":
        return _flag(d("clusters").notnull())
    if crit.kind == "unresolved":
        return _flag(d("clusters").notnull() & (d("resolved").isnull() | (d("clusters") >= d("resolved"))))
    if crit.kind == "latest_is":
        return _flag(d("hit").notnull() & (d("hit") == d("among")))
    if crit.kind == "medication":
        last = t[f"_m{feats['prefix']}"]
        return _flag(last.notnull() & (last >= _day(Window(crit.months).start(as_of))))
    if crit.kind == "value_at_least":
        value = t[f"_v{feats['clusters']}"]
        threshold: Any = ibis.literal(crit.threshold, type="float64")
        if crit.threshold_by_ethnicity:
            by_letter = [
                (t.ethnicity == letter, ibis.literal(v, type="float64")) for letter, v in crit.threshold_by_ethnicity
            ]
            threshold = ibis.cases(*by_letter, else_=threshold)
        return _flag(value.notnull() & (value >= threshold))
    raise ValueError(f"unknown criterion kind {crit.kind!r}")


def _bnf_starts(column: Any, prefix: str) -> Any:
    # An empty prefix matches every prescription, including one without a BNF code (as the
    # reference engine reads ``(bnf_code or "").startswith("")``).
    if not prefix:
        return ibis.literal(True)
    return _flag(column.startswith(prefix))


_LABELS = ("org_code", "org_name", "level", "parent_code", "percent")




def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def _row_count(con: Any, table: str) -> int:
    """Rows in ``table`` (SQL databases answer from metadata or one fast scan)."""
    return int(con.table(table).count().to_pyarrow().as_py())


def _temp_name() -> str:
    return f"_parity_ibis_{uuid.uuid4().hex[:12]}"


def _forget(orphans: list[str], tables: dict[tuple, str]) -> None:
    orphans.extend(tables.values())
