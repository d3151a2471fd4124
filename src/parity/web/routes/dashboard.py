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
from parity.web import charts, views
from parity.web.deps import ActorDep, AsOfDep, actor_scope, base_context, get_state, reporting_date

router = APIRouter(tags=["dashboard"], include_in_schema=False)
MeasureQuery = Annotated[str, Query(max_length=20)]


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
    ctx = _org_context(request, actor, level, code, as_of, measure)
    m = state.results.measure(measure)
    row = ctx["row"]
    rates = views.check_rates(row, m)
    red, red_children = views.red_zone(state.results, measure, as_of, level, code)
    ctx.update(
        title=f"{row['org_name']}",
        red=red,
        red_children=red_children,
        rates=rates,
        children=views.children(state.results, measure, as_of, level, code),
        child_level=views.CHILD_LEVEL.get(level),
        charts={
            "quarterly": charts.trend_chart(views.trend(state.results, measure, as_of, level, code)),
            "monthly": charts.trend_chart(views.trend(state.results, measure, as_of, level, code, monthly=True)),
            "checks": charts.check_bars([{"check": r["label"], "percent": r["percent"],
                                          "declined_percent": r["declined_percent"]} for r in rates]),
        },
        worklist=level == "practice" and actor_scope(request, actor, as_of).can_view_practice(code),
    )
    return state.templates.TemplateResponse(request, "org.html", ctx)


@router.get("/orgs/{level}/{code}/variation", response_class=HTMLResponse)
def variation(request: Request, level: str, code: str, actor: ActorDep, as_of: AsOfDep,
              measure: MeasureQuery = "phsmi") -> Response:
    """All-six rate against register size for the areas one level down, with funnel-plot limits."""
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


@router.get("/orgs/{level}/{code}/checks", response_class=HTMLResponse)
def checks(request: Request, level: str, code: str, actor: ActorDep, as_of: AsOfDep,
           measure: MeasureQuery = "phsmi") -> Response:
    """Each check's rate for the areas one level down, side by side, with each check's trend."""
    state = get_state(request)
    ctx = _org_context(request, actor, level, code, as_of, measure)
    m = state.results.measure(measure)
    rows = views.children(state.results, measure, as_of, level, code)
    ctx.update(
        title=f"Checks – {ctx['row']['org_name']}",
        wide=True,
        child_level=views.CHILD_LEVEL.get(level),
        check_list=m.checks,
        rows=[{**r, "rates": {c["check"]: c for c in views.check_rates(r, m)}} for r in rows],
        own={c["check"]: c for c in views.check_rates(ctx["row"], m)},
        chart=charts.trend_chart(views.check_trend(state.results, m, as_of, level, code)),
    )
    return state.templates.TemplateResponse(request, "checks.html", ctx)


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
        measure_obj=state.results.measure(measure), measures=views.MEASURES, level_label=views.LEVEL_LABELS[level],
        level_labels=views.LEVEL_LABELS, dates=views.reporting_dates(reporting_date(request, None)), query=query,
        breadcrumbs=crumbs,
    )


def _frame(rows: list[dict[str, Any]]):  # noqa: ANN202 - pandas frame for reports.variation
    import pandas as pd

    return pd.DataFrame(rows)
