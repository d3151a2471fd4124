"""What every engine returns, so engines can be compared column for column.

Per-patient status (``Engine.patient_status``), one row per patient who on ``as_of`` is
registered at a practice, alive, and has any register code (diagnosis or remission) on or
before ``as_of``; sorted by ``nhs_number``:

========================  ==================================================================
``nhs_number``            str, 10 digits
``practice_code``         str, the practice registered at on ``as_of`` (latest start wins,
                          then the smallest practice code)
``on_register``           bool: the latest register code is a diagnosis, not a remission
``in_denominator``        bool: on the register and not removed by a personalised care
                          adjustment (only ``qof-mh021`` has one)
``<check>``               bool, one column per check id: done in its window
``<check>_status``        ``"done"`` / ``"declined"`` / ``"missing"``
``<check>_date``          ``datetime.date`` or None: latest qualifying date in the window
``<check>_value``         float or None: value recorded on that date (largest if several)
``checks_done``           int: how many of the six core checks are done
``all_six``               bool: in the denominator and all six core checks done
``all_checks``            bool: in the denominator and every check of the measure done
========================  ==================================================================

Aggregates (``Engine.aggregate``), one row per organisation at ``level`` (sorted by
``org_code``): ``org_code, org_name, level, parent_code, register, all_six, percent`` then one
count per check id (done, among the denominator), ``<check>_declined`` counts, and
``all_checks`` / ``excluded`` (PCA). ``register`` is the denominator. ``percent`` is
``100 * all_six / register`` to one decimal place (None when the register is 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

import pandas as pd

from parity.rules.model import CORE_CHECKS, Measure

LEVELS: tuple[str, ...] = ("practice", "pcn", "sub_icb", "icb", "region", "england")
STATUSES = ("done", "declined", "missing")


def status_columns(measure: Measure) -> list[str]:
    """Column order of the per-patient status table for ``measure``."""
    cols = ["nhs_number", "practice_code", "on_register", "in_denominator"]
    for c in measure.checks:
        cols += [c.id, f"{c.id}_status", f"{c.id}_date", f"{c.id}_value"]
    return cols + ["checks_done", "all_six", "all_checks"]


def aggregate_columns(measure: Measure) -> list[str]:
    """Column order of the aggregate table for ``measure``."""
    cols = ["org_code", "org_name", "level", "parent_code", "register", "all_six", "percent"]
    cols += [c.id for c in measure.checks]
    cols += [f"{c.id}_declined" for c in measure.checks]
    return cols + ["all_checks", "excluded"]


def normalise_status(df: pd.DataFrame, measure: Measure) -> pd.DataFrame:
    """Give a status frame the canonical column order, dtypes and row order.

    Engines call this last, so frames from different engines compare equal with
    ``pandas.testing.assert_frame_equal``.
    """
    df = df.copy()
    for col in ("nhs_number", "practice_code"):
        df[col] = df[col].astype("string").astype(object)
    for col in ("on_register", "in_denominator", "all_six", "all_checks", *[c.id for c in measure.checks]):
        df[col] = df[col].fillna(False).astype(bool)
    for c in measure.checks:
        df[f"{c.id}_status"] = df[f"{c.id}_status"].astype(object)
        df[f"{c.id}_date"] = _date_column(df[f"{c.id}_date"])
        df[f"{c.id}_value"] = pd.to_numeric(df[f"{c.id}_value"], errors="coerce").astype("float64")
    df["checks_done"] = df["checks_done"].fillna(0).astype("int64")
    df = df[status_columns(measure)].sort_values("nhs_number", kind="stable").reset_index(drop=True)
    return df


def normalise_aggregate(df: pd.DataFrame, measure: Measure, *, by: Sequence[str] = ()) -> pd.DataFrame:
    """Canonical column order, dtypes and row order for an aggregate frame (``by``: leading key
    columns kept and sorted on first, e.g. ``as_of`` of a trend)."""
    df = df.copy()
    int_cols = ["register", "all_six", "all_checks", "excluded"]
    int_cols += [c.id for c in measure.checks] + [f"{c.id}_declined" for c in measure.checks]
    for col in int_cols:
        df[col] = df[col].fillna(0).astype("int64")
    for col in ("org_code", "org_name", "level", "parent_code"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    df["percent"] = [
        round(100.0 * a / r, 1) if r else None for a, r in zip(df["all_six"], df["register"], strict=True)
    ]
    df["percent"] = df["percent"].astype("float64")
    return df[[*by, *aggregate_columns(measure)]].sort_values([*by, "org_code"], kind="stable").reset_index(drop=True)


def _date_column(col: pd.Series) -> pd.Series:
    """Dates as ``datetime.date`` objects, missing as None (vectorised: 650k rows in well under a second)."""
    stamps = pd.to_datetime(col, errors="coerce")
    return stamps.dt.date.astype(object).where(stamps.notna(), None)


class Engine(Protocol):
    """Runs measures. ``name`` is used in test ids and benchmark reports."""

    name: str

    def patient_status(self, measure: Measure, as_of: date) -> pd.DataFrame:
        """Per-patient status on ``as_of`` (see module docstring)."""
        ...

    def aggregate(self, measure: Measure, as_of: date, level: str, structure: str) -> pd.DataFrame:
        """Counts per organisation at ``level`` using organisation ``structure``."""
        ...


__all__ = [
    "CORE_CHECKS",
    "LEVELS",
    "STATUSES",
    "Engine",
    "aggregate_columns",
    "normalise_aggregate",
    "normalise_status",
    "status_columns",
]
