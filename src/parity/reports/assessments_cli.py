"""``parity assessments …``: record and read parity of esteem and EDS domain 1 assessments (M10).

Registered by ``parity.cli`` as ``app.add_typer(assessments_app, name="assessments")``.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from parity.clikit import DatabaseOpt, OutFormat, emit, today
from parity.errors import ConfigurationError
from parity.settings import Settings

assessments_app = typer.Typer(
    help="Self-assessments of an area: the 10 parity of esteem indicators (poe, red/amber/green) and Equality "
         "Delivery System domain 1 (eds, outcomes 1A-1D scored 0-3, total /12).",
    no_args_is_help=True,
)

FrameworkArg = Annotated[str, typer.Argument(help="poe (parity of esteem indicators) or eds (EDS domain 1)")]
LevelOpt = Annotated[str, typer.Option("--level", help="region, icb, sub_icb, pcn, practice, trust or service")]
AreaOpt = Annotated[str, typer.Option("--area", help="The area's ODS code, or a service's code or name")]
FormatOpt = Annotated[OutFormat, typer.Option("--format", help="csv, json or table")]


def _open(database: str | None):  # noqa: ANN202 - Database
    from parity.db import open_database

    return open_database(Settings.from_env(database=database).database_url)


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    """``ITEM=VALUE`` options as a mapping; a malformed or repeated item is refused."""
    out: dict[str, str] = {}
    for raw in values or []:
        item, sep, value = raw.partition("=")
        item = item.strip()
        if not sep or not item:
            raise ConfigurationError(f"{option} must look like ITEM=VALUE, got {raw[:40]!r}")
        if item.lower() in {k.lower() for k in out}:
            raise ConfigurationError(f"{option} {item} is given twice")
        out[item] = value.strip()
    return out


@assessments_app.command("record")
def record(
    framework: FrameworkArg,
    level: LevelOpt,
    area: AreaOpt,
    score: Annotated[list[str], typer.Option("--score", help="ITEM=VALUE, once per item (e.g. 1A=2, "
                                                              "smoking_cessation=amber)")],
    evidence: Annotated[list[str] | None, typer.Option("--evidence", help="ITEM=TEXT (optional, repeatable)")]
    = None,
    on: Annotated[str | None, typer.Option("--date", help="Date of the assessment, YYYY-MM-DD (default today)")]
    = None,
    database: DatabaseOpt = None,
) -> None:
    """Record an assessment: every item scored; all or nothing."""
    from parity.dates import parse_date
    from parity.reports.assessments import latest, record_assessment
    from parity.rules.assessments import get_framework

    fw = get_framework(framework)
    assessed_on = parse_date(on, "--date") if on else today()
    with _open(database) as db:
        aid = record_assessment(db, fw.id, level, area, _pairs(score, "--score"), _pairs(evidence, "--evidence"),
                                assessed_on, os.environ.get("USER") or "cli", today=today())
        saved = latest(db, fw.id, level, area)
    total = f", total {saved.total}/{saved.max_total}" if saved and saved.total is not None else ""
    typer.echo(f"assessment {aid}: {fw.id} {assessed_on.isoformat()}{total}")


@assessments_app.command("show")
def show(
    framework: FrameworkArg,
    level: Annotated[str | None, typer.Option("--level", help="Only areas of this level")] = None,
    area: Annotated[str | None, typer.Option("--area", help="One area: its latest assessment item by item")]
    = None,
    database: DatabaseOpt = None,
    fmt: FormatOpt = OutFormat.table,
) -> None:
    """The latest assessment of every area (or, with --level and --area, of one area item by item)."""
    import pandas as pd

    from parity.reports.assessments import latest, summary
    from parity.rules.assessments import get_framework

    fw = get_framework(framework)
    with _open(database) as db:
        if area is None:
            emit(summary(db, fw.id, level), fmt, f"{fw.name}: latest assessment per area")
            return
        if level is None:
            raise ConfigurationError("--area needs --level")
        found = latest(db, fw.id, level, area)
    if found is None:
        raise ConfigurationError(f"no {fw.id} assessment recorded for this {level}")
    df = pd.DataFrame([{"item_id": i.item_id, "item": i.name, "score": i.score, "label": i.label,
                        "evidence": i.evidence} for i in found.items])
    title = f"{fw.name}: {found.area_level} {found.area_code}, {found.assessed_on.isoformat()}"
    if found.total is not None:
        title += f", total {found.total}/{found.max_total}"
    emit(df, fmt, title)


@assessments_app.command("history")
def history(framework: FrameworkArg, level: LevelOpt, area: AreaOpt, database: DatabaseOpt = None,
            fmt: FormatOpt = OutFormat.table) -> None:
    """Every assessment of one area, oldest first (with totals and their change for EDS)."""
    from parity.reports.assessments import history_frame
    from parity.rules.assessments import get_framework

    fw = get_framework(framework)
    with _open(database) as db:
        df = history_frame(db, fw.id, level, area)
    emit(df, fmt, f"{fw.name}: history of {level} {area}")
