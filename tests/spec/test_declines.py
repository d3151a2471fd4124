"""Declined / unsuitable codes (product.md "Declined / unsuitable"; clinical-spec.md §2.3).

They never count as done; they are shown as status "declined". ``phsmi`` leaves the denominator
alone (Parity choice: PHSMI treatment of declines is not published).
"""

from __future__ import annotations

import pytest

from spec.timeline import declinable, declined, smi_patient, with_checks

AS_OF = "2024-03-31"
IN_WINDOW = "2023-09-15"
# Only checks whose declined cluster has codes (ALCDEC_COD ships empty; tests/test_codes.py pins that).
CORE = declinable()


@pytest.mark.parametrize("check", CORE)
def test_declined_is_not_done(run, check):
    """A declined code in the window: status "declined", the check is not done."""
    row = run("phsmi", AS_OF, declined(smi_patient(), IN_WINDOW, (check,))).only()
    assert not row[check]
    assert row[f"{check}_status"] == "declined"
    assert row[f"{check}_date"] is None
    assert row["checks_done"] == 0


def test_blood_test_declined_declines_lipids_and_glucose(run):
    """BLDTESTDEC_COD is a declined cluster of both lipids and glucose."""
    p = smi_patient().code("BLDTESTDEC_COD", IN_WINDOW)
    row = run("phsmi", AS_OF, p).only()
    assert row["lipids_status"] == "declined"
    assert row["glucose_status"] == "declined"
    assert row["blood_pressure_status"] == "missing"


def test_done_and_declined_is_done(run):
    """Done beats declined, whichever is later."""
    p = smi_patient().code("SYSBP_COD", "2023-05-01", value=120).code("BPDEC_COD", "2023-11-01")
    row = run("phsmi", AS_OF, p).only()
    assert row["blood_pressure"]
    assert row["blood_pressure_status"] == "done"
    assert str(row["blood_pressure_date"]) == "2023-05-01"


def test_decline_before_window_is_missing(run):
    p = smi_patient().code("BPDEC_COD", "2023-03-31")
    assert run("phsmi", AS_OF, p).only()["blood_pressure_status"] == "missing"


def test_decline_after_as_of_is_missing(run):
    p = smi_patient().code("BPDEC_COD", "2024-04-01")
    assert run("phsmi", AS_OF, p).only()["blood_pressure_status"] == "missing"


def test_phsmi_denominator_unchanged_by_declines(run):
    """Declining every check does not remove the patient from the phsmi denominator."""
    p = declined(smi_patient(), IN_WINDOW, declinable())
    row = run("phsmi", AS_OF, p).only()
    assert row["in_denominator"]
    assert not row["all_six"]
    assert all(row[f"{c}_status"] == "declined" for c in declinable())


def test_declines_counted_in_aggregate(run):
    """Aggregates count declines per check among the denominator (``<check>_declined``)."""
    p1 = declined(smi_patient("9000000009"), IN_WINDOW, ("blood_pressure", "bmi"))
    p2 = with_checks(declined(smi_patient("9000000017"), IN_WINDOW, ("blood_pressure",)), IN_WINDOW)
    org = run("phsmi", AS_OF, p1, p2).orgs("practice")["A81001"]
    assert org["register"] == 2
    assert org["blood_pressure_declined"] == 1  # p2 declined but was done
    assert org["bmi_declined"] == 1
    assert org["blood_pressure"] == 1
    assert org["excluded"] == 0
