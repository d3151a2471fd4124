"""The 12-month window (product.md "Counting rules": Reporting date / Window; rules/model.py Window).

Window = as_of minus one year plus one day, to as_of, inclusive. Events after as_of are ignored.
Month subtraction clamps to the end of the month, so as_of 2024-02-29 starts on 2023-03-01.
"""

from __future__ import annotations

import pytest

from spec.timeline import smi_patient

AS_OF = "2024-03-31"


def bp_on(day: str):
    return smi_patient().code("SYSBP_COD", day, value=120)


def test_day_before_window_not_counted(run):
    """2023-03-31 is one day before the window 2023-04-01..2024-03-31."""
    row = run("phsmi", AS_OF, bp_on("2023-03-31")).only()
    assert not row["blood_pressure"]
    assert row["blood_pressure_status"] == "missing"
    assert row["blood_pressure_date"] is None


def test_first_day_of_window_counted(run):
    """2023-04-01 is the first day of the window for as_of 2024-03-31."""
    row = run("phsmi", AS_OF, bp_on("2023-04-01")).only()
    assert row["blood_pressure"]
    assert row["blood_pressure_status"] == "done"
    assert str(row["blood_pressure_date"]) == "2023-04-01"


def test_event_on_as_of_counted(run):
    """The window includes the reporting date itself."""
    row = run("phsmi", AS_OF, bp_on(AS_OF)).only()
    assert row["blood_pressure"]
    assert str(row["blood_pressure_date"]) == AS_OF


def test_event_after_as_of_ignored(run):
    """Events after as_of are ignored (product.md), even the day after."""
    row = run("phsmi", AS_OF, bp_on("2024-04-01")).only()
    assert not row["blood_pressure"]
    assert row["blood_pressure_date"] is None


def test_event_after_as_of_does_not_replace_last_date(run):
    """The reported date is the latest in the window, not the latest ever."""
    p = bp_on("2023-06-01").code("SYSBP_COD", "2024-04-02", value=150)
    row = run("phsmi", AS_OF, p).only()
    assert str(row["blood_pressure_date"]) == "2023-06-01"
    assert row["blood_pressure_value"] == 120


@pytest.mark.parametrize(
    ("day", "counted"),
    [("2023-02-28", False), ("2023-03-01", True), ("2024-02-29", True), ("2024-03-01", False)],
)
def test_leap_day_as_of_window_starts_1_march(run, day, counted):
    """as_of 2024-02-29: 2024-02-29 minus 12 months clamps to 2023-02-28, so the window starts 2023-03-01."""
    row = run("phsmi", "2024-02-29", bp_on(day)).only()
    assert row["blood_pressure"] is counted


@pytest.mark.parametrize(("day", "counted"), [("2024-02-28", False), ("2024-02-29", True)])
def test_window_starting_on_leap_day(run, day, counted):
    """as_of 2025-02-28: 2025-02-28 minus 12 months is 2024-02-28, so the window starts 2024-02-29."""
    row = run("phsmi", "2025-02-28", bp_on(day)).only()
    assert row["blood_pressure"] is counted
