"""Many small datasets answered by one Spark run, so Spark tests cost a few jobs, not hundreds.

Spark pays a fixed price per job (scheduling, code generation, an Arrow round trip), which dwarfs
a five-patient dataset. ``SparkBatch`` puts many datasets into one set of tables, each tagged
by a prefix on ``nhs_number`` and ``practice_code`` (``00042/9000000009``), and asks the Ibis
engine on Spark once per measure and reporting date. Every rule is per patient and a patient's
registrations and events carry the same tag, so each dataset's answer is the rows with its tag,
untagged. Aggregates are the engine's own roll-up (``parity.engine.rollup.roll_up``) of the
per-practice counts Spark computed, with the dataset's ``practices`` rows: exactly what
``IbisEngine.aggregate`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd

from parity.db.bulk import rows_to_arrow
from parity.engine.base import normalise_status
from parity.engine.dataset import Dataset
from parity.rules.model import Measure


def fingerprint(ds: Dataset) -> str:
    """Identifies a dataset by its content."""
    return repr([getattr(ds, name) for name in Dataset.TABLES])


def _tag(i: int) -> str:
    return f"{i:05d}/"


def union(datasets: Sequence[Dataset]) -> Dataset:
    """One dataset holding every dataset's rows, tagged (``practices`` are not needed: see module doc)."""
    out = Dataset()
    for i, ds in enumerate(datasets):
        tag = _tag(i)
        out.patients += [{**r, "nhs_number": tag + r["nhs_number"]} for r in ds.patients]
        out.registrations += [{**r, "nhs_number": tag + r["nhs_number"], "practice_code": tag + r["practice_code"]}
                              for r in ds.registrations]
        out.events += [{**r, "nhs_number": tag + r["nhs_number"]} for r in ds.events]
        out.medications += [{**r, "nhs_number": tag + r["nhs_number"]} for r in ds.medications]
    return out


def _untag(df: pd.DataFrame, i: int, columns: Sequence[str]) -> pd.DataFrame:
    tag = _tag(i)
    mine = df[df[columns[0]].astype(str).str.startswith(tag)].copy()
    for col in columns:
        mine[col] = [v[len(tag):] for v in mine[col]]
    return mine.reset_index(drop=True)


class SparkBatch:
    """The datasets' tables on the Spark ``db`` and one engine over them (answers kept per
    measure and reporting date)."""

    def __init__(self, db: Any, datasets: Sequence[Dataset]) -> None:
        from parity.db.spark import replace_tables
        from parity.engine.ibis_engine import IbisEngine

        self.datasets = list(datasets)
        self.index = {fingerprint(ds): i for i, ds in enumerate(self.datasets)}
        tagged = union(self.datasets)
        replace_tables(db, {name: rows_to_arrow(name, getattr(tagged, name)) for name in Dataset.TABLES})
        self.engine = IbisEngine(db)
        self._status: dict[tuple[Measure, date], pd.DataFrame] = {}
        self._counts: dict[tuple[Measure, date], pd.DataFrame] = {}

    def status(self, i: int, measure: Measure, as_of: date) -> pd.DataFrame:
        key = (measure, as_of)
        if key not in self._status:
            self._status[key] = self.engine.patient_status(measure, as_of)
        return normalise_status(_untag(self._status[key], i, ["nhs_number", "practice_code"]), measure)

    def counts(self, i: int, measure: Measure, as_of: date) -> pd.DataFrame:
        key = (measure, as_of)
        if key not in self._counts:
            self._counts[key] = self.engine.practice_counts(measure, as_of)
        return _untag(self._counts[key], i, ["practice_code"])

    def aggregate(self, i: int, measure: Measure, as_of: date, level: str, structure: str) -> pd.DataFrame:
        from parity.engine.rollup import roll_up

        practices = [p for p in self.datasets[i].practices if p.get("structure", structure) == structure]
        return roll_up(self.counts(i, measure, as_of), measure, level, structure, practices)

    def engine_for(self, ds: Dataset) -> BatchedEngine:
        key = fingerprint(ds)
        assert key in self.index, "this dataset was not in the Spark batch (a test built it differently on replay)"
        return BatchedEngine(self, self.index[key])


class BatchedEngine:
    """The ``Engine`` interface for one dataset of a ``SparkBatch``."""

    name = "spark"

    def __init__(self, batch: SparkBatch, i: int) -> None:
        self.batch, self.i = batch, i

    def patient_status(self, measure: Measure, as_of: date) -> pd.DataFrame:
        return self.batch.status(self.i, measure, as_of)

    def aggregate(self, measure: Measure, as_of: date, level: str, structure: str) -> pd.DataFrame:
        return self.batch.aggregate(self.i, measure, as_of, level, structure)
