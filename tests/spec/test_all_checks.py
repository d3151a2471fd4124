""""All six", ``checks_done`` and ``all_checks`` (engine/base.py OUTPUT CONTRACT; measures/*.toml).

all_six: in the denominator and the six core checks done. all_checks: in the denominator and every
check of the measure done (extended-9 adds pulse, illicit substances and medication review).
"""

from __future__ import annotations

import pytest

from spec.timeline import CHECK_CLUSTER, smi_patient, with_checks

AS_OF = "2024-03-31"
IN_WINDOW = "2023-09-15"
CORE = tuple(CHECK_CLUSTER)
EXTRA = {"pulse": "PLSRATE_COD", "illicit_substances": "ILLSUBASS_COD", "medication_review": "MEDRVW_COD"}


@pytest.mark.parametrize("measure", ["phsmi", "qof-mh021"])
def test_all_six_done(run, measure):
    row = run(measure, AS_OF, with_checks(smi_patient(), IN_WINDOW)).only()
    assert row["checks_done"] == 6
    assert row["all_six"]
    assert row["all_checks"]


@pytest.mark.parametrize("missing", CORE)
def test_five_of_six_is_not_all_six(run, missing):
    done = tuple(c for c in CORE if c != missing)
    row = run("phsmi", AS_OF, with_checks(smi_patient(), IN_WINDOW, done)).only()
    assert row["checks_done"] == 5
    assert not row["all_six"]
    assert not row["all_checks"]
    assert not row[missing]


def test_checks_done_counts_partial(run):
    row = run("phsmi", AS_OF, with_checks(smi_patient(), IN_WINDOW, ("bmi", "smoking", "alcohol"))).only()
    assert row["checks_done"] == 3


def test_remission_patient_with_all_six_is_not_all_six(run):
    """all_six requires being in the denominator."""
    p = with_checks(smi_patient().code("MHREM_COD", "2020-01-01"), IN_WINDOW)
    row = run("phsmi", AS_OF, p).only()
    assert row["checks_done"] == 6
    assert not row["all_six"]
    assert not row["all_checks"]


def test_extended9_six_core_without_extras(run):
    """extended-9: six core checks done but no pulse etc. → all_six but not all_checks."""
    row = run("extended-9", AS_OF, with_checks(smi_patient(), IN_WINDOW)).only()
    assert row["all_six"]
    assert not row["all_checks"]
    assert row["checks_done"] == 6
    for extra in EXTRA:
        assert row[f"{extra}_status"] == "missing"


@pytest.mark.parametrize("extra", list(EXTRA))
def test_extended9_each_extra_check_cluster(run, extra):
    row = run("extended-9", AS_OF, smi_patient().code(EXTRA[extra], IN_WINDOW)).only()
    assert row[extra]
    assert row[f"{extra}_status"] == "done"
    assert row["checks_done"] == 0  # checks_done counts the six core checks only


def test_extended9_all_nine(run):
    p = with_checks(smi_patient(), IN_WINDOW)
    for cluster in EXTRA.values():
        p.code(cluster, IN_WINDOW)
    row = run("extended-9", AS_OF, p).only()
    assert row["all_six"]
    assert row["all_checks"]
    assert row["checks_done"] == 6


def test_extended9_extras_without_core_is_neither(run):
    p = with_checks(smi_patient(), IN_WINDOW, ("bmi", "blood_pressure", "lipids", "glucose", "alcohol"))
    for cluster in EXTRA.values():
        p.code(cluster, IN_WINDOW)
    row = run("extended-9", AS_OF, p).only()
    assert not row["all_six"]
    assert not row["all_checks"]


def test_extended9_aggregate_counts_all_checks(run):
    full = with_checks(smi_patient("9000000009"), IN_WINDOW)
    for cluster in EXTRA.values():
        full.code(cluster, IN_WINDOW)
    core_only = with_checks(smi_patient("9000000017"), IN_WINDOW)
    org = run("extended-9", AS_OF, full, core_only).orgs("practice")["A81001"]
    assert org["register"] == 2
    assert org["all_six"] == 2
    assert org["all_checks"] == 1
    assert org["pulse"] == 1
