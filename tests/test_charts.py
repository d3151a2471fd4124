"""Vega-Lite spec builders: plain JSON, data inline only, the national standards drawn, funnel limits present.

Whether the specs actually draw (in Chromium, under the app's CSP) is tested in test_static_assets.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from parity.web import charts


@pytest.fixture
def trend_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i, period in enumerate(["2025-06-30", "2025-09-30", "2025-12-31", "2026-03-31"]):
        rows.append({"period": period, "percent": 55.0 + i, "label": "All six"})
        rows.append({"period": date.fromisoformat(period), "percent": 70.0 + i, "label": "Blood pressure"})
    rows.append({"period": "2026-06-30", "percent": float("nan"), "label": "All six"})  # a gap
    return rows


@pytest.fixture
def bar_rows() -> list[dict[str, Any]]:
    return [
        {"check": "Body mass index", "percent": 81.2, "declined_percent": 2.1},
        {"check": "Blood pressure", "percent": 84.0, "declined_percent": None},
        {"check": "Cholesterol", "percent": np.float64(63.0), "declined_percent": Decimal("4.2")},
    ]


@pytest.fixture
def funnel_args() -> tuple[list[dict[str, Any]], list[dict[str, Any]], float]:
    points = [
        {"org_code": "A81001", "org_name": "Practice <A>", "register": np.int64(120), "percent": 48.0,
         "band": "below_95", "rate": 0.48, "z": -2.1},
        {"org_code": "A81002", "org_name": "Practice B", "register": 900, "percent": 66.0, "band": "within"},
        {"org_code": "A81003", "org_name": "Practice C", "register": 400, "percent": 90.0, "band": "mystery"},
    ]
    limits = [{"n": n, "lower_95": 65 - 90 / n**0.5, "upper_95": 65 + 90 / n**0.5,
               "lower_998": None if n < 50 else 65 - 140 / n**0.5, "upper_998": min(100.0, 65 + 140 / n**0.5)}
              for n in (20, 100, 400, 1000)]
    return points, limits, 65.0


@pytest.fixture
def all_specs(trend_rows: list[dict[str, Any]], bar_rows: list[dict[str, Any]],
              funnel_args: tuple[list[dict[str, Any]], list[dict[str, Any]], float]) -> dict[str, dict[str, Any]]:
    return {
        "trend": charts.trend_chart(trend_rows),
        "bars": charts.check_bars(bar_rows),
        "funnel": charts.funnel_chart(*funnel_args),
    }


def walk(node: Any, path: str = "$") -> Iterator[tuple[str, Any, Any]]:
    """Every (path, key, value) in a nested spec."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


def layers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every unit or layer spec, depth first."""
    yield spec
    for child in spec.get("layer", []):
        yield from layers(child)


def marks(spec: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in layers(spec) if isinstance(s.get("mark"), dict) and s["mark"].get("type") == kind]


def rule_values(spec: dict[str, Any]) -> set[tuple[float, str]]:
    """(standard, label) pairs of the dashed standard rules."""
    found = set()
    for s in layers(spec):
        if "data" in s and any(r.get("type") == "rule" for r in (c.get("mark", {}) for c in s.get("layer", []))):
            found |= {(v["standard"], v["label"]) for v in s["data"]["values"] if "standard" in v}
    return found


def test_specs_are_strict_json(all_specs: dict[str, dict[str, Any]]) -> None:
    for name, spec in all_specs.items():
        text = json.dumps(spec, allow_nan=False)  # NaN is not JSON: a missing value must become null
        assert json.loads(text) == spec, name


def test_common_top_level(all_specs: dict[str, dict[str, Any]]) -> None:
    for name, spec in all_specs.items():
        assert spec["$schema"] == "https://vega.github.io/schema/vega-lite/v6.json", name
        assert spec["width"] == "container", name
        assert 250 <= spec["height"] <= 350, name
        assert "Arial" in spec["config"]["font"], name
        assert spec["description"], name
        colours = json.dumps(spec["config"]).lower()
        assert charts.NHS_BLUE in colours and charts.NHS_GREEN in colours, name


def test_data_is_inline_only(all_specs: dict[str, dict[str, Any]]) -> None:
    """Nothing a browser would fetch: every data source is {"values": [...]}, no URL anywhere but $schema."""
    for name, spec in all_specs.items():
        data_nodes = 0
        for path, key, value in walk(spec):
            assert key != "url", f"{name}: url at {path}"
            if key == "data":
                data_nodes += 1
                assert set(value) == {"values"} and isinstance(value["values"], list), f"{name}: {path}"
            if isinstance(value, str) and key != "$schema":
                assert "://" not in value, f"{name}: {path}.{key} = {value!r}"
        assert data_nodes >= 1, name


def test_trend_chart(all_specs: dict[str, dict[str, Any]], trend_rows: list[dict[str, Any]]) -> None:
    spec = all_specs["trend"]
    assert rule_values(spec) == {(60.0, "Standard 60%"), (75.0, "Standard 75%")}
    rules = marks(spec, "rule")
    assert rules and all(r["mark"]["strokeDash"] for r in rules)
    texts = {json.dumps(t["encoding"]["text"]) for t in marks(spec, "text")}
    assert texts == {json.dumps({"field": "label"})}

    values = spec["data"]["values"]
    assert len(values) == len(trend_rows)
    assert {v["period"] for v in values} >= {"2025-06-30", "2026-03-31"}  # dates became ISO strings
    assert values[-1]["percent"] is None  # NaN became a gap
    assert values[0]["period_label"] == "30 Jun 2025"

    line = marks(spec, "line")[0]
    assert line["mark"]["point"]
    enc = line["encoding"]
    assert enc["x"]["type"] == "temporal" and enc["x"]["scale"]["type"] == "utc"
    assert enc["y"]["scale"]["domain"] == [0, 100] and enc["y"]["title"] == "% of register"
    assert enc["color"]["field"] == "label" and enc["color"]["sort"] == ["All six", "Blood pressure"]
    assert {t["field"] for t in enc["tooltip"]} == {"label", "period_label", "percent"}


def test_trend_chart_custom_standards(trend_rows: list[dict[str, Any]]) -> None:
    spec = charts.trend_chart(trend_rows, standards=(50, 62.5))
    assert rule_values(spec) == {(50.0, "Standard 50%"), (62.5, "Standard 62.5%")}


def test_check_bars(all_specs: dict[str, dict[str, Any]]) -> None:
    spec = all_specs["bars"]
    assert rule_values(spec) == {(60.0, "Standard 60%"), (75.0, "Standard 75%")}
    bar = marks(spec, "bar")[0]
    assert bar["encoding"]["y"]["field"] == "check"
    assert bar["encoding"]["y"]["sort"] == ["Body mass index", "Blood pressure", "Cholesterol"]  # as given
    assert bar["encoding"]["x"]["scale"]["domain"] == [0, 100]
    values = spec["data"]["values"]
    done = {v["check"]: v["value"] for v in values if v["status"] == "Done"}
    declined = {v["check"]: v["value"] for v in values if v["status"] == "Declined"}
    assert done == {"Body mass index": 81.2, "Blood pressure": 84.0, "Cholesterol": 63.0}
    assert declined == {"Body mass index": 2.1, "Cholesterol": 4.2}  # none recorded: no segment
    assert all(type(v["value"]) is float for v in values)  # numpy and Decimal became plain floats


def test_funnel_chart_layers(all_specs: dict[str, dict[str, Any]]) -> None:
    spec = all_specs["funnel"]
    limit_layer = next(s for s in spec["layer"] if s.get("encoding", {}).get("strokeDash"))
    assert limit_layer["mark"]["type"] == "line"
    assert limit_layer["encoding"]["strokeDash"]["scale"]["domain"] == ["95% limits", "99.8% limits"]
    limit_values = limit_layer["data"]["values"]
    assert {(v["limit"], v["side"]) for v in limit_values} == {
        ("95% limits", "lower"), ("95% limits", "upper"), ("99.8% limits", "lower"), ("99.8% limits", "upper")}
    assert len(limit_values) == 4 * 4 - 1  # the missing lower 99.8% limit at n=20 is left out, not drawn as 0
    assert {v["n"] for v in limit_values} == {20, 100, 400, 1000}

    centre = next(s for s in spec["layer"] if any(r.get("mark", {}).get("type") == "rule" for r in s.get("layer", [])))
    assert centre["data"]["values"] == [{"centre": 65.0, "label": "Centre 65.0%"}]


def test_funnel_chart_points(all_specs: dict[str, dict[str, Any]]) -> None:
    spec = all_specs["funnel"]
    points = marks(spec, "point")[0]
    values = points["data"]["values"]
    assert [v["org_code"] for v in values] == ["A81001", "A81002", "A81003"]
    assert values[0] == {"org_code": "A81001", "org_name": "Practice <A>", "register": 120, "percent": 48.0,
                         "band": "Below the 95% control limit"}
    assert type(values[0]["register"]) is int
    enc = points["encoding"]
    assert enc["x"]["field"] == "register" and enc["y"]["field"] == "percent"
    # Known bands in order with their colours and shapes; an unknown band keeps its name, grey. Control limits
    # are statistical: never the red or green of the standards (issue 11).
    assert enc["color"]["scale"]["domain"] == ["Below the 95% control limit", "Within the control limits", "mystery"]
    assert enc["color"]["scale"]["range"] == [charts.NHS_BLUE, charts.NHS_GREY, charts.NHS_GREY]
    band_colours = {c for _, c, _ in charts.FUNNEL_BANDS.values()}
    assert not {charts.NHS_RED, charts.NHS_GREEN, charts.NHS_WARM_YELLOW} & band_colours
    assert enc["shape"]["scale"]["range"] == ["triangle-down", "circle", "circle"]
    assert {t["field"] for t in enc["tooltip"]} >= {"org_name", "register", "percent"}


def test_funnel_chart_empty() -> None:
    spec = charts.funnel_chart([], [], 50.0)
    json.dumps(spec, allow_nan=False)
    assert marks(spec, "point")[0]["data"]["values"] == []


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),
    (float("nan"), None),
    (pd.NA, None),
    (pd.NaT, None),
    (np.float32(1.5), 1.5),
    (np.int64(7), 7),
    (Decimal("2.25"), 2.25),
    (date(2026, 3, 31), "2026-03-31"),
    (datetime(2026, 3, 31), "2026-03-31"),
    (pd.Timestamp("2026-03-31"), "2026-03-31"),
    (np.datetime64("2026-03-31"), "2026-03-31"),
    (datetime(2026, 3, 31, 12, 30), "2026-03-31T12:30:00"),
    ("text", "text"),
])
def test_clean(value: Any, expected: Any) -> None:
    cleaned = charts._clean(value)
    assert cleaned == expected or (expected is None and cleaned is None)
    assert not (isinstance(cleaned, float) and math.isnan(cleaned))
    json.dumps(cleaned, allow_nan=False)
