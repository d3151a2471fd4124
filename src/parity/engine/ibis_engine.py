"""The Ibis engine: runs measures inside DuckDB or PostgreSQL with one set of Ibis expressions.

How a run works (Parity rules v1, shared/docs/product.md "Counting rules"):

1. The measure's clusters are resolved to codes and compiled into *features*, one per distinct
   code set (``ibis_plan``). Events with any of those codes are copied once into a temporary
   table tagged with their feature ids; the engine keeps that table for later calls and rebuilds
   it when the number of event or medication rows changes.
2. For a reporting date, one grouped aggregate gives every patient the latest date on or before
   ``as_of`` of each feature (``max(date) FILTER (WHERE feature = k)``), and a second gives the
   value recorded on that date. Windows are then comparisons of those dates with window starts
   computed in Python (``Window.start``) and bound as literals: no SQL date arithmetic, so every
   backend counts the same days as the reference engine.
3. Registration, death, the register, the lower-risk lipid window, the personalised care
   adjustment and the per-check status are column expressions over that one row per patient.
4. Aggregates group the status rows by the organisation of the registered practice in the
   ``practices`` table; practices missing from the structure count under ``UNMAPPED``.

The results follow the output contract in ``parity.engine.base`` and must equal the reference
engine's on the same data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis import _

from parity.db.connection import Database
from parity.engine.base import LEVELS, aggregate_columns, normalise_aggregate, normalise_status
from parity.engine.ibis_plan import CodesFor, FeaturePlan, build_plan
from parity.rules.model import CORE_CHECKS, Check, Criterion, Measure, Window

# level -> (code column, name column, parent code column) in the ``practices`` table.
_LEVEL_COLUMNS: dict[str, tuple[str, str, str | None]] = {
    "practice": ("practice_code", "practice_name", "pcn_code"),
    "pcn": ("pcn_code", "pcn_name", "sub_icb_code"),
    "sub_icb": ("sub_icb_code", "sub_icb_name", "icb_code"),
    "icb": ("icb_code", "icb_name", "region_code"),
    "region": ("region_code", "region_name", None),
}
ENGLAND_CODE = "ENG"
ENGLAND_NAME = "England"
UNMAPPED_CODE = "UNMAPPED"


def unmapped_name(structure: str) -> str:
    return f"Practice not in {structure} structure"


def _day(d: date) -> ir.DateScalar:
    return ibis.literal(d, type="date")


def _flag(expr: ir.BooleanValue) -> ir.BooleanValue:
    """SQL three-valued logic made two-valued: unknown counts as false."""
    return expr.fill_null(False)


class IbisEngine:
    """Runs measures on the database behind ``db`` (DuckDB or PostgreSQL).

    The engine caches, per measure code set, a temporary table of the relevant events. It assumes
    the data does not change while it is in use except by appending or deleting rows (row counts
    are checked on every call); call ``clear_cache`` after any other change.
    """

    name = "ibis"

    def __init__(self, db: Database, *, codes_for: CodesFor | None = None) -> None:
        self.db = db
        self._codes_for = codes_for
        self._plans: dict[Measure, FeaturePlan] = {}
        self._tables: dict[tuple, str] = {}
        self._version: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return f"IbisEngine(kind={self.db.kind!r})"

    # -- public API --------------------------------------------------------------------------
    def patient_status(self, measure: Measure, as_of: date) -> pd.DataFrame:
        """Per-patient status on ``as_of`` (``parity.engine.base`` contract)."""
        self._sync()
        df = self._status(measure, as_of).to_pandas()
        return normalise_status(df, measure)

    def aggregate(self, measure: Measure, as_of: date, level: str, structure: str) -> pd.DataFrame:
        """Counts per organisation at ``level`` of organisation ``structure``."""
        self._sync()
        _check_level(level)
        expr = self._aggregate(self._status(measure, as_of), measure, level, structure)
        return normalise_aggregate(expr.to_pandas(), measure)

    def aggregate_all(
        self, measure: Measure, as_of: date, structure: str, levels: Iterable[str] = LEVELS
    ) -> dict[str, pd.DataFrame]:
        """``aggregate`` at every level in ``levels``, computing patient status once."""
        self._sync()
        levels = list(levels)
        for level in levels:
            _check_level(level)
        if not levels:
            return {}
        with self._temp(self._status(measure, as_of)) as status:
            parts = [self._aggregate(status, measure, level, structure) for level in levels]
            df = ibis.union(*parts).to_pandas() if len(parts) > 1 else parts[0].to_pandas()
        return {level: normalise_aggregate(df[df["level"] == level], measure) for level in levels}

    def trend(
        self, measure: Measure, as_of_dates: Sequence[date], level: str, structure: str
    ) -> pd.DataFrame:
        """``aggregate`` for each date, stacked: an ``as_of`` column first, then the aggregate
        columns; rows sorted by ``as_of`` then ``org_code``."""
        self._sync()
        _check_level(level)
        dates = sorted(set(as_of_dates))
        cols = ["as_of", *aggregate_columns(measure)]
        if not dates:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
        parts = [
            self._aggregate(self._status(measure, d), measure, level, structure).mutate(as_of=_day(d))
            for d in dates
        ]
        df = ibis.union(*parts).to_pandas() if len(parts) > 1 else parts[0].to_pandas()
        df["as_of"] = [pd.Timestamp(v).date() for v in df["as_of"]]
        blocks = []
        for d in dates:
            block = normalise_aggregate(df[df["as_of"] == d], measure)
            block.insert(0, "as_of", d)
            blocks.append(block)
        return pd.concat(blocks, ignore_index=True)[cols]

    def clear_cache(self) -> None:
        """Drop the cached relevant-event tables (they are rebuilt on the next call)."""
        for name in self._tables.values():
            self._drop(name)
        self._tables.clear()
        self._version = None

    # -- caching -----------------------------------------------------------------------------
    def _sync(self) -> None:
        version = (self.db.count("events"), self.db.count("medications"))
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

    def _cached(self, key: tuple, build: Any) -> ir.Table:
        name = self._tables.get(key)
        if name is None:
            name = f"_parity_ibis_{uuid.uuid4().hex[:12]}"
            self.db.ibis.create_table(name, build(), temp=True)
            self._tables[key] = name
        return self.db.ibis.table(name)

    def _events(self, plan: FeaturePlan) -> ir.Table:
        """Events with a code of any feature: ``nhs_number, date, value, feature`` (one row per
        event and feature it belongs to)."""

        def build() -> ir.Table:
            codes, feats = plan.code_rows()
            mapping = ibis.memtable(
                pa.table({"code": pa.array(codes, pa.int64()), "feature": pa.array(feats, pa.int32())})
            )
            ev = self.db.ibis.table("events")
            return ev.join(mapping, ev.snomed_code == mapping.code).select(
                "nhs_number", "date", "value", "feature"
            )

        return self._cached(("events", *plan.key), build)

    def _medications(self, plan: FeaturePlan) -> ir.Table:
        """Medication rows whose BNF code starts with a prefix the measure reads."""
        prefixes = tuple(plan.med_prefixes)

        def build() -> ir.Table:
            med = self.db.ibis.table("medications")
            cond = ibis.or_(*[med.bnf_code.startswith(p) for p in prefixes])
            return med.filter(cond).select("nhs_number", "date", "bnf_code")

        return self._cached(("medications", prefixes), build)

    class _TempTable:
        def __init__(self, engine: IbisEngine, expr: ir.Table) -> None:
            self.engine = engine
            self.expr = expr
            self.name = f"_parity_ibis_{uuid.uuid4().hex[:12]}"

        def __enter__(self) -> ir.Table:
            return self.engine.db.ibis.create_table(self.name, self.expr, temp=True)

        def __exit__(self, *exc: object) -> None:
            self.engine._drop(self.name)

    def _temp(self, expr: ir.Table) -> IbisEngine._TempTable:
        return IbisEngine._TempTable(self, expr)

    def _drop(self, name: str) -> None:
        try:
            self.db.ibis.drop_table(name, force=True)
        except Exception:  # noqa: BLE001 - a temp table may already be gone with its session
            pass

    # -- per-patient status ------------------------------------------------------------------
    def _status(self, measure: Measure, as_of: date) -> ir.Table:
        """One row per patient in scope on ``as_of`` with the contract's status columns."""
        plan = self._plan(measure)
        con = self.db.ibis
        day = _day(as_of)

        # Latest date on or before as_of of every feature, per patient.
        events = self._events(plan).filter(_.date <= day)
        latest: dict[str, Any] = {}
        for k in range(len(plan.features)):
            cond = _.feature == k
            if k in plan.valued:
                cond = cond & _.value.notnull()
            latest[f"_d{k}"] = _.date.max(where=cond)
        wide = events.group_by("nhs_number").aggregate(**latest)
        d_diag, d_rem = f"_d{plan.register_diagnosis}", f"_d{plan.register_remission}"
        wide = wide.filter(_[d_diag].notnull() | _[d_rem].notnull())

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
        base = wide.join(current, "nhs_number").join(alive, "nhs_number")

        # The value recorded on each latest date that needs one (largest if several).
        valued = sorted(set(plan.done.values()) | plan.valued)
        if valued:
            on_dates = base.select("nhs_number", *[f"_d{k}" for k in valued])
            vals = (
                events.filter(_.value.notnull(), _.feature.isin(valued))
                .join(on_dates, "nhs_number")
                .group_by("nhs_number")
                .aggregate(
                    **{f"_v{k}": _.value.max(where=(_.feature == k) & (_.date == _[f"_d{k}"])) for k in valued}
                )
            )
            base = base.left_join(vals, "nhs_number").drop("nhs_number_right")

        if plan.med_prefixes:
            meds = (
                self._medications(plan)
                .filter(_.date <= day)
                .group_by("nhs_number")
                .aggregate(
                    **{
                        f"_m{i}": _.date.max(where=_.bnf_code.startswith(p))
                        for i, p in enumerate(plan.med_prefixes)
                    }
                )
            )
            base = base.left_join(meds, "nhs_number").drop("nhs_number_right")

        return self._status_columns(base, measure, plan, as_of)

    def _status_columns(self, t: ir.Table, measure: Measure, plan: FeaturePlan, as_of: date) -> ir.Table:
        def d(k: int) -> ir.DateColumn:
            return t[f"_d{k}"]

        def since(k: int, start: ir.DateValue) -> ir.BooleanValue:
            return _flag(d(k).notnull() & (d(k) >= start))

        d_diag, d_rem = d(plan.register_diagnosis), d(plan.register_remission)
        on_register = _flag(d_diag.notnull() & (d_rem.isnull() | (d_diag >= d_rem)))

        done: dict[str, ir.BooleanValue] = {}
        declined: dict[str, ir.BooleanValue] = {}
        cols: dict[str, Any] = {"nhs_number": t.nhs_number, "practice_code": t.practice_code}
        for check in measure.checks:
            start = self._window_start(t, check, plan, as_of)
            k_done, k_decl = plan.done[check.id], plan.declined[check.id]
            done[check.id] = since(k_done, start)
            declined[check.id] = since(k_decl, start)
            cols[check.id] = done[check.id]
            cols[f"{check.id}_status"] = ibis.cases(
                (done[check.id], "done"), (declined[check.id], "declined"), else_="missing"
            )
            cols[f"{check.id}_date"] = ibis.ifelse(done[check.id], d(k_done), ibis.null("date"))
            cols[f"{check.id}_value"] = ibis.ifelse(done[check.id], t[f"_v{k_done}"], ibis.null("float64"))

        core = [done[c] for c in CORE_CHECKS]
        all_core = ibis.and_(*core)
        if measure.pca is not None:
            assert plan.pca is not None
            pca_code = since(plan.pca, _day(measure.pca.window.start(as_of)))
            # Every core check not done has a declined/unsuitable code in its window.
            all_declined = ibis.and_(*[done[c] | declined[c] for c in CORE_CHECKS])
            excluded = on_register & ~all_core & (pca_code | all_declined)
            in_denominator = on_register & ~excluded
        else:
            in_denominator = on_register

        cols["on_register"] = on_register
        cols["in_denominator"] = in_denominator
        cols["checks_done"] = sum((c.cast("int32") for c in core), ibis.literal(0, type="int32"))
        cols["all_six"] = in_denominator & all_core
        cols["all_checks"] = in_denominator & ibis.and_(*done.values())
        return t.select(**cols)

    def _window_start(self, t: ir.Table, check: Check, plan: FeaturePlan, as_of: date) -> ir.DateValue:
        start = _day(check.window.start(as_of))
        if check.lower_risk is None:
            return start
        lower = _day(Window(check.lower_risk.months).start(as_of))
        criteria = [
            self._criterion(t, crit, plan.criteria[(check.id, i)], plan, as_of)
            for i, crit in enumerate(check.lower_risk.higher_risk_if)
        ]
        if not criteria:
            return lower
        return ibis.ifelse(ibis.or_(*criteria), start, lower)

    @staticmethod
    def _criterion(
        t: ir.Table, crit: Criterion, feats: dict[str, int], plan: FeaturePlan, as_of: date
    ) -> ir.BooleanValue:
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
                threshold = ibis.cases(
                    *[(t.ethnicity == letter, ibis.literal(v, type="float64"))
                      for letter, v in crit.threshold_by_ethnicity],
                    else_=threshold,
                )
            return _flag(value.notnull() & (value >= threshold))
        raise ValueError(f"unknown criterion kind {crit.kind!r}")

    # -- aggregates --------------------------------------------------------------------------
    def _aggregate(self, status: ir.Table, measure: Measure, level: str, structure: str) -> ir.Table:
        """Counts per organisation at ``level``: ``aggregate_columns`` (``percent`` left null)."""
        if level == "england":
            orgs = status.mutate(
                _org=ibis.literal(ENGLAND_CODE),
                _name=ibis.literal(ENGLAND_NAME),
                _parent=ibis.null("string"),
            )
        else:
            code_col, name_col, parent_col = _LEVEL_COLUMNS[level]
            practices = self.db.ibis.table("practices")
            practices = practices.filter(practices.structure == structure).select(
                _pc=practices.practice_code,
                _code=practices[code_col],
                _oname=practices[name_col],
                _oparent=practices[parent_col] if parent_col else ibis.literal(ENGLAND_CODE),
                _mapped=ibis.literal(True),
            )
            joined = status.left_join(practices, status.practice_code == practices._pc)
            mapped = joined._mapped.notnull()
            orgs = joined.mutate(
                _org=ibis.ifelse(mapped, joined._code, ibis.literal(UNMAPPED_CODE)),
                _name=ibis.ifelse(mapped, joined._oname, ibis.literal(unmapped_name(structure))),
                _parent=ibis.ifelse(mapped, joined._oparent, ibis.null("string")),
            )

        def count(expr: Any) -> Any:
            return ibis.ifelse(expr, 1, 0).cast("int32").sum()

        den = _.in_denominator
        counts: dict[str, Any] = {
            "org_name": _._name.min(),
            "parent_code": _._parent.min(),
            "register": count(den),
            "all_six": count(_.all_six),
        }
        for c in measure.checks:
            counts[c.id] = count(den & _[c.id])
        for c in measure.checks:
            counts[f"{c.id}_declined"] = count(den & (_[f"{c.id}_status"] == "declined"))
        counts["all_checks"] = count(_.all_checks)
        counts["excluded"] = count(_.on_register & ~_.in_denominator)
        agg = orgs.group_by(org_code=_._org).aggregate(**counts)
        agg = agg.mutate(level=ibis.literal(level), percent=ibis.null("float64"))
        return agg.select(*aggregate_columns(measure))


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
