"""``parity users …`` and ``parity audit …``: manage accounts and tokens, read and verify the audit log.

Mounted by ``parity.cli`` with ``app.add_typer(users_app, name="users")`` and
``app.add_typer(audit_app, name="audit")``. Errors are ``ParityError``s, which the main entry point
turns into one line and an exit code. Nothing here prints a password, password hash or token hash;
a new token is printed once, when issued. Account and token changes made here are themselves audited
(as user ``cli``, with the operating-system account in ``detail``).
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterator
from typing import Annotated

import typer

from parity.access.audit import chain_head, entries, record, verify_chain
from parity.access.model import Role
from parity.access.schema import ensure_access_schema
from parity.access.tokens import issue_token, revoke_tokens
from parity.access.users import add_user, disable_user, list_users
from parity.db import Database
from parity.errors import ParityError
from parity.settings import Settings

users_app = typer.Typer(name="users", help="Manage Parity user accounts and API tokens.", no_args_is_help=True,
                        add_completion=False, pretty_exceptions_enable=False)
audit_app = typer.Typer(name="audit", help="Read and verify the audit log.", no_args_is_help=True,
                        add_completion=False, pretty_exceptions_enable=False)

db_app = typer.Typer(name="db", help="Database administration: least-privilege roles.", no_args_is_help=True,
                     add_completion=False, pretty_exceptions_enable=False)

# Same option as the main CLI's DatabaseOpt (copied, not imported, so this module does not load parity.cli).
DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", help="postgresql://… or a DuckDB file path [env: PARITY_DATABASE_URL; "
                                    "default ./parity-data/parity.duckdb]"),
]

CLI_USERNAME = "cli"


@contextlib.contextmanager
def _open(database: str | None) -> Iterator[Database]:
    from parity.db import open_database

    settings = Settings.from_env(database=database)
    with open_database(settings.database_url, create=False) as db:
        ensure_access_schema(db)
        yield db


def _audit(db: Database, action: str, resource: str) -> None:
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) or no login name
        os_user = "unknown"
    record(db, None, action, resource, "allowed", f"os_user={os_user}", username=CLI_USERNAME)


def _read_password() -> str:
    from_env = os.environ.get("PARITY_PASSWORD")
    if from_env:
        return from_env
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def add(
    username: Annotated[str, typer.Option("--username", help="Sign-in name: lower-case letters, digits, . _ -")],
    role: Annotated[Role, typer.Option("--role", help="practice, pcn, icb, trust, programme or admin")],
    org: Annotated[str | None, typer.Option("--org", help="ODS code of the user's organisation (required for "
                                                          "practice, pcn, icb and trust)")] = None,
    password: Annotated[str | None, typer.Option("--password", help="Password (default: $PARITY_PASSWORD, "
                                                                    "else asked twice, hidden)")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Create a user account."""
    secret = password if password is not None else _read_password()
    with _open(database) as db:
        user = add_user(db, username, role, org, secret)
        _audit(db, "user_added", f"user/{user.username}")
    typer.echo(f"added {user.username} ({user.role.value}{' ' + user.org_code if user.org_code else ''})")


@users_app.command("token")
def token(
    username: Annotated[str, typer.Argument(help="The user the token acts as")],
    label: Annotated[str | None, typer.Option("--label", help="What the token is for")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Issue an API token and print it (once: it cannot be shown again)."""
    with _open(database) as db:
        secret = issue_token(db, username, label)
        _audit(db, "token_issued", f"user/{username.strip().lower()}")
    typer.echo(secret)
    typer.echo("Store this token now: Parity keeps only a hash of it and cannot show it again.", err=True)


@users_app.command("list")
def list_(database: DatabaseOpt = None) -> None:
    """List user accounts."""
    with _open(database) as db:
        users = list_users(db)
    if not users:
        typer.echo("no users")
        return
    rows = [(u.username, u.role.value, u.org_code or "-", u.created_at.strftime("%Y-%m-%d %H:%M") + "Z",
             "disabled" if u.disabled else "active") for u in users]
    _table(("username", "role", "org", "created", "status"), rows)


@users_app.command("disable")
def disable(
    username: Annotated[str, typer.Argument(help="The user to disable")],
    database: DatabaseOpt = None,
) -> None:
    """Disable an account: no more sign-ins, its API tokens stop working."""
    with _open(database) as db:
        user = disable_user(db, username)
        _audit(db, "user_disabled", f"user/{user.username}")
    typer.echo(f"disabled {user.username}")


@users_app.command("revoke-tokens")
def revoke_tokens_cmd(
    username: Annotated[str, typer.Argument(help="Whose tokens to revoke")],
    database: DatabaseOpt = None,
) -> None:
    """Revoke every API token of a user."""
    with _open(database) as db:
        n = revoke_tokens(db, username)
        _audit(db, "tokens_revoked", f"user/{username.strip().lower()}")
    typer.echo(f"revoked {n} token(s)")


@audit_app.command("show")
def show(
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="How many entries")] = 50,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's entries")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Show audit entries, newest first."""
    with _open(database) as db:
        rows = entries(db, limit=limit, username=user.strip().lower() if user else None)
    if not rows:
        typer.echo("no audit entries")
        return
    _table(("seq", "at (UTC)", "user", "role", "org", "action", "resource", "outcome", "detail"),
           [(str(e.seq), e.at.strftime("%Y-%m-%d %H:%M:%S"), e.username or "-", e.role or "-", e.org_code or "-",
             e.action, e.resource or "-", e.outcome, e.detail or "") for e in rows])


@audit_app.command("verify")
def verify(database: DatabaseOpt = None) -> None:
    """Check the audit log's hash chain; exits non-zero at the first changed or missing row."""
    with _open(database) as db:
        broken = verify_chain(db)
        head = chain_head(db)
    if broken is not None:
        raise ParityError(f"audit log chain broken at seq {broken}: a row was changed or removed")
    if head is None:
        typer.echo("audit log is empty")
    else:
        typer.echo(f"audit log intact: {head[0]} entries, head {head[1]}")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for line in (header, *rows):
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


__all__ = ["users_app", "audit_app"]


@db_app.command("grant")
def db_grant(
    role: Annotated[str, typer.Argument(help="An existing PostgreSQL role for parity serve and parity load")],
    database: DatabaseOpt = None,
    sql: Annotated[bool, typer.Option("--sql", help="Print the statements instead of running them")] = False,
) -> None:
    """Give ROLE least privilege on Parity's tables (PostgreSQL; run as the tables' owner).

    ROLE may read and add rows, change only tables that are not append-only, and owns nothing: it
    cannot drop the audit log's trigger or edit an audit entry (issue 12 finding 7).
    """
    from parity.access.grant import create_all_tables, grant_role, grant_statements
    from parity.db import open_database

    settings = Settings.from_env(database=database)
    with open_database(settings.database_url) as db:
        if sql:
            create_all_tables(db)
            for statement in grant_statements(db, role):
                typer.echo(statement + ";")
            return
        statements = grant_role(db, role)
    typer.echo(f"granted {role} least privilege ({len(statements)} statements)")
