"""The trust check template: every code counts where it should, ranges refuse slips, findings fire at their
thresholds (clinical-spec.md §4), and a submitted form becomes exactly the record a clinician entered."""

from __future__ import annotations

from datetime import date

import pytest

from parity.codes import is_concept_id, load_codelist
from parity.errors import ValidationError
from parity.ingest.plausibility import RANGES
from parity.interop.record import CheckRecord, record_from_form
from parity.rules import load_measure
from parity.rules.template import load_template

TEMPLATE = load_template()
PHSMI = load_measure("phsmi")
EXTENDED = load_measure("extended-9")
BASE = {"nhs_number": "9000000009", "date_of_birth": "1970-01-01", "practice_code": "J82155",
        "performed_on": "2026-11-20", "performed_by": "Sam Jones, RMN"}


def _codes(clusters: tuple[str, ...]) -> set[int]:
    return {int(c) for name in clusters for c in load_codelist(name).ids()}


def test_every_code_is_a_snomed_concept_id() -> None:
    for code in TEMPLATE.all_codes():
        assert is_concept_id(str(code)), code


@pytest.mark.parametrize("section", [s for s in TEMPLATE.sections if s.id in {c.id for c in EXTENDED.checks}],
                         ids=lambda s: s.id)
def test_codes_that_count_are_in_the_checks_done_clusters(section) -> None:
    check = next(c for c in EXTENDED.checks if c.id == section.id)
    done = _codes(check.done)
    counted = [code for f in section.fields if f.counts for code in f.codes]
    assert counted, "a check needs at least one field that counts"
    assert set(counted) <= done
    if section.declined_code is not None:
        assert section.declined_code in _codes(check.declined)
        assert section.declined_code not in done


def test_the_six_core_sections_are_the_six_core_checks() -> None:
    assert [s.id for s in TEMPLATE.sections if s.core] == [c.id for c in PHSMI.checks]


def test_ranges_are_no_wider_than_the_loader_plausibility_ranges() -> None:
    by_cluster = {r.cluster: r for r in RANGES}
    for f in TEMPLATE.fields:
        for cluster, rng in by_cluster.items():
            if f.snomed is not None and f.snomed in _codes((cluster,)):
                assert rng.low <= f.low and f.high <= rng.high, f.id


def _record(**form: str) -> CheckRecord:
    return record_from_form(TEMPLATE, {**BASE, **form}, trust_code="RX2", created_by="t", today=date(2026, 11, 27))


def _findings(**form: str) -> list[str]:
    return [f.finding for f in _record(**form).findings(TEMPLATE)]


@pytest.mark.parametrize(("form", "flagged"), [
    ({"bmi.bmi": "24.9"}, False), ({"bmi.bmi": "25"}, True),
    ({"bmi.bmi": "23", "ethnicity": "H"}, True), ({"bmi.bmi": "22.9", "ethnicity": "R"}, False),
    ({"bmi.bmi": "23", "ethnicity": "A"}, False),
    ({"blood_pressure.systolic": "140", "blood_pressure.diastolic": "90"}, False),
    ({"blood_pressure.systolic": "141", "blood_pressure.diastolic": "90"}, True),
    ({"blood_pressure.systolic": "120", "blood_pressure.diastolic": "91"}, True),
    ({"glucose.hba1c": "41"}, False), ({"glucose.hba1c": "42"}, True), ({"glucose.hba1c": "48"}, True),
    ({"glucose.fasting_glucose": "5.4"}, False), ({"glucose.fasting_glucose": "5.5"}, True),
    ({"lipids.total_cholesterol": "6.0"}, False), ({"lipids.total_cholesterol": "6.1"}, True),
    ({"lipids.qrisk": "9.9"}, False), ({"lipids.qrisk": "10"}, True),
    ({"alcohol.auditc": "4"}, False), ({"alcohol.auditc": "5"}, True),
    ({"smoking.smoking_status": "8517006"}, False), ({"smoking.smoking_status": "77176002"}, True),
])
def test_findings_fire_at_their_thresholds(form: dict[str, str], flagged: bool) -> None:
    assert bool(_findings(**form)) is flagged


def test_hba1c_bands_give_different_actions() -> None:
    at_risk = _record(**{"glucose.hba1c": "47"}).findings(TEMPLATE)[0]
    diabetes = _record(**{"glucose.hba1c": "48"}).findings(TEMPLATE)[0]
    assert "Diabetes Prevention Programme" in at_risk.action
    assert "Diabetes review" in diabetes.action


def test_bmi_is_worked_out_from_weight_and_height() -> None:
    r = _record(**{"bmi.weight": "81", "bmi.height": "180"})
    bmi = next(x for x in r.results if x.field_id == "bmi")
    assert bmi.value == 25.0 and bmi.snomed == 60621009 and bmi.ucum == "kg/m2"


@pytest.mark.parametrize(("form", "column", "reason"), [
    ({"blood_pressure.systolic": "400", "blood_pressure.diastolic": "80"}, "blood_pressure.systolic",
     "between 60 and 260"),
    ({"blood_pressure.systolic": "120"}, "blood_pressure", "needs both"),
    ({"glucose.hba1c": "6.5%"}, "glucose.hba1c", "must be a number"),
    ({"alcohol.auditc": "4.5"}, "alcohol.auditc", "whole number"),
    ({"smoking.smoking_status": "123"}, "smoking.smoking_status", "not one of the template's answers"),
    ({"nhs_number": "9000000001", "smoking.smoking_status": "8517006"}, "nhs_number", "not a valid NHS number"),
    ({"performed_on": "2026-12-01", "smoking.smoking_status": "8517006"}, "performed_on", "future"),
    ({"lipids.status": "done"}, "lipids", "no result"),
    ({"glucose.status": "declined", "glucose.hba1c": "40"}, "glucose", "marked declined"),
    ({}, "checks", "nothing was recorded"),
])
def test_bad_entries_are_refused_naming_field_and_reason(form: dict[str, str], column: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        _record(**form)
    problems = {p.column: p.reason for p in err.value.problems}
    assert column in problems and reason in problems[column]
    assert all(v not in str(err.value) + " ".join(problems.values()) for v in ("400", "6.5%", "9000000001"))


def test_declined_and_unable_are_recorded_with_their_codes() -> None:
    r = _record(**{"bmi.status": "declined", "bmi.reason": "did not want to be weighed", "blood_pressure.status":
                   "unable", "blood_pressure.reason": "too distressed", "smoking.smoking_status": "266919005"})
    coded = {item.snomed for item in r.coded_items(TEMPLATE)}
    assert coded == {736013005, 266919005}  # BMI declined is coded; "unable" has no sourced code
    rows = {row["check"]: row for row in r.summary_rows(TEMPLATE)}
    assert rows["Weight and BMI"]["status"] == "Declined"
    assert rows["Blood pressure"]["status"] == "Unable" and "too distressed" in rows["Blood pressure"]["result"]
    assert rows["Lipids"]["status"] == "Not done"
    assert r.core_done(TEMPLATE) == 1


def test_a_record_survives_json() -> None:
    r = _record(**{"glucose.hba1c": "44", "smoking.smoking_status": "77176002"})
    assert CheckRecord.from_json(r.to_json()) == r
    assert r.content_digest(TEMPLATE) == CheckRecord.from_json(r.to_json()).content_digest(TEMPLATE)
