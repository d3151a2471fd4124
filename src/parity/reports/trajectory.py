"""Targets and trajectories for the SMI physical health check programme (mission feature M7).

From a baseline (a published quarter: register and all-six count per area) to a target rate by a date:

* ``gap`` – patients needed: ``target_count = ceil(target × register)``, ``additional = max(0, target_count −
  all_six)``.
* ``trajectory_table`` – that gap for every area, spread evenly over the whole months from the baseline period end
  to the target date (``per_month``).
* ``split`` – a region's additional patients shared across its ICBs so the shares add up exactly to the regional
  total (largest-remainder rounding). The methods (``METHODS``) differ in who carries the work:

  - ``by_register`` – share ∝ register size. Every ICB finds the same number of extra patients per patient on its
    register, whatever it achieves now: simple and "fair per head", but a high performer is asked for more while
    a low performer may still end below the target rate.
  - ``to_equal_rate`` – share ∝ the ICB's own gap to the target rate (``gap`` at ICB level). Every ICB is brought
    to (about) the same rate: low performers carry more, ICBs already at or above the target carry none.
  - ``blend`` – the average of the two shares: half per head, half by gap.

* ``monthly_line`` – the straight line from the baseline all-six count to the target count, one point per month
  end; ``actuals`` – the published series of an area to plot against it.

Published all-six counts are rolling 12-month counts at each quarter end, so a trajectory of the count is a
trajectory of the rate on a (roughly) fixed register. Targets: 60% (NHS Mental Health Five Year Forward View),
75% from 2024/25 (NHS Operating Plan 2024/25) – clinical-spec.md §1.4.
"""

from __future__ import annotations

import calendar
import math
from datetime import date
from typing import Any

import pandas as pd

from parity.errors import ConfigurationError
from parity.rules.standards import STANDARDS

#: National targets for the all-six rate (clinical-spec.md §1.4).
TARGETS: tuple[float, ...] = tuple(s / 100 for s in STANDARDS)  # the national standards as fractions

#: method -> one line saying how it shares a regional total across ICBs.
METHODS: dict[str, str] = {
    "by_register": "share in proportion to register size: the same extra patients per patient on the register "
                   "everywhere",
    "to_equal_rate": "share in proportion to each ICB's own gap to the target rate: low performers carry more, "
                     "ICBs at or above the target carry none",
    "blend": "the average of the two: half by register size, half by each ICB's own gap",
}

TRAJECTORY_COLUMNS = ["org_code", "register", "all_six", "target_count", "additional_patients", "months",
                      "per_month"]


def check_target(target: float) -> float:
    """``target`` as a fraction 0–1 (``0.4``); ``40`` is refused rather than guessed."""
    target = float(target)
    if not 0 < target <= 1 or math.isnan(target):
        raise ConfigurationError("target must be a fraction between 0 and 1, e.g. 0.75 for 75%")
    return target


def gap(register: int, all_six: int, target: float) -> tuple[int, int]:
    """(target_count, additional_patients): ``ceil(target × register)`` and how many more than ``all_six``.

    1000 on the register, 350 with all six, target 40% → (400, 50); already above the target → additional 0.
    """
    target = check_target(target)
    register, all_six = int(register), int(all_six)
    # round() first: 0.7 * 1000 is 700.0000000000001 in floating point and must not become 701.
    target_count = math.ceil(round(target * register, 6))
    return target_count, max(0, target_count - all_six)


def _is_month_end(day: date) -> bool:
    return day.day == calendar.monthrange(day.year, day.month)[1]


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months; a month end stays a month end, else the day is clipped."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, last if _is_month_end(day) else min(day.day, last))


def whole_months(start: date, end: date) -> int:
    """Whole calendar months from ``start`` to ``end`` (``add_months(start, n) <= end``), at least 1."""
    n = (end.year - start.year) * 12 + end.month - start.month
    while n > 0 and add_months(start, n) > end:
        n -= 1
    return max(1, n)


def trajectory_table(baseline: pd.DataFrame, target: float, by: date, baseline_end: date) -> pd.DataFrame:
    """Per area: ``org_code, register, all_six, target_count, additional_patients, months, per_month`` (+
    ``org_name``/``percent`` when given, ``target``, ``baseline_end``, ``by``).

    ``months`` = whole months from ``baseline_end`` (the baseline period's end) to ``by``, at least 1;
    ``per_month`` = additional / months, one decimal.
    """
    target = check_target(target)
    months = whole_months(baseline_end, by)
    rows: list[dict[str, Any]] = []
    for r in baseline.to_dict(orient="records"):
        register = int(r["register"]) if not pd.isna(r["register"]) else 0
        all_six = int(r["all_six"]) if not pd.isna(r["all_six"]) else 0
        target_count, additional = gap(register, all_six, target)
        row = {"org_code": r["org_code"]}
        if "org_name" in r:
            row["org_name"] = r["org_name"]
        row.update(register=register, all_six=all_six,
                   percent=round(100 * all_six / register, 1) if register else None,
                   target_count=target_count, additional_patients=additional, months=months,
                   per_month=round(additional / months, 1), target=target, baseline_end=baseline_end, by=by)
        rows.append(row)
    cols = ["org_code", *(["org_name"] if "org_name" in baseline.columns else []), "register", "all_six", "percent",
            "target_count", "additional_patients", "months", "per_month", "target", "baseline_end", "by"]
    return pd.DataFrame(rows, columns=cols)


def largest_remainder(total: int, weights: list[float]) -> list[int]:
    """Whole numbers ∝ ``weights`` that add up to ``total`` exactly (Hamilton's method; ties go to the first)."""
    total = int(total)
    if total < 0:
        raise ConfigurationError("the total to split cannot be negative")
    if not weights:
        if total:
            raise ConfigurationError("no areas to split the total across")
        return []
    s = float(sum(weights))
    if s <= 0:
        weights, s = [1.0] * len(weights), float(len(weights))
    raw = [total * w / s for w in weights]
    out = [math.floor(x) for x in raw]
    left = total - sum(out)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[:left]:
        out[i] += 1
    return out


def split(region_total: int, icbs: pd.DataFrame, method: str = "by_register",
          target: float | None = None) -> pd.DataFrame:
    """Share ``region_total`` additional patients across ``icbs`` (``org_code, register, all_six``).

    Returns the ICBs (sorted by org_code) with ``weight`` (the method's share, 0–1), ``additional_patients``
    (whole, summing exactly to ``region_total``), ``target_count`` (= all_six + share) and ``target_percent``.
    ``target`` (a fraction) is the rate ``to_equal_rate`` closes each ICB's gap to; by default the rate the
    regional total implies: (Σ all_six + region_total) / Σ register.
    """
    if method not in METHODS:
        raise ConfigurationError(f"method must be one of {', '.join(METHODS)}")
    df = icbs.copy().sort_values("org_code").reset_index(drop=True)
    df["register"] = df["register"].fillna(0).astype("int64")
    df["all_six"] = df["all_six"].fillna(0).astype("int64")
    register_total = int(df["register"].sum())
    if target is None:
        target = (int(df["all_six"].sum()) + int(region_total)) / register_total if register_total else 1.0
        target = min(1.0, max(target, 1e-9))
    own_gap = [gap(r, a, target)[1] for r, a in zip(df["register"], df["all_six"], strict=True)]
    by_reg = [r / register_total if register_total else 0.0 for r in df["register"]]
    gap_total = sum(own_gap)
    by_gap = [g / gap_total for g in own_gap] if gap_total else by_reg
    if method == "by_register":
        weight = by_reg
    elif method == "to_equal_rate":
        weight = by_gap
    else:
        weight = [(a + b) / 2 for a, b in zip(by_reg, by_gap, strict=True)]
    df["own_gap"] = own_gap
    df["weight"] = weight
    df["additional_patients"] = largest_remainder(int(region_total), list(weight))
    df["target_count"] = df["all_six"] + df["additional_patients"]
    df["target_percent"] = [round(100 * t / r, 1) if r else None for t, r in zip(df["target_count"], df["register"],
                                                                                strict=True)]
    return df


def monthly_line(baseline_all_six: int, baseline_end: date, target_count: int, by: date) -> pd.DataFrame:
    """The straight line from ``baseline_all_six`` at ``baseline_end`` to ``target_count`` after the whole months to
    ``by``: ``month_end, expected_all_six`` (one decimal), the baseline as the first point."""
    months = whole_months(baseline_end, by)
    step = (int(target_count) - int(baseline_all_six)) / months
    return pd.DataFrame({
        "month_end": [add_months(baseline_end, k) for k in range(months + 1)],
        "expected_all_six": [round(int(baseline_all_six) + step * k, 1) for k in range(months + 1)],
    })


def expected_at(line: pd.DataFrame, day: date) -> float:
    """The trajectory's expected all-six count on ``day`` (linear between month ends; flat outside the line)."""
    ends = list(line["month_end"])
    vals = [float(v) for v in line["expected_all_six"]]
    if day <= ends[0]:
        return vals[0]
    for (d0, v0), (d1, v1) in zip(zip(ends, vals, strict=True), zip(ends[1:], vals[1:], strict=True), strict=False):
        if d0 <= day <= d1:
            span = (d1 - d0).days or 1
            return round(v0 + (v1 - v0) * (day - d0).days / span, 1)
    return vals[-1]


def actuals(db: Any, level: str, org_code: str, since: date | None = None,
            structure: str | None = None) -> pd.DataFrame:
    """The published series of an area (``parity.reports.published.series``, in ``structure``): ``month_end,
    all_six, register, percent, period`` from ``since`` (a date, inclusive) on."""
    from parity.reports.published import series

    s = series(db, level, org_code, structure=structure)
    cols = ["month_end", "all_six", "register", "percent", "period"]
    if s is None or s.empty:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame({"month_end": [pd.Timestamp(d).date() for d in s["period_end"]],
                        "all_six": s["all_six"], "register": s["register"], "percent": s["percent"],
                        "period": s["period"]})
    if since is not None:
        out = out[out["month_end"] >= since]
    return out.sort_values("month_end").reset_index(drop=True)[cols]


# -- from the published series ------------------------------------------------------------------------

def default_by(baseline_end: date) -> date:
    """The first 31 March after ``baseline_end`` (the end of the financial year the target is for)."""
    year = baseline_end.year if baseline_end < date(baseline_end.year, 3, 31) else baseline_end.year + 1
    return date(year, 3, 31)


def _with_months(df: pd.DataFrame, baseline_end: date, by: date, target: float) -> pd.DataFrame:
    months = whole_months(baseline_end, by)
    df["months"] = months
    df["per_month"] = [round(a / months, 1) for a in df["additional_patients"]]
    df["target"] = target
    df["baseline_end"] = baseline_end
    df["by"] = by
    return df


def build(db: Any, baseline: str, target: float, by: date | None = None, level: str = "region",
          org: str | None = None, method: str = "by_register", structure: str | None = None) -> pd.DataFrame:
    """The trajectory table from the published quarter ``baseline`` (``YYYY-YY-Qn``), in organisation
    ``structure`` (default: the one in force at the end of the baseline quarter; ``attrs["structure"]``).

    ``level="region"``: each region's (or region ``org``'s) own gap. ``level="icb"``: each region's gap shared across
    its ICBs with ``split(method)``; ``org`` is a region (its ICBs) or an ICB (that ICB, within its region's split).
    Columns: ``TRAJECTORY_COLUMNS`` + ``org_name, parent_code, percent, target_percent, target, baseline_end, by``.
    """
    from parity.reports import published

    target = check_target(target)
    if method not in METHODS:
        raise ConfigurationError(f"method must be one of {', '.join(METHODS)}")
    if level not in ("region", "icb"):
        raise ConfigurationError("level must be region or icb")
    if baseline not in published.periods(db):
        raise ConfigurationError(f"no published data for period {baseline}")
    baseline_end = published.period_end(baseline)
    structure = published.structure_for_period(baseline, structure)
    by = by or default_by(baseline_end)
    if by <= baseline_end:
        raise ConfigurationError("the target date must be after the end of the baseline period")
    regions = published.rollup(db, baseline, "region", structure=structure)
    if level == "region":
        if org:
            regions = regions[regions["org_code"] == org]
            if regions.empty:
                raise ConfigurationError(f"no published region {org} in {baseline}")
        out = trajectory_table(regions, target, by, baseline_end)
        out["parent_code"] = "england"
        out["target_percent"] = [round(100 * t / r, 1) if r else None
                                 for t, r in zip(out["target_count"], out["register"], strict=True)]
        out = out.sort_values("org_code").reset_index(drop=True)
        out.attrs["structure"] = structure
        return out
    parts = []
    only_icb = None
    if org and org not in set(regions["org_code"]):
        icbs = published.rollup(db, baseline, "icb", structure=structure)
        match = icbs[icbs["org_code"] == org]
        if match.empty:
            raise ConfigurationError(f"no published region or ICB {org} in {baseline}")
        only_icb = org
        parent = match["parent_code"].iloc[0] if "parent_code" in match.columns else None
        if parent is not None:
            regions = regions[regions["org_code"] == parent]
    elif org:
        regions = regions[regions["org_code"] == org]
    for r in regions.to_dict(orient="records"):
        total = gap(int(r["register"]), int(r["all_six"]), target)[1]
        icbs = published.rollup(db, baseline, "icb", region=r["org_code"], structure=structure)
        if icbs.empty:
            continue
        share = split(total, icbs, method, target)
        share["parent_code"] = r["org_code"]
        parts.append(share)
    if not parts:
        raise ConfigurationError(f"no published ICBs for {org or 'any region'} in {baseline}")
    out = pd.concat(parts, ignore_index=True)
    if only_icb is not None:
        out = out[out["org_code"] == only_icb]
    if "percent" not in out.columns:
        out["percent"] = None
    out["percent"] = [round(100 * a / r, 1) if r else None for a, r in zip(out["all_six"], out["register"],
                                                                          strict=True)]
    out = _with_months(out.reset_index(drop=True), baseline_end, by, target)
    cols = ["org_code", "org_name", "parent_code", "register", "all_six", "percent", "target_count",
            "additional_patients", "months", "per_month", "target_percent", "target", "baseline_end", "by"]
    out = out.reindex(columns=cols)
    out.attrs["structure"] = structure
    return out


def actuals_total(db: Any, level: str, codes: list[str], since: str, region: str | None = None,
                  structure: str | None = None) -> pd.DataFrame:
    """Published ``month_end, period, register, all_six`` summed over the areas ``codes`` at ``level`` for every
    stored quarter from ``since`` (a period label) on: the actual line to set against a trajectory. One
    ``structure`` throughout (default: the one in force at the end of ``since``, as ``build``)."""
    from parity.reports import published

    structure = published.structure_for_period(since, structure)
    rows = []
    wanted = set(codes)
    for p in published.periods(db):
        if p < since:
            continue
        df = published.rollup(db, p, level, region=region, structure=structure)
        df = df[df["org_code"].isin(wanted)]
        if df.empty:
            continue
        rows.append({"month_end": published.period_end(p), "period": p, "register": int(df["register"].sum()),
                     "all_six": int(df["all_six"].sum())})
    return pd.DataFrame(rows, columns=["month_end", "period", "register", "all_six"])


def total_row(table: pd.DataFrame) -> dict[str, Any]:
    """The rows of a trajectory table added up (the area the chart draws when the table has several)."""
    first = table.iloc[0]
    return {"all_six": int(table["all_six"].sum()), "target_count": int(table["target_count"].sum()),
            "register": int(table["register"].sum()), "baseline_end": first["baseline_end"], "by": first["by"]}
