"""View models: precomputed results shaped for pages and the API. No SQL, no HTML.

Everything here reads from a ``ResultStore`` and keeps its indexes in ``ResultStore.derived``,
so after the first request for a (measure, as_of) a page is a few dictionary lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from parity.dates import month_ends, quarter_ends_until
from parity.engine.base import LEVELS
from parity.errors import ConfigurationError, NotFound
from parity.reports.results import TREND_MONTHS, TREND_QUARTERS, ResultStore
from parity.rules.model import CORE_CHECKS, Measure

LEVEL_LABELS = {"england": "England", "region": "Region", "icb": "ICB", "sub_icb": "Sub-ICB",
                "pcn": "PCN", "practice": "Practice"}
CHILD_LEVEL = {"england": "region", "region": "icb", "icb": "sub_icb", "sub_icb": "pcn", "pcn": "practice"}
MEASURES = ("phsmi", "qof-mh021")
# What pickers and captions call each measure (the id is for URLs and the API, not for people).
MEASURE_LABELS = {"phsmi": "PHSMI (national)", "qof-mh021": "QOF MH021"}


@dataclass(frozen=True)
class AggregateIndex:
    """One (measure, as_of): every organisation's row by level and code, and children by parent."""

    rows: dict[str, dict[str, dict[str, Any]]]
    children: dict[tuple[str, str], list[dict[str, Any]]]


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise ConfigurationError(f"level must be one of {', '.join(LEVELS)}")
    return level


def check_measure(measure_id: str) -> str:
    if measure_id not in MEASURES:
        raise ConfigurationError(f"measure must be one of {', '.join(MEASURES)}")
    return measure_id


def aggregate_index(results: ResultStore, measure_id: str, as_of: date) -> AggregateIndex:
    """The index for one (measure, as_of), built once per data version."""

    def build() -> AggregateIndex:
        frames = results.aggregates(measure_id, as_of)
        rows: dict[str, dict[str, dict[str, Any]]] = {}
        children: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for level, frame in frames.items():
            records = _records(frame)
            rows[level] = {r["org_code"]: r for r in records}
            for r in records:
                if r["parent_code"]:
                    children.setdefault((level, r["parent_code"]), []).append(r)
        return AggregateIndex(rows, children)

    return results.derived(("aggregate_index", measure_id, as_of), build)


def org_row(results: ResultStore, measure_id: str, as_of: date, level: str, code: str) -> dict[str, Any]:
    """One organisation's aggregate row, or NotFound."""
    row = aggregate_index(results, measure_id, as_of).rows.get(check_level(level), {}).get(code)
    if row is None:
        raise NotFound(f"no {LEVEL_LABELS[level]} with code {code} in the loaded data")
    return row


def children(results: ResultStore, measure_id: str, as_of: date, level: str, code: str) -> list[dict[str, Any]]:
    """Rows of the organisations one level down from (level, code), by name."""
    child = CHILD_LEVEL.get(level)
    if child is None:
        return []
    rows = aggregate_index(results, measure_id, as_of).children.get((child, code), [])
    return sorted(rows, key=lambda r: (r["org_name"] or "", r["org_code"]))


def level_rows(results: ResultStore, measure_id: str, as_of: date, level: str,
               parent: str | None = None) -> list[dict[str, Any]]:
    """Every organisation at ``level`` (optionally only children of ``parent``), by code."""
    index = aggregate_index(results, measure_id, as_of)
    if parent is not None:
        rows = index.children.get((check_level(level), parent), [])
    else:
        rows = list(index.rows.get(check_level(level), {}).values())
    return sorted(rows, key=lambda r: r["org_code"])


def ancestors(results: ResultStore, measure_id: str, as_of: date, level: str, code: str) -> list[dict[str, Any]]:
    """The chain from the top (England) down to the parent of (level, code)."""
    index = aggregate_index(results, measure_id, as_of)
    chain: list[dict[str, Any]] = []
    row = index.rows.get(level, {}).get(code)
    order = list(LEVELS)
    while row is not None and row.get("parent_code"):
        parent_level = order[order.index(row["level"]) + 1]
        row = index.rows.get(parent_level, {}).get(row["parent_code"])
        if row is not None:
            chain.append(row)
    return list(reversed(chain))


def home_org(results: ResultStore, measure_id: str, as_of: date) -> tuple[str, str]:
    """Where programme users start: the region if the data covers one region, else England."""
    regions = aggregate_index(results, measure_id, as_of).rows.get("region", {})
    if len(regions) == 1:
        return "region", next(iter(regions))
    return "england", "ENG"


def check_rates(row: dict[str, Any], measure: Measure) -> list[dict[str, Any]]:
    """Each check's done and declined counts and rates for one organisation row."""
    register = row["register"] or 0
    out = []
    for check in measure.checks:
        done = row[check.id]
        declined = row[f"{check.id}_declined"]
        out.append({
            "check": check.id, "label": check.label, "core": check.id in CORE_CHECKS,
            "done": done, "declined": declined,
            "percent": round(100 * done / register, 1) if register else None,
            "declined_percent": round(100 * declined / register, 1) if register else None,
        })
    return out


def trend(results: ResultStore, measure_id: str, as_of: date, level: str, code: str,
          *, monthly: bool = False) -> list[dict[str, Any]]:
    """All-six rate of one organisation at each quarter end (or month end) up to ``as_of``."""
    dates = tuple(month_ends(as_of, TREND_MONTHS) if monthly else quarter_ends_until(as_of, TREND_QUARTERS))
    return _trend_by_org(results, measure_id, dates, check_level(level)).get(code, [])


def check_trend(results: ResultStore, measure: Measure, as_of: date, level: str, code: str) -> list[dict[str, Any]]:
    """Each check's rate at each quarter end up to ``as_of`` (one series per check)."""
    dates = tuple(quarter_ends_until(as_of, TREND_QUARTERS))
    rows = _trend_by_org(results, measure.id, dates, check_level(level)).get(code, [])
    out = []
    for check in measure.checks:
        for r in rows:
            out.append({"period": r["period"], "label": check.label,
                        "percent": round(100 * r[check.id] / r["register"], 1) if r["register"] else None})
    return out


def _trend_by_org(results: ResultStore, measure_id: str, dates: tuple[date, ...],
                  level: str) -> dict[str, list[dict[str, Any]]]:
    """Trend points by organisation code for one (measure, dates, level), built once per data version:
    stacking the frames is the expensive part, so a request only looks its organisation up."""

    def build() -> dict[str, list[dict[str, Any]]]:
        frame = results.trend(measure_id, list(dates))[level]
        measure = results.measure(measure_id)
        out: dict[str, list[dict[str, Any]]] = {}
        for r in _records(frame):
            point = {"period": r["as_of"].isoformat(), "percent": _float(r["percent"]), "register": int(r["register"]),
                     "all_six": int(r["all_six"]), "label": "All six"}
            point.update({c.id: int(r[c.id]) for c in measure.checks})
            out.setdefault(r["org_code"], []).append(point)
        return out

    return results.derived(("trend_by_org", measure_id, dates, level), build)


def reporting_dates(as_of: date) -> list[date]:
    """Dates offered in the picker: the 8 quarter ends up to ``as_of`` (newest first)."""
    return list(reversed(quarter_ends_until(as_of, TREND_QUARTERS)))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records = frame.to_dict(orient="records")
    for r in records:
        for key, value in r.items():
            if isinstance(value, float) and value != value:  # NaN → None for templates and JSON
                r[key] = None
    return records


def _float(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def red_zone(results: ResultStore, measure_id: str, as_of: date, level: str,
             code: str) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The red-zone follow-up row of (level, code), and its children's rows by code (M6)."""
    from parity.care.service import red_zone_levels

    frames = red_zone_levels(results, as_of, measure_id)
    own = frames[check_level(level)]
    match = own[own["org_code"] == code]
    row = match.iloc[0].to_dict() if len(match) else None
    kids: dict[str, dict[str, Any]] = {}
    child = CHILD_LEVEL.get(level)
    if child is not None:
        frame = frames[child]
        kids = {str(r["org_code"]): r for r in frame[frame["parent_code"] == code].to_dict("records")}
    return row, kids


def descendants(results: ResultStore, measure_id: str, as_of: date, level: str, code: str,
                target: str = "practice") -> list[dict[str, Any]]:
    """Every organisation at level ``target`` below (level, code), e.g. all practices of an ICB, by code."""
    order = list(LEVELS)
    if order.index(check_level(target)) >= order.index(check_level(level)):
        return []
    index = aggregate_index(results, measure_id, as_of)
    parents = {code}
    step = level
    while step != target:
        step = CHILD_LEVEL[step]
        rows = [r for p in parents for r in index.children.get((step, p), [])]
        parents = {r["org_code"] for r in rows}
    return sorted(rows, key=lambda r: r["org_code"])


def comparison(results: ResultStore, measure_id: str, as_of: date, level: str, code: str) -> list[dict[str, Any]]:
    """(level, code) and every area it sits in, up to England: the rows a page compares against."""
    own = org_row(results, measure_id, as_of, level, code)
    chain = ancestors(results, measure_id, as_of, level, code)
    return [own, *reversed(chain)]
