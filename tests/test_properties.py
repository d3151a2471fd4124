"""Property tests: the Ibis engine on DuckDB and on PostgreSQL gives exactly the reference engine's
answer on random small patient histories, for every built-in measure, per patient and per
organisation at every level.

Histories are drawn around a random reporting date: several patients; registrations with gaps,
moves, overlaps and ends (including practices missing from the structure); deaths; events from
every cluster any measure reads plus unrelated codes, with dates that land on the window edges
(12 and 24 months, 6 months for antipsychotics, as_of, the day after); values including None and
the BMI thresholds; ethnicity; medications with BNF 0402 and others.

One database per test function; tables are emptied between examples. ``max_examples`` is 40 by
default and 400 with ``PARITY_HYPOTHESIS_PROFILE=nightly``.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

from parity.engine.base import LEVELS
from parity.engine.dataset import Dataset
from parity.rules.model import months_before
from parity.rules.registry import list_measures, load_measure
from spec.timeline import (
    NHS_NUMBERS,
    PLACEHOLDER_DMD,
    UNRELATED_CODE,
    clear_tables,
    cluster_ids,
    code_in_both,
    known_practices,
    measure_clusters,
    practice_row,
)

NIGHTLY = os.environ.get("PARITY_HYPOTHESIS_PROFILE", "") == "nightly"
SETTINGS = settings(
    max_examples=400 if NIGHTLY else 40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)

MEASURES = tuple(list_measures())
STRUCTURE = "2022-23"
PRACTICES = (*known_practices(), "Y99999")  # Y99999 is in no structure: "unmapped"
ETHNICITIES = (None, "A", "B", "C", "D", "H", "J", "M", "R", "S", "Z")
VALUES = (None, None, 0.0, 4.5, 22.9, 23.0, 24.0, 24.9, 25.0, 30.0, 38.0, 120.0, 142.5)
BNF_CODES = (None, "0402010AB", "040201060", "0402", "0403030Q0", "0205051R0")
RECORDED_BY = (None, "RX2", "A81001", "G81001")
AS_OF_CHOICES = (date(2024, 3, 31), date(2024, 2, 29), date(2025, 2, 28), date(2023, 12, 31))


@cache
def code_pool() -> tuple[int, ...]:
    """Up to three codes of every cluster any measure reads (shared codes included on purpose),
    a code in both MH_COD and MHREM_COD, and codes no measure reads."""
    pool: set[int] = {UNRELATED_CODE, 38341003}  # anaemia; hypertension (HYP_COD: no measure reads it)
    for cluster in sorted(measure_clusters()):
        try:
            ids = sorted(cluster_ids(cluster))
        except Exception:  # noqa: BLE001 - a cluster without a list has nothing to draw
            continue
        pool.update(ids[:2])
        pool.update(ids[-1:])
    pool.add(code_in_both("MH_COD", "MHREM_COD"))
    return tuple(sorted(pool))


@cache
def register_pool() -> tuple[int, ...]:
    """Register codes, drawn more often so that most patients are listed."""
    return tuple(sorted(cluster_ids("MH_COD")))[:3] + tuple(sorted(cluster_ids("MHREM_COD")))[:2] + (
        code_in_both("MH_COD", "MHREM_COD"),
    )


def edge_dates(as_of: date) -> list[date]:
    """Dates on both sides of every window edge the measures use."""
    out = [as_of, as_of + timedelta(days=1)]
    for months in (6, 12, 24):
        start = months_before(as_of, months) + timedelta(days=1)
        out += [start, start - timedelta(days=1)]
    return out


def dates_around(as_of: date) -> st.SearchStrategy[date]:
    return st.one_of(
        st.sampled_from(edge_dates(as_of)),
        st.dates(as_of - timedelta(days=4 * 365), as_of + timedelta(days=60)),
    )


@st.composite
def histories(draw: st.DrawFn) -> tuple[date, Dataset]:
    as_of = draw(st.one_of(st.sampled_from(AS_OF_CHOICES), st.dates(date(2022, 1, 1), date(2025, 12, 31))))
    when = dates_around(as_of)
    nhs_numbers = draw(st.lists(st.sampled_from(NHS_NUMBERS[:8]), min_size=1, max_size=6, unique=True))
    ds = Dataset(practices=[practice_row(p) for p in known_practices()])
    for nhs in nhs_numbers:
        ds.patients.append({
            "nhs_number": nhs,
            "date_of_birth": draw(st.dates(date(1930, 1, 1), date(2015, 12, 31))),
            "sex": draw(st.sampled_from(("female", "male", "intersex", "unknown"))),
            "ethnicity": draw(st.sampled_from(ETHNICITIES)),
            "lsoa": None,
            "imd_decile": None,
            "date_of_death": draw(st.one_of(st.none(), st.none(), when)),
        })
        for _ in range(draw(st.integers(0, 3))):
            start = draw(st.one_of(when, st.dates(as_of - timedelta(days=20 * 365), as_of)))
            end = draw(st.one_of(st.none(), st.sampled_from([start, as_of, as_of - timedelta(days=1)]), when))
            if end is not None and end < start:
                end = None
            ds.registrations.append({
                "nhs_number": nhs,
                "practice_code": draw(st.sampled_from(PRACTICES)),
                "start_date": start,
                "end_date": end,
            })
        n_register = draw(st.integers(0, 3))
        n_events = draw(st.integers(0, 14))
        for i in range(n_register + n_events):
            pool = register_pool() if i < n_register else code_pool()
            ds.events.append({
                "nhs_number": nhs,
                "date": draw(when),
                "snomed_code": draw(st.sampled_from(pool)),
                "value": draw(st.sampled_from(VALUES)),
                "unit": None,
                "recorded_by": draw(st.sampled_from(RECORDED_BY)),
            })
        for _ in range(draw(st.integers(0, 3))):
            ds.medications.append({
                "nhs_number": nhs,
                "date": draw(when),
                "dmd_code": PLACEHOLDER_DMD,
                "bnf_code": draw(st.sampled_from(BNF_CODES)),
            })
    return as_of, ds


def assert_engines_agree(db, as_of: date, ds: Dataset) -> None:
    from parity.engine.ibis_engine import IbisEngine
    from parity.engine.reference import ReferenceEngine

    clear_tables(db)
    ds.write(db)
    reference, ibis = ReferenceEngine(ds), IbisEngine(db)
    for measure_id in MEASURES:
        measure = load_measure(measure_id)
        expected = reference.patient_status(measure, as_of)
        assert_frame_equal(ibis.patient_status(measure, as_of), expected, obj=f"{measure_id} status")
        for level in LEVELS:
            assert_frame_equal(
                ibis.aggregate(measure, as_of, level, STRUCTURE),
                reference.aggregate(measure, as_of, level, STRUCTURE),
                obj=f"{measure_id} aggregate at {level}",
            )


@pytest.mark.slow
@SETTINGS
@given(history=histories())
def test_duckdb_engine_matches_reference(duckdb_db, history):
    as_of, ds = history
    assert_engines_agree(duckdb_db, as_of, ds)


@pytest.mark.slow
@pytest.mark.postgres
@SETTINGS
@given(history=histories())
def test_postgres_engine_matches_reference(postgres_db, history):
    as_of, ds = history
    assert_engines_agree(postgres_db, as_of, ds)
