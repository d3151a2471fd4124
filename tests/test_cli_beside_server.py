"""The CLI beside a running ``parity serve`` on the embedded default, a DuckDB file (issue 16, target 4).

A real server process holds the file; real CLI processes read it, a real ``parity load`` replaces it
and the server moves to the new data without a restart (``parity.db.shared``). Behaviour only, never
timings.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from parity.access import add_user, issue_token
from parity.db import open_database
from parity.ingest import load_extract
from parity.reports.published import import_published, packaged_series
from parity.synth import generate

PRACTICE = "J82155"
AS_OF = "2026-06-30"
PASSWORD = "correct horse battery staple"
ENV = {"PARITY_SECRET_KEY": "beside-server-session-secret-0123456789abcdef",
       "PARITY_AUDIT_KEY": "beside-server-audit-key-0123456789abcdefghijkl", "PARITY_TODAY": AS_OF,
       "PARITY_DB_WAIT_SECONDS": "5"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parity(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parity.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **ENV})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("beside")
    extracts = [root / "a", root / "b"]
    for seed, (folder, n) in enumerate(zip(extracts, (250, 120), strict=True), start=1):
        generate(folder, scale="practice", area=PRACTICE, patients=n, seed=seed, as_of=date(2026, 6, 30),
                 fmt="csv", structure="2022-23")
    file = root / "parity.duckdb"
    old = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        with open_database(str(file)) as db:
            load_extract(db, extracts[0])
            add_user(db, "practice1", "practice", PRACTICE, PASSWORD)
            token = issue_token(db, "practice1")
            import_published(db, packaged_series())
        before = _parity("measure", "--database", str(file), "--level", "practice", "--as-of", AS_OF,
                         "--format", "csv")
        assert before.returncode == 0, before.stderr
        port = _port()
        log = root / "server.log"
        with log.open("w") as out:
            server = subprocess.Popen([sys.executable, "-m", "parity.cli", "serve", "--database", str(file),
                                       "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                      env={**os.environ, **ENV})
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            server.kill()
            pytest.fail("server did not start: " + log.read_text()[-2000:])
        yield {"file": file, "base": base, "token": token, "server": server, "extracts": extracts,
               "measure_before": before.stdout, "log": log}
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _api(served, path: str) -> dict:
    r = httpx.get(served["base"] + path, headers={"Authorization": f"Bearer {served['token']}"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_read_commands_work_while_the_server_holds_the_file(served, tmp_path):
    db = ["--database", str(served["file"])]
    assert served["server"].poll() is None
    _api(served, f"/api/v1/measures?level=practice&as_of={AS_OF}")  # the server is reading it too

    measure = _parity("measure", *db, "--level", "practice", "--as-of", AS_OF, "--format", "csv")
    assert measure.returncode == 0, measure.stderr
    assert measure.stdout == served["measure_before"]  # the same answer as with no server running

    worklist = _parity("worklist", "--practice", PRACTICE, *db, "--as-of", AS_OF, "--format", "csv")
    assert worklist.returncode == 0, worklist.stderr
    numbers = re.findall(r"^(9\d{9}),", worklist.stdout, re.MULTILINE)
    assert numbers, worklist.stdout[:500]

    pdf = tmp_path / "passport.pdf"
    passport = _parity("passport", numbers[0], "--out", str(pdf), *db, "--as-of", AS_OF)
    assert passport.returncode == 0, passport.stderr
    assert pdf.read_bytes().startswith(b"%PDF")

    # The server still writes (the patient view is audited) and the CLI reads what it wrote.
    _api(served, f"/api/v1/patients/{numbers[0]}?as_of={AS_OF}")
    verify = _parity("audit", "verify", *db)
    assert verify.returncode == 0, verify.stderr
    assert re.search(r"audit log intact: [1-9]\d* entries", verify.stdout), verify.stdout

    codes = _parity("codes", "list", *db)
    assert codes.returncode == 0, codes.stderr
    assert "shipped" in codes.stdout

    published = _parity("published", "show", "--period", "2023-24-Q4", *db, "--format", "csv")
    assert published.returncode == 0, published.stderr
    assert "2023-24-Q4" in published.stdout and len(published.stdout.splitlines()) > 2  # region rows
    assert served["server"].poll() is None


def test_a_write_beside_the_server_names_it_and_says_what_to_do(served):
    r = _parity("users", "add", "--username", "late1", "--role", "admin", "--password", PASSWORD,
                "--database", str(served["file"]))
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert f"pid {served['server'].pid} (parity serve)" in r.stderr
    assert "stop it" in r.stderr and "web app" in r.stderr
    assert PASSWORD not in r.stderr and "Traceback" not in r.stderr


def test_a_load_while_serving_switches_the_data_without_a_restart(served):
    first = _api(served, f"/api/v1/measures?level=practice&as_of={AS_OF}")
    pid = served["server"].pid
    load = _parity("load", str(served["extracts"][1]), "--database", str(served["file"]))
    assert load.returncode == 0, load.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        health = httpx.get(served["base"] + "/healthz", timeout=10).json()
        if health["data_version"] != first["data_version"]:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the server kept the old data version")
    second = _api(served, f"/api/v1/measures?level=practice&as_of={AS_OF}")
    assert served["server"].poll() is None and served["server"].pid == pid  # the same process, no restart
    assert second["data_version"] != first["data_version"]
    cli = _parity("measure", "--database", str(served["file"]), "--level", "practice", "--as-of", AS_OF,
                  "--format", "json")
    assert cli.returncode == 0, cli.stderr
    import json

    cli_rows = {r["org_code"]: (r["register"], r["all_six"]) for r in json.loads(cli.stdout)["rows"]}
    api_rows = {r["org_code"]: (r["register"], r["all_six"]) for r in second["rows"]}
    old_rows = {r["org_code"]: (r["register"], r["all_six"]) for r in first["rows"]}
    assert api_rows == cli_rows  # the server answers from the new data, cached figures dropped
    assert api_rows[PRACTICE] != old_rows[PRACTICE]  # a different extract: a different register
    assert not Path(str(served["file"]) + ".rewrite").exists()


def test_cached_figures_move_to_a_new_codelist_release_without_a_restart(tmp_path):
    """The server's cached results are keyed by data version, which a codelist release changes: a release
    imported and chosen while it serves (here from the same process, which shares its file) is used on the
    next request, with no restart."""
    from dataclasses import replace as dc_replace

    from fastapi.testclient import TestClient

    from parity.codes import load_codelist
    from parity.codes.release import PCD_COLUMNS, read_release_file
    from parity.codes.store import choose_release, import_release
    from parity.settings import Settings
    from parity.web import create_app

    folder = tmp_path / "extract"
    generate(folder, scale="practice", area=PRACTICE, patients=120, seed=5, as_of=date(2026, 6, 30), fmt="csv",
             structure="2022-23")
    file = tmp_path / "parity.duckdb"
    with open_database(str(file)) as db:
        load_extract(db, folder)
        add_user(db, "practice1", "practice", PRACTICE, PASSWORD)
        token = issue_token(db, "practice1")
    rows = [("ALC_COD", "ALC_COD description", str(load_codelist("ALC_COD").codes[0].code), "t",
             "999004691000230108", "QOF Mental health")]
    rows += [("MH_COD", "MH_COD description", str(c.code), "t", "999004691000230108", "QOF Mental health")
             for c in load_codelist("MH_COD").codes]
    release = tmp_path / "release.txt"
    release.write_text("\n".join("\t".join(r) for r in [PCD_COLUMNS, *rows]) + "\n", encoding="utf-8")
    settings = dc_replace(Settings(database_url=str(file)), secret_key="c" * 40, structure="2022-23",
                          today=date(2026, 7, 15))
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings)) as client:
        url = f"/api/v1/measures?level=practice&as_of={AS_OF}"
        before = client.get(url, headers=headers).json()
        assert "shipped" in before["codelists"]
        with open_database(str(file), create=False) as db:
            import_release(db, "one-alcohol-code", read_release_file(release))
            choose_release(db, "one-alcohol-code")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            after = client.get(url, headers=headers).json()
            if after["data_version"] != before["data_version"]:
                break
            time.sleep(0.3)
        else:
            pytest.fail("the server kept the results of the old release")
        assert "one-alcohol-code" in after["codelists"]
        old_alcohol = {r["org_code"]: r["checks"]["alcohol"]["done"] for r in before["rows"]}
        new_alcohol = {r["org_code"]: r["checks"]["alcohol"]["done"] for r in after["rows"]}
        assert new_alcohol[PRACTICE] < old_alcohol[PRACTICE]  # one alcohol code counts fewer people


def test_a_writer_killed_during_an_index_build_leaves_a_file_readers_open(tmp_path):
    """DuckDB cannot replay such a write-ahead log read-only; opening folds it in first (issue 16: the
    kill test of issue 12 caught a load killed while it built the patient indexes)."""
    file = tmp_path / "parity.duckdb"
    script = ("import duckdb, os, sys\n"
              "c = duckdb.connect(sys.argv[1])\n"
              "c.execute('CREATE TABLE t AS SELECT range::VARCHAR AS a FROM range(200000)')\n"
              "c.execute('CHECKPOINT')\n"
              "c.execute('CREATE INDEX t_a ON t (a)')\n"
              "os._exit(0)\n")  # no checkpoint, no close: as SIGKILL leaves it
    subprocess.run([sys.executable, "-c", script, str(file)], check=True, timeout=120)
    assert Path(str(file) + ".wal").stat().st_size > 0
    with open_database(str(file), create=False) as db:
        assert db.execute("SELECT COUNT(*) FROM t")[0][0] == 200000
        assert db.shared is not None and db.shared.mode == "ro"
    assert not Path(str(file) + ".wal").exists()
