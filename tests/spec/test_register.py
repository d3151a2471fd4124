"""Who is on the SMI register on as_of (product.md "On the register"; clinical-spec.md §2.2;
rules/model.py Register; engine/base.py: who gets a status row).

A status row is listed for every patient registered and alive on as_of with any register code
(diagnosis or remission) on or before as_of; ``on_register`` says whether the latest is a diagnosis.
"""

from __future__ import annotations

from spec.timeline import Patient, code_in_both, smi_patient

AS_OF = "2024-03-31"


def test_diagnosis_only_on_register(run):
    """An MH_COD diagnosis and nothing else: on the register and in the denominator."""
    row = run("phsmi", AS_OF, smi_patient()).only()
    assert row["on_register"]
    assert row["in_denominator"]
    assert row["practice_code"] == "A81001"


def test_remission_after_diagnosis_off_register(run):
    """QOF rule used by Parity (S8/S16): a remission code after the latest diagnosis takes the patient off."""
    p = smi_patient().code("MHREM_COD", "2020-01-01")
    row = run("phsmi", AS_OF, p).only()
    assert not row["on_register"]
    assert not row["in_denominator"]
    assert not row["all_six"]


def test_diagnosis_after_remission_back_on(run):
    """A later diagnosis code after remission returns the patient to the register (clinical-spec §2.2)."""
    p = smi_patient().code("MHREM_COD", "2020-01-01").code("MH_COD", "2023-01-01")
    assert run("phsmi", AS_OF, p).only()["on_register"]


def test_same_day_diagnosis_and_remission_on_register(run):
    """Same-day diagnosis and remission: diagnosis wins (product.md)."""
    p = smi_patient().code("MH_COD", "2022-02-02").code("MHREM_COD", "2022-02-02")
    assert run("phsmi", AS_OF, p).only()["on_register"]


def test_code_in_both_lists_counts_as_remission(run):
    """23 PRIMIS SMHRES codes are also in MH_COD; such a code counts as remission (product.md)."""
    both = code_in_both("MH_COD", "MHREM_COD")
    p = smi_patient().snomed(both, "2021-06-01")
    row = run("phsmi", AS_OF, p).only()
    assert not row["on_register"]


def test_code_in_both_lists_alone_is_remission(run):
    """A patient whose only SMI code is in both lists is listed (has a register code) but not on the register."""
    both = code_in_both("MH_COD", "MHREM_COD")
    p = Patient("9000000017").registered("A81001", "2015-01-01").snomed(both, "2021-06-01")
    result = run("phsmi", AS_OF, p)
    assert result.listed("9000000017")
    assert not result.row("9000000017")["on_register"]


def test_code_in_both_lists_same_day_as_diagnosis_on_register(run):
    """A both-lists code is a remission, and a same-day diagnosis beats a remission (rules/model.py Register)."""
    both = code_in_both("MH_COD", "MHREM_COD")
    p = smi_patient().snomed(both, "2021-06-01").code("MH_COD", "2021-06-01")
    assert run("phsmi", AS_OF, p).only()["on_register"]


def test_remission_after_as_of_ignored(run):
    """Only codes on or before as_of decide the register."""
    p = smi_patient().code("MHREM_COD", "2024-04-01")
    assert run("phsmi", AS_OF, p).only()["on_register"]


def test_diagnosis_after_as_of_ignored(run):
    """A diagnosis after as_of does not put the patient on the register (nor list them)."""
    p = Patient("9000000017").registered("A81001", "2015-01-01").code("MH_COD", "2024-04-01")
    assert not run("phsmi", AS_OF, p).listed("9000000017")


def test_no_smi_code_not_listed(run):
    """Checks without any SMI code: not on any register, so not listed at all."""
    p = Patient("9000000017").registered("A81001", "2015-01-01").code("SYSBP_COD", "2023-06-01", value=120)
    result = run("phsmi", AS_OF, p, smi_patient())
    assert not result.listed("9000000017")
    assert result.listed("9000000009")


def test_registration_ending_on_as_of_still_registered(run):
    """start <= as_of <= end: an end date equal to as_of still counts as registered."""
    p = Patient("9000000009").registered("A81001", "2015-01-01", AS_OF).code("MH_COD", "2016-05-01")
    assert run("phsmi", AS_OF, p).only()["on_register"]


def test_registration_ended_day_before_as_of_not_listed(run):
    p = Patient("9000000009").registered("A81001", "2015-01-01", "2024-03-30").code("MH_COD", "2016-05-01")
    assert not run("phsmi", AS_OF, p).listed("9000000009")


def test_registration_starting_on_as_of_registered(run):
    p = Patient("9000000009").registered("A81001", AS_OF).code("MH_COD", "2016-05-01")
    assert run("phsmi", AS_OF, p).only()["on_register"]


def test_registration_starting_after_as_of_not_listed(run):
    """A registration that starts after as_of does not count."""
    p = Patient("9000000009").registered("A81001", "2024-04-01").code("MH_COD", "2016-05-01")
    assert not run("phsmi", AS_OF, p).listed("9000000009")


def test_gap_in_registration_on_as_of_not_listed(run):
    """Registered before and after as_of but not on it."""
    p = (
        Patient("9000000009")
        .registered("A81001", "2015-01-01", "2024-01-31")
        .registered("A81002", "2024-05-01")
        .code("MH_COD", "2016-05-01")
    )
    assert not run("phsmi", AS_OF, p).listed("9000000009")


def test_moved_practice_counted_at_practice_on_as_of(run):
    """Counted at the practice registered at on as_of; checks done at the old practice still count."""
    p = (
        Patient("9000000009")
        .registered("A81001", "2015-01-01", "2023-09-30")
        .registered("A81002", "2023-10-01")
        .code("MH_COD", "2016-05-01", by="A81001")
        .code("SYSBP_COD", "2023-05-01", value=120, by="A81001")
    )
    row = run("phsmi", AS_OF, p).only()
    assert row["practice_code"] == "A81002"
    assert row["on_register"]
    assert row["blood_pressure"]


def test_overlapping_registrations_latest_start_wins(run):
    """Two registrations open on as_of: the one with the latest start wins (engine/base.py)."""
    p = (
        Patient("9000000009")
        .registered("A81001", "2015-01-01")
        .registered("A81017", "2023-01-01")
        .code("MH_COD", "2016-05-01")
    )
    assert run("phsmi", AS_OF, p).only()["practice_code"] == "A81017"


def test_died_before_as_of_not_listed(run):
    p = smi_patient().died("2024-01-15")
    assert not run("phsmi", AS_OF, p).listed("9000000009")


def test_died_on_as_of_not_listed(run):
    """Alive on as_of means no date of death on or before it (rules/model.py Register): a death on
    as_of excludes the patient. Parity's choice; the sources are silent."""
    p = smi_patient().died(AS_OF)
    assert not run("phsmi", AS_OF, p).listed("9000000009")


def test_died_after_as_of_listed(run):
    """A death after as_of does not change the answer on as_of."""
    p = smi_patient().died("2024-04-01")
    assert run("phsmi", AS_OF, p).only()["on_register"]


def test_child_on_register(run):
    """No age limit: the PHSMI Directions cover patients of any age (clinical-spec §2.2, S4)."""
    p = Patient("9000000009").born("2012-06-01").registered("A81001", "2012-06-10").code("MH_COD", "2023-02-01")
    row = run("phsmi", AS_OF, p).only()
    assert row["on_register"]
    assert row["in_denominator"]


def test_very_old_patient_on_register(run):
    p = Patient("9000000009").born("1920-02-29").registered("A81001", "1990-01-01").code("MH_COD", "1995-01-01")
    assert run("phsmi", AS_OF, p).only()["on_register"]


def test_qof_remission_same_population_as_phsmi(run):
    """qof-mh021: remission keeps the patient on MH001 but out of MH021 — same counted population."""
    p = smi_patient().code("MHREM_COD", "2020-01-01")
    row = run("qof-mh021", AS_OF, p).only()
    assert not row["on_register"]
    assert not row["in_denominator"]
