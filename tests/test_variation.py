"""Funnel plot of the all-six rate against register size (parity.reports.variation, Spiegelhalter 2005)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from parity.errors import ConfigurationError
from parity.reports.variation import BANDS, control_limits, funnel


def aggregate(*orgs: tuple[str, int, int]) -> pd.DataFrame:
    """An aggregate frame of (org_code, register, all_six) rows."""
    return pd.DataFrame({
        "org_code": [o[0] for o in orgs],
        "org_name": [f"Practice {o[0]}" for o in orgs],
        "level": "practice",
        "parent_code": "U00001",
        "register": [o[1] for o in orgs],
        "all_six": [o[2] for o in orgs],
    })


AREA = aggregate(
    ("P1", 100, 50), ("P2", 80, 44), ("P3", 120, 58), ("P4", 60, 33), ("P5", 90, 45),
    ("BIGLOW", 2000, 600),  # 30% of a large register: far below
    ("SMALLLOW", 20, 6),  # 30% of 20: chance
    ("BIGHIGH", 1500, 1050),  # 70% of a large register: far above
    ("EMPTY", 0, 0),  # no register: left out
)


def band_of(result: object, org: str) -> str:
    points = result.points  # type: ignore[attr-defined]
    return str(points.loc[points["org_code"] == org, "band"].iloc[0])


def test_centre_is_the_pooled_rate() -> None:
    result = funnel(AREA)
    assert result.centre == pytest.approx((50 + 44 + 58 + 33 + 45 + 600 + 6 + 1050) / (450 + 2000 + 20 + 1500))
    assert not result.target


def test_points_columns_and_register_zero_left_out() -> None:
    points = funnel(AREA).points
    assert list(points.columns) == ["org_code", "org_name", "register", "all_six", "rate", "z", "band"]
    assert "EMPTY" not in set(points["org_code"])
    assert len(points) == 8
    assert set(points["band"]) <= set(BANDS)
    row = points.set_index("org_code").loc["P1"]
    assert row["rate"] == pytest.approx(0.5)


def test_large_low_performer_is_below_998_and_small_one_within() -> None:
    result = funnel(AREA)
    assert band_of(result, "BIGLOW") == "below_998"
    assert band_of(result, "SMALLLOW") == "within"
    assert band_of(result, "BIGHIGH") == "above_998"
    z = result.points.set_index("org_code")["z"]
    assert z["BIGLOW"] < -3.090232 and abs(z["SMALLLOW"]) < 1.959964


def test_limits_narrow_as_register_grows() -> None:
    result = funnel(AREA)
    limits = result.limits
    assert list(limits.columns) == ["n", "lower_95", "upper_95", "lower_998", "upper_998"]
    assert limits["n"].iloc[0] == 1 and limits["n"].iloc[-1] == 2000
    assert len(limits) <= 100 and limits["n"].is_monotonic_increasing
    for col in ("lower_95", "upper_95", "lower_998", "upper_998"):
        assert limits[col].between(0.0, 1.0).all()
    assert (limits["lower_998"] <= limits["lower_95"]).all()
    assert (limits["upper_95"] <= limits["upper_998"]).all()
    width = limits["upper_95"] - limits["lower_95"]
    assert width.iloc[-1] < width.iloc[len(width) // 2] < width.iloc[len(width) // 4]
    widths = [control_limits(n, result.centre) for n in (10, 100, 1000, 10_000)]
    assert [w["upper_998"] - w["lower_998"] for w in widths] == sorted(
        (w["upper_998"] - w["lower_998"] for w in widths), reverse=True
    )


def test_exact_limits_approach_the_normal_approximation_for_large_registers() -> None:
    p, n = 0.45, 200_000
    lim = control_limits(n, p)
    sd = math.sqrt(p * (1 - p) / n)
    assert lim["lower_95"] == pytest.approx(p - 1.959964 * sd, abs=1e-5)
    assert lim["upper_998"] == pytest.approx(p + 3.090232 * sd, abs=1e-5)


def test_exact_limits_for_a_small_register() -> None:
    """Binomial(10, 0.3): P(R <= 5) = 0.9527 < 0.975 <= P(R <= 6) = 0.9894, so r = 6,
    alpha = (0.9894 - 0.975) / (0.9894 - 0.9527) and the limit is (6 - alpha) / 10 (Spiegelhalter A.1.1)."""
    cdf = [sum(math.comb(10, k) * 0.3**k * 0.7 ** (10 - k) for k in range(r + 1)) for r in range(11)]
    alpha = (cdf[6] - 0.975) / (cdf[6] - cdf[5])
    assert control_limits(10, 0.3)["upper_95"] == pytest.approx((6 - alpha) / 10)
    assert control_limits(10, 0.3)["lower_95"] == 0.0  # clipped at 0


def test_target_replaces_the_pooled_rate() -> None:
    result = funnel(AREA, target=0.75)
    assert result.centre == 0.75 and result.target
    assert band_of(result, "P1") == "below_998"  # 50/100 against 75%
    with pytest.raises(ConfigurationError, match="target"):
        funnel(AREA, target=75)


def test_empty_frame() -> None:
    result = funnel(aggregate(("EMPTY", 0, 0)))
    assert result.points.empty and result.centre == 0.0
    assert list(result.limits["n"]) == [1]
