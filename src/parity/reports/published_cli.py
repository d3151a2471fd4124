"""``parity published``: import the published NHS England SMI health-check series and show roll-ups."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from parity.clikit import DatabaseOpt, OutFormat, emit
from parity.settings import Settings

published_app = typer.Typer(help="Published NHS England SMI physical health check figures (SDCS series).",
                            no_args_is_help=True)


class PublishedLevel(StrEnum):
    sub_icb = "sub_icb"
    icb = "icb"
    region = "region"
    england = "england"


@published_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="The raw xlsx (Period, CCG Code, Question, Answer) or a CSV")],
    database: DatabaseOpt = None,
) -> None:
    """Validate and store a published file (all-or-nothing); re-importing the same file replaces it."""
    from parity.db import open_database
    from parity.reports.published import import_published, unmapped_codes

    settings = Settings.from_env(database=database)
    with open_database(settings.database_url) as db:
        result = import_published(db, file)
        typer.echo(result.describe())
        bad = unmapped_codes(db)
    for row in bad.itertuples():
        typer.echo(f"  unmapped: {row.source_code} ({row.note}); counted in England only", err=True)


@published_app.command("show")
def show(
    period: Annotated[str, typer.Option("--period", help="Quarter, e.g. 2023-24-Q4 (or SMI-Q4-2023-2024)")],
    level: Annotated[PublishedLevel, typer.Option(help="sub_icb, icb, region or england")]
    = PublishedLevel.region,
    structure: Annotated[str | None, typer.Option(help="Organisation structure 2022-23 or 2026 (default: the one "
                                                       "in force at the end of the quarter)")] = None,
    region: Annotated[str | None, typer.Option(help="Only organisations in this region code, e.g. Y59")] = None,
    fmt: Annotated[OutFormat, typer.Option("--format", help="csv, json or table")] = OutFormat.table,
    disclosure: Annotated[bool, typer.Option(help="Apply disclosure control (suppress 1-7, round to 5)")] = False,
    database: DatabaseOpt = None,
) -> None:
    """org_code, org_name, register, all_six, percent and per-check counts for one quarter."""
    from parity.db import open_database
    from parity.reports.published import parse_period, rollup

    settings = Settings.from_env(database=database)
    try:
        label = parse_period(period)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from exc
    with open_database(settings.database_url, create=False) as db:
        df = rollup(db, label, level.value, region, settings=settings if disclosure else None, structure=structure)
    from parity.orgs import structure_label

    emit(df, fmt, title=f"Published SMI physical health checks — {label} — by {level.value}",
         metadata={"period": label, "structure": structure_label(df.attrs["structure"])})
    if df.attrs.get("unmapped"):
        typer.echo(f"not in any {level.value} (counted in England only): {', '.join(df.attrs['unmapped'])}",
                   err=True)
