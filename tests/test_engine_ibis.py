"""The Ibis engine on real DuckDB and PostgreSQL databases: the output contract, organisations
(including practices missing from the structure), ``aggregate_all`` and ``trend``, its event
cache, and agreement with the reference engine on a small hand-made practice.

The rules themselves are covered by the spec tests (tests/spec, every engine) and the property
tests (tests/test_properties.py, random histories against the reference engine).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pandas.testing import assert_frame_equal

from parity.codes import codes_for
from parity.engine.base import LEVELS, aggregate_columns, status_columns
from parity.engine.dataset import Dataset
from parity.engine.ibis_engine import IbisEngine
from parity.engine.reference import ReferenceEngine
from parity.orgs import practices as structure_practices
from parity.rules.registry import list_measures, load_measure

STRUCTURE = "2022-23"
AS_OF = date(2024, 3, 31)
PRACTICE_A, PRACTICE_B, NOWHERE = "A81001", "A81004", "Y99999"  # A and B are in different PCNs


def code(cluster: str) -> int:
    return min(codes_for([cluster])[cluster])


def days_ago(n: int, as_of: date = AS_OF) -> date:
    return as_of - timedelta(days=n)


class Builder:
    """A tiny extract: patients with one registration each, and their events."""

    def __init__(self) -> None:
        rows = structure_practices(STRUCTURE)
        self.ds = Dataset(practices=rows[rows["practice_code"].isin([PRACTICE_A, PRACTICE_B])].to_dict("records"))
        self._n = 0

    def patient(self, practice: str = PRACTICE_A, *, smi: bool = True, ethnicity: str | None = None,
                died: date | None = None, registered: date = date(2010, 1, 1)) -> str:
        self._n += 1
        nhs = f"90000000{self._n:02d}"
        self.ds.patients.append({"nhs_number": nhs, "date_of_birth": date(1970, 1, 1), "sex": "female",
                                 "ethnicity": ethnicity, "date_of_death": died})
        self.ds.registrations.append({"nhs_number": nhs, "practice_code": practice, "start_date": registered})
        if smi:
            self.event(nhs, "MH_COD", date(2015, 6, 1))
        return nhs

    def event(self, nhs: str, cluster: str, when: date, value: float | None = None) -> None:
        self.ds.events.append({"nhs_number": nhs, "date": when, "snomed_code": code(cluster), "value": value})

    def all_six(self, nhs: str, when: date, *, skip: tuple[str, ...] = ()) -> None:
        for cluster in ("BMIVAL_COD", "BP_COD", "CHOL2_COD", "IFCCHBAM_COD", "AUDITC_COD", "NSMOK_COD"):
            if cluster not in skip:
                self.event(nhs, cluster, when, 30.0)


def sample() -> Dataset:
    """One of each situation the aggregates distinguish."""
    b = Builder()
    complete = b.patient()
    b.all_six(complete, days_ago(40))
    b.event(complete, "BMIVAL_COD", days_ago(40), 31.5)  # same day, larger value: reported
    partial = b.patient(PRACTICE_B)
    b.event(partial, "BP_COD", days_ago(10), 120.0)
    b.event(partial, "BMIDEC_COD", days_ago(10))
    unmapped = b.patient(NOWHERE)
    b.all_six(unmapped, days_ago(100))
    remission = b.patient()
    b.event(remission, "MHREM_COD", date(2020, 1, 1))
    b.patient(died=days_ago(5))
    b.patient(registered=AS_OF + timedelta(days=1))
    b.patient(smi=False)
    # Lower-risk lipids (qof-mh021: 24 months) and a personalised care adjustment.
    lower_risk = b.patient(PRACTICE_B, ethnicity="A")
    b.all_six(lower_risk, days_ago(30), skip=("CHOL2_COD", "BMIVAL_COD"))
    b.event(lower_risk, "CHOL2_COD", days_ago(600), 5.1)
    b.event(lower_risk, "BMIVAL_COD", days_ago(30), 21.0)
    excepted = b.patient(PRACTICE_B)
    b.event(excepted, "MHEXC_COD", days_ago(20))
    return b.ds


def engines(db, ds: Dataset) -> tuple[IbisEngine, ReferenceEngine]:
    ds.write(db)
    return IbisEngine(db), ReferenceEngine(ds)


@pytest.mark.parametrize("measure_id", list_measures())
def test_matches_reference_and_contract(any_db, measure_id):
    ibis_engine, reference = engines(any_db, sample())
    measure = load_measure(measure_id)
    status = ibis_engine.patient_status(measure, AS_OF)
    assert list(status.columns) == status_columns(measure)
    assert status["on_register"].dtype == bool and status["checks_done"].dtype == "int64"
    assert status["bmi_value"].dtype == "float64"
    assert_frame_equal(status, reference.patient_status(measure, AS_OF))
    everything = ibis_engine.aggregate_all(measure, AS_OF, STRUCTURE)
    assert list(everything) == list(LEVELS)
    for level in LEVELS:
        one = ibis_engine.aggregate(measure, AS_OF, level, STRUCTURE)
        assert list(one.columns) == aggregate_columns(measure)
        assert_frame_equal(one, reference.aggregate(measure, AS_OF, level, STRUCTURE), obj=level)
        assert_frame_equal(everything[level], one, obj=level)


def test_status_values_and_windows(any_db):
    ibis_engine, _ = engines(any_db, sample())
    rows = ibis_engine.patient_status(load_measure("qof-mh021"), AS_OF).set_index("nhs_number")
    assert rows.loc["9000000001", "bmi_value"] == 31.5
    assert rows.loc["9000000001", "bmi_date"] == days_ago(40)
    assert rows.loc["9000000002", "bmi_status"] == "declined"
    assert rows.loc["9000000004", "on_register"] == False  # noqa: E712 - numpy bool
    assert "9000000005" not in rows.index and "9000000006" not in rows.index
    assert "9000000007" not in rows.index
    assert rows.loc["9000000008", "lipids"]  # 600 days ago: inside the lower-risk 24 months
    assert not rows.loc["9000000009", "in_denominator"]  # exception code (PCA)
    phsmi = ibis_engine.patient_status(load_measure("phsmi"), AS_OF).set_index("nhs_number")
    assert not phsmi.loc["9000000008", "lipids"]
    assert phsmi.loc["9000000009", "in_denominator"]


def test_unmapped_practice_and_totals(any_db):
    ibis_engine, _ = engines(any_db, sample())
    measure = load_measure("phsmi")
    by_level = ibis_engine.aggregate_all(measure, AS_OF, STRUCTURE)
    england = by_level["england"].iloc[0]
    assert (england["org_code"], england["org_name"], england["parent_code"]) == ("ENG", "England", None)
    for level in ("practice", "pcn", "sub_icb", "icb", "region"):
        df = by_level[level].set_index("org_code")
        assert df.loc["UNMAPPED", "org_name"] == f"Practice not in {STRUCTURE} structure"
        assert df.loc["UNMAPPED", "parent_code"] is None
        assert df.loc["UNMAPPED", "register"] == 1
        assert df["register"].sum() == england["register"]
        assert df["all_six"].sum() == england["all_six"]
    assert by_level["region"].set_index("org_code").loc["Y63", "parent_code"] == "ENG"
    practice = by_level["practice"].set_index("org_code")
    assert practice.loc[PRACTICE_A, "parent_code"] == "U89141"
    assert practice.loc[PRACTICE_A, "register"] == 1  # the remission patient is not counted
    assert practice.loc[PRACTICE_A, "percent"] == 100.0


def test_trend_one_block_per_date(any_db):
    ibis_engine, reference = engines(any_db, sample())
    measure = load_measure("qof-mh021")
    dates = [AS_OF, date(2023, 3, 31), date(2023, 9, 30)]  # order kept as given
    trend = ibis_engine.trend(measure, dates, "icb", STRUCTURE)
    assert list(trend.columns) == ["as_of", *aggregate_columns(measure)]
    assert list(dict.fromkeys(trend["as_of"])) == dates
    assert_frame_equal(trend, reference.trend(measure, dates, "icb", STRUCTURE))
    for d in dates:
        block = trend[trend["as_of"] == d].drop(columns="as_of").reset_index(drop=True)
        assert_frame_equal(block, ibis_engine.aggregate(measure, d, "icb", STRUCTURE))
    every = ibis_engine.trend_all(measure, dates, STRUCTURE, ("practice", "icb"))
    assert_frame_equal(every["icb"], trend)
    assert_frame_equal(every["practice"], ibis_engine.trend(measure, dates, "practice", STRUCTURE))


def test_new_rows_are_seen(any_db):
    b = Builder()
    nhs = b.patient()
    ibis_engine, _ = engines(any_db, b.ds)
    measure = load_measure("phsmi")
    assert ibis_engine.aggregate(measure, AS_OF, "england", STRUCTURE).loc[0, "bmi"] == 0
    later = Builder()
    later.event(nhs, "BMIVAL_COD", days_ago(3), 24.0)
    later.ds.practices = []
    later.ds.write(any_db)
    assert ibis_engine.aggregate(measure, AS_OF, "england", STRUCTURE).loc[0, "bmi"] == 1


def test_empty_database(any_db):
    ibis_engine = IbisEngine(any_db)
    measure = load_measure("qof-mh021")
    status = ibis_engine.patient_status(measure, AS_OF)
    assert status.empty and list(status.columns) == status_columns(measure)
    agg = ibis_engine.aggregate(measure, AS_OF, "pcn", STRUCTURE)
    assert agg.empty and list(agg.columns) == aggregate_columns(measure)
    assert ibis_engine.trend(measure, [], "pcn", STRUCTURE).empty


def test_unknown_level(duckdb_db):
    with pytest.raises(ValueError, match="unknown level"):
        IbisEngine(duckdb_db).aggregate(load_measure("phsmi"), AS_OF, "ward", STRUCTURE)
    assert repr(IbisEngine(duckdb_db)) == "IbisEngine(kind='duckdb')"
