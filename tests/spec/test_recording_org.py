"""Checks recorded by a mental-health trust (product.md "Check done": "any code of the check's
clusters in the window, from any recording organisation (practice or trust)"; product.md "Where the
checks break down": trust checks rarely reach the GP record).

``events.recorded_by`` is the ODS code of the recording organisation (e.g. RX2, Sussex Partnership
NHS Foundation Trust); it must never change the answer.
"""

from __future__ import annotations

from spec.timeline import Patient, smi_patient, with_checks

AS_OF = "2024-03-31"
IN_WINDOW = "2023-09-15"


def test_trust_recorded_events_count_like_practice_events(run):
    """Checks done by a mental-health trust (recorded_by RX2) count exactly like practice ones
    (product.md "from any recording organisation")."""
    trust = smi_patient("9000000009")
    practice = smi_patient("9000000017")
    unknown = smi_patient("9000000025")
    for p, by in ((trust, "RX2"), (practice, "A81001"), (unknown, None)):
        p.code("SYSBP_COD", IN_WINDOW, value=120, by=by).code("AUDITC_COD", "2024-01-10", value=3, by=by)
    result = run("phsmi", AS_OF, trust, practice, unknown)
    rows = [result.row(n) for n in ("9000000009", "9000000017", "9000000025")]
    for row in rows:
        assert row["blood_pressure"]
        assert row["alcohol"]
        assert row["checks_done"] == 2
    strip = [{k: v for k, v in r.items() if k != "nhs_number"} for r in rows]
    assert strip[0] == strip[1] == strip[2]


def test_trust_recorded_diagnosis_counts(run):
    """An SMI diagnosis recorded by the trust puts the patient on the register too."""
    p = Patient("9000000009").registered("A81001", "2015-01-01").code("MH_COD", "2019-01-01", by="RX2")
    assert run("phsmi", AS_OF, p).only()["on_register"]


def test_all_six_done_by_the_trust(run):
    p = with_checks(smi_patient(), IN_WINDOW, by="RX2")
    row = run("phsmi", AS_OF, p).only()
    assert row["all_six"]


def test_trust_recorded_remission_counts(run):
    """A remission code recorded by the trust takes the patient off the register like a practice one."""
    p = smi_patient().code("MHREM_COD", "2021-01-01", by="RX2")
    assert not run("phsmi", AS_OF, p).only()["on_register"]
