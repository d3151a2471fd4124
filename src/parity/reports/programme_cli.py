"""``parity programme``: trajectories, the initiative register and the highlight report (product.md M7).

Register in ``parity.cli`` as one group::

    from parity.reports.programme_cli import programme_app
    app.add_typer(programme_app, name="programme")   # parity programme trajectory|initiatives|highlight

or as top-level commands::

    from parity.reports.programme_cli import highlight_command, initiatives_app, trajectory_command
    app.command("trajectory")(trajectory_command)
    app.add_typer(initiatives_app, name="initiatives")
    app.command("highlight")(highlight_command)

All read NHS England's published series (``parity.reports.published``; import it first).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from parity.clikit import DatabaseOpt, OutFormat, emit, today
from parity.settings import Settings

programme_app = typer.Typer(help="Programme reporting: trajectories, initiatives and the highlight report.",
                            no_args_is_help=True)
initiatives_app = typer.Typer(help="The register of improvement initiatives.", no_args_is_help=True)
programme_app.add_typer(initiatives_app, name="initiatives")

TRAJECTORY_COLUMNS = ["org_code", "register", "all_six", "target_count", "additional_patients", "per_month"]


class TrajectoryLevel(StrEnum):
    region = "region"
    icb = "icb"


class Method(StrEnum):
    by_register = "by_register"
    to_equal_rate = "to_equal_rate"
    blend = "blend"


def trajectory_command(
    baseline: Annotated[str, typer.Option("--baseline", help="Published baseline quarter, e.g. 2023-24-Q4")],
    target: Annotated[float, typer.Option("--target", help="Target rate as a fraction, e.g. 0.75")],
    by: Annotated[str | None, typer.Option("--by", help="Target date YYYY-MM-DD (default: the first 31 March "
                                                        "after the baseline)")] = None,
    level: Annotated[TrajectoryLevel, typer.Option(help="region (each region's own gap) or icb (the region's "
                                                        "gap shared across its ICBs)")] = TrajectoryLevel.region,
    org: Annotated[str | None, typer.Option("--org", help="A region code (its row, or its ICBs) or an ICB "
                                                          "code")] = None,
    method: Annotated[Method, typer.Option(help="How a region's gap is shared across ICBs: by_register (in "
                                                "proportion to register size), to_equal_rate (in proportion to "
                                                "each ICB's own gap) or blend")] = Method.by_register,
    fmt: Annotated[OutFormat, typer.Option("--format", help="csv, json or table")] = OutFormat.table,
    database: DatabaseOpt = None,
) -> None:
    """Patients needed to reach the target rate, and per month until the target date."""
    from parity.dates import parse_date
    from parity.db import open_database
    from parity.reports.trajectory import build

    settings = Settings.from_env(database=database)
    day = parse_date(by, "--by") if by else None
    with open_database(settings.database_url, create=False) as db:
        df = build(db, baseline, target, day, level.value, org, method.value)
    by_day = df["by"].iloc[0] if len(df) else day
    title = (f"Trajectory to {target:.0%} by {by_day} from {baseline} — by {level.value}"
             + (f" ({method.value})" if level is TrajectoryLevel.icb else ""))
    emit(df[TRAJECTORY_COLUMNS].reset_index(drop=True), fmt, title=title)


programme_app.command("trajectory")(trajectory_command)


@initiatives_app.command("add")
def initiatives_add(
    area: Annotated[str, typer.Option("--area", help="Area code (an ICB or region code)")],
    title: Annotated[str, typer.Option("--title")],
    owner: Annotated[str, typer.Option("--owner")],
    start: Annotated[str, typer.Option("--start", help="YYYY-MM-DD")],
    extra_per_month: Annotated[float, typer.Option("--extra-per-month", help="Expected extra patients with all "
                                                                             "six checks per month")],
    area_level: Annotated[str, typer.Option("--area-level", help="icb or region")] = "icb",
    level: Annotated[str, typer.Option("--level", help="practice, pcn, icb or region")] = "icb",
    end: Annotated[str | None, typer.Option("--end", help="YYYY-MM-DD (default: open)")] = None,
    ease: Annotated[str, typer.Option("--ease", help="low, medium or high")] = "medium",
    impact: Annotated[str, typer.Option("--impact", help="Expected impact: low, medium or high")] = "medium",
    status: Annotated[str, typer.Option("--status", help="proposed, active, paused, completed or stopped")]
    = "proposed",
    note: Annotated[str, typer.Option("--note")] = "",
    initiative_id: Annotated[str | None, typer.Option("--id", help="Record a new version of this initiative")]
    = None,
    username: Annotated[str, typer.Option("--user", help="Who records it")] = "cli",
    database: DatabaseOpt = None,
) -> None:
    """Record an initiative (or, with --id, a new version of one); prints its id."""
    from parity.dates import parse_date
    from parity.db import open_database
    from parity.reports.initiatives import Initiative, record_initiative

    settings = Settings.from_env(database=database)
    item = Initiative(area_level=area_level, area_code=area, title=title, owner=owner, level=level,
                      start=parse_date(start, "--start"), end=parse_date(end, "--end") if end else None, ease=ease,
                      impact=impact, extra_per_month=extra_per_month, status=status, note=note)
    with open_database(settings.database_url) as db:
        out = record_initiative(db, item, username, initiative_id=initiative_id)
    typer.echo(out)


@initiatives_app.command("list")
def initiatives_list(
    area: Annotated[str | None, typer.Option("--area", help="Only this area code")] = None,
    area_level: Annotated[str | None, typer.Option("--area-level", help="Only this area level")] = None,
    fmt: Annotated[OutFormat, typer.Option("--format", help="csv, json or table")] = OutFormat.table,
    database: DatabaseOpt = None,
) -> None:
    """The current version of each initiative."""
    from parity.db import open_database
    from parity.reports.initiatives import initiatives

    settings = Settings.from_env(database=database)
    with open_database(settings.database_url) as db:
        df = initiatives(db, area_level, area)
    cols = ["initiative_id", "version", "area_code", "title", "owner", "level", "start_date", "end_date", "ease",
            "impact", "extra_per_month", "status"]
    emit(df[cols] if fmt is OutFormat.table else df, fmt, title="Initiatives")


def highlight_command(
    region: Annotated[str, typer.Option("--region", help="Region code, e.g. Y59")],
    out: Annotated[Path, typer.Option("--out", help="report.pdf or report.html")],
    period: Annotated[str | None, typer.Option("--period", help="Published quarter (default: latest)")] = None,
    baseline: Annotated[str | None, typer.Option("--baseline", help="Trajectory baseline quarter (default: Q4 "
                                                                    "of the previous financial year)")] = None,
    target: Annotated[float, typer.Option("--target", help="Trajectory target rate")] = 0.75,
    by: Annotated[str | None, typer.Option("--by", help="Trajectory target date YYYY-MM-DD")] = None,
    method: Annotated[Method, typer.Option(help="How the region's gap is shared across ICBs")]
    = Method.by_register,
    database: DatabaseOpt = None,
) -> None:
    """The monthly highlight and exception report of a region, as PDF or HTML (by the --out suffix)."""
    from parity.dates import parse_date
    from parity.db import open_database
    from parity.errors import ConfigurationError
    from parity.reports.highlight import build_highlight, render_highlight_html, render_highlight_pdf

    suffix = out.suffix.lower()
    if suffix not in (".pdf", ".html", ".htm"):
        raise ConfigurationError("--out must end in .pdf or .html")
    settings = Settings.from_env(database=database)
    with open_database(settings.database_url, create=False) as db:
        report = build_highlight(db, region, period, baseline, target, parse_date(by, "--by") if by else None,
                                 method.value, produced=today())
    if suffix == ".pdf":
        out.write_bytes(render_highlight_pdf(report))
    else:
        out.write_text(render_highlight_html(report), encoding="utf-8")
    typer.echo(f"wrote {out} ({report.region_name}, {report.period})")


programme_app.command("highlight")(highlight_command)
