"""Vega-Lite v6 chart specifications as plain dictionaries.

Pages put a spec in the page with the ``chart`` macro (``templates/macros.html``) and ``static/parity.js`` draws it
with the vendored vega-embed. Each builder returns a self-contained spec: the data is embedded inline
(``data: {"values": [...]}``), never a URL, so a chart needs nothing beyond the page itself and renders on a network
with no internet access. The ``$schema`` URL is only a label; vega-embed never fetches it.

No altair: these are small, typed functions whose output is easy to test and to read in the page source.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# National standards for the all-six rate: one definition (parity.rules.standards).
from parity.rules.standards import STANDARDS

__all__ = [
    "FUNNEL_BANDS",
    "NHS_BLUE",
    "NHS_DARK_GREY",
    "NHS_GREEN",
    "NHS_GREY",
    "NHS_RED",
    "NHS_WARM_YELLOW",
    "NHS_YELLOW",
    "SCHEMA",
    "STANDARDS",
    "check_bars",
    "funnel_chart",
    "small_multiples",
    "trend_chart",
]

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"

# NHS identity colours (https://www.england.nhs.uk/nhsidentity/identity-guidelines/colours/).
NHS_BLUE = "#005eb8"
NHS_RED = "#d5281b"
NHS_YELLOW = "#ffeb3b"
NHS_WARM_YELLOW = "#ffb81c"
NHS_GREEN = "#007f3b"
NHS_GREY = "#4c6272"
NHS_DARK_GREY = "#212b32"  # NHS.UK body text colour
_NHS_PURPLE = "#330072"
_NHS_AQUA_GREEN = "#00a499"
_NHS_PINK = "#ae2573"
_NHS_DARK_BLUE = "#003087"
_BORDER_GREY = "#d8dde0"

# Series colours in the order they are handed out. Dark, well-separated NHS colours first; every one has at
# least 3:1 contrast against white (WCAG 1.4.11 non-text contrast) except warm yellow, which comes last.
PALETTE = [NHS_BLUE, NHS_GREEN, _NHS_PURPLE, NHS_RED, _NHS_AQUA_GREEN, _NHS_PINK, NHS_GREY, _NHS_DARK_BLUE,
           NHS_WARM_YELLOW]

HEIGHT = 300

# Funnel-plot bands (the codes ``parity.reports.variation.funnel`` gives each point): the legend label, a colour
# and a point shape (shape as well as colour, so the chart can be read without colour vision). The limits are
# statistical (how far a rate is from the overall rate, given the register size), not a judgement, so the bands
# never use the red/amber/green of the standards (issue 11): purple beyond 99.8%, blue beyond 95%, grey within.
# A band not listed here is shown under its own name, grey, with a circle.
FUNNEL_BANDS: dict[str, tuple[str, str, str]] = {
    "below_998": ("Below the 99.8% control limit", _NHS_PURPLE, "triangle-down"),
    "below_95": ("Below the 95% control limit", NHS_BLUE, "triangle-down"),
    "within": ("Within the control limits", NHS_GREY, "circle"),
    "above_95": ("Above the 95% control limit", NHS_BLUE, "triangle-up"),
    "above_998": ("Above the 99.8% control limit", _NHS_PURPLE, "triangle-up"),
}

CONFIG: dict[str, Any] = {
    # Arial: the NHS.UK fallback font, and the vendored CSS ships no web font.
    "font": "Arial, Helvetica, sans-serif",
    "background": "#ffffff",
    "view": {"stroke": None},
    "axis": {
        "labelFontSize": 13,
        "titleFontSize": 14,
        "titleFontWeight": "bold",
        "labelColor": NHS_DARK_GREY,
        "titleColor": NHS_DARK_GREY,
        "gridColor": _BORDER_GREY,
        "domainColor": NHS_GREY,
        "tickColor": NHS_GREY,
    },
    "legend": {
        "labelFontSize": 13,
        "titleFontSize": 14,
        "labelColor": NHS_DARK_GREY,
        "titleColor": NHS_DARK_GREY,
        "orient": "bottom",
        "direction": "horizontal",
        "columns": 3,
        "labelLimit": 320,
    },
    "range": {"category": PALETTE},
    "line": {"strokeWidth": 3},
    "point": {"size": 70, "filled": True},
    "text": {"fontSize": 12, "color": NHS_DARK_GREY},
}


def trend_chart(
    rows: Iterable[Mapping[str, Any]],
    standards: Sequence[float] = STANDARDS,
    *,
    description: str | None = None,
) -> dict[str, Any]:
    """Line chart of percentages over time, one line per series, with the national standards drawn across it.

    Args:
        rows: one dict per point with ``period`` (ISO date string, ``date`` or ``datetime``), ``percent``
            (0-100, may be None for a gap) and ``label`` (the series name, e.g. "All six" or a check's label).
        standards: percentages drawn as dashed horizontal rules labelled "Standard N%".
        description: text Vega puts on the SVG as its accessible name.

    Returns:
        A Vega-Lite v6 spec (JSON-serialisable dict) with the data inline.
    """
    values = []
    for r in rows:
        period = _clean(r["period"])
        values.append({
            "period": period,
            # The tooltip shows this ready-made label: Vega-Lite 6.4 compiles a UTC-formatted temporal tooltip to
            # utc(), Vega's date constructor, and shows NaN.
            "period_label": _fmt_day(period),
            "percent": _clean(r["percent"]),
            "label": str(r["label"]),
        })
    series = list(dict.fromkeys(v["label"] for v in values))
    colour = {"field": "label", "type": "nominal", "title": None, "sort": series}
    # Periods are calendar dates: read and show them in UTC so a browser west of Greenwich does not shift
    # 31 March to 30 March. One tick a month (or every few months on a long series), never a repeated month.
    x = {
        "field": "period",
        "type": "temporal",
        "title": None,
        "scale": {"type": "utc"},
        # With a UTC scale Vega formats axis labels in UTC by itself (a formatType here would drop the format).
        "axis": {"format": "%b %Y", "labelOverlap": True,
                 "tickCount": {"interval": "month", "step": _month_step([v["period"] for v in values])}},
    }
    y = _percent_axis("percent", "% of register")
    tooltip = [
        {"field": "label", "type": "nominal", "title": "Measure"},
        {"field": "period_label", "type": "nominal", "title": "Period ending"},
        {"field": "percent", "type": "quantitative", "title": "% of register", "format": ".1f"},
    ]
    spec = _base(description or "Percentage of the register over time, with the national standards.")
    spec["data"] = {"values": values}
    spec["layer"] = [
        {
            # Points on the line mark the measured periods (a line alone hides where a value is missing).
            # One colour legend only: Vega-Lite cannot merge a colour and a shape legend across layers.
            "mark": {"type": "line", "point": {"filled": True, "size": 60, "opacity": 1}},
            "encoding": {"x": x, "y": y, "color": colour, "tooltip": tooltip},
        },
        _standard_rules("y", standards),
    ]
    spec["resolve"] = {"scale": {"y": "shared"}}
    return spec


def small_multiples(
    rows: Iterable[Mapping[str, Any]],
    standards: Sequence[float] = STANDARDS,
    *,
    columns: int = 3,
    panel_width: int = 260,
    description: str | None = None,
) -> dict[str, Any]:
    """One small line chart per series (e.g. per check), side by side on the same 0-100 scale.

    Six lines overlaid on one chart hide each other where rates are close; a panel each keeps every series
    readable and still comparable (same axes). The standards are dashed rules in every panel.

    Args:
        rows: as ``trend_chart``: ``period``, ``percent`` (may be None) and ``label`` (one panel per label).
        columns: panels per row. panel_width: each panel's width in pixels (facets cannot fill the container).
        description: text Vega puts on the SVG as its accessible name.
    """
    values = [{"period": _clean(r["period"]), "period_label": _fmt_day(_clean(r["period"])),
               "percent": _clean(r["percent"]), "label": str(r["label"])} for r in rows]
    series = list(dict.fromkeys(v["label"] for v in values))
    x = {"field": "period", "type": "temporal", "title": None, "scale": {"type": "utc"},
         "axis": {"format": "%b %y", "labelOverlap": True, "labelAngle": 0,
                  "tickCount": {"interval": "month", "step": max(3, _month_step([v["period"] for v in values]))}}}
    y = {**_percent_axis("percent", "% of register"), "axis": {"values": [0, 25, 50, 75, 100]}}
    layers: list[dict[str, Any]] = [
        {"mark": {"type": "line", "color": NHS_BLUE, "point": {"filled": True, "size": 40, "color": NHS_BLUE}},
         "encoding": {"x": x, "y": y, "tooltip": [
             {"field": "label", "type": "nominal", "title": "Check"},
             {"field": "period_label", "type": "nominal", "title": "Period ending"},
             {"field": "percent", "type": "quantitative", "title": "% of register", "format": ".1f"}]}},
    ]
    for s in standards:
        layers.append({"mark": {"type": "rule", "strokeDash": [6, 4], "strokeWidth": 1.5, "color": NHS_DARK_GREY},
                       "encoding": {"y": {"datum": float(s), "type": "quantitative"}}})
    return {
        "$schema": SCHEMA,
        "description": description or "One small chart per series: percentage of the register over time.",
        "config": CONFIG,
        "data": {"values": values},
        "facet": {"field": "label", "type": "nominal", "title": None, "sort": series,
                  "header": {"labelFontSize": 14, "labelFontWeight": "bold", "labelColor": NHS_DARK_GREY}},
        "columns": columns,
        "spec": {"width": panel_width, "height": 160, "layer": layers},
        "resolve": {"scale": {"y": "shared", "x": "shared"}},
    }


def check_bars(
    rows: Iterable[Mapping[str, Any]],
    standards: Sequence[float] = STANDARDS,
    *,
    description: str | None = None,
) -> dict[str, Any]:
    """Horizontal stacked bars, one per check: the percentage done and the percentage declined.

    Args:
        rows: one dict per check, in display order, with ``check`` (label), ``percent`` (done, 0-100) and
            ``declined_percent`` (0-100, or None when not recorded).
        standards: percentages drawn as dashed vertical rules labelled "Standard N%".
        description: text Vega puts on the SVG as its accessible name.

    Returns:
        A Vega-Lite v6 spec (JSON-serialisable dict) with the data inline.
    """
    values: list[dict[str, Any]] = []
    for r in rows:
        done, declined = _clean(r["percent"]), _clean(r.get("declined_percent"))
        common = {"check": str(r["check"]), "done": done, "declined": declined}
        # Long form here rather than a Vega fold/calculate transform: no expressions to evaluate in the page.
        values.append({**common, "status": "Done", "order": 0, "value": done})
        if declined is not None:
            values.append({**common, "status": "Declined", "order": 1, "value": declined})
    checks = list(dict.fromkeys(v["check"] for v in values))
    spec = _base(description or "Percentage of the register with each check done or declined, with the standards.")
    spec["data"] = {"values": values}
    spec["layer"] = [
        {
            "mark": {"type": "bar", "height": {"band": 0.7}},
            "encoding": {
                "y": {"field": "check", "type": "nominal", "title": None, "sort": checks,
                      "axis": {"labelLimit": 240}},
                "x": {**_percent_axis("value", "% of register"), "stack": "zero"},
                "color": {
                    "field": "status",
                    "type": "nominal",
                    "title": None,
                    "scale": {"domain": ["Done", "Declined"], "range": [NHS_BLUE, "#aeb7bd"]},
                },
                "order": {"field": "order", "type": "quantitative"},
                "tooltip": [
                    {"field": "check", "type": "nominal", "title": "Check"},
                    {"field": "done", "type": "quantitative", "title": "% done", "format": ".1f"},
                    {"field": "declined", "type": "quantitative", "title": "% declined", "format": ".1f"},
                ],
            },
        },
        _standard_rules("x", standards),
    ]
    return spec


def funnel_chart(
    points: Iterable[Mapping[str, Any]],
    limits: Iterable[Mapping[str, Any]],
    centre: float,
    *,
    bands: Mapping[str, tuple[str, str, str]] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Funnel plot: each area's percentage against its register size, inside 95% and 99.8% control limits.

    Args:
        points: one dict per area with ``org_code``, ``org_name``, ``register`` (denominator), ``percent`` (0-100)
            and ``band`` (a code such as "within" or "below_95"; see ``FUNNEL_BANDS``). Other keys are ignored.
        limits: the limit curves sampled along the register axis: dicts with ``n`` and ``lower_95``, ``upper_95``,
            ``lower_998``, ``upper_998`` as percentages (None where a limit does not exist).
        centre: the centre line (the overall percentage, or a target).
        bands: band code -> (legend label, colour, point shape); defaults to ``FUNNEL_BANDS``.
        description: text Vega puts on the SVG as its accessible name.

    Returns:
        A Vega-Lite v6 spec (JSON-serialisable dict) with the data inline.
    """
    styles = dict(FUNNEL_BANDS if bands is None else bands)
    point_values = []
    for p in points:
        code = str(p["band"])
        point_values.append({
            "org_code": str(p["org_code"]),
            "org_name": str(p["org_name"]),
            "register": _clean(p["register"]),
            "percent": _clean(p["percent"]),
            "band": styles[code][0] if code in styles else code,
        })
    # Legend order: the known bands worst to best, then any others as they first appear.
    present = list(dict.fromkeys(v["band"] for v in point_values))
    known = [style for style in styles.values() if style[0] in present]
    others = [(label, NHS_GREY, "circle") for label in present if label not in {k[0] for k in known}]
    legend = known + others
    band_labels = [b[0] for b in legend]
    band_colour = [b[1] for b in legend]
    band_shape = [b[2] for b in legend]

    limit_values: list[dict[str, Any]] = []
    for lim in limits:
        n = _clean(lim["n"])
        for key, kind, side in (
            ("lower_95", "95% limits", "lower"),
            ("upper_95", "95% limits", "upper"),
            ("lower_998", "99.8% limits", "lower"),
            ("upper_998", "99.8% limits", "upper"),
        ):
            value = _clean(lim.get(key))
            if value is not None:
                limit_values.append({"n": n, "limit": kind, "side": side, "line": f"{kind} {side}", "value": value})

    x = {"field": "register", "type": "quantitative", "title": "Patients on the SMI register",
         "scale": {"zero": True}, "axis": {"format": ",d", "tickCount": 8, "labelOverlap": True}}
    y = _percent_axis("percent", "% of register")
    centre_value = _clean(centre)
    spec = _base(description or "Funnel plot of each area's percentage against its register size.")
    spec["layer"] = [
        {
            "data": {"values": limit_values},
            "mark": {"type": "line", "strokeWidth": 1.5, "color": NHS_GREY, "interpolate": "monotone"},
            "encoding": {
                "x": {"field": "n", "type": "quantitative"},
                "y": {"field": "value", "type": "quantitative"},
                "detail": {"field": "line", "type": "nominal"},
                "strokeDash": {
                    "field": "limit",
                    "type": "nominal",
                    "title": "Control limits",
                    "scale": {"domain": ["95% limits", "99.8% limits"], "range": [[6, 4], [2, 2]]},
                },
            },
        },
        {
            "data": {"values": [{"centre": centre_value, "label": f"Centre {centre_value:.1f}%"}]},
            "layer": [
                {
                    "mark": {"type": "rule", "color": NHS_DARK_GREY, "strokeWidth": 1.5},
                    "encoding": {"y": {"field": "centre", "type": "quantitative"}},
                },
                *_haloed_text(
                    {"type": "text", "align": "right", "baseline": "bottom", "dx": -4, "dy": -4, "x": "width"},
                    {"y": {"field": "centre", "type": "quantitative"}, "text": {"field": "label"}},
                ),
            ],
        },
        {
            "data": {"values": point_values},
            "mark": {"type": "point", "filled": True, "size": 80, "stroke": NHS_DARK_GREY, "strokeWidth": 0.6,
                     "opacity": 0.9},
            "encoding": {
                "x": x,
                "y": y,
                "color": {"field": "band", "type": "nominal", "title": "Band",
                          "scale": {"domain": band_labels, "range": band_colour}},
                "shape": {"field": "band", "type": "nominal", "title": "Band",
                          "scale": {"domain": band_labels, "range": band_shape}},
                "tooltip": [
                    {"field": "org_name", "type": "nominal", "title": "Area"},
                    {"field": "org_code", "type": "nominal", "title": "Code"},
                    {"field": "register", "type": "quantitative", "title": "On register", "format": ","},
                    {"field": "percent", "type": "quantitative", "title": "% of register", "format": ".1f"},
                    {"field": "band", "type": "nominal", "title": "Band"},
                ],
            },
        },
    ]
    spec["resolve"] = {"scale": {"x": "shared", "y": "shared"}}
    return spec


# ---------------------------------------------------------------------------------------------------- helpers


def _base(description: str) -> dict[str, Any]:
    """Top-level keys every Parity chart shares."""
    return {
        "$schema": SCHEMA,
        "description": description,
        "width": "container",
        "height": HEIGHT,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "config": CONFIG,
    }


def _percent_axis(field: str, title: str) -> dict[str, Any]:
    """A 0-100 percentage position channel on ``field`` (fixed domain, so charts on a page compare at a glance)."""
    return {
        "field": field,
        "type": "quantitative",
        "title": title,
        "scale": {"domain": [0, 100], "nice": False},
        "axis": {"values": [0, 20, 40, 60, 80, 100]},
    }


def _standard_rules(channel: str, standards: Sequence[float]) -> dict[str, Any]:
    """Dashed rules at each standard, with a "Standard N%" label, on the ``channel`` ("x" or "y") axis."""
    values = [{"standard": float(s), "label": f"Standard {_fmt_pct(s)}"} for s in standards]
    position = {"field": "standard", "type": "quantitative", "scale": {"domain": [0, 100], "nice": False}}
    encoding = {channel: position, "text": {"field": "label"}}
    layers: list[dict[str, Any]] = [
        {
            "mark": {"type": "rule", "strokeDash": [6, 4], "strokeWidth": 2, "color": NHS_DARK_GREY},
            "encoding": {channel: position},
        }
    ]
    if channel == "y":
        # Labels at the right-hand end, just above their line.
        mark = {"type": "text", "align": "right", "baseline": "bottom", "dx": -4, "dy": -3, "x": "width"}
        layers += _haloed_text(mark, encoding)
    else:
        # Labels above the plot, outside the bars: the first ends at its line and the others start at theirs,
        # so neighbouring labels (60% and 75%) do not overlap.
        mark = {"type": "text", "baseline": "bottom", "y": -4}
        layers.append({"data": {"values": values[:1]},
                       "layer": _haloed_text({**mark, "align": "right", "dx": 3}, encoding)})
        if len(values) > 1:
            layers.append({"data": {"values": values[1:]},
                           "layer": _haloed_text({**mark, "align": "left", "dx": -3}, encoding)})
    return {"data": {"values": values}, "layer": layers}


def _haloed_text(mark: dict[str, Any], encoding: dict[str, Any]) -> list[dict[str, Any]]:
    """A bold text mark over a white outline of itself, so it stays legible where it crosses lines or points."""
    text = {**mark, "fontWeight": "bold"}
    return [
        {"mark": {**text, "stroke": "#ffffff", "strokeWidth": 4, "strokeJoin": "round", "aria": False},
         "encoding": encoding},
        {"mark": text, "encoding": encoding},
    ]


def _fmt_pct(value: float) -> str:
    """60.0 -> '60%', 62.5 -> '62.5%'."""
    return f"{value:g}%"


def _fmt_day(value: Any) -> str | None:
    """'2026-03-31' -> '31 Mar 2026' (NHS.UK style); anything unparseable is shown as it is."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return f"{day.day} {day:%b %Y}"


def _month_step(periods: Sequence[Any]) -> int:
    """Months between x-axis ticks: 1, 2, 3, 6 or 12, so a series of any length gets at most about 12 ticks."""
    months = []
    for p in periods:
        try:
            d = date.fromisoformat(str(p)[:10])
        except ValueError:
            continue
        months.append(d.year * 12 + d.month)
    span = max(months) - min(months) if months else 0
    return next((step for step in (1, 2, 3, 6) if span / step <= 12), 12)


def _clean(value: Any) -> Any:
    """A value safe for JSON: dates as ISO strings, NaN/NA as None, numpy/Decimal numbers as Python numbers."""
    # pandas missing values (checked by name, so this module does not import pandas); NaT is a datetime.
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    item = getattr(value, "item", None)  # numpy scalars (including datetime64) to Python values
    if callable(item) and not isinstance(value, (str, bytes, datetime, date)):
        value = item()
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
