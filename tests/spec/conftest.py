"""Fixtures for the spec tests: every spec test runs on every engine.

``engine`` is parametrised over ``reference`` (pure Python, the oracle), ``duckdb``,
``postgres`` and ``spark`` (the Ibis engine on a real database or a local Spark session;
PostgreSQL and Spark skip locally when missing and fail under CI, see ``tests/conftest.py``). It is
a function: give it a ``Dataset`` and it returns an engine loaded with exactly that data.

On Spark every test's datasets are answered by one batch (``spark_batch``): before the first Spark
test runs, each Spark test body is run once with the reference engine only to learn which datasets
it builds (nothing is asserted from that pass), then all of them go into one set of Spark tables
and the engine runs once per measure and reporting date. The tests then assert on Spark's answers.

``run`` is the shortcut most tests use: ``run("phsmi", "2024-03-31", patient, ...)`` builds the
dataset, runs the engine and returns a ``Result`` with one dict per patient row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd
import pytest

from parity.engine.dataset import Dataset
from parity.rules.registry import load_measure
from spec.timeline import STRUCTURE, Patient, clear_tables, d, dataset

ENGINES = ("reference", "duckdb", "postgres", "spark")


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Callable[[Dataset], Any]:
    """A function ``Dataset -> engine`` for the engine named by the parameter."""
    kind = request.param
    if kind == "reference":
        from parity.engine.reference import ReferenceEngine

        return ReferenceEngine
    if kind == "spark":
        return request.getfixturevalue("spark_spec_batch").engine_for

    db = request.getfixturevalue("duckdb_db" if kind == "duckdb" else "postgres_db")
    from parity.engine.ibis_engine import IbisEngine

    def make(ds: Dataset) -> Any:
        clear_tables(db)
        ds.write(db)
        return IbisEngine(db)

    return make


@pytest.fixture(scope="session")
def spark_spec_batch(request: pytest.FixtureRequest, spark_db: Any) -> Any:
    """Every dataset the Spark-parametrised spec tests of this run build, in one ``SparkBatch``."""
    from spec.spark_batch import SparkBatch, fingerprint

    seen: dict[str, Dataset] = {}
    for item in request.session.items:
        for ds in _datasets_of(item):
            seen.setdefault(fingerprint(ds), ds)
    return SparkBatch(spark_db, list(seen.values()))


def _datasets_of(item: pytest.Item) -> list[Dataset]:
    """The datasets a Spark spec test builds: its body run with ``run`` on the reference engine
    (outcomes ignored; this pass only records)."""
    import inspect

    from parity.engine.reference import ReferenceEngine

    callspec = getattr(item, "callspec", None)
    if callspec is None or callspec.params.get("engine") != "spark" or "run" not in item.fixturenames:
        return []
    built: list[Dataset] = []

    def record(measure_id: str, as_of: str | date, *patients: Patient, practices: list | None = None) -> Result:
        ds = dataset(*patients, practices=practices)
        built.append(ds)
        return Result(ReferenceEngine(ds), measure_id, d(as_of))

    kwargs: dict[str, Any] = {}
    for name in inspect.signature(item.obj).parameters:
        if name == "run":
            kwargs[name] = record
        elif name in callspec.params:
            kwargs[name] = callspec.params[name]
        else:
            return []  # a fixture this pass cannot give: the test runs Spark on its own datasets
    try:
        item.obj(**kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001, S110 - assertions, skips: only the datasets matter here
        pass
    return built


def _py(v: Any) -> Any:
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is pd.NaT:
        return None
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values (NaN → None), easy to read in assertion messages."""
    return [{k: _py(v) for k, v in rec.items()} for rec in df.astype(object).to_dict("records")]


class Result:
    """What an engine said about one timeline on one reporting date."""

    def __init__(self, eng: Any, measure_id: str, as_of: date) -> None:
        self.engine = eng
        self.measure = load_measure(measure_id)
        self.as_of = as_of
        self.status = eng.patient_status(self.measure, as_of)
        self.rows = {r["nhs_number"]: r for r in records(self.status)}
        self._aggregates: dict[tuple[str, str], pd.DataFrame] = {}

    def listed(self, nhs_number: str) -> bool:
        """True when the patient has a row in the status table."""
        return nhs_number in self.rows

    def row(self, nhs_number: str) -> dict[str, Any]:
        assert nhs_number in self.rows, f"{nhs_number} not in the status table; rows: {sorted(self.rows)}"
        return self.rows[nhs_number]

    def only(self) -> dict[str, Any]:
        """The one patient row (fails unless exactly one patient is listed)."""
        assert len(self.rows) == 1, f"expected one patient row, got {sorted(self.rows)}"
        return next(iter(self.rows.values()))

    def aggregate(self, level: str, structure: str = STRUCTURE) -> pd.DataFrame:
        key = (level, structure)
        if key not in self._aggregates:
            self._aggregates[key] = self.engine.aggregate(self.measure, self.as_of, level, structure)
        return self._aggregates[key]

    def orgs(self, level: str, structure: str = STRUCTURE) -> dict[str, dict[str, Any]]:
        """Aggregate rows at ``level`` keyed by ``org_code``."""
        return {r["org_code"]: r for r in records(self.aggregate(level, structure))}


@pytest.fixture
def run(engine: Callable[[Dataset], Any]) -> Callable[..., Result]:
    """``run(measure_id, as_of, *patients, practices=None) -> Result`` on the current engine."""

    def _run(measure_id: str, as_of: str | date, *patients: Patient, practices: list | None = None) -> Result:
        return Result(engine(dataset(*patients, practices=practices)), measure_id, d(as_of))

    return _run
