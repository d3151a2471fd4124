"""Several reporting dates of a plain-window measure counted together (issue 16): bit ``i`` of each
per-person mask answers for ``dates[i]``, so an 8-quarter trend groups the day masks once per person,
not once per date. The answers equal the per-patient status query's (``IbisEngine._status``), which
tests/test_engine_kept.py holds them to on DuckDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis import _

from parity.engine.ibis_exprs import bit_or, count, day, flag, temp_name
from parity.engine.ibis_plan import FeaturePlan
from parity.rules.model import CORE_CHECKS, Measure, Window

if TYPE_CHECKING:
    from parity.engine.ibis_engine import IbisEngine


def _unstack(wide: pd.DataFrame, names: list[str], dates: list[date]) -> pd.DataFrame:
    """``practice_code`` and ``<name>__<i>`` columns -> one row per date and practice seen on it."""
    parts = []
    for i, d in enumerate(dates):
        part = pd.DataFrame({"as_of": d, "practice_code": wide["practice_code"]})
        for name in names:
            part[name] = wide[f"{name}__{i}"].astype("int64")
        parts.append(part[part["_seen"] > 0].drop(columns="_seen"))
    cols = ["as_of", "practice_code", *[n for n in names if n != "_seen"]]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def plain_windows(measure: Measure, plan: FeaturePlan) -> bool:
    """Whether ``bitwise_counts`` can count ``measure``: register and checks with plain
    windows only (no lower-risk window, personalised care adjustment, recorded value or medication)."""
    return (measure.pca is None and not plan.valued and not plan.med_prefixes
            and all(c.lower_risk is None for c in measure.checks))


def bitwise_counts(engine: IbisEngine, measure: Measure, plan: FeaturePlan, dates: list[date]) -> None:
    """``IbisEngine._practice_counts`` of up to ``BITS`` dates for a measure whose rules are plain windows
    (``plain_windows``), sharing the work between dates: bit ``i`` of each per-person mask answers a
    question for ``dates[i]``, so the day masks are grouped once per person, not once per date.

    Per person: for each check, which dates have a ``done`` (and a ``declined``) code in their
    window; for each date, the latest diagnosis and remission on or before it (over the few
    register days only); the dates they are alive. Per registration: the dates it covers. A person
    with one registration counts at its practice on those dates, in one grouping per practice with
    a sum per date and count; only people with several registrations go through the exact rule
    (latest start, then smallest code) date by date. The answers equal ``_status``'s.
    """
    n = len(dates)
    days = engine._dates(plan)

    def cover(inside: Callable[[date], Any]) -> Any:
        """A mask with bit ``i`` set where ``inside(dates[i])`` holds."""
        total: Any = ibis.literal(0, "int64")
        for i, d in enumerate(dates):
            total = total | ibis.ifelse(flag(inside(d)), ibis.literal(1 << i, "int64"),
                                        ibis.literal(0, "int64"))
        return total.cast("int64")

    def has(t: ir.Table, k: int) -> Any:
        word, bit = plan.bit(k)
        return (t[f"m{word}"] & bit) != 0

    # Each day's window bits, once per window length, and the dates it is on or before; then one
    # bit_or per check and kind, and per register code kind.
    diag, rem = plan.register_diagnosis, plan.register_remission
    windows = {f"_w{m}": cover(lambda d, m=m: (days.date >= day(Window(m).start(d))) & (days.date <= day(d)))
               for m in sorted(plan.window_months)}
    marked = days.mutate(_le=cover(lambda d: days.date <= day(d)), **windows)
    checks = list(enumerate(measure.checks))
    aggs: dict[str, Any] = {}
    for c, check in checks:
        w = marked[f"_w{check.window.months}"]
        aggs[f"_done{c}"] = bit_or(w, where=has(marked, plan.done[check.id]))
        aggs[f"_decl{c}"] = bit_or(w, where=has(marked, plan.declined[check.id]))
    aggs["_dg"] = bit_or(marked._le, where=has(marked, diag))
    aggs["_rm"] = bit_or(marked._le, where=has(marked, rem))
    found = marked.group_by("nhs_number").aggregate(**aggs).mutate(
        _dg=_._dg.fill_null(0), _rm=_._rm.fill_null(0)).filter((_._dg | _._rm) != 0)

    # Without a remission code, on the register = a diagnosis on or before the date. The few people
    # with one compare their latest diagnosis and remission on each date.
    remitted = days.join(found.filter(found._rm != 0).select("nhs_number"), "nhs_number")
    remitted = remitted.filter(has(remitted, diag) | has(remitted, rem))
    latest: dict[str, Any] = {}
    for i, d in enumerate(dates):
        before = remitted.date <= day(d)
        latest[f"_dg{i}"] = remitted.date.max(where=has(remitted, diag) & before)
        latest[f"_rm{i}"] = remitted.date.max(where=has(remitted, rem) & before)
    exact = remitted.group_by("nhs_number").aggregate(**latest)
    onreg: Any = ibis.literal(0, "int64")
    for i in range(n):
        dg, rm = exact[f"_dg{i}"], exact[f"_rm{i}"]
        bit = ibis.literal(1 << i, "int64")
        onreg = onreg | ibis.ifelse(flag(dg.notnull() & (rm.isnull() | (dg >= rm))), bit, 0).cast("int64")
    exact = exact.select("nhs_number", _exact=onreg)
    hist = found.left_join(exact, "nhs_number").drop("nhs_number_right")
    hist = hist.mutate(_onreg=ibis.ifelse(hist._rm == 0, hist._dg, hist._exact.fill_null(0)),
                       _present=hist._dg | hist._rm).drop("_exact", "_dg", "_rm")

    regs = engine.con.table("registrations")
    covers = regs.mutate(_cov=cover(lambda d: (regs.start_date <= day(d))
                                    & (regs.end_date.isnull() | (regs.end_date >= day(d)))))
    covers = covers.filter(_._cov != 0)
    per_reg = covers.group_by("nhs_number").aggregate(_n=_.count(), _code=_.practice_code.min(),
                                                      _cov=bit_or(_._cov))
    patients = engine.con.table("patients")
    alive = patients.select("nhs_number", _alive=cover(
        lambda d: patients.date_of_death.isnull() | (patients.date_of_death > day(d))))
    people = hist.join(per_reg, "nhs_number").join(alive, "nhs_number")
    mask = {f"_done{c}": people[f"_done{c}"].fill_null(0) for c, _check in checks}
    mask |= {f"_decl{c}": people[f"_decl{c}"].fill_null(0) for c, _check in checks}
    seen = people._cov & people._alive  # registered and alive on the date
    people = people.mutate(_den=people._onreg & seen, _seen=people._present & seen, **mask)

    # What each count counts, as a mask per person (bit i: counted on dates[i]).
    core = [c for c, check in checks if check.id in CORE_CHECKS]
    den = people._den
    counted: dict[str, Any] = {"register": den}
    six = den
    for c in core:
        six = six & people[f"_done{c}"]
    counted["all_six"] = six
    for c, check in checks:
        counted[check.id] = den & people[f"_done{c}"]
    for c, check in checks:
        declined = den & people[f"_decl{c}"]
        counted[f"{check.id}_declined"] = declined - (declined & people[f"_done{c}"])
    every = den
    for c, _check in checks:
        every = every & people[f"_done{c}"]
    counted["all_checks"] = every
    counted["_seen"] = people._seen
    # Kept for the two queries below (computed once, not once per query).
    name = temp_name()
    engine.dialect.materialise(engine.con, name, people.select("nhs_number", "_n", "_code", "_cov", **counted))
    try:
        _frames(engine, measure, dates, covers, engine.con.table(name), list(counted))
    finally:
        engine._drop(name)

def _frames(engine: IbisEngine, measure: Measure, dates: list[date], covers: ir.Table, masks: ir.Table,
        names: list[str]) -> None:
    """The counts of ``bitwise_counts`` from each person's masks (``names``, ``_seen`` last)."""
    n = len(dates)

    # One registration: a sum per date and count, grouped by practice.
    sums = {f"{name}__{i}": ((masks[name] >> i) & 1).sum() for name in names for i in range(n)}
    wide = engine._frame(masks.filter(masks._n == 1).group_by(practice_code=masks._code).aggregate(**sums))
    frames = [_unstack(wide, names, dates)]

    # Several registrations: the exact rule per date, for those few people only.
    cal = ibis.memtable(pa.table({"as_of": pa.array(dates, pa.date32()), "_i": pa.array(range(n), pa.int32())}))
    several = covers.join(masks.filter(masks._n > 1).select("nhs_number"), "nhs_number")
    several = several.join(cal, ((several._cov >> cal._i) & 1) == 1)
    starts = several.group_by("nhs_number", "as_of", "_i").aggregate(_start=_.start_date.max())
    exact = (
        several.join(starts, ["nhs_number", "as_of", "_i", several.start_date == starts._start])
        .group_by("nhs_number", "as_of", "_i")
        .aggregate(practice_code=_.practice_code.min())
    )
    rows = exact.join(masks.drop("_n", "_code", "_cov"), "nhs_number")
    rows = rows.filter(((rows._seen >> rows._i) & 1) == 1)
    long = {name: count(((rows[name] >> rows._i) & 1) == 1) for name in names if name != "_seen"}
    frames.append(engine._frame(rows.group_by("as_of", "practice_code").aggregate(**long)))

    value_cols = [name for name in names if name != "_seen"]
    df = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else frames[0]
    df["as_of"] = pd.to_datetime(df["as_of"]).dt.date
    df = df.groupby(["as_of", "practice_code"], sort=False, dropna=False)[value_cols].sum().reset_index()
    df["excluded"] = 0  # no personalised care adjustment (``plain_windows``)
    for d in dates:
        block = df[df["as_of"] == d].drop(columns="as_of").reset_index(drop=True)
        engine._counts[(measure, d)] = block[["practice_code", *value_cols, "excluded"]]
