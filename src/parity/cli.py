"""The ``parity`` command.

Every command builds ``Settings`` once and passes them down. Errors a user can act on
(``ParityError``) print one line and exit with the error's code; anything unexpected prints its
type only (its message could hold patient data) unless ``PARITY_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from parity.access.cli import audit_app, db_app, users_app
from parity.care.cli import register as register_care
from parity.clikit import DatabaseOpt, MeasureLevel, OutFormat, emit
from parity.codes.cli import codes_app
from parity.errors import ConfigurationError, ParityError, ValidationError, exit_code_for
from parity.interop.cli import mesh_app, trust_app
from parity.reports.assessments_cli import assessments_app
from parity.reports.inequalities_cli import inequalities_command
from parity.reports.programme_cli import programme_app, trajectory_command
from parity.reports.published_cli import published_app
from parity.settings import DEFAULT_DATA_DIR, Settings

if TYPE_CHECKING:
    from parity.db import Database
    from parity.synth import SynthSummary

app = typer.Typer(
    name="parity",
    help="Parity: annual physical health checks for people with severe mental illness (SMI).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# `parity users …` and `parity audit …` (parity.access.cli: no web or engine imports).
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")  # `parity db grant ROLE`: a least-privilege PostgreSQL role (issue 12)
# `parity mesh …` and `parity trust …` (parity.interop.cli: trust-to-GP messaging).
app.add_typer(mesh_app, name="mesh")
app.add_typer(trust_app, name="trust")
# `parity codes …` (parity.codes.cli: codelist releases).
app.add_typer(codes_app, name="codes")


class Scale(StrEnum):
    practice = "practice"
    icb = "icb"
    region = "region"
    england = "england"


class FileFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"










def _as_of(value: str | None) -> date:
    from parity.dates import as_of_or_default

    return as_of_or_default(value, "--as-of")


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the canonical extract into")],
    scale: Annotated[Scale, typer.Option(help="How much of England to generate")] = Scale.region,
    area: Annotated[str | None, typer.Option(help="Practice, ICB or region ODS code (default: South East)")] = None,
    patients: Annotated[int | None, typer.Option(help="Scale register sizes to about N patients")] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files")] = 42,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Last day of history (default: latest quarter end)")]
    = None,
    fmt: Annotated[FileFormat, typer.Option("--format", help="csv or parquet")] = FileFormat.csv,
    structure: Annotated[str, typer.Option(help="Organisation structure: 2022-23 or 2026")] = "2022-23",
    noise: Annotated[float, typer.Option(help="Multiplier for unrelated background codes")] = 1.0,
) -> None:
    """Write a synthetic SMI population (canonical extract v1) on real practices."""
    from parity.synth import generate

    summary = generate(out, scale=scale.value, area=area, patients=patients, seed=seed, as_of=_as_of(as_of),
                       fmt=fmt.value, structure=structure, noise=noise, progress=sys.stderr.isatty())
    typer.echo(_summary_line(summary))


def _summary_line(summary: SynthSummary) -> str:
    return summary.describe()


@app.command()
def load(
    folder: Annotated[Path, typer.Argument(help="Folder holding patients, registrations, events [, medications]")],
    database: DatabaseOpt = None,
    append: Annotated[bool, typer.Option(help="Add to the stored data instead of replacing it")] = False,
    precompute: Annotated[bool, typer.Option(help="Refresh the dashboard's precomputed results after loading")]
    = True,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="Allow a replace load without patients "
                                                                   "(it empties the database)")] = False,
) -> None:
    """Validate a canonical extract and load it, all or nothing; then refresh precomputed results."""
    from parity.db import open_database
    from parity.ingest import load_extract

    settings = Settings.from_env(database=database)
    if not folder.is_dir():
        raise ConfigurationError(f"{folder} is not a folder")
    from parity.access.grant import create_all_tables
    from parity.db.shared import loading

    # On a shared DuckDB file a running server keeps serving the old data and moves to the new when
    # the load and its precompute have finished (parity.db.shared).
    with open_database(settings.database_url) as db, loading(db):
        result = load_extract(db, folder, mode="append" if append else "replace", progress=sys.stderr.isatty(),
                              allow_empty=allow_empty)
        # Every table, so commands beside a server never need to create one, and the patient indexes
        # (a patient page reads only that patient's rows).
        create_all_tables(db)
        if precompute:
            _refresh(db, settings, _as_of(None))
    counts = ", ".join(f"{n:,} {t}" for t, n in result.counts.items())
    typer.echo(f"loaded {folder} ({counts})")
    if result.warnings:
        typer.echo(f"{len(result.warnings)} data-quality warning(s):", err=True)
        for w in result.warnings[:20]:
            typer.echo(f"  warning: {w}", err=True)


@app.command()
def measure(
    as_of: Annotated[str | None, typer.Option("--as-of", help="Reporting date YYYY-MM-DD (default: latest "
                                                              "quarter end)")] = None,
    database: DatabaseOpt = None,
    measure_id: Annotated[str, typer.Option("--measure", help="phsmi, qof-mh021, extended-9 or a TOML file")]
    = "phsmi",
    level: Annotated[MeasureLevel, typer.Option(help="Organisation level of the rows; all: every level")]
    = MeasureLevel.icb,
    quarters: Annotated[int, typer.Option("--quarters", min=1, max=40,
                                          help="A trend: the N quarter ends up to the reporting date "
                                               "(rows gain an as_of column)")] = 1,
    patients: Annotated[bool, typer.Option("--patients", help="One row per patient instead of per organisation")]
    = False,
    fmt: Annotated[OutFormat, typer.Option("--format", help="csv, json or table")] = OutFormat.table,
    structure: Annotated[str | None, typer.Option(help="Organisation structure 2022-23 or 2026 (default: the "
                                                       "one in force on the reporting date)")] = None,
    parent: Annotated[str | None, typer.Option(help="Only organisations within this parent code")] = None,
    disclosure: Annotated[bool, typer.Option(help="Apply disclosure control (suppress 1-7, round to 5)")]
    = False,
    codelists: Annotated[str | None, typer.Option("--codelists", help="Codelist release (default: this "
                                                                     "database's; 'shipped' for Parity's own)")]
    = None,
    recompute: Annotated[bool, typer.Option("--recompute", help="Run the engine afresh instead of reading the "
                                                                "results the precompute stored (stores nothing)")]
    = False,
    write_table: Annotated[str | None, typer.Option("--write-table", help="Also write the rows (with what they "
                                                                          "used) to this table, e.g. on Spark "
                                                                          "SCHEMA.TABLE")] = None,
) -> None:
    """Per-organisation (or per-patient) results of a measure on a reporting date.

    ``--database spark:FOLDER`` or ``spark:CATALOG.SCHEMA`` runs it on Spark (``parity[spark]``)."""
    from parity.codes.store import resolve_codelists
    from parity.dates import quarter_ends_until
    from parity.db import open_database
    from parity.engine.base import LEVELS
    from parity.reports.measures import measure_rows, patient_table, provenance
    from parity.rules import load_measure

    settings = Settings.from_env(database=database)
    m = load_measure(measure_id)
    day = _as_of(as_of)
    if patients and (quarters > 1 or level == MeasureLevel.all):
        raise ConfigurationError("--patients gives one reporting date's patients: leave out --quarters and "
                                 "--level all")
    levels = list(LEVELS) if level == MeasureLevel.all else [level.value]
    dates = quarter_ends_until(day, quarters) if quarters > 1 else [day]
    with open_database(settings.database_url, create=False) as db:
        lists = resolve_codelists(db, codelists)
        if patients:
            df = patient_table(db, m, day, codelists=lists)
        else:
            df = measure_rows(db, m, dates, levels, structure=structure, parent=parent,
                              settings=settings if disclosure else None, codelists=lists, stored=not recompute)
            # One date and one level: the columns people know (no as_of, no level).
            df = df.drop(columns=[c for c, keep in (("as_of", quarters > 1), ("level", len(levels) > 1))
                                  if not keep])
        meta = provenance(db, m, max(dates), structure=None if patients else structure, codelists=lists)
        if len(dates) > 1:
            # The rows carry their own as_of: the metadata names the span (a CSV column once only).
            meta.pop("as_of")
            meta["dates"] = f"{len(dates)} quarter ends, {dates[0].isoformat()} to {dates[-1].isoformat()}"
        if write_table:
            from parity.db.tables import write_frame

            name = write_frame(db, write_table, df, meta)
            typer.echo(f"wrote {len(df):,} rows to {name}", err=True)
    span = f"{len(dates)} quarter ends to {day.isoformat()}" if len(dates) > 1 else f"as at {day.isoformat()}"
    emit(df, fmt, title=f"{m.name} — {span}" + ("" if patients else f" — by {level.value}"), metadata=meta)


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo extract and database go")] = DEFAULT_DATA_DIR,
    seed: Annotated[int, typer.Option(help="Random seed")] = 42,
    serve_: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the dashboard when built")] = True,
    port: Annotated[int, typer.Option(help="Port for the dashboard")] = 8000,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build the data again even if a demo built the "
                                                            "same way is there")] = False,
) -> None:
    """Build a synthetic South East region, load it, print the region and ICB table, create demo
    users, and serve the dashboard on http://127.0.0.1:8000. A second run reuses the built data
    (same seed, reporting date and code) and serves in seconds; ``--rebuild`` builds it again."""
    from parity.db import open_database
    from parity.demo import demo_recipe, reusable_demo, write_demo_marker
    from parity.orgs import structure_in_force, structure_label

    day = _as_of(None)
    # The practices and organisations of the structure in force on the reporting date (issue 11), so the
    # dashboard, the published series and the reports name the same ICBs.
    structure = structure_in_force(day)
    db_url = os.environ.get("PARITY_DATABASE_URL") or str(data_dir / "parity.duckdb")
    settings = replace(Settings.from_env(database=db_url), synthetic=True)
    marker = data_dir / "demo.json"
    recipe = demo_recipe(seed, day, structure)
    saved = None
    if not rebuild:
        try:
            with open_database(db_url, create=False) as db:
                saved = reusable_demo(db, marker, recipe)
        except ParityError:
            saved = None  # no database yet, or not one this demo built
    if saved is not None:
        typer.echo(f"Reusing the demo built {saved.get('built_at', '')} ({structure_label(structure)}, as at "
                   f"{day.isoformat()}, seed {seed}); 'parity demo --rebuild' builds it again.")
        with open_database(db_url) as db:
            logins, mesh_file, seeded = _demo_users_and_mesh(db, day, data_dir, seed_messages=False)
    else:
        logins, mesh_file, seeded = _build_demo(db_url, data_dir, day, seed, structure, settings)
        with open_database(db_url, create=False) as db:
            write_demo_marker(db, marker, recipe)
    typer.echo(f"Database: {db_url}  (try: parity measure --level practice --format csv)")
    typer.echo("Demo sign-ins (synthetic data only):")
    for login in logins:
        typer.echo(f"  {login.username:<18} {login.password}   {login.description}")
    if mesh_file is not None:
        queued = (f"{len(seeded)} trust check(s) queued: coded results to a practice on Parity and a Send "
                  "Document letter to a practice not on Parity") if saved is None else "its trust checks were " \
            "queued when it was built"
        typer.echo(f"Trust to GP over MESH: 'make demo' serves this demo with NHS Digital's mesh-sandbox "
                   f"({mesh_file}); {queued}")
    if serve_:
        _serve(settings, "127.0.0.1", port)


def _step(text: str) -> float:
    """A progress line on stderr (also when it is not a terminal: make demo piped to a log)."""
    import time

    typer.echo(text, err=True)
    return time.perf_counter()


def _build_demo(db_url: str, data_dir: Path, day: date, seed: int, structure: str,
                settings: Settings) -> tuple[list, Path | None, list]:
    """Synthesise, load, print the region and ICB table, precompute, import the published series."""
    import time

    from parity.db import open_database
    from parity.db.indexes import ensure_patient_indexes
    from parity.db.shared import loading
    from parity.ingest import load_extract
    from parity.orgs import structure_label
    from parity.reports.measures import measure_table
    from parity.reports.render import rich_table
    from parity.rules import load_measure
    from parity.synth import generate

    extract = data_dir / "demo-extract"
    typer.echo(f"Building a synthetic South East region ({structure_label(structure)}) as at {day.isoformat()} …")
    t = _step("demo: 1/4 synthesising the extract …")
    summary = generate(extract, scale="region", seed=seed, as_of=day, fmt="parquet", structure=structure,
                       progress=True)
    typer.echo(f"  {_summary_line(summary)}")
    _step(f"demo: synthesised in {time.perf_counter() - t:.1f} s")
    with open_database(db_url) as db, loading(db):
        t = _step("demo: 2/4 loading it …")
        load_extract(db, extract, mode="replace", progress=True)
        ensure_patient_indexes(db)
        _step(f"demo: loaded in {time.perf_counter() - t:.1f} s")
        m = load_measure("phsmi")
        for level in ("region", "icb"):
            df = measure_table(db, m, day, level, structure=structure, settings=None).drop(columns="parent_code")
            rich_table(df, f"{m.name} — as at {day.isoformat()} — by {level}")
        t = _step("demo: 3/4 precomputing the dashboard's results …")
        _refresh(db, settings, day)
        from parity.reports.published import import_published, packaged_series

        _step("demo: 4/4 published series, users and MESH …")
        typer.echo(import_published(db, packaged_series()).describe())
        return _demo_users_and_mesh(db, day, data_dir, seed_messages=True)


def _demo_users_and_mesh(db: Database, day: date, data_dir: Path, *, seed_messages: bool) -> tuple[list, Path | None,
                                                                                                   list]:
    from parity.demo import create_demo_users, seed_demo_messages, write_sandbox_mesh_config

    logins = create_demo_users(db, day)
    mesh_file = write_sandbox_mesh_config(db, day, data_dir / "mesh-sandbox.toml")
    seeded = seed_demo_messages(db, day) if mesh_file is not None and seed_messages else []
    return logins, mesh_file, seeded


def _refresh(db: Database, settings: Settings, day: date) -> None:
    from parity.engine.results import ResultStore

    summary = ResultStore(db, structure=settings.structure).refresh(day)
    typer.echo(summary.describe(), err=True)


@app.command()
def refresh(
    database: DatabaseOpt = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Latest reporting date to precompute (default: "
                                                              "latest quarter end)")] = None,
) -> None:
    """Recompute the dashboard's precomputed results (``parity load`` does this after every load)."""
    from parity.db import open_database

    settings = Settings.from_env(database=database)
    with open_database(settings.database_url, create=False) as db:
        _refresh(db, settings, _as_of(as_of))


@app.command()
def serve(
    database: DatabaseOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes (PostgreSQL only: a DuckDB "
                                                              "file takes one writing process)")] = 1,
) -> None:
    """Serve the dashboard and JSON API (``/api/v1``) with uvicorn."""
    settings = Settings.from_env(database=database)
    _serve(settings, host, port, workers)


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    from parity.db import open_database
    from parity.db.url import parse_database_url
    from parity.web import create_app
    from parity.web.computing import WAIT_SECONDS

    # The session key lives in the data directory (beside a DuckDB file), mode 0600 (issue 12 finding 10).
    settings = settings.with_secret_key()
    kind = parse_database_url(settings.database_url).kind
    if kind == "duckdb":
        # Fail with a clear message before uvicorn starts, rather than inside its lifespan.
        open_database(settings.database_url, create=False).close()
    if workers > 1 and kind != "postgres":
        raise ConfigurationError("--workers needs PostgreSQL: every process would write the DuckDB file (the "
                                 "audit log, sign-ins), and DuckDB lets only one process write it")
    if workers > 1 and settings.mesh_config:
        raise ConfigurationError("serve MESH (PARITY_MESH_CONFIG) with one worker, so one process polls the mailbox")
    typer.echo(f"Parity is serving on http://{host}:{port}/  (Ctrl+C to stop)")
    # access_log=False: uvicorn's access log prints full URLs, and a URL can hold an NHS number
    # (/patients/{nhs_number}); parity.web logs route templates instead. Forwarded headers are
    # believed only from PARITY_TRUSTED_PROXIES (uvicorn trusts 127.0.0.1 by default: issue 12 finding 6).
    trusted = ",".join(settings.trusted_proxies)
    options: dict[str, object] = {"host": host, "port": port, "access_log": False, "log_level": "warning",
                                  "proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}
    if workers > 1:
        # Each worker process builds its app from the environment (parity.web.app.app_from_env), with its
        # own database connection: PostgreSQL serves them side by side, none waits for another's lock.
        os.environ["PARITY_DATABASE_URL"] = settings.database_url
        uvicorn.run("parity.web.app:app_from_env", factory=True, workers=workers, **options)
        return
    uvicorn.run(create_app(settings, keep_warm=True, compute_wait=WAIT_SECONDS), **options)


# `parity recall|contact|followup|referral …`, `parity worklist`, `parity passport` (parity.care.cli),
# after the commands above so `parity --help` lists the core commands first.
register_care(app)
# Programme reporting (M7, M8, M10): `parity inequalities`, `parity assessments …`, `parity published …`,
# `parity programme trajectory|initiatives|highlight`.
app.command("inequalities")(inequalities_command)
app.add_typer(assessments_app, name="assessments")
app.add_typer(published_app, name="published")
app.add_typer(programme_app, name="programme")
app.command("trajectory")(trajectory_command)  # the form the programme team asked for (issue 6)


def _is_usage_error(exc: BaseException) -> bool:
    """A command-line mistake (Click's ``ClickException``, whichever Click: typer 0.2x ships its own
    copy as ``typer._click``, so ``click.ClickException`` alone misses it; issue 12 finding 10)."""
    import click

    return isinstance(exc, click.ClickException) or any(
        cls.__name__ == "ClickException" and hasattr(exc, "show") for cls in type(exc).__mro__)


def main() -> None:
    """Entry point: run the app, turning errors into one line and an exit code."""
    try:
        app(standalone_mode=False)
    except ParityError as exc:
        typer.echo(f"error: {exc}", err=True)
        # An extract error is one line by design (its first problem and a count); a check or upload
        # lists each problem on its own line.
        if isinstance(exc, ValidationError) and type(exc).__name__ != "ExtractValidationError":
            for problem in exc.problems[:50]:  # each names file, line, column and reason, never a value
                typer.echo(f"  {problem}", err=True)
        raise SystemExit(exit_code_for(exc)) from None
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", None)
        if code is None:
            code = getattr(exc, "code", 0)
        raise SystemExit(code) from None
    except typer.Abort:
        typer.echo("aborted", err=True)
        raise SystemExit(130) from None
    except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback, never data
        if _is_usage_error(exc):  # an unknown command or option: usage and the reason, exit 2
            exc.show()  # type: ignore[attr-defined]
            raise SystemExit(getattr(exc, "exit_code", 2)) from None
        if os.environ.get("PARITY_DEBUG") == "1":
            raise
        typer.echo(f"error: unexpected {type(exc).__name__}; rerun with PARITY_DEBUG=1 for details", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
