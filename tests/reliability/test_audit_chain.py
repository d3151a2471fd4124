"""Finding 7 (issue 12): an edited audit entry with every later hash recomputed is detected, because the
chain is keyed with a secret outside the database; and the application's least-privilege PostgreSQL
role (``parity db grant``) can neither edit the log nor drop its trigger."""

from __future__ import annotations

import hashlib
import json
import uuid

import psycopg
import pytest

from parity.access import add_user, audit, verify_chain
from parity.access.keys import deployment_key
from parity.db import open_database

from .world import postgres_base, run_cli


def _entries(db, n: int = 6) -> None:
    for i in range(n):
        audit.record(db, None, "view_patient", f"patient/900000000{i}", "allowed", username=f"user{i}")


def _recompute_from(db, seq: int, key: bytes | None) -> None:
    """What an attacker with write access does: change entry ``seq``, then re-hash it and every later
    entry (with ``key`` if they had it, else the unkeyed SHA-256 the chain used before)."""
    db.execute("UPDATE audit_log SET detail = 'nothing to see' WHERE seq = ?", [seq])
    rows = [r for r in audit.entries(db, limit=1000) if r.seq >= seq][::-1]
    prev = next(e.hash for e in audit.entries(db, limit=1000) if e.seq == seq - 1)
    for e in rows:
        if key is None:
            stamp = e.at.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.%f")
            payload = json.dumps([prev, e.seq, stamp, e.username, e.role, e.org_code, e.via, e.action, e.resource,
                                  e.outcome, e.detail], ensure_ascii=True, separators=(",", ":"))
            digest = hashlib.sha256(payload.encode("ascii")).hexdigest()
        else:
            digest = audit.compute_hash(key, prev, e.seq, e.at, e.username, e.role, e.org_code, e.via, e.action,
                                        e.resource, e.outcome, e.detail)
        db.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", [prev, digest, e.seq])
        prev = digest


def _editable(db):
    """On PostgreSQL the trigger refuses edits; the attacker is a superuser who disables it."""
    if db.kind == "postgres":
        db.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")


@pytest.mark.parametrize("attacker_key", ["none", "guessed"])
def test_tamper_and_recompute_is_detected(any_db, attacker_key):
    _entries(any_db)
    assert verify_chain(any_db) is None
    _editable(any_db)
    _recompute_from(any_db, 3, None if attacker_key == "none" else b"a-guessed-key-of-the-right-length!!")
    assert verify_chain(any_db) == 3


def test_recompute_with_the_deployment_key_would_pass(any_db):
    """The control: the key is what stops it (with it, the recomputed chain verifies)."""
    _entries(any_db)
    _editable(any_db)
    _recompute_from(any_db, 3, deployment_key(any_db))
    assert verify_chain(any_db) is None


@pytest.fixture
def app_role(postgres_url):
    role = f"parity_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_base(), autocommit=True) as con:
        con.execute(f"CREATE ROLE {role} LOGIN")
    yield role
    with psycopg.connect(postgres_base(), autocommit=True) as con:
        con.execute(f"DROP OWNED BY {role}")
        con.execute(f"DROP ROLE {role}")


def _as_role(url: str, role: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)


def test_least_privilege_role_cannot_edit_the_log(postgres_url, app_role, capsys):
    with open_database(postgres_url) as owner:
        add_user(owner, "admin1", "admin", None, "correct horse battery staple")
    code, output = run_cli(capsys, "db", "grant", app_role, "--database", postgres_url)
    assert code == 0, output
    with open_database(_as_role(postgres_url, app_role)) as db:  # set-up runs, and skips what exists
        _entries(db, 3)
        assert verify_chain(db) is None
        assert db.count("audit_log") == 3
        for sql in ("UPDATE audit_log SET detail = 'x' WHERE seq = 2", "DELETE FROM audit_log WHERE seq = 2",
                    "TRUNCATE audit_log", "ALTER TABLE audit_log DISABLE TRIGGER USER",
                    "DROP TRIGGER audit_log_no_update_delete ON audit_log", "DROP TABLE audit_log",
                    "CREATE TABLE intruder (a int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(sql)
        db.execute("UPDATE users SET disabled_at = NULL WHERE username = 'admin1'")  # ordinary tables: yes
        assert verify_chain(db) is None


def test_a_process_with_another_key_is_refused(tmp_path, monkeypatch):
    """Two processes on one database must share the key; a different one is refused, not used."""
    from parity.errors import ConfigurationError

    url = str(tmp_path / "parity.duckdb")
    monkeypatch.setenv("PARITY_AUDIT_KEY", "k" * 40)
    with open_database(url) as db:
        _entries(db, 2)
    monkeypatch.setenv("PARITY_AUDIT_KEY", "j" * 40)
    with open_database(url) as db:
        with pytest.raises(ConfigurationError):
            audit.record(db, None, "view_patient", "patient/9000000000", "allowed", username="x")
        assert db.count("audit_log") == 2
    monkeypatch.setenv("PARITY_AUDIT_KEY", "k" * 40)
    with open_database(url) as db:
        assert verify_chain(db) is None


def test_least_privilege_role_reads_the_feature_tables_a_later_load_keeps(postgres_url, app_role, capsys):
    """Feature tables are made by the owner's precompute after ``parity db grant``; the role reads
    them (default privileges), and a table it may not read is skipped, never an error (issue 16)."""
    from datetime import date

    from parity.engine.ibis_engine import FEATURE_PREFIX, IbisEngine
    from parity.engine.results import ResultStore
    from parity.rules.registry import load_measure

    with open_database(postgres_url) as owner:
        owner.execute("INSERT INTO patients (nhs_number, date_of_birth, sex) VALUES ('9000000001', '1970-01-01', 'F')")
        owner.execute("INSERT INTO registrations (nhs_number, practice_code, start_date) "
                      "VALUES ('9000000001', 'A81001', '2010-01-01')")
        owner.execute("INSERT INTO events (nhs_number, date, snomed_code) "
                      "VALUES ('9000000001', '2015-06-01', 58214004)")  # schizophrenia (MH_COD)
    code, output = run_cli(capsys, "db", "grant", app_role, "--database", postgres_url)
    assert code == 0, output
    with open_database(postgres_url) as owner:
        ResultStore(owner).refresh(date(2024, 3, 31), ["phsmi"], quarters=1, months=1, status=False)
        kept = owner.dialect.tables_like(owner.ibis, FEATURE_PREFIX)
        assert kept
        owner.execute(f"REVOKE SELECT ON {kept[0]} FROM {app_role}")
    with open_database(_as_role(postgres_url, app_role)) as db:
        readable = db.dialect.tables_like(db.ibis, FEATURE_PREFIX)
        assert set(readable) == set(kept) - {kept[0]}
        engine = IbisEngine(db)
        counts = engine.practice_counts(load_measure("phsmi"), date(2024, 3, 31))
        assert int(counts["register"].sum()) == 1
        assert set(engine._kept.values()) <= set(readable)
