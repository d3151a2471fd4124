"""A tiny, readable builder for patient timelines used by the spec and property tests.

    Patient("9000000009").born("1980-01-01").registered("A81001", "2015-01-01")
        .code("MH_COD", "2016-05-01").code("SYSBP_COD", "2023-04-01", value=120)

A cluster name resolves to a real SNOMED code of that cluster (``parity.codes``) that belongs to
no other cluster any built-in measure reads, so a test about one cluster cannot pass because of
another. ``code_in_both`` picks a code from the intersection of two clusters (e.g. the codes
that are both in MH_COD and in MHREM_COD).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

import pytest

from parity.engine.dataset import Dataset
from parity.rules.registry import list_measures, load_measure

# NHS numbers in the synthetic test range with valid modulus-11 check digits.
NHS_NUMBERS: tuple[str, ...] = (
    "9000000009", "9000000017", "9000000025", "9000000033", "9000000041", "9000000068",
    "9000000076", "9000000084", "9000000092", "9000000106", "9000000114", "9000000122",
    "9000000130", "9000000149", "9000000157", "9000000165", "9000000173", "9000000181",
    "9000000203", "9000000211", "9000000238", "9000000246", "9000000254", "9000000262",
)

# BNF codes (chemical substance level): the lipid rule reads the 0402 prefix only.
QUETIAPINE_BNF = "0402010AB"  # antipsychotic, BNF 4.2
SERTRALINE_BNF = "0403030Q0"  # antidepressant, BNF 4.3: not an antipsychotic
# The rules never read dm+d codes; tests use this placeholder.
PLACEHOLDER_DMD = 1

# Real practices and their 2022-23 hierarchy (shared/data/qof/qof_2022-23/MAPPING_NHS_GEOGRAPHIES_2223.csv):
#   A81001, A81017  same PCN (Stockton PCN)
#   A81002          same sub-ICB (16C), other PCN
#   A82004          same ICB (QHM), other sub-ICB (01H)
#   B81002          same region (Y63), other ICB (QOQ)
#   G81001          other region (Y59 South East)
_HIERARCHY = {
    "A81001": ("The Densham Surgery", "U89141", "Stockton PCN", "16C", "QHM", "Y63"),
    "A81017": ("Woodbridge Practice", "U89141", "Stockton PCN", "16C", "QHM", "Y63"),
    "A81002": ("Queens Park Medical Centre", "U07032", "North Stockton PCN", "16C", "QHM", "Y63"),
    "A82004": ("Alston Medical Practice", "U08085", "Eden (Cumbria) PCN", "01H", "QHM", "Y63"),
    "B81002": ("Chp Ltd - Bransholme", "U03824", "Venn PCN", "03F", "QOQ", "Y63"),
    "G81001": ("Hove Medical Centre", "U14062", "West Hove PCN", "09D", "QNX", "Y59"),
}
_SUB_ICB_NAMES = {
    "16C": "NHS North East and North Cumbria ICB - 16C",
    "01H": "NHS North East and North Cumbria ICB - 01H",
    "03F": "NHS Humber and North Yorkshire ICB - 03F",
    "09D": "NHS Sussex ICB - 09D",
}
_ICB_NAMES = {
    "QHM": "NHS North East and North Cumbria Integrated Care Board",
    "QOQ": "NHS Humber and North Yorkshire Integrated Care Board",
    "QNX": "NHS Sussex Integrated Care Board",
}
_REGION_NAMES = {"Y63": "North East and Yorkshire", "Y59": "South East"}
STRUCTURE = "2022-23"


def practice_row(practice_code: str, structure: str = STRUCTURE, **override: str) -> dict[str, Any]:
    """The ``practices`` row of a known practice (fields can be overridden, e.g. ``icb_code``)."""
    name, pcn, pcn_name, sub_icb, icb, region = _HIERARCHY[practice_code]
    row = {
        "structure": structure,
        "practice_code": practice_code,
        "practice_name": name,
        "pcn_code": pcn,
        "pcn_name": pcn_name,
        "sub_icb_code": sub_icb,
        "sub_icb_name": _SUB_ICB_NAMES[sub_icb],
        "icb_code": icb,
        "icb_name": _ICB_NAMES[icb],
        "region_code": region,
        "region_name": _REGION_NAMES[region],
    }
    row.update(override)
    return row


def clear_tables(db: Any) -> None:
    """Empty every table a Dataset writes (lets one database serve many datasets)."""
    with db.transaction():
        for name in Dataset.TABLES:
            db.execute(f"DELETE FROM {name}")


def known_practices() -> tuple[str, ...]:
    return tuple(_HIERARCHY)


def d(value: str | date) -> date:
    """``"2024-03-31"`` → ``date(2024, 3, 31)``."""
    return value if isinstance(value, date) else date.fromisoformat(value)


# -- codes --------------------------------------------------------------------------------------


@cache
def measure_clusters() -> frozenset[str]:
    """Every cluster any built-in measure reads."""
    names: set[str] = set()
    for m in list_measures():
        names |= load_measure(m).clusters()
    return frozenset(names)


@cache
def cluster_ids(cluster: str) -> frozenset[int]:
    """SNOMED ids of ``cluster`` from ``parity.codes``."""
    from parity.codes import load_codelist

    return frozenset(int(i) for i in load_codelist(cluster).ids())


def ids_or_empty(cluster: str) -> frozenset[int]:
    """The codes of ``cluster``, or none when the cluster is unknown."""
    try:
        return cluster_ids(cluster)
    except Exception:  # noqa: BLE001 - a cluster without a list cannot collide with anything
        return frozenset()


@cache
def _others(exclude: frozenset[str]) -> frozenset[int]:
    out: set[int] = set()
    for c in measure_clusters() - exclude:
        out |= ids_or_empty(c)
    return frozenset(out)


class EmptyCluster(LookupError):
    """``parity.codes`` ships the cluster with no codes (no public list was found)."""


def has_codes(cluster: str) -> bool:
    return bool(ids_or_empty(cluster))


@cache
def code_of(cluster: str) -> int:
    """A code of ``cluster`` that is in no other cluster a built-in measure reads."""
    own = cluster_ids(cluster)
    if not own:
        raise EmptyCluster(f"parity.codes ships {cluster} with no codes (no public list)")
    only = sorted(own - _others(frozenset({cluster})))
    if not only:
        raise LookupError(f"every code of {cluster} is also in another cluster the measures read")
    return only[0]


@cache
def code_in_both(first: str, second: str) -> int:
    """A code that is in both clusters and in no third cluster the measures read."""
    both = cluster_ids(first) & cluster_ids(second)
    only = sorted(both - _others(frozenset({first, second})))
    if not only:
        raise LookupError(f"no code is in both {first} and {second} (and nothing else)")
    return only[0]


# An unrelated SNOMED code (no measure reads it): 22298006 |Myocardial infarction| is in CHD_COD,
# so use 271737000 |Anaemia| instead, checked against every cluster at use.
UNRELATED_CODE = 271737000


def unrelated_code() -> int:
    """A SNOMED code that no built-in measure reads."""
    assert UNRELATED_CODE not in _others(frozenset()), "UNRELATED_CODE is in a measure cluster"
    return UNRELATED_CODE


# -- the builder --------------------------------------------------------------------------------


@dataclass
class Patient:
    """One patient's timeline. Every method returns the patient, so calls chain."""

    nhs_number: str
    date_of_birth: date = date(1980, 1, 1)
    sex: str = "female"
    ethnic_category: str | None = None
    date_of_death: date | None = None
    registrations: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    medications: list[dict[str, Any]] = field(default_factory=list)

    def born(self, on: str | date) -> Patient:
        self.date_of_birth = d(on)
        return self

    def ethnicity(self, letter: str | None) -> Patient:
        """NHS ethnic category letter (A, B, C = White groups; H = Indian; ...)."""
        self.ethnic_category = letter
        return self

    def died(self, on: str | date) -> Patient:
        self.date_of_death = d(on)
        return self

    def registered(self, practice_code: str, start: str | date, end: str | date | None = None) -> Patient:
        self.registrations.append({
            "nhs_number": self.nhs_number,
            "practice_code": practice_code,
            "start_date": d(start),
            "end_date": None if end is None else d(end),
        })
        return self

    def code(
        self, cluster: str, on: str | date, value: float | None = None, by: str | None = None
    ) -> Patient:
        """An event with a code of ``cluster`` (see ``code_of``), optionally a value and recording org.

        A cluster shipped empty skips the test: the rule cannot be exercised without a code."""
        try:
            code = code_of(cluster)
        except EmptyCluster as exc:
            pytest.skip(str(exc))
        return self.snomed(code, on, value=value, by=by)

    def snomed(self, code: int, on: str | date, value: float | None = None, by: str | None = None) -> Patient:
        """An event with an explicit SNOMED code."""
        self.events.append({
            "nhs_number": self.nhs_number,
            "date": d(on),
            "snomed_code": int(code),
            "value": value,
            "unit": None,
            "recorded_by": by,
        })
        return self

    def prescribed(self, on: str | date, bnf: str | None = QUETIAPINE_BNF) -> Patient:
        """A prescription; the default BNF code is an antipsychotic (BNF 0402)."""
        self.medications.append({
            "nhs_number": self.nhs_number,
            "date": d(on),
            "dmd_code": PLACEHOLDER_DMD,
            "bnf_code": bnf,
        })
        return self

    def patient_row(self) -> dict[str, Any]:
        return {
            "nhs_number": self.nhs_number,
            "date_of_birth": self.date_of_birth,
            "sex": self.sex,
            "ethnicity": self.ethnic_category,
            "lsoa": None,
            "imd_decile": None,
            "date_of_death": self.date_of_death,
        }


def dataset(*patients: Patient, practices: list[dict[str, Any]] | None = None) -> Dataset:
    """A Dataset of ``patients`` plus the 2022-23 ``practices`` rows of every known practice they
    are registered at (unknown practice codes get no row: they are "unmapped").
    ``practices`` replaces those rows when given."""
    ds = Dataset()
    for p in patients:
        ds.patients.append(p.patient_row())
        ds.registrations.extend(p.registrations)
        ds.events.extend(p.events)
        ds.medications.extend(p.medications)
    if practices is None:
        used = sorted({r["practice_code"] for r in ds.registrations} & set(_HIERARCHY))
        practices = [practice_row(code) for code in used]
    ds.practices = list(practices)
    return ds


# -- common starting points ---------------------------------------------------------------------

# One "done" cluster per core check, used when a test needs checks done but is not about which code.
CHECK_CLUSTER = {
    "bmi": "BMIVAL_COD",
    "blood_pressure": "SYSBP_COD",
    "lipids": "CHOL2_COD",
    "glucose": "IFCCHBAM_COD",
    "alcohol": "ALC_COD",
    "smoking": "NSMOK_COD",
}
# The declined cluster of each core check.
DECLINE_CLUSTER = {
    "bmi": "BMIDEC_COD",
    "blood_pressure": "BPDEC_COD",
    "lipids": "CHOLDEC_COD",
    "glucose": "GLUCDEC_COD",
    "alcohol": "ALCDEC_COD",
    "smoking": "SMOKDEC_COD",
}
CHECK_VALUE = {"bmi": 22.0, "blood_pressure": 120.0, "lipids": 4.5, "glucose": 38.0}


def declinable(checks: tuple[str, ...] = tuple(DECLINE_CLUSTER)) -> tuple[str, ...]:
    """The checks among ``checks`` whose declined cluster has codes (ALCDEC_COD ships empty)."""
    return tuple(c for c in checks if has_codes(DECLINE_CLUSTER[c]))


def smi_patient(nhs_number: str = "9000000009", practice: str = "A81001") -> Patient:
    """Born 1980, registered at ``practice`` since 2015, SMI diagnosis (MH_COD) in 2016."""
    return (
        Patient(nhs_number)
        .born("1980-01-01")
        .registered(practice, "2015-01-01")
        .code("MH_COD", "2016-05-01")
    )


def with_checks(
    patient: Patient, on: str | date, checks: tuple[str, ...] | None = None, by: str | None = None
) -> Patient:
    """Record each of ``checks`` (default: the six core checks) on ``on``, recorded by ``by``."""
    for check in checks or tuple(CHECK_CLUSTER):
        patient.code(CHECK_CLUSTER[check], on, value=CHECK_VALUE.get(check), by=by)
    return patient


def declined(patient: Patient, on: str | date, checks: tuple[str, ...]) -> Patient:
    """Record a declined code for each of ``checks`` on ``on``."""
    for check in checks:
        patient.code(DECLINE_CLUSTER[check], on)
    return patient


def declined_everything(patient: Patient, on: str | date) -> Patient:
    """Decline every core check that can be declined; the others (only alcohol: ALCDEC_COD ships
    empty) are done instead, so every check the patient did not receive has a declined code."""
    rest = tuple(c for c in CHECK_CLUSTER if c not in declinable())
    return declined(with_checks(patient, on, rest) if rest else patient, on, declinable())
