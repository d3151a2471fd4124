"""``parity inequalities``: a measure's rates by age band, sex, ethnic group or IMD quintile (product.md M8).

Register either way in ``parity.cli``::

    from parity.reports.inequalities_cli import inequalities_app
    app.add_typer(inequalities_app, name="inequalities")      # the callback is the command

or, as a plain command: ``app.command("inequalities")(inequalities_command)``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from parity.clikit import DatabaseOpt, Level, OutFormat, emit
from parity.settings import Settings

inequalities_app = typer.Typer(help="Rates by age band, sex, ethnic group or deprivation, with 95% CIs.")


class Breakdown(StrEnum):
    age_band = "age_band"
    sex = "sex"
    ethnic_group = "ethnic_group"
    imd_quintile = "imd_quintile"


TABLE_COLUMNS = ["org_code", "group", "register", "all_six", "percent", "ci_low", "ci_high", "rate_ratio", "rr_low",
                 "rr_high"]


def inequalities_command(
    by: Annotated[Breakdown, typer.Option("--by", help="age_band, sex, ethnic_group or imd_quintile")],
    level: Annotated[Level, typer.Option(help="Organisation level of the rows")] = Level.icb,
    org: Annotated[str | None, typer.Option("--org", help="Only this organisation (a code at --level)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Reporting date YYYY-MM-DD (default: latest "
                                                              "quarter end)")] = None,
    measure_id: Annotated[str, typer.Option("--measure", help="phsmi or qof-mh021")] = "phsmi",
    reference: Annotated[str | None, typer.Option(help="Reference group of the rate ratio: a group label or "
                                                       "'largest' (default: 35–54, Female, White, quintile 5)")]
    = None,
    structure: Annotated[str | None, typer.Option(help="Organisation structure 2022-23 or 2026 (default: the "
                                                       "one that covers the loaded practices)")] = None,
    disclosure: Annotated[bool, typer.Option(help="Apply disclosure control (suppress 1-7 with secondary "
                                                  "suppression, round to 5)")] = False,
    fmt: Annotated[OutFormat, typer.Option("--format", help="csv, json (every column, per check too) or table "
                                                            "(all-six columns)")] = OutFormat.table,
    database: DatabaseOpt = None,
) -> None:
    """A measure's all-six and per-check rates by group, Wilson 95% CIs and rate ratios against a reference group."""
    from parity.dates import as_of_or_default
    from parity.db import open_database
    from parity.engine.results import ResultStore
    from parity.reports.inequalities import BY_PHRASES, inequalities

    settings = Settings.from_env(database=database)
    day = as_of_or_default(as_of, "--as-of")
    with open_database(settings.database_url, create=False) as db:
        results = ResultStore(db, structure=structure or settings.structure)
        df = inequalities(results, measure_id, day, level.value, org, by=by.value,
                          settings=settings if disclosure else None, reference=reference)
        name = results.measure(measure_id).name
    if fmt is OutFormat.table:
        df = df[TABLE_COLUMNS]
    emit(df, fmt, title=f"{name} by {BY_PHRASES[by.value]} — as at {day.isoformat()} — by {level.value}"
                        + (" — disclosure control applied" if disclosure else ""))


inequalities_app.callback(invoke_without_command=True)(inequalities_command)
