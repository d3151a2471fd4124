"""What counts as each check (product.md "Check done"; clinical-spec.md §2.3; measures/*.toml).

Any code of a check's ``done`` clusters in the window counts, whatever else is recorded. Each
cluster is tested on its own: a code that belongs to that cluster only.
"""

from __future__ import annotations

import pytest

from spec.timeline import has_codes, smi_patient, unrelated_code

AS_OF = "2024-03-31"
IN_WINDOW = "2023-09-15"

CODE_GROUPS = [
    ("blood_pressure", "BP_COD"),
    ("blood_pressure", "SYSBP_COD"),
    ("blood_pressure", "DIABP_COD"),
    ("lipids", "CHOL2_COD"),
    ("lipids", "HDLCCHOL_COD"),
    ("lipids", "LDLCCHOL_COD"),
    ("lipids", "NONHDLCCHOL_COD"),
    ("lipids", "TRIGLYC_COD"),
    ("lipids", "TCHOLHDL_COD"),
    ("lipids", "QRISKSCORE_COD"),
    ("glucose", "GLUC_COD"),
    ("glucose", "IFCCHBAM_COD"),
    ("glucose", "DCCTHBA1C_COD"),
    ("glucose", "SERFRUC_COD"),
    ("smoking", "LSMOK_COD"),
    ("smoking", "EXSMOK_COD"),
    ("smoking", "NSMOK_COD"),
    ("alcohol", "ALC_COD"),
    ("alcohol", "AUDIT_COD"),
    ("alcohol", "AUDITC_COD"),
    ("alcohol", "FAST_COD"),
    ("bmi", "BMIVAL_COD"),
    ("bmi", "BMI_COD"),
    ("bmi", "BMIOBESE_COD"),
]
# FAST_COD ships empty (no public list; tests/test_codes.py pins the known-empty clusters).
CODE_GROUPS = [(check, cluster) for check, cluster in CODE_GROUPS if has_codes(cluster)]
CORE = ("bmi", "blood_pressure", "lipids", "glucose", "alcohol", "smoking")


@pytest.mark.parametrize(("check", "cluster"), CODE_GROUPS, ids=[f"{c}-{k}" for c, k in CODE_GROUPS])
def test_each_cluster_alone_counts(run, check, cluster):
    """A single code of the cluster in the window marks the check done, and no other check."""
    p = smi_patient().code(cluster, IN_WINDOW)
    row = run("phsmi", AS_OF, p).only()
    assert row[check], f"{cluster} should count for {check}"
    assert row[f"{check}_status"] == "done"
    assert str(row[f"{check}_date"]) == IN_WINDOW
    others = [c for c in CORE if c != check]
    assert [c for c in others if row[c]] == []
    assert row["checks_done"] == 1


def test_systolic_alone_counts_for_blood_pressure(run):
    """Parity choice: systolic and diastolic are not both required (phsmi.toml choices)."""
    row = run("phsmi", AS_OF, smi_patient().code("SYSBP_COD", IN_WINDOW, value=128)).only()
    assert row["blood_pressure"]
    assert row["blood_pressure_value"] == 128


def test_diastolic_alone_counts_for_blood_pressure(run):
    row = run("phsmi", AS_OF, smi_patient().code("DIABP_COD", IN_WINDOW, value=82)).only()
    assert row["blood_pressure"]
    assert row["blood_pressure_value"] == 82


def test_unrelated_code_counts_for_nothing(run):
    row = run("phsmi", AS_OF, smi_patient().snomed(unrelated_code(), IN_WINDOW, value=5)).only()
    assert row["checks_done"] == 0
    assert all(row[f"{c}_status"] == "missing" for c in CORE)


def test_no_checks_all_missing(run):
    row = run("phsmi", AS_OF, smi_patient()).only()
    assert row["checks_done"] == 0
    for c in CORE:
        assert not row[c]
        assert row[f"{c}_status"] == "missing"
        assert row[f"{c}_date"] is None
        assert row[f"{c}_value"] is None


def test_latest_date_and_its_value_reported(run):
    """``<check>_date`` is the latest qualifying date in the window, ``<check>_value`` its value."""
    p = (
        smi_patient()
        .code("SYSBP_COD", "2022-12-01", value=160)  # before the window
        .code("SYSBP_COD", "2023-06-01", value=130)
        .code("SYSBP_COD", "2023-12-01", value=125)
        .code("SYSBP_COD", "2023-08-01", value=140)
    )
    row = run("phsmi", AS_OF, p).only()
    assert str(row["blood_pressure_date"]) == "2023-12-01"
    assert row["blood_pressure_value"] == 125


def test_largest_value_when_two_on_the_same_date(run):
    """Systolic 142 and diastolic 88 on the same day: the reported value is the largest (base.py)."""
    p = smi_patient().code("DIABP_COD", "2023-12-01", value=88).code("SYSBP_COD", "2023-12-01", value=142)
    row = run("phsmi", AS_OF, p).only()
    assert str(row["blood_pressure_date"]) == "2023-12-01"
    assert row["blood_pressure_value"] == 142


def test_value_ignores_missing_value_on_the_same_date(run):
    """A code without a value beside one with a value on the same date: the value is reported."""
    p = smi_patient().code("BP_COD", "2023-12-01").code("SYSBP_COD", "2023-12-01", value=131)
    row = run("phsmi", AS_OF, p).only()
    assert row["blood_pressure_value"] == 131


def test_latest_code_without_value_reports_no_value(run):
    """The value is the value *on the latest date*: an earlier value is not carried forward."""
    p = smi_patient().code("BMIVAL_COD", "2023-05-01", value=27.5).code("BMIOBESE_COD", "2023-11-01")
    row = run("phsmi", AS_OF, p).only()
    assert str(row["bmi_date"]) == "2023-11-01"
    assert row["bmi_value"] is None


def test_value_of_latest_lipid_across_clusters(run):
    """Date and value come from the latest code of any of the check's clusters."""
    p = smi_patient().code("CHOL2_COD", "2023-05-01", value=5.2).code("HDLCCHOL_COD", "2023-10-01", value=1.4)
    row = run("phsmi", AS_OF, p).only()
    assert str(row["lipids_date"]) == "2023-10-01"
    assert row["lipids_value"] == pytest.approx(1.4)
