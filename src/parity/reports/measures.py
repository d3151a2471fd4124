"""Measure tables for the CLI and (later) the web app: engine output shaped for people."""

from __future__ import annotations

from datetime import date

import pandas as pd

from parity.db import Database
from parity.engine.base import LEVELS
from parity.errors import ConfigurationError
from parity.reports.disclosure import DisclosureControl
from parity.rules.model import Measure
from parity.settings import Settings


def default_structure(db: Database) -> str:
    """The organisation structure that covers most of the loaded practices."""
    from parity.orgs import choose_structure

    codes = [r[0] for r in db.execute("SELECT DISTINCT practice_code FROM registrations")]
    return choose_structure(codes)


def measure_table(db: Database, measure: Measure, as_of: date, level: str, *, structure: str | None = None,
                  parent: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """One row per organisation: ``org_code, org_name, register, all_six, percent``, per-check counts.

    ``parent`` keeps only organisations whose parent code is ``parent``. With ``settings``,
    disclosure control is applied (``Settings.suppress_below``/``round_to``).
    """
    from parity.engine.ibis_engine import IbisEngine

    if level not in LEVELS:
        raise ConfigurationError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    structure = structure or default_structure(db)
    df = IbisEngine(db).aggregate(measure, as_of, level, structure)
    if parent:
        df = df[df["parent_code"] == parent].reset_index(drop=True)
    check_ids = [c.id for c in measure.checks]
    cols = ["org_code", "org_name", "register", "all_six", "percent", *check_ids]
    if measure.is_bundle:
        cols.append("all_checks")
    if measure.pca is not None:
        cols.append("excluded")
    cols.append("parent_code")
    df = df[cols]
    if settings is not None:
        control = DisclosureControl(settings.suppress_below, settings.round_to)
        counts = [c for c in cols if c not in ("org_code", "org_name", "percent", "parent_code")]
        df = control.apply(df, counts)
    return df


def patient_table(db: Database, measure: Measure, as_of: date) -> pd.DataFrame:
    """One row per patient: register flags, each check done (true/false), checks_done, all_six,
    then each check's status, last date and value."""
    from parity.engine.ibis_engine import IbisEngine

    df = IbisEngine(db).patient_status(measure, as_of)
    check_ids = [c.id for c in measure.checks]
    cols = ["nhs_number", "practice_code", "on_register", "in_denominator", *check_ids, "checks_done", "all_six"]
    if measure.is_bundle:
        cols.append("all_checks")
    for c in check_ids:
        cols += [f"{c}_status", f"{c}_date", f"{c}_value"]
    return df[cols]
