"""Programme reporting pages (M7): trajectories, the initiative register and the monthly highlight report.

The figures are NHS England's published series (``parity.reports.published``): organisation-level counts, no patient
data, so every signed-in role may see them. Adding an initiative needs the programme, ICB or admin role (an ICB user
only for their own ICB), a CSRF token, and is audited.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from parity.access import Actor, Role, may_edit_area, record
from parity.errors import ConfigurationError, PermissionDenied
from parity.reports import published
from parity.reports.highlight import build_highlight, render_highlight_fragment, render_highlight_pdf
from parity.reports.initiatives import LEVELS, RATINGS, STATUSES, Initiative, forecast, initiatives, record_initiative
from parity.reports.trajectory import METHODS, actuals_total, build, monthly_line, total_row
from parity.web import charts
from parity.web.deps import ActorDep, base_context, get_state, today
from parity.web.security import check_csrf

router = APIRouter(tags=["programme"], include_in_schema=False)

Short = Annotated[str, Query(max_length=20)]
TARGET_CHOICES = [("0.6", "60% (Five Year Forward View)"), ("0.75", "75% (Operating Plan 2024/25)")]
METHOD_WORDS = {"by_register": "By register size", "to_equal_rate": "To an equal rate", "blend": "Blend of the two"}
SERIES = ("Trajectory", "Actual (published)", "Forecast (initiatives)")
SERIES_COLOURS = (charts.NHS_GREY, charts.NHS_BLUE, charts.NHS_GREEN)


def _parse_day(text: str, what: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(f"{what} must be a date YYYY-MM-DD") from None


def next_march(day: date) -> date:
    """The 31 March on or after ``day`` (the end of its financial year)."""
    end = date(day.year, 3, 31)
    return end if day <= end else date(day.year + 1, 3, 31)


def area_options(request: Request) -> list[tuple[str, str]]:
    """Regions and ICBs of the latest published quarter, (code, "Name (Region|ICB)"), for the area autocomplete."""
    state = get_state(request)
    out: list[tuple[str, str]] = []
    with state.db.lock:
        periods = published.periods(state.db)
        if not periods:
            return out
        for level, word in (("region", "Region"), ("icb", "ICB")):
            try:
                frame = published.rollup(state.db, periods[-1], level)
            except ConfigurationError:
                continue
            out += [(str(c), f"{n or c} ({word})") for c, n in zip(frame["org_code"], frame["org_name"], strict=True)]
    return out


def trajectory_chart(line: pd.DataFrame, actual: pd.DataFrame, fc: pd.DataFrame | None,
                     description: str) -> dict[str, Any]:
    """Vega-Lite spec: the monthly trajectory line, the published quarterly actuals and the initiatives forecast
    (all-six counts), data inline (``parity.web.charts`` conventions)."""
    values: list[dict[str, Any]] = []

    def add(series: str, day: Any, value: Any) -> None:
        iso = charts._clean(day)
        values.append({"month_end": iso, "label": charts._fmt_day(iso), "series": series,
                       "all_six": charts._clean(value)})

    for d, v in zip(line["month_end"], line["expected_all_six"], strict=True):
        add(SERIES[0], d, v)
    for d, v in zip(actual["month_end"], actual["all_six"], strict=True):
        add(SERIES[1], d, v)
    if fc is not None:
        for d, v in zip(fc["month_end"], fc["forecast"], strict=True):
            add(SERIES[2], d, v)
    shown = [s for s in SERIES if any(v["series"] == s for v in values)]
    colours = [c for s, c in zip(SERIES, SERIES_COLOURS, strict=True) if s in shown]
    spec = charts._base(description)
    spec["data"] = {"values": values}
    x = {"field": "month_end", "type": "temporal", "title": None, "scale": {"type": "utc"},
         "axis": {"format": "%b %Y", "labelOverlap": True,
                  "tickCount": {"interval": "month", "step": charts._month_step([v["month_end"] for v in values])}}}
    # From zero: the gap to the target reads as a share of the whole, not magnified by a cut-off axis.
    y = {"field": "all_six", "type": "quantitative", "title": "People with all six checks",
         "scale": {"zero": True}, "axis": {"format": ",.0f"}}
    colour = {"field": "series", "type": "nominal", "title": None, "scale": {"domain": shown, "range": colours}}
    dash = {"field": "series", "type": "nominal", "title": None,
            "scale": {"domain": shown, "range": [[6, 4] if s == SERIES[0] else [1, 0] for s in shown]}}
    tooltip = [{"field": "series", "type": "nominal", "title": "Line"},
               {"field": "label", "type": "nominal", "title": "Month ending"},
               {"field": "all_six", "type": "quantitative", "title": "All six", "format": ",.0f"}]
    spec["layer"] = [{"mark": {"type": "line", "point": {"filled": True, "size": 40, "opacity": 1}},
                      "encoding": {"x": x, "y": y, "color": colour, "strokeDash": dash, "tooltip": tooltip}}]
    return spec


@router.get("/programme/trajectory", response_class=HTMLResponse)
def trajectory_page(request: Request, actor: ActorDep, level: Short = "region", org: Short = "",
                    baseline: Short = "", target: Short = "0.75", by: Short = "",
                    method: Short = "by_register") -> Response:
    state = get_state(request)
    with state.db.lock:
        periods = published.periods(state.db)
    errors: list[dict[str, str]] = []
    values = {"level": level, "org": org.strip().upper(), "baseline": baseline or (periods[-1] if periods else ""),
              "target": target, "by": by, "method": method}
    rows: list[dict[str, Any]] = []
    spec = None
    figures: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    status = 200
    if not periods:
        errors.append({"text": "No published data has been imported yet", "href": "#baseline"})
    else:
        try:
            if level not in ("region", "icb"):
                raise ConfigurationError("Choose region or ICB")
            if method not in METHODS:
                raise ConfigurationError("Choose a method")
            try:
                target_f = float(target)
            except ValueError:
                raise ConfigurationError("The target must be a number such as 0.75") from None
            # Blank: the 31 March that ends the current financial year (targets are set per year), so the
            # default is ahead of today whatever the baseline quarter; the published series stops in the past.
            by_day = _parse_day(by, "The target date") or next_march(today(request))
            with state.db.lock:
                from parity.reports.results import current_choice

                table = build(state.db, values["baseline"], target_f, by_day, level, values["org"] or None, method,
                              structure=current_choice().structure)
                region = (values["org"] if level == "icb" and values["org"]
                          and set(table["parent_code"]) == {values["org"]} else None)
                start = sorted(p for p in periods if p <= values["baseline"])[-4:][0]
                actual = actuals_total(state.db, level, list(table["org_code"]), start, region=region,
                                       structure=table.attrs["structure"])
                codes = list(table["org_code"]) + ([values["org"]] if values["org"] else [])
                inits = initiatives(state.db, area_codes=codes)
            values["by"] = table["by"].iloc[0].isoformat()
            total = total_row(table)
            line = monthly_line(total["all_six"], total["baseline_end"], total["target_count"], total["by"])
            fc = forecast(total, inits) if not inits.empty else None
            name = (table["org_name"].iloc[0] if len(table) == 1 and "org_name" in table.columns else
                    (values["org"] or "All areas"))
            spec = trajectory_chart(line, actual, fc, f"Line chart of people with all six checks: the monthly "
                                                      f"trajectory to the target for {name}, the published "
                                                      f"quarterly figures and the initiatives forecast.")
            rows = table.to_dict(orient="records")
            from parity.orgs import structure_label

            summary = {"name": name, **total, "additional": int(table["additional_patients"].sum()),
                       "structure": structure_label(table.attrs["structure"]),
                       "months": int(table["months"].iloc[0]), "target_pct": round(100 * target_f, 1)}
            merged = line.merge(actual[["month_end", "all_six"]], on="month_end", how="left")
            if fc is not None:
                merged = merged.merge(fc[["month_end", "forecast"]], on="month_end", how="left")
            figures = merged.to_dict(orient="records")
            actual_before = actual[actual["month_end"] < total["baseline_end"]]
            figures = [{"month_end": d, "all_six": a} for d, a in zip(actual_before["month_end"],
                                                                     actual_before["all_six"], strict=True)] + figures
        except ConfigurationError as exc:
            errors.append({"text": str(exc), "href": "#org"})
            status = 422
    ctx = base_context(request, actor, title="Trajectory", values=values, periods=list(reversed(periods)),
                       rows=rows, spec=spec, summary=summary, figures=figures, errors=errors,
                       targets=TARGET_CHOICES, methods=METHODS, method_words=METHOD_WORDS, wide=True,
                       areas=area_options(request),
                       csv_query=urlencode({k: v for k, v in values.items() if v}),
                       breadcrumbs=[("Programme", "/programme/trajectory")])
    return state.templates.TemplateResponse(request, "programme_trajectory.html", ctx, status_code=status)


@router.get("/programme/trajectory.csv")
def trajectory_csv(request: Request, actor: ActorDep, level: Short = "region", org: Short = "",
                   baseline: Short = "", target: Short = "0.75", by: Short = "",
                   method: Short = "by_register") -> Response:
    """The trajectory table as shown on the page (same parameters, same defaults)."""
    from parity.orgs import structure_label
    from parity.reports.export import to_csv_bytes
    from parity.reports.results import current_choice

    state = get_state(request)
    if level not in ("region", "icb"):
        raise ConfigurationError("Choose region or ICB")
    if method not in METHODS:
        raise ConfigurationError("Choose a method")
    try:
        target_f = float(target)
    except ValueError:
        raise ConfigurationError("The target must be a number such as 0.75") from None
    by_day = _parse_day(by, "The target date") or next_march(today(request))
    with state.db.lock:
        periods = published.periods(state.db)
        if not periods:
            raise ConfigurationError("No published data has been imported yet")
        table = build(state.db, baseline or periods[-1], target_f, by_day, level, org.strip().upper() or None,
                      method, structure=current_choice().structure)
    columns = {"org_code": "Code", "org_name": "Name", "register": "Register", "all_six": "All six",
               "percent": "All-six rate (%)", "target_count": "Target count",
               "additional_patients": "Additional patients", "months": "Months", "per_month": "Per month",
               "by": "Target date"}
    frame = table.reindex(columns=list(columns)).rename(columns=columns)
    frame["Baseline quarter"] = baseline or periods[-1]
    frame["Structure"] = structure_label(table.attrs["structure"])
    name = f"trajectory-{level}-{org.strip().upper() or 'all'}-{by_day.isoformat()}.csv"
    return Response(to_csv_bytes(frame), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- initiatives -------------------------------------------------------------------------------------

def _may_edit(actor: Actor, area_code: str | None = None, area_level: str | None = None) -> bool:
    return may_edit_area(actor.user, area_level, area_code)


def _initiatives_page(request: Request, actor: Actor, area: str, values: dict[str, str],
                      errors: list[dict[str, str]], status: int = 200) -> Response:
    state = get_state(request)
    with state.db.lock:
        df = initiatives(state.db, area_code=area or None)
    ctx = base_context(request, actor, title="Initiatives", rows=df.to_dict(orient="records"), area=area,
                       values=values, errors=errors, may_edit=_may_edit(actor), levels=LEVELS, ratings=RATINGS,
                       areas=area_options(request),
                       statuses=STATUSES, wide=True, breadcrumbs=[("Programme", "/programme/trajectory")])
    return state.templates.TemplateResponse(request, "programme_initiatives.html", ctx, status_code=status)


DEFAULTS = {"area_level": "icb", "area_code": "", "title": "", "owner": "", "level": "icb", "start": "", "end": "",
            "ease": "medium", "impact": "medium", "extra_per_month": "", "status": "proposed", "note": ""}


@router.get("/programme/initiatives", response_class=HTMLResponse)
def initiatives_page(request: Request, actor: ActorDep, area: Short = "") -> Response:
    values = dict(DEFAULTS)
    if actor.role == Role.icb and actor.org_code:
        values["area_code"] = actor.org_code
    return _initiatives_page(request, actor, area.strip().upper(), values, [])


@router.get("/programme/initiatives.csv")
def initiatives_csv(request: Request, actor: ActorDep, area: Short = "") -> Response:
    """The initiatives table as shown (latest version of each, optionally one area)."""
    from parity.reports.export import to_csv_bytes

    state = get_state(request)
    with state.db.lock:
        df = initiatives(state.db, area_code=area.strip().upper() or None)
    name = f"initiatives-{area.strip().upper() or 'all'}.csv"
    return Response(to_csv_bytes(df), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/programme/initiatives")
def add_initiative(request: Request, actor: ActorDep,
                   csrf_token: Annotated[str, Form(max_length=200)] = "",
                   area_level: Annotated[str, Form(max_length=10)] = "icb",
                   area_code: Annotated[str, Form(max_length=20)] = "",
                   title: Annotated[str, Form(max_length=200)] = "",
                   owner: Annotated[str, Form(max_length=120)] = "",
                   level: Annotated[str, Form(max_length=10)] = "icb",
                   start: Annotated[str, Form(max_length=10)] = "",
                   end: Annotated[str, Form(max_length=10)] = "",
                   ease: Annotated[str, Form(max_length=10)] = "medium",
                   impact: Annotated[str, Form(max_length=10)] = "medium",
                   extra_per_month: Annotated[str, Form(max_length=12)] = "",
                   status: Annotated[str, Form(max_length=10)] = "proposed",
                   note: Annotated[str, Form(max_length=1000)] = "") -> Response:
    check_csrf(request, csrf_token)
    state = get_state(request)
    code = area_code.strip().upper()
    if not _may_edit(actor, code, area_level):
        record(state.db, actor, "record_initiative", f"initiatives/{code or '-'}", "denied", "")
        raise PermissionDenied("only the programme team, administrators and the ICB itself can add initiatives")
    values = {"area_level": area_level, "area_code": code, "title": title, "owner": owner, "level": level,
              "start": start, "end": end, "ease": ease, "impact": impact, "extra_per_month": extra_per_month,
              "status": status, "note": note}
    errors: list[dict[str, str]] = []
    start_day = end_day = None
    try:
        start_day = _parse_day(start, "The start date")
        if start_day is None:
            errors.append({"text": "Enter the start date", "href": "#start"})
    except ConfigurationError as exc:
        errors.append({"text": str(exc), "href": "#start"})
    try:
        end_day = _parse_day(end, "The end date")
    except ConfigurationError as exc:
        errors.append({"text": str(exc), "href": "#end"})
    try:
        extra = float(extra_per_month)
    except ValueError:
        extra = 0.0
        errors.append({"text": "Enter the expected extra patients per month as a number", "href": "#extra_per_month"})
    if not errors and start_day is not None:
        item = Initiative(area_level=area_level, area_code=code, title=title, owner=owner, level=level,
                          start=start_day, end=end_day, ease=ease, impact=impact, extra_per_month=extra,
                          status=status, note=note)
        try:
            with state.db.lock:
                record_initiative(state.db, item, actor.username)
        except ConfigurationError as exc:
            errors += [{"text": p.strip().capitalize(), "href": "#title"} for p in str(exc).split(";")]
    if errors:
        return _initiatives_page(request, actor, "", values, errors, status=422)
    record(state.db, actor, "record_initiative", f"initiatives/{code}", "allowed", f"{area_level} {status}")
    return RedirectResponse(f"/programme/initiatives?{urlencode({'area': code})}", status_code=303)


# -- highlight report --------------------------------------------------------------------------------

def _highlight(request: Request, region: str, period: str, method: str) -> Any:
    """The report, with Parity's own figures for the region on the page's reporting date (``?as_of=``) in the
    report's structure (``?structure=`` or the one in force for the period) and release (``?codelists=``)."""
    from datetime import date as _date

    from parity.reports.results import current_choice
    from parity.web.deps import reporting_date

    state = get_state(request)
    raw = request.query_params.get("as_of")
    try:
        as_of = reporting_date(request, _date.fromisoformat(raw) if raw else None)
    except ValueError:
        raise ConfigurationError("as_of must be a date, YYYY-MM-DD") from None
    choice = current_choice()
    return build_highlight(state.db, region.strip().upper(), period or None, method=method or "by_register",
                           produced=today(request), structure=choice.structure, results=state.results,
                           as_of=as_of, codelists=choice.codelists)


def _highlight_trend(request: Request, region: str) -> tuple[dict[str, Any] | None, list[list[Any]]]:
    """The region's published all-six rate by quarter (chart and its figures), for the report's headline."""
    state = get_state(request)
    with state.db.lock:
        frame = published.series(state.db, "region", region)
    if frame.empty:
        return None, []
    points = [{"period": d, "percent": p, "label": "All six (published)"}
              for d, p in zip(frame["period_end"], frame["percent"], strict=True)]
    chart = charts.trend_chart(points, description="Line chart of the share of the region's SMI register with all "
                               "six checks at each published quarter end, with the 60% and 75% standards.")
    rows = [[q, charts._fmt_day(charts._clean(d)), r, a, p] for q, d, r, a, p in
            zip(frame["period"], frame["period_end"], frame["register"], frame["all_six"], frame["percent"],
                strict=True)]
    return chart, rows


@router.get("/programme/highlight", response_class=HTMLResponse)
def highlight_page(request: Request, actor: ActorDep, region: Short = "", period: Short = "",
                   method: Short = "by_register") -> Response:
    state = get_state(request)
    report = None
    errors: list[dict[str, str]] = []
    with state.db.lock:
        periods = published.periods(state.db)
        regions = published.rollup(state.db, periods[-1], "region") if periods else pd.DataFrame()
    choices = [(c, n) for c, n in zip(regions.get("org_code", []), regions.get("org_name", []), strict=True)]
    chart, trend_rows = None, []
    if region:
        try:
            report = _highlight(request, region, period, method)
            chart, trend_rows = _highlight_trend(request, region.strip().upper())
        except ConfigurationError as exc:
            errors.append({"text": str(exc), "href": "#region"})
    ctx = base_context(request, actor, title="Highlight report", regions=choices, region=region.upper(),
                       period=period, method=method, report=report, chart=chart, trend_rows=trend_rows,
                       report_html=render_highlight_fragment(report) if report else "", errors=errors,
                       pdf_query=urlencode({"region": region.upper(), "period": period, "method": method}),
                       breadcrumbs=[("Programme", "/programme/trajectory")])
    return state.templates.TemplateResponse(request, "programme_highlight.html", ctx,
                                            status_code=422 if errors else 200)


@router.get("/programme/highlight.pdf")
def highlight_pdf(request: Request, actor: ActorDep, region: Short, period: Short = "",
                  method: Short = "by_register") -> Response:
    report = _highlight(request, region, period, method)
    record(get_state(request).db, actor, "export_highlight_pdf", f"region/{report.region_code}", "allowed",
           report.period)
    return Response(render_highlight_pdf(report), media_type="application/pdf",
                    headers={"Content-Disposition":
                             f'attachment; filename="highlight-{report.region_code}-{report.period}.pdf"'})
