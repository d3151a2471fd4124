"""Shared pieces of the reliability tests: a small valid extract, checksums, the CLI in-process, and
a PostgreSQL schema that lives for a whole module.

Synthetic data only: NHS numbers in the test range 9000000000-9999999999.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import need, postgres_schema_url
from parity.db import open_database

PRACTICE = "J82155"
OTHER_PRACTICE = "J82001"
SNOMED = "58214004"  # schizophrenia (MH_COD): puts the patient on the SMI register


def nhs_number(seed: int) -> str:
    """A valid NHS number in the test range (modulus 11), different for each ``seed``."""
    n = 900_000_000 + seed * 7919
    while True:
        digits = [int(d) for d in f"{n:09d}"]
        check = (11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11) % 11
        if check != 10:
            return f"{n:09d}{check}"
        n += 1


PEOPLE = [nhs_number(i) for i in range(1, 9)]


def base_tables() -> dict[str, list[list[str]]]:
    """The valid extract: header row first, every value distinctive enough to search output for."""
    patients = [["nhs_number", "date_of_birth", "sex", "ethnicity", "lsoa", "imd_decile", "date_of_death"]]
    registrations = [["nhs_number", "practice_code", "start_date", "end_date"]]
    events = [["nhs_number", "date", "snomed_code", "value", "unit", "recorded_by"]]
    medications = [["nhs_number", "date", "dmd_code", "bnf_code"]]
    for i, n in enumerate(PEOPLE):
        patients.append([n, f"19{50 + i}-0{1 + i % 9}-1{i}", ("female", "male")[i % 2], "A", f"E0102{4200 + i}",
                         str(1 + i), ""])
        registrations.append([n, PRACTICE, f"201{i}-04-0{1 + i}", ""])
        events.append([n, f"2025-0{1 + i}-1{i}", SNOMED, "", "", PRACTICE])
        events.append([n, f"2025-0{2 + i % 7}-2{i}", "271649006", f"13{i}.5", "mm[Hg]", ""])
        medications.append([n, f"2024-1{i % 3}-0{1 + i}", "32416211000001109", "0402010"])
    return {"patients": patients, "registrations": registrations, "events": events, "medications": medications}


def write_csv(folder: Path, table: str, rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path = folder / f"{table}.csv"
    path.write_text(buf.getvalue())
    return path


def write_extract(folder: Path, tables: dict[str, list[list[str]]] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for table, rows in (tables or base_tables()).items():
        write_csv(folder, table, rows)
    return folder


def checksum(url: str) -> str:
    """SHA-256 over every table's sorted rows: equal before and after means nothing changed."""
    db = open_database(url, create=False)
    try:
        digest = hashlib.sha256()
        tables = db.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                            "AND table_type = 'BASE TABLE'")
        for table in sorted(str(t[0]) for t in tables):
            rows = db.execute(f'SELECT * FROM "{table}"')
            digest.update(table.encode())
            digest.update(repr(sorted(repr(r) for r in rows)).encode())
        return digest.hexdigest()
    finally:
        db.close()


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``parity ARGS`` in this process through ``parity.cli.main``: (exit code, stdout + stderr)."""
    from parity import cli

    old = sys.argv
    sys.argv = ["parity", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out + out.err


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema on the test server for as long as the block runs (module-scoped fixtures)."""
    import psycopg

    base = os.environ.get("PARITY_TEST_POSTGRES_URL", "")
    if not base:
        need("PARITY_TEST_POSTGRES_URL is not set")
    schema = f"r_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        need(f"PostgreSQL not reachable: {type(exc).__name__}")
    try:
        yield postgres_schema_url(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_base() -> str:
    base = os.environ.get("PARITY_TEST_POSTGRES_URL", "")
    if not base:
        need("PARITY_TEST_POSTGRES_URL is not set")
    return base
