"""Published NHS England SMI health-check figures (SDCS series) beside Parity's own computed figures.

Pages: ``/published`` (England), ``/published/region/{code}``, ``/published/icb/{code}``. Aggregates only,
so any signed-in user may see them. One organisation structure for the whole page (issue 11): the one in force
on the page's reporting date, or ``?structure=``; the published series and Parity's own figures are both shown
in it, and the page names it. Parity's England line is shown only when its data covers all of England.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from parity.errors import ParityError
from parity.web import charts, views
from parity.web.deps import ActorDep, AsOfDep, base_context, get_state
from parity.web.errors import NotFound

router = APIRouter(tags=["published"], include_in_schema=False)

PUBLISHED_LABEL = "Published (NHS England)"
PARITY_LABEL = "Parity (computed)"
CHILD = {"england": "region", "region": "icb", "icb": None}


def _records(frame: Any) -> list[dict[str, Any]]:
    import pandas as pd

    out = []
    for r in frame.to_dict(orient="records"):
        out.append({k: (None if v is pd.NA or (isinstance(v, float) and v != v) else v) for k, v in r.items()})
    return out


def _parity_trend(request: Request, as_of: Any, level: str, code: str) -> list[dict[str, Any]]:
    state = get_state(request)
    if level == "england" and state.results.england_name(state.results.structure_for(as_of)) != "England":
        return []  # one region's data is never shown as England
    try:
        return views.trend(state.results, "phsmi", as_of, level, code)
    except ParityError:
        return []


def _page(request: Request, actor: Any, as_of: Any, level: str, code: str) -> Response:
    from parity.orgs import structure_label
    from parity.reports import published as pub

    state = get_state(request)
    structure = state.results.structure_for(as_of)
    with state.db.lock:
        labels = pub.periods(state.db)
        if not labels:
            raise NotFound("no published figures imported yet (parity published import FILE)")
        series = pub.series(state.db, level, code, structure=structure)
        if series.empty:
            raise NotFound(f"no published figures for {views.LEVEL_LABELS[level]} {code}")
        latest = labels[-1]
        child = CHILD[level]
        children = []
        unmapped: list[str] = []
        if child:
            table = pub.rollup(state.db, latest, child, region=code if level == "region" else None,
                               structure=structure)
            children = _records(table)
            unmapped = list(table.attrs.get("unmapped", []))
    rows = _records(series)
    name = rows[-1]["org_name"]
    parity_points = _parity_trend(request, as_of, level, code)
    points = [{"period": r["period_end"], "percent": r["percent"], "label": PUBLISHED_LABEL} for r in rows]
    points += [{"period": p["period"], "percent": p["percent"], "label": PARITY_LABEL} for p in parity_points]
    ctx = base_context(
        request, actor, title=f"Published figures – {name}", level=level, code=code, org_name=name,
        level_label=views.LEVEL_LABELS[level], rows=list(reversed(rows)), latest=latest, children=children,
        child_level=child, child_label=views.LEVEL_LABELS.get(child or "", ""), unmapped=unmapped,
        parity_rows=list(reversed(parity_points)), parity_structure=structure_label(structure), as_of=as_of,
        chart=charts.trend_chart(points, description=f"All-six rate over time for {name}: published and Parity"),
        breadcrumbs=[("Published: England", "/published")] if level != "england" else [],
    )
    return state.templates.TemplateResponse(request, "published.html", ctx)


@router.get("/published", response_class=HTMLResponse)
def published_england(request: Request, actor: ActorDep, as_of: AsOfDep) -> Response:
    """England: the published series, the regions in the latest quarter, and Parity's England trend."""
    return _page(request, actor, as_of, "england", "ENG")


@router.get("/published/region/{code}", response_class=HTMLResponse)
def published_region(request: Request, code: str, actor: ActorDep, as_of: AsOfDep) -> Response:
    """One NHS England region, its ICBs in the latest quarter, and Parity's figures (one structure)."""
    return _page(request, actor, as_of, "region", code.strip().upper()[:10])


@router.get("/published/icb/{code}", response_class=HTMLResponse)
def published_icb(request: Request, code: str, actor: ActorDep, as_of: AsOfDep) -> Response:
    """One ICB and Parity's figures for the same ICB code, if Parity has it (one structure)."""
    return _page(request, actor, as_of, "icb", code.strip().upper()[:10])


@router.get("/published.csv")
def published_csv(request: Request, actor: ActorDep, as_of: AsOfDep, level: str = "england", code: str = "ENG",
                  table: str = "series") -> Response:
    """A published page's table as CSV: ``table=series`` (the organisation by quarter) or ``table=areas`` (the
    areas one level down in the latest quarter), in the page's structure."""
    from parity.orgs import structure_label
    from parity.reports import published as pub
    from parity.reports.export import to_csv_bytes

    if level not in CHILD:
        raise NotFound("no such published level")
    if table not in ("series", "areas"):
        raise NotFound("no such published table")
    state = get_state(request)
    structure = state.results.structure_for(as_of)
    code = code.strip().upper()[:10]
    with state.db.lock:
        labels = pub.periods(state.db)
        if not labels:
            raise NotFound("no published figures imported yet (parity published import FILE)")
        if table == "series":
            frame = pub.series(state.db, level, code, structure=structure)
        elif CHILD[level] is None:
            raise NotFound(f"no areas below {views.LEVEL_LABELS[level]}")
        else:
            frame = pub.rollup(state.db, labels[-1], CHILD[level], region=code if level == "region" else None,
                               structure=structure)
    frame = frame.copy()
    frame["structure"] = structure_label(structure)
    name = f"published-{table}-{level}-{code}.csv"
    return Response(to_csv_bytes(frame), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
