"""Disclosure control: counts 1-7 suppressed, zero kept, others rounded to 5 (configurable)."""

import pandas as pd
import pytest

from parity.reports.disclosure import DisclosureControl


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, 0), (1, None), (7, None), (8, 10), (10, 10), (12, 10), (13, 15), (17, 15), (18, 20), (1003, 1005)],
)
def test_count_rule(n, expected):
    assert DisclosureControl().count(n) == expected


def test_configurable_threshold_and_rounding():
    dc = DisclosureControl(suppress_below=10, round_to=10)
    assert dc.count(9) is None
    assert dc.count(15) == 20
    assert DisclosureControl(suppress_below=1, round_to=1).count(3) == 3


def test_percent_recomputed_from_rounded_counts_and_suppressed_with_them():
    df = pd.DataFrame({"org_code": ["A", "B", "C"], "register": [103, 6, 40], "all_six": [52, 3, 5],
                       "percent": [50.5, 50.0, 12.5]})
    out = DisclosureControl().apply(df, ["register", "all_six"])
    assert out["register"].isna().tolist() == [False, True, False]
    assert out.loc[0, "register"] == 105 and out.loc[0, "all_six"] == 50
    assert out.loc[0, "percent"] == pytest.approx(47.6)
    assert pd.isna(out.loc[1, "percent"])  # suppressed denominator
    assert pd.isna(out.loc[2, "all_six"]) and pd.isna(out.loc[2, "percent"])  # suppressed numerator
