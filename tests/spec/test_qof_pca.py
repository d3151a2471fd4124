"""qof-mh021 personalised care adjustment PHCSMIPCA (clinical-spec.md §2.3; rules/model.py
PersonalisedCareAdjustment; qof-mh021.toml).

A patient who did not receive all six is removed from the denominator when every missing element
has a declined/unsuitable code in the 12 months, or an MH exception code (MHEXC_COD) is in the 12
months. Achievement beats exceptions (S8): a patient with all six is always counted.
"""

from __future__ import annotations

from spec.timeline import declinable, declined, declined_everything, smi_patient, with_checks

AS_OF = "2024-03-31"
IN_WINDOW = "2023-09-15"
FOUR = ("bmi", "blood_pressure", "alcohol", "smoking")


def test_every_missing_check_declined_excluded(run):
    """Four done, the two missing (lipids, glucose) both declined → out of the denominator."""
    p = declined(with_checks(smi_patient(), IN_WINDOW, FOUR), IN_WINDOW, ("lipids", "glucose"))
    row = run("qof-mh021", AS_OF, p).only()
    assert row["on_register"]
    assert not row["in_denominator"]
    assert not row["all_six"]


def test_all_declined_excluded(run):
    """Every check declined (alcohol done: ALCDEC_COD ships without codes)."""
    row = run("qof-mh021", AS_OF, declined_everything(smi_patient(), IN_WINDOW)).only()
    assert not row["in_denominator"]


def test_blood_test_declined_covers_lipids_and_glucose(run):
    p = with_checks(smi_patient(), IN_WINDOW, FOUR).code("BLDTESTDEC_COD", IN_WINDOW)
    assert not run("qof-mh021", AS_OF, p).only()["in_denominator"]


def test_one_missing_check_without_decline_stays(run):
    """Lipids declined but glucose simply missing → stays in the denominator."""
    p = declined(with_checks(smi_patient(), IN_WINDOW, FOUR), IN_WINDOW, ("lipids",))
    row = run("qof-mh021", AS_OF, p).only()
    assert row["in_denominator"]
    assert not row["all_six"]


def test_no_checks_no_declines_stays(run):
    assert run("qof-mh021", AS_OF, smi_patient()).only()["in_denominator"]


def test_decline_before_window_does_not_exclude(run):
    p = declined(with_checks(smi_patient(), IN_WINDOW, FOUR), "2023-03-31", ("lipids", "glucose"))
    assert run("qof-mh021", AS_OF, p).only()["in_denominator"]


def test_mh_exception_code_in_window_excludes(run):
    """An MH-indicator exception code (MHEXC_COD) in the 12 months removes the patient."""
    p = smi_patient().code("MHEXC_COD", "2023-11-01")
    row = run("qof-mh021", AS_OF, p).only()
    assert row["on_register"]
    assert not row["in_denominator"]


def test_mh_exception_code_before_window_does_not_exclude(run):
    p = smi_patient().code("MHEXC_COD", "2023-03-31")
    assert run("qof-mh021", AS_OF, p).only()["in_denominator"]


def test_mh_exception_code_after_as_of_ignored(run):
    p = smi_patient().code("MHEXC_COD", "2024-04-01")
    assert run("qof-mh021", AS_OF, p).only()["in_denominator"]


def test_all_six_achieved_with_declines_counted(run):
    """Achievement beats exceptions: all six done plus declines → counted, all_six."""
    p = declined(with_checks(smi_patient(), IN_WINDOW), IN_WINDOW, declinable())
    row = run("qof-mh021", AS_OF, p).only()
    assert row["in_denominator"]
    assert row["all_six"]


def test_all_six_achieved_with_exception_code_counted(run):
    p = with_checks(smi_patient(), IN_WINDOW).code("MHEXC_COD", IN_WINDOW)
    row = run("qof-mh021", AS_OF, p).only()
    assert row["in_denominator"]
    assert row["all_six"]


def test_lower_risk_lipids_in_24_months_count_as_received(run):
    """Lipids done 18 months ago (lower risk) are received, so declining only glucose is a valid
    reason for every missing element."""
    p = with_checks(smi_patient().ethnicity("A"), IN_WINDOW, FOUR).code("CHOL2_COD", "2022-10-01", value=5)
    p = declined(p, IN_WINDOW, ("glucose",))
    assert not run("qof-mh021", AS_OF, p).only()["in_denominator"]


def test_phsmi_ignores_declines_and_exception_codes(run):
    """phsmi has no PCA: the same patients stay in its denominator."""
    p1 = declined_everything(smi_patient("9000000009"), IN_WINDOW)
    p2 = smi_patient("9000000017").code("MHEXC_COD", IN_WINDOW)
    result = run("phsmi", AS_OF, p1, p2)
    assert result.row("9000000009")["in_denominator"]
    assert result.row("9000000017")["in_denominator"]


def test_excluded_count_in_aggregate(run):
    """Aggregates: ``register`` is the denominator after PCA; ``excluded`` counts PCA exclusions."""
    counted = with_checks(smi_patient("9000000009"), IN_WINDOW)
    excluded = declined_everything(smi_patient("9000000017"), IN_WINDOW)
    in_remission = smi_patient("9000000025").code("MHREM_COD", "2020-01-01")
    org = run("qof-mh021", AS_OF, counted, excluded, in_remission).orgs("practice")["A81001"]
    assert org["register"] == 1
    assert org["excluded"] == 1
    assert org["all_six"] == 1
    assert org["percent"] == 100.0


def test_lipid_decline_older_than_12_months_does_not_exclude(run):
    """Issue 11: a lower-risk patient (24-month lipid window) whose only lipid decline was 18
    months ago is still in the denominator: declines count only in the 12 months."""
    p = with_checks(smi_patient().ethnicity("A"), IN_WINDOW, (*FOUR, "glucose"))
    p = declined(p, "2022-10-01", ("lipids",))
    row = run("qof-mh021", AS_OF, p).only()
    assert row["in_denominator"]
    assert not row["all_six"]
    assert row["lipids_status"] == "missing"


def test_lipid_decline_in_12_months_excludes_lower_risk_patient(run):
    p = with_checks(smi_patient().ethnicity("A"), IN_WINDOW, (*FOUR, "glucose"))
    p = declined(p, "2023-06-01", ("lipids",))
    row = run("qof-mh021", AS_OF, p).only()
    assert not row["in_denominator"]
    assert row["lipids_status"] == "declined"
