"""Measure tables for the CLI and (later) the web app: engine output shaped for people."""

from __future__ import annotations

from datetime import date

import pandas as pd

from parity.codes.store import Codelists
from parity.db import Database
from parity.engine.base import LEVELS
from parity.errors import ConfigurationError
from parity.reports.disclosure import DisclosureControl
from parity.rules.model import Measure
from parity.settings import Settings


def default_structure(db: Database) -> str:
    """The organisation structure that covers most of the loaded practices (for data without a
    reporting date, such as the synthetic generator's practice choice)."""
    from parity.orgs import choose_structure

    codes = [r[0] for r in db.execute("SELECT DISTINCT practice_code FROM registrations")]
    return choose_structure(codes)


def structure_for(as_of: date, structure: str | None = None) -> str:
    """``structure`` when given (checked), else the one in force on ``as_of`` (product.md M1; issue 11)."""
    from parity.orgs import check_structure, structure_in_force

    return check_structure(structure) if structure else structure_in_force(as_of)


def provenance(db: Database, measure: Measure, as_of: date, *, structure: str | None,
               codelists: Codelists) -> dict[str, str]:
    """What a figure used, named on every output: measure, reporting date, organisation structure,
    codelist release (and the clusters that fell back to the shipped lists)."""
    from parity.orgs import structure_label

    meta = {"measure": measure.id, "as_of": as_of.isoformat()}
    meta["structure"] = structure_label(structure_for(as_of, structure))
    meta["codelists"] = codelists.describe(measure.clusters()).removeprefix("codelists: ")
    return meta


def england_name(db: Database, structure: str) -> str:
    """The name of the top row: "England" only when the loaded practices cover every region of the
    structure; otherwise it names what the data covers (issue 11: one region's data is never England)."""
    from parity.orgs import organisations

    regions = organisations(structure, "region")
    rows = db.execute("SELECT DISTINCT p.region_code FROM practices p JOIN (SELECT DISTINCT practice_code FROM "
                      "registrations) r ON r.practice_code = p.practice_code WHERE p.structure = ?", [structure])
    present = sorted(str(r[0]) for r in rows)
    if len(present) >= len(regions) or not present:
        return "England"
    names = dict(zip(regions["org_code"], regions["org_name"], strict=True))
    return "Loaded data: " + ", ".join(names.get(c, c) for c in present) + " (not all of England)"


def measure_table(db: Database, measure: Measure, as_of: date, level: str, *, structure: str | None = None,
                  parent: str | None = None, settings: Settings | None = None,
                  codelists: Codelists | None = None) -> pd.DataFrame:
    """One row per organisation: ``org_code, org_name, register, all_six, percent``, per-check counts.

    ``structure`` defaults to the one in force on ``as_of``; ``codelists`` to this database's default
    release. ``parent`` keeps only organisations whose parent code is ``parent``. With ``settings``,
    disclosure control is applied (``Settings.suppress_below``/``round_to``).
    """
    df = measure_rows(db, measure, [as_of], [level], structure=structure, parent=parent, settings=settings,
                      codelists=codelists)
    return df.drop(columns=["as_of", "level"]).reset_index(drop=True)


def measure_rows(db: Database, measure: Measure, dates: list[date], levels: list[str], *,
                 structure: str | None = None, parent: str | None = None, settings: Settings | None = None,
                 codelists: Codelists | None = None, stored: bool = True) -> pd.DataFrame:
    """``measure_table`` for several reporting dates and levels at once (each date counted once):
    ``as_of`` and ``level`` first, dates in the order given, then levels in ``levels`` order. A trend
    uses one structure for all its dates: ``structure``, else the one in force on the last.

    With ``stored`` (the default), a registered measure's figures come from the results the
    precompute stored for this data version (``ResultStore``: the same figures the dashboard and API
    show), and dates not stored yet are computed and stored; ``stored=False`` runs the engine afresh
    and stores nothing."""
    from parity.codes.store import resolve_codelists
    from parity.engine.ibis_engine import IbisEngine

    for level in levels:
        if level not in LEVELS:
            raise ConfigurationError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    structure = structure_for(max(dates), structure)
    lists = codelists or resolve_codelists(db)
    if stored and db.dialect.stores_tables and _registered(measure):
        from parity.engine.results import ResultStore

        kept = ResultStore(db).trend(measure.id, dates, structure=structure, codelists=lists.release)
        stacked = {level: kept[level] for level in levels}
    else:
        engine = IbisEngine(db.ibis, db.dialect, codes_for=lists.codes_for)
        stacked = engine.trend_all(measure, dates, structure, levels)
    check_ids = [c.id for c in measure.checks]
    cols = ["org_code", "org_name", "register", "all_six", "percent", *check_ids]
    if measure.is_bundle:
        cols.append("all_checks")
    if measure.pca is not None:
        cols.append("excluded")
    cols.append("parent_code")
    frames = []
    for level in levels:
        df = stacked[level]
        if level == "england" and len(df):
            df = df.assign(org_name=england_name(db, structure))
        if parent:
            df = df[df["parent_code"] == parent]
        frames.append(df[["as_of", *cols]].assign(level=level))
    df = pd.concat(frames, ignore_index=True)
    order = {d: i for i, d in enumerate(dates)}
    df = df.sort_values("as_of", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    df = df[["as_of", "level", *cols]]
    if settings is not None:
        control = DisclosureControl(settings.suppress_below, settings.round_to)
        counts = [c for c in cols if c not in ("org_code", "org_name", "percent", "parent_code")]
        df = control.apply(df, counts)
    return df


def _registered(measure: Measure) -> bool:
    """Whether ``measure`` is one of Parity's own, unchanged (results are stored under its id; a TOML
    file with the same id but other rules must not read them)."""
    from parity.rules.registry import list_measures, load_measure

    return measure.id in list_measures() and load_measure(measure.id) == measure


def patient_table(db: Database, measure: Measure, as_of: date, *, codelists: Codelists | None = None) -> pd.DataFrame:
    """One row per patient: register flags, each check done (true/false), checks_done, all_six,
    then each check's status, last date and value."""
    from parity.codes.store import resolve_codelists
    from parity.engine.ibis_engine import IbisEngine

    lists = codelists or resolve_codelists(db)
    df = IbisEngine(db.ibis, db.dialect, codes_for=lists.codes_for).patient_status(measure, as_of)
    check_ids = [c.id for c in measure.checks]
    cols = ["nhs_number", "practice_code", "on_register", "in_denominator", *check_ids, "checks_done", "all_six"]
    if measure.is_bundle:
        cols.append("all_checks")
    for c in check_ids:
        cols += [f"{c}_status", f"{c}_date", f"{c}_value"]
    return df[cols]
