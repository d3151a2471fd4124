"""The messaging commands in real subprocesses: trust upload → mesh send → mesh poll → measure."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from parity.db import open_database

from .conftest import OTHER_MAILBOX, PRACTICE_MAILBOX, TRUST, TRUST_MAILBOX, Sandbox
from .world import CHECK_DAY, DOB, FIVE, OTHER_PRACTICE, PRACTICE, load_world


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parity.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def _upload_folder(folder: Path, snomed: str = "77176002", recorded_by: str = TRUST) -> Path:
    folder.mkdir(parents=True)
    (folder / "patients.csv").write_text(f"nhs_number,date_of_birth,sex\n{FIVE},{DOB[FIVE]},female\n")
    (folder / "registrations.csv").write_text(
        f"nhs_number,practice_code,start_date,end_date\n{FIVE},{PRACTICE},2010-01-01,\n")
    (folder / "events.csv").write_text(
        "nhs_number,date,snomed_code,value,unit,recorded_by\n"
        f"{FIVE},{CHECK_DAY},{snomed},,,{recorded_by}\n"
        f"{FIVE},{CHECK_DAY},72313002,148,mmHg,{recorded_by}\n"
        f"{FIVE},{CHECK_DAY},1091811000000102,92,mmHg,{recorded_by}\n")
    return folder


@pytest.fixture
def cli_env(tmp_path: Path, sandbox: Sandbox) -> dict[str, str]:
    db_path = tmp_path / "parity.duckdb"
    with open_database(str(db_path)) as db:
        load_world(db, tmp_path / "extract")
    config = tmp_path / "mesh.toml"
    config.write_text(
        f'url = "{sandbox.url}"\nshared_key_env = "TEST_MESH_KEY"\n'
        f'[[mailboxes]]\nmailbox = "{TRUST_MAILBOX}"\nods = "{TRUST}"\npassword_env = "TEST_MESH_PASSWORD"\n'
        f'[[mailboxes]]\nmailbox = "{PRACTICE_MAILBOX}"\nods = "{PRACTICE}"\npassword_env = "TEST_MESH_PASSWORD"\n'
        f'[directory]\n{PRACTICE} = "{PRACTICE_MAILBOX}"\n{OTHER_PRACTICE} = "{OTHER_MAILBOX}"\n')
    return {**os.environ, "PARITY_DATABASE_URL": str(db_path), "PARITY_MESH_CONFIG": str(config),
            "TEST_MESH_KEY": sandbox.shared_key, "TEST_MESH_PASSWORD": "password", "PARITY_TODAY": "2026-11-27"}


def test_upload_send_poll_then_the_patient_has_all_six(tmp_path: Path, cli_env: dict[str, str]) -> None:
    def all_six() -> str:
        out = _run("measure", "--as-of", CHECK_DAY.isoformat(), "--patients", "--format", "csv", env=cli_env)
        assert out.returncode == 0, out.stderr
        row = next(r for r in csv.DictReader(io.StringIO(out.stdout)) if r["nhs_number"] == FIVE)
        return f"{row['checks_done']} {row['all_six']}"

    assert all_six() == "5 false"
    up = _run("trust", "upload", str(_upload_folder(tmp_path / "upload")), "--trust", TRUST, env=cli_env)
    assert up.returncode == 0, up.stderr
    assert "queued 1 check(s)" in up.stdout
    sent = _run("mesh", "send", env=cli_env)
    assert sent.returncode == 0 and "sent 1" in sent.stdout, sent.stderr
    polled = _run("mesh", "poll", "--no-precompute", env=cli_env)
    assert polled.returncode == 0, polled.stderr
    assert "received 1: filed 1 (3 coded results)" in polled.stdout
    assert all_six() == "6 true"
    again = _run("mesh", "poll", "--no-precompute", env=cli_env)
    assert "received 0" in again.stdout
    tracked = _run("mesh", "send", env=cli_env)  # tracking: the practice acknowledged the message
    assert "acknowledged since last pass 1" in tracked.stdout
    status = _run("mesh", "status", env=cli_env)
    assert "outbox: acknowledged 1" in status.stdout and "open exceptions: none" in status.stdout
    assert FIVE not in up.stdout + sent.stdout + polled.stdout + status.stdout  # no patient data in output


@pytest.mark.parametrize(("snomed", "recorded_by", "where"), [
    ("123456789", TRUST, "events.csv, line 2, column snomed_code"),
    ("77176002", "RXX", "events.csv, line 2, column recorded_by"),
])
def test_a_bad_upload_names_file_line_column_and_queues_nothing(tmp_path: Path, cli_env: dict[str, str],
                                                                snomed: str, recorded_by: str, where: str) -> None:
    folder = _upload_folder(tmp_path / "upload", snomed=snomed, recorded_by=recorded_by)
    out = _run("trust", "upload", str(folder), "--trust", TRUST, env=cli_env)
    assert out.returncode == 4
    assert where in out.stderr
    assert FIVE not in out.stderr
    status = _run("mesh", "status", env=cli_env)
    assert "outbox: empty" in status.stdout
