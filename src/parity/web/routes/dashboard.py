"""Aggregate pages: an organisation's overview, the variation between its areas, and per-check rates.

Every signed-in role may see aggregates (they hold no patient-level data). The same view exists at
every level: England → region → ICB → sub-ICB → PCN → practice.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parity.access import Actor, Role
from parity.reports.variation import funnel
from parity.web import charts, computing, pagecache, views
from parity.web.deps import ActorDep, AsOfDep, actor_scope, base_context, get_state, reporting_date

router = APIRouter(tags=["dashboard"], include_in_schema=False)
MeasureQuery = Annotated[str, Query(max_length=20)]


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico on pages that name no icon (the standalone passport): the NHS one."""
    return RedirectResponse("/static/vendor/nhsuk/assets/images/favicon.ico", status_code=301)


@router.get("/")
def home(request: Request, actor: ActorDep, as_of: AsOfDep, measure: MeasureQuery = "phsmi") -> Response:
    """Land each user where they work: their practice, PCN or ICB, else the region (or England)."""
    state = get_state(request)
    views.check_measure(measure)
    if actor.role == Role.trust:
        return RedirectResponse("/caseload", status_code=303)  # a trust team works from its caseload
    scope = actor_scope(request, actor, as_of)
    level_code = scope.home_org() or views.home_org(state.results, measure, as_of)
    return RedirectResponse(f"/orgs/{level_code[0]}/{level_code[1]}", status_code=303)


@router.get("/orgs/{level}/{code}", response_class=HTMLResponse)
def organisation(request: Request, level: str, code: str, actor: ActorDep, as_of: AsOfDep,
                 measure: MeasureQuery = "phsmi") -> Response:
    """Headline, per-check rates, quarterly and monthly trend, and the areas one level down."""
    state = get_state(request)
    if not _ready(request, level, measure, as_of):
        return computing.computing_page(request, actor, as_of)
    from parity.care import followup

    with state.db.lock:
        referrals_version = followup.version(state.db)  # the red-zone section follows recorded referrals
    return pagecache.cached(request, pagecache.user_key(actor), as_of,
                            lambda: _organisation(request, level, code, actor, as_of, measure),
                            also=(referrals_version,))


def _organisation(request: Request, level: str, code: str, actor: Actor, as_of: date, measure: str) -> Response:
    state = get_state(request)
    ctx = _org_context(request, actor, level, code, as_of, measure)
    m = state.results.measure(measure)
    row = ctx["row"]
    rates = views.check_rates(row, m)
    red, red_children = views.red_zone(state.results, measure, as_of, level, code)
    quarterly = views.trend(state.results, measure, as_of, level, code)
    monthly = views.trend(state.results, measure, as_of, level, code, monthly=True)
    ctx.update(
        title=f"{row['org_name']}",
        red=red,
        red_children=red_children,
        rates=rates,
        children=views.children(state.results, measure, as_of, level, code),
        child_level=views.CHILD_LEVEL.get(level),
        trend_rows={"quarterly": quarterly, "monthly": monthly},
        charts={
            "quarterly": charts.trend_chart(quarterly),
            "monthly": charts.trend_chart(monthly),
            "checks": charts.check_bars([{"check": r["label"], "percent": r["percent"],
                                          "declined_percent": r["declined_percent"]} for r in rates]),
        },
        worklist=level == "practice" and actor_scope(request, actor, as_of).can_view_practice(code),
        comparison=views.comparison(state.results, measure, as_of, level, code),
    )
    return state.templates.TemplateResponse(request, "org.html", ctx)


@router.get("/orgs/{level}/{code}/areas.csv")
def areas_csv(request: Request, level: str, code: str, actor: ActorDep, as_of: AsOfDep,
              measure: MeasureQuery = "phsmi") -> Response:
    """The overview's table of areas one level down, and each check's rate for them (Checks by area), as CSV."""
    state = get_state(request)
    ctx = _org_context(request, actor, level, code, as_of, measure)
    m = state.results.measure(measure)
    out = []
    for r in [ctx["row"], *views.children(state.results, measure, as_of, level, code)]:
        rates = {c["check"]: c for c in views.check_rates(r, m)}
        item = {"Level": views.LEVEL_LABELS[r["level"]], "Code": r["org_code"], "Name": r["org_name"],
                "Register": r["register"], "All six": r["all_six"], "All-six rate (%)": r["percent"]}
        for c in m.checks:
            item[f"{c.label} done"] = rates[c.id]["done"]
            item[f"{c.label} rate (%)"] = rates[c.id]["percent"]
            item[f"{c.label} declined"] = rates[c.id]["declined"]
        out.append(item)
    return _csv(_frame(out), f"areas-{level}-{code}-{measure}-{as_of}.csv", request, as_of, measure)


@router.get("/orgs/{level}/{code}/variation", response_class=HTMLResponse)
def variation(request: Request, level: str, code: str, actor: ActorDep, as_of: AsOfDep,
              measure: MeasureQuery = "phsmi") -> Response:
    """All-six rate against register size for the areas one level down, with funnel-plot limits."""
    if not _ready(request, level, measure, as_of):
        return computing.computing_page(request, actor, as_of)
    return pagecache.cached(request, pagecache.user_key(actor), as_of,
                            lambda: _variation(request, level, code, actor, as_of, measure))


def _variation(request: Request, level: str, code: str, actor: Actor, as_of: date, measure: str) -> Response:
    state = get_state(request)
    ctx = _org_context(request, actor, level, code, as_of, measure)
    rows = views.children(state.results, measure, as_of, level, code)
    result = funnel(_frame(rows)) if rows else None
    points = result.points.to_dict(orient="records") if result is not None else []
    ctx.update(
        title=f"Variation – {ctx['row']['org_name']}",
        child_level=views.CHILD_LEVEL.get(level),
        points=sorted(points, key=lambda p: (p["rate"], -p["register"])),
        centre=None if result is None else 100 * result.centre,
        chart=None if result is None else charts.funnel_chart(
            [{**p, "percent": 100 * p["rate"]} for p in points],
            [{k: (v if k == "n" else 100 * v) for k, v in r.items()} for r in result.limits.to_dict(orient="records")],
            100 * result.centre),
    )
    return state.templates.TemplateResponse(request, "variation.html", ctx)


@router.get("/orgs/{level}/{code}/variation.csv")
def variation_csv(request: Request, level: str, code: str, actor: ActorDep, as_of: AsOfDep,
                  measure: MeasureQuery = "phsmi") -> Response:
    """The variation table: each area one level down with its rate and funnel band, lowest rate first."""
    state = get_state(request)
    _org_context(request, actor, level, code, as_of, measure)
    rows = views.children(state.results, measure, as_of, level, code)
    points = funnel(_frame(rows)).points.to_dict(orient="records") if rows else []
    out = [{"Code": p["org_code"], "Name": p["org_name"], "Register": p["register"], "All six": p["all_six"],
            "All-six rate (%)": round(100 * p["rate"], 1),
            "Funnel band": charts.FUNNEL_BANDS.get(p["band"], (p["band"],))[0]}
           for p in sorted(points, key=lambda p: (p["rate"], -p["register"]))]
    frame = _frame(out) if out else _frame([]).reindex(columns=["Code", "Name", "Register", "All six",
                                                                "All-six rate (%)", "Funnel band"])
    return _csv(frame, f"variation-{level}-{code}-{measure}-{as_of}.csv", request, as_of, measure)


@router.get("/orgs/{level}/{code}/checks", response_class=HTMLResponse)
def checks(request: Request, level: str, code: str, actor: ActorDep, as_of: AsOfDep,
           measure: MeasureQuery = "phsmi") -> Response:
    """Each check's rate for the areas one level down, side by side, with each check's trend."""
    if not _ready(request, level, measure, as_of):
        return computing.computing_page(request, actor, as_of)
    return pagecache.cached(request, pagecache.user_key(actor), as_of,
                            lambda: _checks(request, level, code, actor, as_of, measure))


def _checks(request: Request, level: str, code: str, actor: Actor, as_of: date, measure: str) -> Response:
    state = get_state(request)
    ctx = _org_context(request, actor, level, code, as_of, measure)
    m = state.results.measure(measure)
    rows = views.children(state.results, measure, as_of, level, code)
    trend = views.check_trend(state.results, m, as_of, level, code)
    ctx.update(
        title=f"Checks – {ctx['row']['org_name']}",
        wide=True,
        child_level=views.CHILD_LEVEL.get(level),
        check_list=m.checks,
        rows=[{**r, "rates": {c["check"]: c for c in views.check_rates(r, m)}} for r in rows],
        own={c["check"]: c for c in views.check_rates(ctx["row"], m)},
        chart=charts.small_multiples(trend, description="One small line chart per check: the share of the "
                                     "register with that check done at each quarter end, with the 60% and 75% "
                                     "standards dashed."),
        trend_table=_trend_table(trend),
    )
    return state.templates.TemplateResponse(request, "checks.html", ctx)


def _trend_table(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The small multiples' figures as a table: a row per quarter end, a column per check."""
    periods = list(dict.fromkeys(p["period"] for p in points))
    labels = list(dict.fromkeys(p["label"] for p in points))
    cell = {(p["period"], p["label"]): p["percent"] for p in points}
    return {"columns": ["Quarter ending", *labels],
            "rows": [[charts._fmt_day(d), *(cell.get((d, lab)) for lab in labels)] for d in periods]}


@router.get("/orgs/{level}/{code}/practices", response_class=HTMLResponse)
def practices(request: Request, level: str, code: str, actor: ActorDep, as_of: AsOfDep,
              measure: MeasureQuery = "phsmi") -> Response:
    """League table of every practice in the area, best rate first, with the funnel band of each."""
    state = get_state(request)
    ctx = _org_context(request, actor, level, code, as_of, measure)
    rows = league(request, level, code, as_of, measure)
    points = [r for r in rows if r.get("band")]
    result = funnel(_frame(rows)) if points else None
    ctx.update(
        title=f"Practices – {ctx['row']['org_name']}", wide=True, rows=rows, child_level=views.CHILD_LEVEL.get(level),
        centre=None if result is None else 100 * result.centre,
        chart=None if result is None else charts.funnel_chart(
            [{**p, "percent": 100 * p["rate"]} for p in points],
            [{k: (v if k == "n" else 100 * v) for k, v in r.items()} for r in result.limits.to_dict(orient="records")],
            100 * result.centre),
    )
    return state.templates.TemplateResponse(request, "practices.html", ctx)


@router.get("/orgs/{level}/{code}/practices.csv")
def practices_csv(request: Request, level: str, code: str, actor: ActorDep, as_of: AsOfDep,
                  measure: MeasureQuery = "phsmi") -> Response:
    _org_context(request, actor, level, code, as_of, measure)
    rows = league(request, level, code, as_of, measure)
    columns = {"rank": "Rank", "org_code": "Practice code", "org_name": "Practice", "pcn_name": "PCN",
               "register": "Register", "all_six": "All six", "percent": "All-six rate (%)", "band_words": "Funnel band"}
    frame = _frame(rows).reindex(columns=list(columns)).rename(columns=columns) if rows else \
        _frame([]).reindex(columns=list(columns.values()))
    return _csv(frame, f"practices-{level}-{code}-{measure}-{as_of}.csv", request, as_of, measure)


def league(request: Request, level: str, code: str, as_of: date, measure: str) -> list[dict[str, Any]]:
    """The area's practices ranked by all-six rate (ties: larger register first), with funnel bands."""
    state = get_state(request)
    rows = views.descendants(state.results, measure, as_of, level, code, "practice")
    if not rows:
        return []
    pcn = {r["org_code"]: r["org_name"] for r in views.level_rows(state.results, measure, as_of, "pcn")}
    points = {str(p["org_code"]): p for p in funnel(_frame(rows)).points.to_dict(orient="records")}
    out = []
    for r in rows:
        p = points.get(r["org_code"], {})
        band = p.get("band")
        out.append({**r, "pcn_name": pcn.get(r.get("parent_code") or "", r.get("parent_code") or ""),
                    "band": band, "rate": p.get("rate"),
                    "band_words": charts.FUNNEL_BANDS[band][0] if band in charts.FUNNEL_BANDS else "–"})
    out.sort(key=lambda r: (r["percent"] is None, -(r["percent"] or 0), -(r["register"] or 0), r["org_code"]))
    for i, r in enumerate(out, start=1):
        r["rank"] = i
    return out


def _csv(frame: Any, filename: str, request: Request, as_of: date, measure: str) -> Response:
    """An aggregate export, every row naming the structure and codelist release its figures used (issue 11)."""
    from parity.orgs import structure_label
    from parity.reports.export import to_csv_bytes

    results = get_state(request).results
    frame = frame.copy()
    frame["Structure"] = structure_label(results.structure_for(as_of))
    frame["Codelists"] = results.codelists().describe(results.measure(measure).clusters()).removeprefix("codelists: ")
    return Response(to_csv_bytes(frame), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _ready(request: Request, level: str, measure: str, as_of: date) -> bool:
    """Whether the figures are ready (``parity.web.computing``); the level and measure are checked first, so
    a bad address is an error, never a computation."""
    views.check_level(level)
    views.check_measure(measure)
    return computing.figures_ready(request, measure, as_of)


def _org_context(request: Request, actor: Actor, level: str, code: str, as_of: date,
                 measure: str) -> dict[str, Any]:
    state = get_state(request)
    views.check_level(level)
    views.check_measure(measure)
    row = views.org_row(state.results, measure, as_of, level, code)
    trail = views.ancestors(state.results, measure, as_of, level, code)
    query = f"?measure={measure}&as_of={as_of.isoformat()}"
    crumbs = [(f"{r['org_name']}", f"/orgs/{r['level']}/{r['org_code']}{query}") for r in trail]
    return base_context(
        request, actor, row=row, level=level, code=code, as_of=as_of, measure=measure,
        measure_obj=state.results.measure(measure), measures=views.MEASURES, measure_labels=views.MEASURE_LABELS,
        level_label=views.LEVEL_LABELS[level],
        level_labels=views.LEVEL_LABELS, dates=views.reporting_dates(reporting_date(request, None)), query=query,
        breadcrumbs=crumbs,
    )


def _frame(rows: list[dict[str, Any]]):  # noqa: ANN202 - pandas frame for reports.variation
    import pandas as pd

    return pd.DataFrame(rows)
