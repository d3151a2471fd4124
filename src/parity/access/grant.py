"""A least-privilege PostgreSQL role for the application (issue 12 finding 7).

The audit log's trigger stops the application and careless SQL, but the table's owner (or a
superuser) can drop it; the keyed hash chain is what detects edits then. Deployments should
therefore run ``parity serve`` and ``parity load`` as a role that owns nothing:

    CREATE ROLE parity_app LOGIN PASSWORD '…';   -- by the database administrator
    parity db grant parity_app --database postgresql://owner@host/db

``grant_role`` first creates every Parity table (as the owner running it, so the role owns none),
then grants the role: USAGE on the schema (not CREATE); SELECT and INSERT on every table; UPDATE,
DELETE and TRUNCATE only on tables that are not append-only (append-only ones carry the
``<table>_no_update_delete`` trigger: the audit log, referrals, initiatives, assessments, ...); and
use of the sequences. The role cannot alter or drop a table or trigger, nor update or delete an
audit entry. Re-run after upgrading Parity (new tables). Equivalent SQL is printed with ``--sql``.
"""

from __future__ import annotations

import re

from parity.db import Database
from parity.errors import ConfigurationError

_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def create_all_tables(db: Database) -> None:
    """Every table Parity uses, created now by whoever runs this (so they own them)."""
    from parity.access.schema import ensure_access_schema
    from parity.care.contacts import ensure_contacts_schema
    from parity.care.referrals import ensure_followup_schema
    from parity.codes.store import ensure_codelist_schema
    from parity.interop.store import ensure_interop_schema
    from parity.reports.assessments import ensure_assessments_schema
    from parity.reports.initiatives import ensure_initiatives_schema
    from parity.reports.results import ensure_results_schema

    db.ensure_schema()
    for ensure in (ensure_access_schema, ensure_contacts_schema, ensure_followup_schema, ensure_codelist_schema,
                   ensure_interop_schema, ensure_assessments_schema, ensure_initiatives_schema,
                   ensure_results_schema):
        ensure(db)
    from parity.reports.published import ensure_tables as ensure_published_tables

    ensure_published_tables(db)
    from parity.db.indexes import ensure_patient_indexes

    ensure_patient_indexes(db)  # owned by whoever owns the tables (a least-privilege role cannot make them)


def grant_statements(db: Database, role: str) -> list[str]:
    """The GRANT statements for ``role`` on this database's schema (tables must exist)."""
    if not db.dialect.roles:
        raise ConfigurationError("parity db grant is for PostgreSQL (a DuckDB file has no roles)")
    if not _ROLE.match(role):
        raise ConfigurationError("role must be a plain lower-case PostgreSQL name (letters, digits, '_')")
    schema = str(db.execute("SELECT current_schema()")[0][0])
    tables = sorted(str(r[0]) for r in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'",
        [schema]))
    append_only = {str(r[0]) for r in db.execute(
        "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND NOT t.tgisinternal "
        "AND t.tgname = c.relname || '_no_update_delete'", [schema])}
    q = f'"{schema}"'
    out = [f"GRANT USAGE ON SCHEMA {q} TO {role}",
           f"REVOKE CREATE ON SCHEMA {q} FROM {role}",
           f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {q} TO {role}",
           # Tables this owner makes later (the engine's feature tables, kept by each load's precompute)
           # are readable by the role without granting again.
           f"ALTER DEFAULT PRIVILEGES IN SCHEMA {q} GRANT SELECT ON TABLES TO {role}"]
    for table in tables:
        name = f'{q}."{table}"'
        out.append(f"REVOKE ALL ON {name} FROM {role}")
        if table in append_only:
            out.append(f"GRANT SELECT, INSERT ON {name} TO {role}")
        else:
            out.append(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON {name} TO {role}")
    return out


def grant_role(db: Database, role: str) -> list[str]:
    """Create every table, then grant ``role`` least privilege on them; returns the statements run."""
    if not db.dialect.roles:
        raise ConfigurationError("parity db grant is for PostgreSQL (a DuckDB file has no roles)")
    if not _ROLE.match(role):
        raise ConfigurationError("role must be a plain lower-case PostgreSQL name (letters, digits, '_')")
    if not db.execute("SELECT 1 FROM pg_roles WHERE rolname = ?", [role]):
        raise ConfigurationError(f"no PostgreSQL role {role}: create it first (CREATE ROLE {role} LOGIN …)")
    create_all_tables(db)
    statements = grant_statements(db, role)
    with db.transaction():
        for sql in statements:
            db.execute(sql)
    return statements
