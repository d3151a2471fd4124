"""Measure definitions are data: they load, validate, and window arithmetic follows product.md."""

from datetime import date

import pytest

from parity.errors import RuleError
from parity.rules import CORE_CHECKS, list_measures, load_measure
from parity.rules.model import Window, months_before
from parity.rules.registry import parse_measure


def test_builtin_measures():
    assert {"phsmi", "qof-mh021", "extended-9"} <= set(list_measures())
    for mid in list_measures():
        m = load_measure(mid)
        assert tuple(c.id for c in m.core) == CORE_CHECKS
        assert m.choices, f"{mid} must document the choices made where sources are silent"


def test_qof_lipids_has_lower_risk_window_and_phsmi_does_not():
    assert load_measure("phsmi").check("lipids").lower_risk is None
    lipids = load_measure("qof-mh021").check("lipids")
    assert lipids.lower_risk.months == 24
    kinds = {c.kind for c in lipids.lower_risk.higher_risk_if}
    assert kinds == {"medication", "ever", "unresolved", "latest_is", "value_at_least"}
    bmi = next(c for c in lipids.lower_risk.higher_risk_if if c.kind == "value_at_least")
    assert bmi.threshold_for("A") == 25.0 and bmi.threshold_for("H") == 23.0 and bmi.threshold_for(None) == 23.0


def test_extended_bundle_is_a_superset():
    m = load_measure("extended-9")
    assert m.is_bundle and len(m.checks) == 9
    assert not load_measure("phsmi").is_bundle


@pytest.mark.parametrize(
    ("as_of", "start"),
    [
        (date(2024, 3, 31), date(2023, 4, 1)),  # product.md example
        (date(2024, 2, 29), date(2023, 3, 1)),  # leap day: 2023-02-28 + 1
        (date(2023, 12, 31), date(2023, 1, 1)),
        (date(2024, 6, 30), date(2023, 7, 1)),
    ],
)
def test_twelve_month_window(as_of, start):
    assert Window(12).start(as_of) == start


def test_months_before_clamps():
    assert months_before(date(2024, 3, 31), 1) == date(2024, 2, 29)
    assert months_before(date(2024, 3, 31), 24) == date(2022, 3, 31)
    assert months_before(date(2024, 1, 15), 6) == date(2023, 7, 15)


def test_unknown_measure_and_malformed_definitions():
    with pytest.raises(RuleError, match="unknown measure"):
        load_measure("nope")
    with pytest.raises(RuleError, match="missing"):
        parse_measure({"id": "x", "name": "x", "register": {"diagnosis": ["MH_COD"], "remission": []},
                       "checks": [{"id": "bmi", "label": "BMI", "done": ["BMIVAL_COD"]}]}, "test")
    with pytest.raises(RuleError, match="unknown criterion kind"):
        parse_measure({"id": "x", "name": "x", "register": {"diagnosis": ["MH_COD"], "remission": []},
                       "checks": [{"id": "lipids", "label": "L", "done": ["X"],
                                   "lower_risk": {"months": 24, "higher_risk_if": [{"kind": "magic"}]}}]}, "t")
