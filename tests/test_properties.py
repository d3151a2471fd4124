"""Property tests: the Ibis engine on DuckDB, PostgreSQL and Spark gives exactly the reference
engine's answer on random small patient histories, for every built-in measure, per patient and per
organisation at every level.

Each example draws one measure and one organisation level (so every measure and level is covered
across examples) and compares the whole status frame and the aggregate frame.

Histories are drawn around a random reporting date: several patients; registrations with gaps,
moves, overlaps and ends (including practices missing from the structure); deaths; events from
every cluster any measure reads plus unrelated codes, with dates that land on the window edges
(12 and 24 months, 6 months for antipsychotics, as_of, the day after); values including None and
the BMI thresholds; ethnicity; medications with BNF 0402 and others.

One database per test function; tables are emptied between examples. ``max_examples`` is
``EXAMPLES`` by default and 400 with ``PARITY_HYPOTHESIS_PROFILE=nightly``.

On Spark, where each engine call is a few jobs, one example is a batch of ``SPARK_BATCH``
histories on one reporting date answered by one engine run (``spec.spark_batch``), compared
per history at every level; ``SPARK_EXAMPLES`` batches by default (ten times more nightly).
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
from parity.rules.model import CORE_CHECKS, months_before
from parity.rules.registry import list_measures, load_measure
from spec.timeline import (
    NHS_NUMBERS,
    PLACEHOLDER_DMD,
    UNRELATED_CODE,
    clear_tables,
    code_in_both,
    code_of,
    ids_or_empty,
    known_practices,
    measure_clusters,
    practice_row,
)

# Each example costs about 0.7 s per database (mostly Ibis compiling two queries), so the default
# keeps the file under a minute; the nightly profile explores ten times further.
EXAMPLES = 35
NIGHTLY = os.environ.get("PARITY_HYPOTHESIS_PROFILE", "") == "nightly"
SETTINGS = settings(
    max_examples=400 if NIGHTLY else EXAMPLES,
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


BOTH_LISTS = "MH_COD+MHREM_COD"  # pseudo-cluster: codes in both register lists
UNRELATED = "UNRELATED"  # pseudo-cluster: codes no measure reads


@cache
def codes_by_cluster() -> dict[str, tuple[int, ...]]:
    """Up to three codes of every non-empty cluster any measure reads: the smallest, the largest
    and one found in that cluster only (codes shared between clusters are kept on purpose), plus
    the two pseudo-clusters above."""
    out: dict[str, tuple[int, ...]] = {}
    for cluster in sorted(measure_clusters()):
        ids = sorted(ids_or_empty(cluster))
        if not ids:
            continue
        picks = {ids[0], ids[-1]}
        try:
            picks.add(code_of(cluster))
        except LookupError:
            pass
        out[cluster] = tuple(sorted(picks))
    out[BOTH_LISTS] = (code_in_both("MH_COD", "MHREM_COD"),)
    out[UNRELATED] = (UNRELATED_CODE, 38341003)  # anaemia; hypertension (HYP_COD: no measure reads it)
    return out


@cache
def cluster_groups() -> dict[str, tuple[str, ...]]:
    """Clusters by role, so that draws hit register and check codes often."""
    available = codes_by_cluster()
    check_clusters: set[str] = set()
    done_by_check: dict[str, set[str]] = {}
    for m in MEASURES:
        for c in load_measure(m).checks:
            check_clusters |= set(c.clusters())
            done_by_check.setdefault(c.id, set()).update(c.done)
    groups = {
        "register": ("MH_COD", "MH_COD", "MH_COD", "MH_COD", "MHREM_COD", BOTH_LISTS),
        "check": tuple(sorted(check_clusters & set(available))),
        "other": tuple(sorted(set(available) - check_clusters - {"MH_COD", "MHREM_COD"})),
    }
    groups["bmi_value"] = ("BMIVAL_COD",)
    for check, done in done_by_check.items():
        groups[f"done:{check}"] = tuple(sorted(done & set(available)))
    return groups


def edge_dates(as_of: date) -> list[date]:
    """Dates on both sides of every window edge the measures use."""
    out = [as_of, as_of + timedelta(days=1)]
    for months in (6, 12, 24):
        start = months_before(as_of, months) + timedelta(days=1)
        out += [start, start - timedelta(days=1)]
    return out


def dates_around(as_of: date) -> st.SearchStrategy[date]:
    """Window edges, the last 24 months, or anywhere from 4 years before to 2 months after as_of."""
    return st.one_of(
        st.sampled_from(edge_dates(as_of)),
        st.dates(months_before(as_of, 24), as_of),
        st.dates(as_of - timedelta(days=4 * 365), as_of + timedelta(days=60)),
    )


AS_OF = st.one_of(st.sampled_from(AS_OF_CHOICES), st.dates(date(2022, 1, 1), date(2025, 12, 31)))


@st.composite
def histories(draw: st.DrawFn, as_of: date | None = None) -> tuple[date, Dataset]:
    as_of = as_of or draw(AS_OF)
    when = dates_around(as_of)
    recent = st.one_of(st.dates(months_before(as_of, 13), as_of), st.sampled_from(edge_dates(as_of)))
    near = [as_of - timedelta(days=1), as_of, as_of + timedelta(days=1)]
    between_12_and_24_months = st.dates(months_before(as_of, 24), months_before(as_of, 12))
    groups = cluster_groups()
    codes = codes_by_cluster()

    def event(nhs: str, group: str, on: st.SearchStrategy[date]) -> dict:
        cluster = draw(st.sampled_from(groups[group]))
        return {
            "nhs_number": nhs,
            "date": draw(on),
            "snomed_code": draw(st.sampled_from(codes[cluster])),
            "value": draw(st.sampled_from(VALUES)),
            "unit": None,
            "recorded_by": draw(st.sampled_from(RECORDED_BY)),
        }

    nhs_numbers = draw(st.lists(st.sampled_from(NHS_NUMBERS[:12]), min_size=1, max_size=10, unique=True))
    ds = Dataset(practices=[practice_row(p) for p in known_practices()])
    for nhs in nhs_numbers:
        ds.patients.append({
            "nhs_number": nhs,
            "date_of_birth": draw(st.dates(date(1930, 1, 1), date(2015, 12, 31))),
            "sex": draw(st.sampled_from(("female", "male", "intersex", "unknown"))),
            "ethnicity": draw(st.sampled_from(ETHNICITIES)),
            "lsoa": None,
            "imd_decile": None,
            "date_of_death": draw(st.one_of(st.none(), st.none(), st.none(), st.sampled_from(near), when)),
        })
        # Usually one long registration open on as_of, then 0-2 more: moves, gaps, overlaps, ends.
        starts = [draw(st.one_of(st.dates(as_of - timedelta(days=20 * 365), as_of), st.sampled_from(near)))]
        starts += draw(st.lists(when, max_size=2))
        for start in starts:
            end = draw(st.one_of(st.none(), st.none(), st.sampled_from([start, *near]), when))
            if end is not None and end < start:
                end = None
            ds.registrations.append({
                "nhs_number": nhs,
                "practice_code": draw(st.sampled_from(PRACTICES)),
                "start_date": start,
                "end_date": end,
            })
        for _ in range(draw(st.integers(0, 3))):
            ds.events.append(event(nhs, "register", when))
        if draw(st.booleans()):  # an annual check: one code for each core check, mostly in the window
            for check in CORE_CHECKS:
                ds.events.append(event(nhs, f"done:{check}", recent))
        if draw(st.booleans()):  # lipids 12-24 months ago: done only under the lower-risk window
            ds.events.append(event(nhs, "done:lipids", between_12_and_24_months))
        if draw(st.booleans()):  # a BMI value near the overweight thresholds
            bmi = event(nhs, "bmi_value", when)
            bmi["value"] = draw(st.sampled_from((None, 22.9, 23.0, 24.9, 25.0, 30.0)))
            ds.events.append(bmi)
        for _ in range(draw(st.integers(0, 8))):
            ds.events.append(event(nhs, "check", when))
        for _ in range(draw(st.integers(0, 4))):
            ds.events.append(event(nhs, "other", when))
        for _ in range(draw(st.integers(0, 3))):
            ds.medications.append({
                "nhs_number": nhs,
                "date": draw(when),
                "dmd_code": PLACEHOLDER_DMD,
                "bnf_code": draw(st.sampled_from(BNF_CODES)),
            })
    return as_of, ds


def assert_engines_agree(db, as_of: date, ds: Dataset, measure_id: str, level: str) -> None:
    from parity.engine.ibis_engine import IbisEngine
    from parity.engine.reference import ReferenceEngine

    clear_tables(db)
    ds.write(db)
    reference, ibis = ReferenceEngine(ds), IbisEngine(db)
    measure = load_measure(measure_id)
    assert_frame_equal(
        ibis.patient_status(measure, as_of),
        reference.patient_status(measure, as_of),
        obj=f"{measure_id} status on {as_of}",
    )
    assert_frame_equal(
        ibis.aggregate(measure, as_of, level, STRUCTURE),
        reference.aggregate(measure, as_of, level, STRUCTURE),
        obj=f"{measure_id} aggregate at {level} on {as_of}",
    )


measures = st.sampled_from(MEASURES)
levels = st.sampled_from(LEVELS)


@pytest.mark.slow
@SETTINGS
@given(history=histories(), measure_id=measures, level=levels)
def test_duckdb_engine_matches_reference(duckdb_db, history, measure_id, level):
    as_of, ds = history
    assert_engines_agree(duckdb_db, as_of, ds, measure_id, level)


@pytest.mark.slow
@pytest.mark.postgres
@SETTINGS
@given(history=histories(), measure_id=measures, level=levels)
def test_postgres_engine_matches_reference(postgres_db, history, measure_id, level):
    as_of, ds = history
    assert_engines_agree(postgres_db, as_of, ds, measure_id, level)


SPARK_BATCH = 8
SPARK_EXAMPLES = 3


@st.composite
def history_batches(draw: st.DrawFn) -> tuple[date, list[Dataset]]:
    """``SPARK_BATCH`` histories around one reporting date."""
    as_of = draw(AS_OF)
    return as_of, [draw(histories(as_of=as_of))[1] for _ in range(SPARK_BATCH)]


@pytest.mark.slow
@settings(SETTINGS, max_examples=10 * SPARK_EXAMPLES if NIGHTLY else SPARK_EXAMPLES)
@given(batch=history_batches(), measure_id=measures)
def test_spark_engine_matches_reference(spark_db, batch, measure_id):
    from parity.engine.reference import ReferenceEngine
    from spec.spark_batch import SparkBatch

    as_of, datasets = batch
    measure = load_measure(measure_id)
    run = SparkBatch(spark_db, datasets)
    for i, ds in enumerate(datasets):
        reference = ReferenceEngine(ds)
        assert_frame_equal(run.status(i, measure, as_of), reference.patient_status(measure, as_of),
                           obj=f"{measure_id} status on {as_of}, history {i}")
        for level in LEVELS:
            assert_frame_equal(run.aggregate(i, measure, as_of, level, STRUCTURE),
                               reference.aggregate(measure, as_of, level, STRUCTURE),
                               obj=f"{measure_id} aggregate at {level} on {as_of}, history {i}")
