"""What the shipped codelists make count (issue 11, product.md "Counting rules").

The rules that matter, pinned against the measure definitions and, end to end, against every engine:

- every EXCESSALC_COD code counts as alcohol recorded, and the alcohol check names EXCESSALC_COD
  itself, so the rule survives a codelist release whose ALC_COD lacks an excess code;
- the alcohol codes practices use most (the units-per-day drinker family, within/above sensible
  limits, hazardous/harmful, binge, units observables, drinking status) count as alcohol recorded;
- a random or unqualified blood glucose counts as glucose done, as a fasting one does;
- no decline or exception code counts as done for any check, and no code counts for two checks;
- every shipped code is a valid SNOMED CT concept id and every local code says where it came from.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import nhs_number
import pytest

from parity.codes import codes_for, is_concept_id, list_clusters, load_codelist
from parity.engine.dataset import Dataset
from parity.rules import list_measures, load_measure
from parity.rules.model import Measure
from spec.timeline import Patient, clear_tables, code_of, dataset

AS_OF = date(2024, 3, 31)
IN_WINDOW = "2023-09-15"
CORE = ("bmi", "blood_pressure", "lipids", "glucose", "alcohol", "smoking")

# The units-per-day drinker family and the other alcohol codes practices record most (issue 11), with
# the preferred term each source gives. Each must count as alcohol recorded.
DRINKER_CODES = {
    266917007: "Trivial drinker - <1u/day",
    160575005: "Light drinker - 1-2u/day",
    160576006: "Moderate drinker - 3-6u/day",
    160577002: "Heavy drinker - 7-9u/day",
    160578007: "Very heavy drinker - greater than 9 units/day",
    228278007: "Fairly heavy drinker",
    160592001: "Alcohol intake above recommended sensible limits",
    160593006: "Alcohol intake within recommended sensible limits",
    198421000000108: "Hazardous alcohol use",
    198431000000105: "Harmful alcohol use",
    228315001: "Binge drinker",
    1082631000000102: "Alcohol units consumed per day",
    1082641000000106: "Alcohol units consumed per week",
    219006: "Current drinker of alcohol",
    105542008: "Current non-drinker of alcohol",
    82581004: "Ex-drinker",
}
# Glucose by kind of sample (HL7 UK Core UKCore-BloodGlucose terms). All count as glucose done; the
# follow-up rules read the subsets, so a fasting threshold is never applied to a random sample.
RANDOM_GLUCOSE = {
    1089381000000101: "Random blood glucose level",
    1031331000000106: "Plasma random glucose level",
    1028881000000105: "Serum random glucose level",
}
UNQUALIFIED_GLUCOSE = {
    997671000000106: "Blood glucose level",
    1010671000000102: "Plasma glucose level",
    1010611000000107: "Serum glucose level",
}
FASTING_GLUCOSE = {997681000000108: "Fasting blood glucose level"}


def decline_clusters() -> list[str]:
    """Every shipped cluster that records a decline, unsuitability or exception."""
    return [c for c in list_clusters() if c.endswith("DEC_COD") or c in ("MHEXC_COD",)]


def check(measure: Measure, check_id: str) -> Any:
    return next(c for c in measure.checks if c.id == check_id)


def done_ids(measure: Measure, check_id: str) -> frozenset[int]:
    return frozenset().union(*codes_for(check(measure, check_id).done).values())


def measures_with(check_id: str) -> list[str]:
    return [m for m in list_measures() if any(c.id == check_id for c in load_measure(m).checks)]


# --- alcohol ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("measure", ["phsmi", "qof-mh021"])
def test_every_excess_alcohol_code_counts_as_alcohol_recorded(measure: str) -> None:
    excess = load_codelist("EXCESSALC_COD").ids()
    assert len(excess) == 16  # the published EXCESSALC_COD file shipped unchanged
    missing = excess - done_ids(load_measure(measure), "alcohol")
    assert not missing, f"{measure}: EXCESSALC_COD codes that do not count as alcohol recorded: {sorted(missing)}"


@pytest.mark.parametrize("measure", measures_with("alcohol"))
def test_alcohol_check_names_the_excess_alcohol_cluster(measure: str) -> None:
    """Named, not only copied into ALC_COD: an imported ALC_COD that lacks an excess code still counts it."""
    assert "EXCESSALC_COD" in check(load_measure(measure), "alcohol").done


def test_shipped_alc_cod_holds_every_excess_alcohol_code() -> None:
    # The published ALC_COD pages list the excess codes too (SOURCES.md), so the shipped list does.
    assert load_codelist("EXCESSALC_COD").ids() <= load_codelist("ALC_COD").ids()


@pytest.mark.parametrize(("code", "term"), sorted(DRINKER_CODES.items()))
def test_drinker_codes_count_as_alcohol_recorded(code: int, term: str) -> None:
    assert load_codelist("ALC_COD").term_for(code) == term
    for measure in measures_with("alcohol"):
        assert code in done_ids(load_measure(measure), "alcohol"), f"{measure}: {code} {term}"


@pytest.mark.parametrize(
    ("cluster", "code"), [("AUDIT_COD", 443280005), ("AUDIT_COD", 273265007), ("AUDITC_COD", 763256006)]
)
def test_audit_scores_count_as_alcohol_recorded(cluster: str, code: int) -> None:
    assert code in load_codelist(cluster)
    for measure in measures_with("alcohol"):
        assert {cluster, "FAST_COD"} <= set(check(load_measure(measure), "alcohol").done)
        assert code in done_ids(load_measure(measure), "alcohol"), f"{measure}: {cluster} {code}"


def test_alcohol_declines_ship_and_are_declines() -> None:
    alcdec = load_codelist("ALCDEC_COD")
    assert alcdec.term_for(428073005) == "Alcohol consumption screening test declined"
    assert alcdec.term_for(858861000000101) == "Declines to state current alcohol consumption"
    for measure in measures_with("alcohol"):
        assert "ALCDEC_COD" in check(load_measure(measure), "alcohol").declined


# --- glucose ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "term"), sorted({**RANDOM_GLUCOSE, **UNQUALIFIED_GLUCOSE, **FASTING_GLUCOSE}.items()))
def test_fasting_random_and_unqualified_glucose_count_as_glucose_done(code: int, term: str) -> None:
    assert load_codelist("GLUC_COD").term_for(code) == term
    for measure in measures_with("glucose"):
        assert code in done_ids(load_measure(measure), "glucose"), f"{measure}: {code} {term}"


def test_glucose_subsets_split_gluc_cod_by_kind_of_sample() -> None:
    fasting, random_, unqualified = (load_codelist(c).ids() for c in ("GLUCFAST_COD", "GLUCRAND_COD", "GLUCUNQ_COD"))
    assert fasting | random_ | unqualified == load_codelist("GLUC_COD").ids()
    assert not fasting & random_ and not fasting & unqualified and not random_ & unqualified
    assert set(RANDOM_GLUCOSE) <= random_
    assert set(UNQUALIFIED_GLUCOSE) <= unqualified
    assert set(FASTING_GLUCOSE) <= fasting
    # A fasting term never sits in the random or unqualified list, a random term only in the random one.
    for cluster, ids in (("GLUCRAND_COD", random_), ("GLUCUNQ_COD", unqualified)):
        terms = [load_codelist(cluster).term_for(c) or "" for c in ids]
        assert not [t for t in terms if "fasting" in t.lower()], cluster
    assert all("random" in (load_codelist("GLUCRAND_COD").term_for(c) or "").lower() for c in random_)


# --- declines, overlaps, syntax, provenance -----------------------------------------------------------


def test_decline_clusters_are_the_expected_ones() -> None:
    assert {
        "ALCDEC_COD",
        "BLDTESTDEC_COD",
        "BMIDEC_COD",
        "BPDEC_COD",
        "CHOLDEC_COD",
        "GLUCDEC_COD",
        "SMOKDEC_COD",
        "MHEXC_COD",
    } <= set(decline_clusters())


@pytest.mark.parametrize("measure", list_measures())
def test_no_decline_code_counts_as_done_for_any_check(measure: str) -> None:
    m = load_measure(measure)
    for c in m.checks:
        done = done_ids(m, c.id)
        for cluster in decline_clusters():
            both = load_codelist(cluster).ids() & done
            assert not both, f"{measure}: {cluster} codes count as {c.id} done: {sorted(both)}"


@pytest.mark.parametrize("measure", list_measures())
def test_no_code_counts_for_two_checks(measure: str) -> None:
    m = load_measure(measure)
    done = {c.id: done_ids(m, c.id) for c in m.checks}
    for a, b in itertools.combinations(sorted(done), 2):
        assert not done[a] & done[b], f"{measure}: {a} and {b} share {sorted(done[a] & done[b])}"


def test_every_shipped_code_is_a_valid_sctid() -> None:
    bad = {c: [x.code for x in load_codelist(c).codes if not is_concept_id(x.code)] for c in list_clusters()}
    assert not {c: v for c, v in bad.items() if v}


def test_every_local_code_has_a_term_and_a_source_note() -> None:
    for cluster in list_clusters():
        cl = load_codelist(cluster)
        if cl.kind == "local":
            unsourced = [c.code for c in cl.codes if not c.term.strip() or not c.note.strip()]
            assert not unsourced, f"{cluster}: codes without a term or a source note: {unsourced}"


# --- end to end: the codes count on every engine ------------------------------------------------------

ENGINES = ("reference", "duckdb", "postgres")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Callable[[Dataset], Any]:
    """A function ``Dataset -> engine`` (as in tests/spec/conftest.py)."""
    if request.param == "reference":
        from parity.engine.reference import ReferenceEngine

        return ReferenceEngine
    db = request.getfixturevalue("duckdb_db" if request.param == "duckdb" else "postgres_db")
    from parity.engine.ibis_engine import IbisEngine

    def make(ds: Dataset) -> Any:
        clear_tables(db)
        ds.write(db)
        return IbisEngine(db)

    return make


def nhs_numbers() -> Iterator[str]:
    """Valid test-range NHS numbers (9000000000-9999999999, modulus 11), from the ``nhs_number`` package."""
    stem = 900000300
    while True:
        check_digit = nhs_number.calculate_checksum(str(stem))
        if check_digit is not None and check_digit != 10:
            yield f"{stem}{check_digit}"
        stem += 1


def expected_cases() -> list[tuple[int, str | None]]:
    """(code, the one check it must mark done, or None for a decline that marks nothing done)."""
    cases: list[tuple[int, str | None]] = [(c, "alcohol") for c in sorted(load_codelist("EXCESSALC_COD").ids())]
    cases += [(c, "alcohol") for c in sorted(set(DRINKER_CODES) - load_codelist("EXCESSALC_COD").ids())]
    cases += [(c, "glucose") for c in sorted({**RANDOM_GLUCOSE, **UNQUALIFIED_GLUCOSE})]
    for cluster in decline_clusters():
        cases += [(c, None) for c in sorted(load_codelist(cluster).ids())]
    return cases


@pytest.mark.parametrize("measure", ["phsmi", "qof-mh021"])
def test_the_codes_count_on_every_engine(engine: Callable[[Dataset], Any], measure: str) -> None:
    """One SMI patient per code, the code in the window and nothing else: the engine marks exactly
    the expected check done (alcohol or glucose), and a decline code marks nothing done."""
    cases = expected_cases()
    numbers = itertools.islice(nhs_numbers(), len(cases))
    patients = {
        nhs: (
            code,
            want,
            Patient(nhs)
            .born("1980-01-01")
            .registered("A81001", "2015-01-01")
            .snomed(code_of("MH_COD"), "2016-05-01")
            .snomed(code, IN_WINDOW),
        )
        for nhs, (code, want) in zip(numbers, cases, strict=True)
    }
    status = engine(dataset(*(p for _, _, p in patients.values()))).patient_status(load_measure(measure), AS_OF)
    rows = {r["nhs_number"]: r for r in status.to_dict("records")}
    wrong = []
    for nhs, (code, want, _) in patients.items():
        done = [c for c in CORE if bool(rows[nhs][c])]
        if done != ([want] if want else []):
            wrong.append((code, want, done))
    assert not wrong, f"{measure}: (code, expected check, checks done) that disagree: {wrong}"
