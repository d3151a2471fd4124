"""The monthly highlight and exception report for a region (mission feature M7), as HTML and PDF.

Sections: the headline (latest published quarter: register, all six, rate against the 60% and 75% standards), the
trend (last 8 published quarters), each ICB against its trajectory with a RAG status, exceptions, and the active
initiatives. The figures are NHS England's published series (``parity.reports.published``); the ICB trajectories are
``parity.reports.trajectory.build`` at ICB level (the region's gap shared across its ICBs by ``method``).

Colours: the one RAG rule of ``parity.rules.standards`` (the all-six rate against the 60% and 75% standards), the
same as every page. Against its trajectory an ICB is "on track" or "behind" (not a colour); an exception is an ICB more
than 5% of its trajectory count behind, and always the one furthest behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from parity import dates
from parity.db import Database
from parity.errors import ConfigurationError
from parity.orgs import structure_label
from parity.reports.trajectory import METHODS, build, check_target, default_by, expected_at, gap, monthly_line
from parity.rules.standards import RAG_LABELS, RAG_RULE, RAG_TAG_COLOURS, rag, trajectory_status
from parity.rules.standards import STANDARDS as PERCENT_STANDARDS

#: How far below the trajectory (a fraction of the expected count) makes an ICB an exception.
EXCEPTION_TOLERANCE = 0.05
STANDARDS = tuple(s / 100 for s in PERCENT_STANDARDS)
TREND_PERIODS = 8


@dataclass
class HighlightReport:
    """Everything the template shows (plain values: the template does no arithmetic)."""

    region_code: str
    region_name: str
    period: str
    period_end: date
    baseline: str
    baseline_end: date
    target: float
    by: date
    method: str
    headline: dict[str, Any]
    trend: list[dict[str, Any]]
    icbs: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]
    initiatives: list[dict[str, Any]]
    produced: date
    rule: str = RAG_RULE
    standards: tuple[float, ...] = STANDARDS
    rag_labels: dict[str, str] = field(default_factory=lambda: dict(RAG_LABELS))
    rag_tags: dict[str, str] = field(default_factory=lambda: dict(RAG_TAG_COLOURS))
    method_text: str = field(default="")
    structure: str = ""
    parity: dict[str, Any] | None = None


def default_baseline(periods: list[str], latest: str) -> str:
    """Q4 of the financial year before ``latest``'s (the start point of this year's trajectory); else the
    period four quarters before ``latest``; else the earliest."""
    year = int(latest[:4])
    wanted = f"{year - 1}-{str(year)[2:]}-Q4"
    if wanted in periods:
        return wanted
    ordered = sorted(periods)
    i = ordered.index(latest)
    return ordered[max(0, i - 4)]


def _int(v: Any) -> int | None:
    return None if v is None or pd.isna(v) else int(v)


def build_highlight(db: Database, region: str, period: str | None = None, baseline: str | None = None,
                    target: float = 0.75, by: date | None = None, method: str = "by_register",
                    produced: date | None = None, structure: str | None = None, results: Any = None,
                    as_of: date | None = None, codelists: str | None = None) -> HighlightReport:
    """The report for region ``region`` at published quarter ``period`` (default the latest), in organisation
    ``structure`` (default: the one in force at the end of ``period``; the report names it).

    With ``results`` (a ``ResultStore``) and ``as_of``, the report also gives Parity's own figures for the
    region on ``as_of`` in the same structure, with ``codelists`` (the same numbers as every page and the CLI).
    """
    from parity.reports import published
    from parity.reports.initiatives import initiatives

    target = check_target(target)
    if method not in METHODS:
        raise ConfigurationError(f"method must be one of {', '.join(METHODS)}")
    periods = published.periods(db)
    if not periods:
        raise ConfigurationError("no published data: import it first (parity published import)")
    period = period or max(periods)
    if period not in periods:
        raise ConfigurationError(f"no published data for period {period}")
    period_end = published.period_end(period)
    baseline = baseline or default_baseline(periods, period)
    baseline_end = published.period_end(baseline)
    by = by or default_by(baseline_end)
    structure = published.structure_for_period(period, structure)

    regions = published.rollup(db, period, "region", structure=structure)
    here = regions[regions["org_code"] == region]
    if here.empty:
        raise ConfigurationError(f"no published region {region} in {period}")
    r = here.iloc[0]
    register, all_six = int(r["register"]), int(r["all_six"])
    headline = {"register": register, "all_six": all_six,
                "percent": round(100 * all_six / register, 1) if register else None,
                "gaps": [{"standard": round(100 * s), "needed": gap(register, all_six, s)[1],
                          "met": register > 0 and gap(register, all_six, s)[1] == 0} for s in STANDARDS]}

    s = published.series(db, "region", region, structure=structure).sort_values("period")
    s = s[s["period"] <= period].tail(TREND_PERIODS)
    trend = [{"period": p, "period_end": pd.Timestamp(e).date(), "register": _int(rg), "all_six": _int(a),
              "percent": None if pd.isna(pc) else round(float(pc), 1)}
             for p, e, rg, a, pc in zip(s["period"], s["period_end"], s["register"], s["all_six"], s["percent"],
                                        strict=True)]

    plan = build(db, baseline, target, by, "icb", region, method, structure=structure)
    now = published.rollup(db, period, "icb", region=region, structure=structure).set_index("org_code")
    icbs = []
    for row in plan.to_dict(orient="records"):
        line = monthly_line(int(row["all_six"]), baseline_end, int(row["target_count"]), by)
        expected = expected_at(line, period_end)
        actual = _int(now["all_six"].get(row["org_code"])) if row["org_code"] in now.index else None
        reg_now = _int(now["register"].get(row["org_code"])) if row["org_code"] in now.index else None
        percent = round(100 * actual / reg_now, 1) if actual is not None and reg_now else None
        icbs.append({
            "org_code": row["org_code"], "org_name": row.get("org_name") or row["org_code"],
            "register": reg_now, "all_six": actual, "percent": percent,
            "baseline_all_six": int(row["all_six"]), "target_count": int(row["target_count"]),
            "expected": expected, "variance": None if actual is None else round(actual - expected, 1),
            "rag": rag(percent), "trajectory": trajectory_status(actual, expected),
            "well_behind": actual is not None and actual < expected * (1 - EXCEPTION_TOLERANCE)})
    icbs.sort(key=lambda x: x["org_name"])
    shortfalls = sorted((i for i in icbs if i["variance"] is not None and i["variance"] < 0),
                        key=lambda i: i["variance"])
    exceptions = [i for i in shortfalls if i["well_behind"]]
    if shortfalls and shortfalls[0] not in exceptions:
        exceptions.append(shortfalls[0])

    inits = initiatives(db, area_codes=[region, *[i["org_code"] for i in icbs]])
    active = inits[inits["status"] == "active"] if not inits.empty else inits
    names = {i["org_code"]: i["org_name"] for i in icbs} | {region: str(r.get("org_name") or region)}
    init_rows = [{"title": x["title"], "owner": x["owner"], "area": names.get(x["area_code"], x["area_code"]),
                  "level": x["level"], "start": x["start_date"], "end": x["end_date"], "ease": x["ease"],
                  "impact": x["impact"], "extra_per_month": float(x["extra_per_month"])}
                 for x in active.to_dict(orient="records")]
    own = _parity_figures(results, region, as_of, structure, codelists) if results is not None and as_of else None
    return HighlightReport(
        region_code=region, region_name=str(r.get("org_name") or region), period=period, period_end=period_end,
        baseline=baseline, baseline_end=baseline_end, target=target, by=by, method=method, headline=headline,
        trend=trend, icbs=icbs, exceptions=exceptions, initiatives=init_rows, produced=produced or dates.today(),
        method_text=METHODS[method], structure=structure_label(structure), parity=own)


def _parity_figures(results: Any, region: str, as_of: date, structure: str,
                    codelists: str | None) -> dict[str, Any] | None:
    """Parity's register and all-six count for ``region`` on ``as_of`` (None when Parity has no data there)."""
    frame = results.aggregates("phsmi", as_of, structure=structure, codelists=codelists)["region"]
    row = frame[frame["org_code"] == region]
    if row.empty:
        return None
    r = row.iloc[0]
    register, all_six = int(r["register"]), int(r["all_six"])
    percent = round(100 * all_six / register, 1) if register else None
    return {"as_of": as_of, "register": register, "all_six": all_six, "percent": percent, "rag": rag(percent),
            "codelists": results.codelists(codelists).describe().removeprefix("codelists: ")}


def render_highlight_html(report: HighlightReport) -> str:
    """The report as one self-contained HTML document (inline CSS, no scripts or external resources)."""
    from parity.pdf import template_environment

    return template_environment("parity.reports").get_template("highlight.html").render(r=report)


def render_highlight_fragment(report: HighlightReport) -> str:
    """The report's sections without the document around them (for a web page; the page's CSS styles them)."""
    from parity.pdf import template_environment

    return template_environment("parity.reports").get_template("highlight_body.html").render(r=report)


def render_highlight_pdf(report: HighlightReport) -> bytes:
    """The report as a tagged A4 PDF."""
    from parity.pdf import html_to_pdf

    return html_to_pdf(render_highlight_html(report))
