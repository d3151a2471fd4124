"""Spec tests for the follow-up of red-zone results (product.md M6; clinical-spec.md §4).

Each test is a small patient timeline and the answer the rule gives, on DuckDB and PostgreSQL (``any_db``).
Thresholds: Lester tool red zone (S14), NICE CG181 QRISK >=10% (S26), AUDIT-C >=5 (S27), as in
``rules/interventions.toml`` and the trust template. Every threshold is tested on both sides of its edge.
Where the database answers, the pure ``InterventionCatalogue.evaluate`` must give the same answer.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import nhs_number
import pytest

from parity.care.followup import findings, red_zone_measure
from parity.care.referrals import TRANSITIONS, record_referral, referrals
from parity.codes import load_codelist
from parity.db import Database
from parity.errors import ConfigurationError
from parity.rules.interventions import Reading, load_interventions
from parity.rules.model import Window
from parity.rules.template import load_template
from parity.settings import Settings
from spec.timeline import Patient, dataset

AS_OF = date(2024, 3, 31)  # window 2023-04-01 .. 2024-03-31
STRUCTURE = "2022-23"


def _nhs_numbers(count: int) -> list[str]:
    """Valid test-range NHS numbers (9000000000-9999999999, modulus-11 check digit) from ``nhs_number``."""
    out: list[str] = []
    stem = 900000100
    while len(out) < count:
        check = nhs_number.calculate_checksum(str(stem))
        if check is not None and check != 10:
            candidate = f"{stem}{check}"
            assert nhs_number.is_valid(candidate)
            out.append(candidate)
        stem += 1
    return out


NHS = _nhs_numbers(80)


def code(cluster: str) -> int:
    """A shipped code of ``cluster`` (the first of the list)."""
    return load_codelist(cluster).codes[0].code


def patient(i: int, *, ethnicity: str | None = "A", practice: str = "A81001") -> Patient:
    return Patient(NHS[i]).born("1980-01-01").ethnicity(ethnicity).registered(practice, "2015-01-01")


def result(p: Patient, cluster: str, on: str, value: float | None = None) -> Patient:
    return p.snomed(code(cluster), on, value=value)


def load(db: Database, *patients: Patient) -> None:
    dataset(*patients).write(db)


def flagged(db: Database, *patients: Patient, as_of: date = AS_OF) -> dict[str, set[str]]:
    """Finding ids per patient from the database, checked against the pure evaluation of each timeline."""
    load(db, *patients)
    df = findings(db, as_of)
    got = {p.nhs_number: set() for p in patients}
    for nhs, fid in zip(df["nhs_number"], df["finding_id"], strict=True):
        got[nhs].add(fid)
    catalogue = load_interventions()
    for p in patients:
        readings = [Reading(e["date"], e["snomed_code"], e["value"]) for e in p.events]
        hits = catalogue.evaluate(readings, p.ethnic_category, start=Window(12).start(as_of), end=as_of)
        assert {h.finding_id for h in hits} == got[p.nhs_number], f"pure and database disagree for {p.nhs_number}"
    return got


# -- thresholds ----------------------------------------------------------------------------------------

# (what, cluster, value, ethnicity, expected findings)
VALUE_CASES: list[tuple[str, str, float, str, set[str]]] = [
    # BMI >=25, >=23 for South Asian (H, J, K) and Chinese (R) (S14; trust template)
    ("BMI 24.9 white", "BMIVAL_COD", 24.9, "A", set()),
    ("BMI 25 white", "BMIVAL_COD", 25.0, "A", {"bmi_high"}),
    ("BMI 23 white", "BMIVAL_COD", 23.0, "A", set()),
    ("BMI 22.9 Indian", "BMIVAL_COD", 22.9, "H", set()),
    ("BMI 23 Indian", "BMIVAL_COD", 23.0, "H", {"bmi_high"}),
    ("BMI 22.9 Chinese", "BMIVAL_COD", 22.9, "R", set()),
    ("BMI 23 Chinese", "BMIVAL_COD", 23.0, "R", {"bmi_high"}),
    ("BMI 23 Pakistani", "BMIVAL_COD", 23.0, "J", {"bmi_high"}),
    ("BMI 23 Bangladeshi", "BMIVAL_COD", 23.0, "K", {"bmi_high"}),
    # NICE obesity guideline, 2022 update: also other Asian (L), Black Caribbean (M), Black African (N), other
    # Black (P), and mixed groups with that family background (D, E, F); not White or "any other" (S)
    ("BMI 23 other Asian", "BMIVAL_COD", 23.0, "L", {"bmi_high"}),
    ("BMI 23 Caribbean", "BMIVAL_COD", 23.0, "M", {"bmi_high"}),
    ("BMI 23 African", "BMIVAL_COD", 23.0, "N", {"bmi_high"}),
    ("BMI 22.9 African", "BMIVAL_COD", 22.9, "N", set()),
    ("BMI 23 other Black", "BMIVAL_COD", 23.0, "P", {"bmi_high"}),
    ("BMI 23 White and Black African", "BMIVAL_COD", 23.0, "E", {"bmi_high"}),
    ("BMI 23 White Irish", "BMIVAL_COD", 23.0, "B", set()),
    ("BMI 23 any other group", "BMIVAL_COD", 23.0, "S", set()),
    # BP >140 systolic and/or >90 diastolic (S14)
    ("systolic 140", "SYSBP_COD", 140, "A", set()),
    ("systolic 141", "SYSBP_COD", 141, "A", {"bp_high"}),
    ("diastolic 90", "DIABP_COD", 90, "A", set()),
    ("diastolic 91", "DIABP_COD", 91, "A", {"bp_high"}),
    # HbA1c 42-47 at risk, >=48 diabetes (S14)
    ("HbA1c 41", "IFCCHBAM_COD", 41, "A", set()),
    ("HbA1c 42", "IFCCHBAM_COD", 42, "A", {"glucose_at_risk"}),
    ("HbA1c 47", "IFCCHBAM_COD", 47, "A", {"glucose_at_risk"}),
    ("HbA1c 48", "IFCCHBAM_COD", 48, "A", {"glucose_diabetes"}),
    # HbA1c DCCT (%): 6.0-6.4 at risk (42-47 mmol/mol), >=6.5 diabetes (48 mmol/mol)
    ("DCCT HbA1c 5.9%", "DCCTHBA1C_COD", 5.9, "A", set()),
    ("DCCT HbA1c 6.0%", "DCCTHBA1C_COD", 6.0, "A", {"glucose_at_risk"}),
    ("DCCT HbA1c 6.4%", "DCCTHBA1C_COD", 6.4, "A", {"glucose_at_risk"}),
    ("DCCT HbA1c 6.5%", "DCCTHBA1C_COD", 6.5, "A", {"glucose_diabetes"}),
    # FPG 5.5-6.9 at risk, >=7.0 diabetes (S14)
    ("FPG 5.4", "GLUCFAST_COD", 5.4, "A", set()),
    ("FPG 5.5", "GLUCFAST_COD", 5.5, "A", {"glucose_at_risk"}),
    ("FPG 6.9", "GLUCFAST_COD", 6.9, "A", {"glucose_at_risk"}),
    ("FPG 7.0", "GLUCFAST_COD", 7.0, "A", {"glucose_diabetes"}),
    # Random glucose >=11.1 is the diabetes range (S14); the fasting thresholds never apply to it (issue 11)
    ("RPG 7.5", "GLUCRAND_COD", 7.5, "A", set()),
    ("RPG 11.0", "GLUCRAND_COD", 11.0, "A", set()),
    ("RPG 11.1", "GLUCRAND_COD", 11.1, "A", {"glucose_diabetes"}),
    # An unqualified blood glucose is read as random
    ("glucose 7.5 unqualified", "GLUCUNQ_COD", 7.5, "A", set()),
    ("glucose 12.0 unqualified", "GLUCUNQ_COD", 12.0, "A", {"glucose_diabetes"}),
    # total cholesterol >6.0 (S14); QRISK >=10% (NICE CG181, S26)
    ("TC 6.0", "CHOL2_COD", 6.0, "A", set()),
    ("TC 6.1", "CHOL2_COD", 6.1, "A", {"lipids_high"}),
    ("QRISK 9.9", "QRISKSCORE_COD", 9.9, "A", set()),
    ("QRISK 10", "QRISKSCORE_COD", 10.0, "A", {"lipids_high"}),
    # AUDIT-C >=5 (S27)
    ("AUDIT-C 4", "AUDITC_COD", 4, "A", set()),
    ("AUDIT-C 5", "AUDITC_COD", 5, "A", {"alcohol_risk"}),
]


def test_every_threshold_edge(any_db: Database) -> None:
    """Each value one step either side of its red-zone threshold (clinical-spec §4: S14, S26, S27)."""
    patients = [result(patient(i, ethnicity=eth), cluster, "2024-01-15", value)
                for i, (_, cluster, value, eth, _) in enumerate(VALUE_CASES)]
    got = flagged(any_db, *patients)
    expected = {NHS[i]: case[4] for i, case in enumerate(VALUE_CASES)}
    wrong = [VALUE_CASES[i][0] for i in range(len(VALUE_CASES)) if got[NHS[i]] != expected[NHS[i]]]
    assert not wrong, f"wrong answer for: {wrong}"


# BMI category codes recorded without a value (issue 11): read as the lowest BMI of the category.
BMI_30_PLUS, BMI_40_PLUS, BMI_25_29, BMI_20_24 = 162864005, 408512008, 162863004, 412768003
CATEGORY_CASES: list[tuple[str, list[tuple[str, int, float | None]], str, set[str]]] = [
    ("BMI 30+ code, White", [("2024-01-15", BMI_30_PLUS, None)], "A", {"bmi_high"}),
    ("BMI 40+ code, Indian", [("2024-01-15", BMI_40_PLUS, None)], "H", {"bmi_high"}),
    ("BMI 25-29 code, White", [("2024-01-15", BMI_25_29, None)], "A", {"bmi_high"}),
    ("BMI 20-24 code, White", [("2024-01-15", BMI_20_24, None)], "A", set()),
    ("BMI 30+ code then BMI 22 value", [("2023-06-01", BMI_30_PLUS, None), ("2024-01-15", 60621009, 22.0)],
     "A", set()),
    ("BMI 22 value then BMI 30+ code", [("2023-06-01", 60621009, 22.0), ("2024-01-15", BMI_30_PLUS, None)],
     "A", {"bmi_high"}),
    ("BMI 30+ code before the 12 months", [("2023-01-15", BMI_30_PLUS, None)], "A", set()),
]


def test_bmi_category_codes_trigger_weight_finding(any_db: Database) -> None:
    patients = []
    for i, (_, entries, eth, _) in enumerate(CATEGORY_CASES):
        p = patient(i, ethnicity=eth)
        for on, snomed, value in entries:
            p.snomed(snomed, on, value=value)
        patients.append(p)
    got = flagged(any_db, *patients)
    wrong = [case[0] for i, case in enumerate(CATEGORY_CASES) if got[NHS[i]] != case[3]]
    assert not wrong, f"wrong answer for: {wrong}"
    df = findings(any_db, AS_OF)
    text = df.loc[df["nhs_number"] == NHS[0], "value_text"].iloc[0]
    assert text == "BMI 30+ (category code)"


def test_value_text_and_intervention(any_db: Database) -> None:
    """A finding says what was found, when, and which intervention it maps to (S14)."""
    p = result(patient(0), "IFCCHBAM_COD", "2024-01-15", 44)
    load(any_db, p)
    row = findings(any_db, AS_OF).iloc[0]
    assert row["finding_id"] == "glucose_at_risk"
    assert row["value_text"] == "HbA1c 44 mmol/mol"
    assert row["finding_date"] == date(2024, 1, 15)
    assert row["intervention_id"] == "diabetes_prevention"
    assert row["practice_code"] == "A81001"


def test_weight_gain_over_three_months(any_db: Database) -> None:
    """Weight gain >5 kg over 3 months (S14): +5.0 is not a finding, +5.1 is; +6 over 4 months is not."""
    plus_5_0 = result(result(patient(0), "WEIGHT_COD", "2023-10-01", 80.0), "WEIGHT_COD", "2024-01-01", 85.0)
    plus_5_1 = result(result(patient(1), "WEIGHT_COD", "2023-10-01", 80.0), "WEIGHT_COD", "2024-01-01", 85.1)
    plus_6_in_4_months = result(result(patient(2), "WEIGHT_COD", "2023-09-01", 80.0), "WEIGHT_COD", "2024-01-01", 86.0)
    got = flagged(any_db, plus_5_0, plus_5_1, plus_6_in_4_months)
    assert got == {NHS[0]: set(), NHS[1]: {"weight_gain"}, NHS[2]: set()}
    row = findings(any_db, AS_OF, nhs_numbers=[NHS[1]]).iloc[0]
    assert row["value_text"] == "Weight gain 5.1 kg in 3 months"
    assert row["finding_date"] == date(2024, 1, 1)


def test_current_smoker_not_ex_smoker(any_db: Database) -> None:
    """The latest smoking status counts: current smoker is a finding (S14), ex-smoker is not."""
    current = result(patient(0), "LSMOK_COD", "2024-01-15")
    ex = result(patient(1), "EXSMOK_COD", "2024-01-15")
    quit_since = result(result(patient(2), "LSMOK_COD", "2023-06-01"), "EXSMOK_COD", "2024-01-15")
    started_again = result(result(patient(3), "EXSMOK_COD", "2023-06-01"), "LSMOK_COD", "2024-01-15")
    got = flagged(any_db, current, ex, quit_since, started_again)
    assert got == {NHS[0]: {"smoker"}, NHS[1]: set(), NHS[2]: set(), NHS[3]: {"smoker"}}


def test_only_results_in_the_last_12_months_count(any_db: Database) -> None:
    """Window = the 12 months up to as_of (product.md counting rules): 2023-03-31 is out, 2023-04-01 is in;
    the latest result decides (a later normal HbA1c clears an earlier high one)."""
    too_old = result(patient(0), "IFCCHBAM_COD", "2023-03-31", 50)
    first_day = result(patient(1), "IFCCHBAM_COD", "2023-04-01", 50)
    after_as_of = result(patient(2), "IFCCHBAM_COD", "2024-04-01", 50)
    now_normal = result(result(patient(3), "IFCCHBAM_COD", "2023-06-01", 50), "IFCCHBAM_COD", "2024-01-01", 38)
    got = flagged(any_db, too_old, first_day, after_as_of, now_normal)
    assert got == {NHS[0]: set(), NHS[1]: {"glucose_diabetes"}, NHS[2]: set(), NHS[3]: set()}


def test_only_registered_living_patients(any_db: Database) -> None:
    """Patients count when registered at a practice on as_of and alive (product.md counting rules)."""
    left = Patient(NHS[0]).registered("A81001", "2015-01-01", "2024-01-31")
    result(left, "SYSBP_COD", "2024-01-15", 160)
    dead = result(patient(1), "SYSBP_COD", "2024-01-15", 160).died("2024-02-01")
    here = result(patient(2), "SYSBP_COD", "2024-01-15", 160)
    load(any_db, left, dead, here)
    assert list(findings(any_db, AS_OF)["nhs_number"]) == [NHS[2]]


# -- referrals ------------------------------------------------------------------------------------------


def test_referral_valid_transitions(any_db: Database) -> None:
    """offered -> accepted -> completed, each step kept (append-only history)."""
    rid = record_referral(any_db, NHS[0], "A81001", "stop_smoking", "offered", "dr.a", at=datetime(2024, 1, 2, 9))
    assert record_referral(any_db, NHS[0], "A81001", "stop_smoking", "accepted", "dr.a", referral_id=rid,
                           at=datetime(2024, 1, 3, 9)) == rid
    record_referral(any_db, NHS[0], "A81001", "stop_smoking", "completed", "nurse.b", note="quit at 4 weeks",
                    referral_id=rid, at=datetime(2024, 3, 1, 9))
    other = record_referral(any_db, NHS[1], "A81002", "bp_review", "offered", "dr.a", at=datetime(2024, 1, 5))
    record_referral(any_db, NHS[1], "A81002", "bp_review", "declined", "dr.a", referral_id=other,
                    at=datetime(2024, 1, 5))
    (ref,) = referrals(any_db, nhs_number=NHS[0])
    assert ref.state == "completed"
    assert [s.state for s in ref.history] == ["offered", "accepted", "completed"]
    assert ref.history[-1].note == "quit at 4 weeks"
    assert ref.opened_at == datetime(2024, 1, 2, 9)
    assert {r.state for r in referrals(any_db)} == {"completed", "declined"}
    assert [r.referral_id for r in referrals(any_db, practice_codes=["A81002"])] == [other]
    assert any_db.execute("SELECT COUNT(*) FROM referrals")[0][0] == 5


@pytest.mark.parametrize(("path", "bad"), [
    ((), "accepted"),                       # a referral starts offered
    ((), "completed"),
    (("offered",), "completed"),            # must be accepted first
    (("offered",), "offered"),
    (("offered", "declined"), "accepted"),  # declined is final
    (("offered", "accepted", "completed"), "declined"),  # completed is final
])
def test_referral_invalid_transitions(any_db: Database, path: tuple[str, ...], bad: str) -> None:
    """Anything outside TRANSITIONS is refused with ConfigurationError, and the message has no NHS number."""
    rid = None
    for state in path:
        rid = record_referral(any_db, NHS[0], "A81001", "lipid_review", state, "dr.a", referral_id=rid)
    with pytest.raises(ConfigurationError) as err:
        record_referral(any_db, NHS[0], "A81001", "lipid_review", bad, "dr.a", referral_id=rid)
    assert NHS[0] not in str(err.value)
    assert bad not in TRANSITIONS[path[-1] if path else None]


def test_referral_refuses_unknown_intervention_and_other_patient(any_db: Database) -> None:
    with pytest.raises(ConfigurationError):
        record_referral(any_db, NHS[0], "A81001", "no_such_thing", "offered", "dr.a")
    rid = record_referral(any_db, NHS[0], "A81001", "lipid_review", "offered", "dr.a")
    with pytest.raises(ConfigurationError):
        record_referral(any_db, NHS[1], "A81001", "lipid_review", "accepted", "dr.a", referral_id=rid)
    with pytest.raises(ConfigurationError):
        record_referral(any_db, NHS[0], "A81001", "lipid_review", "accepted", "dr.a", referral_id="missing")


# -- follow-up within 3 months ---------------------------------------------------------------------------

FOLLOW_AS_OF = date(2024, 6, 30)


def test_followed_up_within_three_months_or_not(any_db: Database) -> None:
    """A finding is followed up by a referral step or a coded intervention within 3 months after the finding
    date (product.md M6); overdue once the 3 months have passed without one."""
    in_time = result(patient(0), "SYSBP_COD", "2024-01-10", 150)
    late = result(patient(1), "SYSBP_COD", "2024-01-10", 150)
    on_the_last_day = result(patient(2), "SYSBP_COD", "2024-01-10", 150)
    still_time = result(patient(3), "SYSBP_COD", "2024-05-01", 150)
    coded = result(patient(4), "BMIVAL_COD", "2024-01-10", 31.0).snomed(892281000000101, "2024-03-01")
    wrong_intervention = result(patient(5), "SYSBP_COD", "2024-01-10", 150)
    before_finding = result(patient(6), "SYSBP_COD", "2024-01-10", 150)
    load(any_db, in_time, late, on_the_last_day, still_time, coded, wrong_intervention, before_finding)
    record_referral(any_db, NHS[0], "A81001", "bp_review", "offered", "dr.a", at=datetime(2024, 2, 1, 10))
    record_referral(any_db, NHS[1], "A81001", "bp_review", "offered", "dr.a", at=datetime(2024, 5, 1, 10))
    record_referral(any_db, NHS[2], "A81001", "bp_review", "offered", "dr.a", at=datetime(2024, 4, 10, 16))
    record_referral(any_db, NHS[5], "A81001", "lipid_review", "offered", "dr.a", at=datetime(2024, 2, 1))
    record_referral(any_db, NHS[6], "A81001", "bp_review", "offered", "dr.a", at=datetime(2024, 1, 9))
    df = findings(any_db, FOLLOW_AS_OF).set_index("nhs_number")
    answer = {nhs: (bool(r["followed_up"]), bool(r["overdue"]), r["referral_state"]) for nhs, r in df.iterrows()}
    assert answer == {
        NHS[0]: (True, False, "offered"),
        NHS[1]: (False, True, "offered"),   # offered after the 3 months: late, still overdue
        NHS[2]: (True, False, "offered"),   # 2024-04-10 is the last day of the 3 months
        NHS[3]: (False, False, None),       # found 2024-05-01: until 2024-08-01 to follow up
        NHS[4]: (True, False, "offered"),   # coded: Referral to healthy lifestyle programme
        NHS[5]: (False, True, None),        # a lipid referral does not follow up high BP
        NHS[6]: (False, True, None),        # offered before the finding
    }
    assert df.loc[NHS[4], "intervention_id"] == "weight_management"


def test_referral_state_is_the_latest_step(any_db: Database) -> None:
    p = result(patient(0), "AUDITC_COD", "2024-01-10", 7)
    load(any_db, p)
    rid = record_referral(any_db, NHS[0], "A81001", "alcohol_brief_intervention", "offered", "dr.a",
                          at=datetime(2024, 1, 10, 11))
    record_referral(any_db, NHS[0], "A81001", "alcohol_brief_intervention", "declined", "dr.a", referral_id=rid,
                    at=datetime(2024, 1, 10, 12))
    row = findings(any_db, FOLLOW_AS_OF).iloc[0]
    assert (row["referral_state"], row["referral_id"], bool(row["followed_up"])) == ("declined", rid, True)


# -- the red-zone measure --------------------------------------------------------------------------------


def test_red_zone_measure_practice_and_icb(any_db: Database) -> None:
    """Counts per organisation, checked against totals worked out here from each patient's expected findings.

    A81001 and A81002 are in ICB QHM, B81002 in ICB QOQ (2022-23 structure)."""
    p0 = result(patient(0, practice="A81001"), "SYSBP_COD", "2024-01-10", 150)  # followed up
    p1 = result(result(patient(1, practice="A81001"), "SYSBP_COD", "2024-01-10", 150),
                "BMIVAL_COD", "2024-01-10", 30.0)                                 # two findings, both overdue
    p2 = result(patient(2, practice="A81001"), "SYSBP_COD", "2024-01-10", 120)  # nothing found
    p3 = result(patient(3, practice="A81002"), "AUDITC_COD", "2024-01-10", 6)   # overdue
    p4 = result(patient(4, practice="A81002"), "IFCCHBAM_COD", "2024-06-01", 44)  # not yet due
    p5 = result(patient(5, practice="B81002"), "LSMOK_COD", "2024-01-10")       # followed up
    load(any_db, p0, p1, p2, p3, p4, p5)
    record_referral(any_db, NHS[0], "A81001", "bp_review", "offered", "dr.a", at=datetime(2024, 2, 1))
    record_referral(any_db, NHS[5], "B81002", "stop_smoking", "offered", "dr.a", at=datetime(2024, 3, 1))

    # (nhs, practice, icb, followed_up, overdue) per expected finding
    expected_findings = [
        (NHS[0], "A81001", "QHM", True, False),
        (NHS[1], "A81001", "QHM", False, True),
        (NHS[1], "A81001", "QHM", False, True),
        (NHS[3], "A81002", "QHM", False, True),
        (NHS[4], "A81002", "QHM", False, False),
        (NHS[5], "B81002", "QOQ", True, False),
    ]
    orgs_of = {"practice": {"A81001", "A81002", "B81002"}, "icb": {"QHM", "QOQ"}}

    def totals(key: int, org: str) -> dict[str, Any]:
        rows = [f for f in expected_findings if f[key] == org]
        n, followed = len(rows), sum(f[3] for f in rows)
        return {
            "patients_with_findings": len({f[0] for f in rows}), "findings": n, "findings_followed_up": followed,
            "findings_overdue": sum(f[4] for f in rows), "patients_overdue": len({f[0] for f in rows if f[4]}),
            "percent_followed_up": round(100 * followed / n, 1) if n else None,
        }

    for level, key in (("practice", 1), ("icb", 2)):
        df = red_zone_measure(any_db, FOLLOW_AS_OF, level, structure=STRUCTURE)
        assert set(df["org_code"]) == orgs_of[level]
        for rec in df.to_dict("records"):
            got = {k: rec[k] for k in totals(key, rec["org_code"])}
            got["percent_followed_up"] = None if got["percent_followed_up"] is None or \
                got["percent_followed_up"] != got["percent_followed_up"] else float(got["percent_followed_up"])
            assert got == totals(key, rec["org_code"]), f"{level} {rec['org_code']}"
    assert totals(2, "QHM")["findings"] == 5 and totals(2, "QHM")["percent_followed_up"] == 20.0

    england = red_zone_measure(any_db, FOLLOW_AS_OF, "england", structure=STRUCTURE)
    assert list(england["org_code"]) == ["ENG"] and int(england["findings"].iloc[0]) == 6
    in_qhm = red_zone_measure(any_db, FOLLOW_AS_OF, "practice", structure=STRUCTURE, parent="U89141")
    assert list(in_qhm["org_code"]) == ["A81001"]
    controlled = red_zone_measure(any_db, FOLLOW_AS_OF, "icb", structure=STRUCTURE,
                                  settings=Settings(database_url=":memory:"))
    assert controlled["findings"].isna().all()  # every count is below 8: suppressed
    with pytest.raises(ConfigurationError):
        red_zone_measure(any_db, FOLLOW_AS_OF, "galaxy", structure=STRUCTURE)


# -- the data -------------------------------------------------------------------------------------------


def test_thresholds_equal_the_trust_template() -> None:
    """Where the trust template and the interventions catalogue judge the same code, the thresholds are equal
    (both from clinical-spec.md §4): every template finding has an identical criterion, and vice versa."""
    catalogue = load_interventions()
    criteria = [c for f in catalogue.findings if f.kind == "value" for c in f.criteria if c.cluster]
    compared = 0
    for fld in load_template().fields:
        if fld.kind != "quantity" or fld.snomed is None:
            continue
        ours = {(c.when, c.value, c.below, c.value_by_ethnicity) for c in criteria if fld.snomed in c.codes()}
        theirs = {(t.when, t.value, t.below, t.value_by_ethnicity) for t in fld.findings}
        if ours or theirs:
            assert ours == theirs, fld.id
            compared += 1
    assert compared == 8  # bmi, systolic, diastolic, total cholesterol, qrisk, hba1c, fasting glucose, auditc
    smoking = load_template().field("smoking_status").findings[0]
    smoker = catalogue.finding("smoker")
    assert set(smoking.codes) <= smoker.match_codes()


def test_catalogue_is_complete_and_sourced() -> None:
    """Every finding names a source and an intervention; coded states use shipped codes only; the random
    glucose criterion reads the random (and unqualified) glucose codes, never the fasting ones."""
    catalogue = load_interventions()
    assert [f.id for f in catalogue.findings] == [
        "smoker", "bmi_high", "weight_gain", "bp_high", "glucose_at_risk", "glucose_diabetes", "lipids_high",
        "alcohol_risk"]
    for f in catalogue.findings:
        assert f.source and f.intervention in catalogue.interventions
    for i in catalogue.interventions.values():
        for c in i.coded:
            assert c.code in load_codelist(c.cluster)
    rpg = [c for c in catalogue.finding("glucose_diabetes").criteria if c.label == "Random glucose"][0]
    assert rpg.cluster == "GLUCRAND_COD" and rpg.codes() and not rpg.codes() & load_codelist("GLUCFAST_COD").ids()
    assert not rpg.matches(11.0) and rpg.matches(11.1) is True
    fasting = {c.cluster for f in catalogue.findings for c in f.criteria if c.label == "Fasting glucose"}
    assert fasting == {"GLUCFAST_COD"}


def test_referrals_are_append_only_on_postgres(postgres_db: Database) -> None:
    """On PostgreSQL a trigger refuses UPDATE and DELETE on referrals (a change of state is a new row)."""
    import psycopg

    record_referral(postgres_db, NHS[0], "A81001", "bp_review", "offered", "dr.a")
    for sql in ("UPDATE referrals SET state = 'completed'", "DELETE FROM referrals"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            postgres_db.execute(sql)
    assert postgres_db.count("referrals") == 1
