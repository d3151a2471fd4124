"""Inequalities page (product.md M8): an organisation's all-six rate by age band, sex, ethnic group and deprivation.

Any signed-in role may see it: aggregates only. Breakdowns make small cells, so disclosure control
(``Settings.suppress_below``/``round_to``, with secondary suppression; ``parity.reports.inequalities``) is
always applied here, whoever is asking.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from parity.errors import ConfigurationError
from parity.reports.inequalities import BREAKDOWNS, BY_LABELS, BY_PHRASES, REFERENCE, inequalities
from parity.web import charts
from parity.web.deps import ActorDep, AsOfDep, get_state
from parity.web.routes.dashboard import MeasureQuery, _org_context

router = APIRouter(tags=["inequalities"], include_in_schema=False)


@router.get("/orgs/{level}/{code}/inequalities", response_class=HTMLResponse)
def inequalities_page(request: Request, level: str, code: str, actor: ActorDep, as_of: AsOfDep,
                      measure: MeasureQuery = "phsmi",
                      by: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    """All-six rate, Wilson 95% CI and rate ratio (95% CI) by group; one table and chart per breakdown."""
    if by is not None and by not in BREAKDOWNS:
        raise ConfigurationError(f"by must be one of {', '.join(BREAKDOWNS)}")
    state = get_state(request)
    ctx = _org_context(request, actor, level, code, as_of, measure)
    settings = state.settings
    sections = []
    for b in ([by] if by else BREAKDOWNS):
        key = ("inequalities", measure, as_of, level, code, b, settings.suppress_below, settings.round_to)
        rows = state.results.derived(key, lambda b=b: _records(
            inequalities(state.results, measure, as_of, level, code, by=b, settings=settings)))
        sections.append({
            "by": b,
            "label": BY_LABELS[b],
            "phrase": BY_PHRASES[b],
            "reference": REFERENCE[b],
            "rows": rows,
            "chart": rate_chart(rows, BY_LABELS[b], BY_PHRASES[b]),
        })
    ctx.update(
        title=f"Inequalities – {ctx['row']['org_name']}",
        child_level=_child_level(level),
        sections=sections,
        by=by,
        breakdowns=[(b, BY_LABELS[b]) for b in BREAKDOWNS],
        suppress_below=settings.suppress_below,
        round_to=settings.round_to,
    )
    return state.templates.TemplateResponse(request, "inequalities.html", ctx)


@router.get("/orgs/{level}/{code}/inequalities.csv")
def inequalities_csv(request: Request, level: str, code: str, actor: ActorDep, as_of: AsOfDep,
                     measure: MeasureQuery = "phsmi",
                     by: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    """The inequalities tables as one CSV (a row per breakdown and group), with disclosure control applied."""
    from parity.web.routes.dashboard import _csv

    if by is not None and by not in BREAKDOWNS:
        raise ConfigurationError(f"by must be one of {', '.join(BREAKDOWNS)}")
    state = get_state(request)
    _org_context(request, actor, level, code, as_of, measure)
    frames = []
    for b in ([by] if by else BREAKDOWNS):
        df = inequalities(state.results, measure, as_of, level, code, by=b, settings=state.settings)
        frames.append(df.assign(breakdown=BY_LABELS[b]))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    first = ["breakdown", *[c for c in out.columns if c != "breakdown"]]
    return _csv(out[first], f"inequalities-{level}-{code}-{measure}-{as_of}.csv", request, as_of, measure)


def rate_chart(rows: list[dict[str, Any]], label: str, phrase: str) -> dict[str, Any]:
    """Vega-Lite: each group's all-six rate as a point with its 95% CI as a bar; suppressed groups left out."""
    values = [{"group": r["group"], "percent": r["percent"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
               "register": r["register"], "reference": "Reference group" if r["is_reference"] else "Other groups"}
              for r in rows if r["percent"] is not None]
    order = [r["group"] for r in rows]
    y = {"field": "group", "type": "nominal", "title": label, "sort": order, "axis": {"labelLimit": 240}}
    x = {"type": "quantitative", "scale": {"domain": [0, 100], "nice": False}, "axis": {"values": [0, 20, 40, 60, 80,
                                                                                                  100]}}
    tooltip = [{"field": "group", "type": "nominal", "title": label},
               {"field": "percent", "type": "quantitative", "title": "All six (%)", "format": ".1f"},
               {"field": "ci_low", "type": "quantitative", "title": "95% CI low (%)", "format": ".1f"},
               {"field": "ci_high", "type": "quantitative", "title": "95% CI high (%)", "format": ".1f"},
               {"field": "register", "type": "quantitative", "title": "Register"}]
    return {
        "$schema": charts.SCHEMA,
        "description": f"All-six rate by {phrase} with 95% confidence intervals.",
        "width": "container",
        "height": max(120, 40 * len(order)),
        "autosize": {"type": "fit-x", "contains": "padding"},
        "config": charts.CONFIG,
        "data": {"values": values},
        "layer": [
            {"mark": {"type": "rule", "strokeWidth": 2, "color": charts.NHS_GREY},
             "encoding": {"y": y, "x": {**x, "field": "ci_low", "title": "% with all six checks"},
                          "x2": {"field": "ci_high"}}},
            {"mark": {"type": "point", "size": 90, "filled": True, "shape": "diamond"},
             "encoding": {"y": y, "x": {**x, "field": "percent"}, "tooltip": tooltip,
                          "color": {"field": "reference", "type": "nominal", "title": None,
                                    "scale": {"domain": ["Reference group", "Other groups"],
                                              "range": [charts.NHS_DARK_GREY, charts.NHS_BLUE]}}}},
        ],
    }


def _child_level(level: str) -> str | None:
    from parity.web.views import CHILD_LEVEL

    return CHILD_LEVEL.get(level)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain Python values (pandas NA → None), each with ``ratio_suppressed``: its rate ratio is missing
    because its own or the reference group's counts are suppressed (not because a rate is 0)."""
    out = []
    for rec in df.to_dict("records"):
        out.append({k: (None if v is None or (not isinstance(v, str) and pd.isna(v)) else
                        (v.item() if hasattr(v, "item") else v)) for k, v in rec.items()})
    refs = {r["org_code"]: r for r in out if r["is_reference"]}
    for r in out:
        ref = refs.get(r["org_code"], {})
        r["ratio_suppressed"] = any(x.get(k) is None for x in (r, ref) for k in ("register", "all_six"))
    return out
