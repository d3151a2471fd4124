"""Targets and trajectories (M7): hand-worked arithmetic, the regional split and the monthly line."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from parity.errors import ConfigurationError
from parity.reports.trajectory import (
    METHODS,
    add_months,
    expected_at,
    gap,
    largest_remainder,
    monthly_line,
    split,
    trajectory_table,
    whole_months,
)


def test_gap_hand_worked() -> None:
    assert gap(1000, 350, 0.40) == (400, 50)
    assert gap(1000, 450, 0.40) == (400, 0)  # already above the target
    assert gap(1001, 350, 0.40) == (401, 51)  # 400.4 → ceil 401
    assert gap(1000, 0, 0.70) == (700, 700)  # no floating-point 701
    assert gap(0, 0, 0.75) == (0, 0)


@pytest.mark.parametrize("bad", [0, -0.1, 40, 1.5])
def test_target_is_a_fraction(bad: float) -> None:
    with pytest.raises(ConfigurationError):
        gap(1000, 350, bad)


def test_whole_months() -> None:
    assert whole_months(date(2024, 3, 31), date(2025, 1, 31)) == 10
    assert whole_months(date(2024, 3, 31), date(2025, 3, 31)) == 12
    assert whole_months(date(2024, 3, 31), date(2025, 3, 30)) == 11
    assert whole_months(date(2024, 6, 30), date(2024, 7, 5)) == 1  # at least 1
    assert whole_months(date(2024, 1, 15), date(2024, 3, 14)) == 1
    assert add_months(date(2024, 2, 29), 1) == date(2024, 3, 31)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)


def test_trajectory_table_ten_months() -> None:
    baseline = pd.DataFrame({"org_code": ["A", "B"], "org_name": ["Area A", "Area B"], "register": [1000, 500],
                             "all_six": [350, 300], "percent": [35.0, 60.0]})
    t = trajectory_table(baseline, 0.40, by=date(2025, 1, 31), baseline_end=date(2024, 3, 31))
    a, b = t.to_dict(orient="records")
    assert (a["target_count"], a["additional_patients"], a["months"], a["per_month"]) == (400, 50, 10, 5.0)
    assert (b["target_count"], b["additional_patients"], b["per_month"]) == (200, 0, 0.0)
    assert list(t.columns[:2]) == ["org_code", "org_name"]
    assert {"register", "all_six", "target_count", "additional_patients", "months", "per_month"} <= set(t.columns)


def test_per_month_one_decimal() -> None:
    t = trajectory_table(pd.DataFrame({"org_code": ["A"], "register": [1000], "all_six": [350]}), 0.40,
                         by=date(2024, 10, 31), baseline_end=date(2024, 3, 31))
    assert t["months"].iloc[0] == 7 and t["per_month"].iloc[0] == 7.1  # 50 / 7 = 7.142…


ICBS = pd.DataFrame({
    "org_code": ["I1", "I2", "I3", "I4"],
    "register": [4000, 3000, 2000, 1000],
    "all_six": [1600, 2400, 1000, 300],     # 40%, 80% (above target), 50%, 30%
})


def test_largest_remainder_sums_exactly() -> None:
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder(0, [1, 2]) == [0, 0]
    assert sum(largest_remainder(1001, [0.123, 0.456, 0.421])) == 1001
    assert largest_remainder(5, [0, 0]) == [3, 2]  # no weights: evenly


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("total", [0, 1, 7, 999, 1750])
def test_split_sums_to_regional_total(method: str, total: int) -> None:
    out = split(total, ICBS, method, target=0.6)
    assert int(out["additional_patients"].sum()) == total
    assert (out["additional_patients"] >= 0).all()
    assert (out["target_count"] == out["all_six"] + out["additional_patients"]).all()


def test_methods_differ_as_documented() -> None:
    # Region: register 10,000, all six 5,300 → 60% target = 6,000 → regional gap 700.
    total = gap(10_000, 5_300, 0.6)[1]
    assert total == 700
    reg = split(total, ICBS, "by_register", target=0.6).set_index("org_code")["additional_patients"]
    eq = split(total, ICBS, "to_equal_rate", target=0.6).set_index("org_code")["additional_patients"]
    # by_register: in proportion to the register (40/30/20/10%), including the ICB already at 80%.
    assert reg.to_dict() == {"I1": 280, "I2": 210, "I3": 140, "I4": 70}
    # to_equal_rate: own gaps to 60% are 800, 0, 200, 300 (1,300) → scaled to 700; the high performer carries none
    # and the lowest performer (I4, 30%) carries more than under by_register.
    assert eq["I2"] == 0
    assert eq.to_dict() == {"I1": 431, "I2": 0, "I3": 108, "I4": 161}
    assert eq["I4"] > reg["I4"] and eq["I1"] > reg["I1"]
    blend = split(total, ICBS, "blend", target=0.6).set_index("org_code")["additional_patients"]
    assert blend.sum() == 700
    assert all(min(reg[c], eq[c]) <= blend[c] <= max(reg[c], eq[c]) for c in blend.index)


def test_split_default_target_is_implied_rate() -> None:
    # 700 more on 5,300 of 10,000 implies 60%: the same as passing target=0.6.
    a = split(700, ICBS, "to_equal_rate")["additional_patients"].tolist()
    assert a == split(700, ICBS, "to_equal_rate", target=0.6)["additional_patients"].tolist()


def test_split_rejects_unknown_method() -> None:
    with pytest.raises(ConfigurationError):
        split(10, ICBS, "by_size")


def test_monthly_line() -> None:
    line = monthly_line(350, date(2024, 3, 31), 400, date(2025, 1, 31))
    assert len(line) == 11
    assert line["month_end"].iloc[0] == date(2024, 3, 31) and line["month_end"].iloc[1] == date(2024, 4, 30)
    assert line["month_end"].iloc[-1] == date(2025, 1, 31)
    assert line["expected_all_six"].tolist() == [350 + 5 * k for k in range(11)]
    assert expected_at(line, date(2024, 4, 30)) == 355
    assert expected_at(line, date(2030, 1, 1)) == 400
    assert expected_at(line, date(2020, 1, 1)) == 350
