"""``parity mesh …`` and ``parity trust …``: the messaging commands (no web imports).

Settings are built once per command; the MESH file comes from ``--config`` or ``PARITY_MESH_CONFIG``.
Output is counts and states, never patient data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from parity.clikit import DatabaseOpt, today
from parity.errors import ConfigurationError
from parity.settings import Settings

if TYPE_CHECKING:
    from parity.interop.mesh import MeshConfig

mesh_app = typer.Typer(help="Send checks to GP practices and receive them over MESH.", no_args_is_help=True)
trust_app = typer.Typer(help="Trust checks: bulk upload.", no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="MESH configuration file [env: PARITY_MESH_CONFIG]")]


def _config(settings: Settings, path: Path | None) -> MeshConfig:
    from parity.interop.mesh import load_mesh_config

    chosen = path or (Path(settings.mesh_config) if settings.mesh_config else None)
    if chosen is None:
        raise ConfigurationError("no MESH configuration: pass --config or set PARITY_MESH_CONFIG")
    return load_mesh_config(chosen)




@mesh_app.command("send")
def send(database: DatabaseOpt = None, config: ConfigOpt = None) -> None:
    """Send every queued check that is due, then ask MESH where sent messages have got to."""
    from parity.db import open_database
    from parity.interop.checks import payload_source
    from parity.interop.mesh import outbox

    settings = Settings.from_env(database=database)
    cfg = _config(settings, config)
    with open_database(settings.database_url, create=False) as db:
        summary = outbox.send_due(db, cfg, payload_source(db, cfg))
        tracked = outbox.track(db, cfg)
    typer.echo(f"{summary.describe()}; acknowledged since last pass {tracked.acknowledged}")
    for error in summary.errors + tracked.errors:
        typer.echo(f"warning: {error}", err=True)


@mesh_app.command("poll")
def poll(database: DatabaseOpt = None, config: ConfigOpt = None,
         practice: Annotated[list[str] | None, typer.Option(help="Only this practice's mailbox (repeatable)")] = None,
         precompute: Annotated[bool, typer.Option(help="Refresh the dashboard's results when anything was filed")]
         = True) -> None:
    """Retrieve messages from the practice mailboxes, file each check once, acknowledge after filing."""
    from parity.db import open_database
    from parity.interop.mesh import inbox

    settings = Settings.from_env(database=database)
    cfg = _config(settings, config)
    with open_database(settings.database_url, create=False) as db:
        summary = inbox.poll(db, cfg, practice_codes={p.upper() for p in practice} if practice else None)
        if summary.filed and precompute:
            from parity.dates import default_as_of
            from parity.engine.results import ResultStore

            typer.echo(ResultStore(db, structure=settings.structure).refresh(default_as_of()).describe(),
                       err=True)
    typer.echo(summary.describe())
    for error in summary.errors:
        typer.echo(f"warning: {error}", err=True)
    if summary.errors and not summary.received:
        raise typer.Exit(1)


@mesh_app.command("route")
def route(practice: Annotated[str, typer.Argument(help="The practice's ODS code")],
          via: Annotated[str, typer.Argument(help="bundle (practice on Parity) or send-document (not on Parity)")],
          database: DatabaseOpt = None,
          user: Annotated[str, typer.Option(help="Who is setting it (kept with the setting)")] = "cli") -> None:
    """Choose how checks reach a practice: coded results (Parity) or the letter by GP Connect Send Document."""
    from parity.db import open_database
    from parity.interop.checks import set_route

    settings = Settings.from_env(database=database)
    with open_database(settings.database_url, create=False) as db:
        set_route(db, practice, via.replace("-", "_"), user)
    typer.echo(f"{practice.upper()}: {via}")


@mesh_app.command("status")
def status(database: DatabaseOpt = None,
           trust: Annotated[str | None, typer.Option(help="Only this trust's outbox (ODS code)")] = None) -> None:
    """Outbox entries by state, and open exceptions by practice."""
    from collections import Counter

    from parity.db import open_database
    from parity.interop.mesh import inbox, outbox

    settings = Settings.from_env(database=database)
    with open_database(settings.database_url, create=False) as db:
        states = Counter(e.state for e in outbox.entries(db, trust_code=trust.upper() if trust else None))
        open_ = Counter(m.practice_code for m in inbox.messages(db, open_only=True))
    typer.echo("outbox: " + (", ".join(f"{s} {states[s]}" for s in outbox.STATES if states[s]) or "empty"))
    typer.echo("open exceptions: " + (", ".join(f"{p} {n}" for p, n in sorted(open_.items())) or "none"))


@trust_app.command("upload")
def upload(folder: Annotated[Path, typer.Argument(help="Folder with patients, registrations and events files")],
           trust: Annotated[str, typer.Option(help="The trust's ODS code (every event's recorded_by)")],
           database: DatabaseOpt = None,
           user: Annotated[str, typer.Option(help="Who is uploading (kept with each check)")] = "cli") -> None:
    """Check trust check records in canonical extract form and queue one message per patient and day."""
    from parity.db import open_database
    from parity.interop.checks import upload_checks
    from parity.rules.template import load_template

    settings = Settings.from_env(database=database)
    if not folder.is_dir():
        raise ConfigurationError(f"{folder} is not a folder")
    with open_database(settings.database_url) as db:
        queued = upload_checks(db, folder, load_template(), trust_code=trust, username=user, today=today())
    typer.echo(f"queued {len(queued)} check(s) for sending; run 'parity mesh send'")
