"""A real ``parity serve`` on PostgreSQL (127.0.0.1), driven the way the hostile test drove it.

* Finding 1: 20 clients while ``parity load`` runs, repeated: ``/healthz`` answers within 2 s
  throughout, no 5xx, and SIGTERM stops the server.
* Finding 6: 200 parallel wrong passwords (each with a made-up X-Forwarded-For) check at most the
  limit; the rest are refused without a password check.
* Patient data never reaches a log: every output of the run (server, loads, a refused load) is
  searched for every NHS number in the data.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import pytest

from parity.access import add_user, audit, issue_token
from parity.db import open_database
from parity.ingest import load_extract
from parity.synth import generate

from .world import PRACTICE, postgres_schema

CLIENTS = 20
TRIALS = 3
HEALTH_LIMIT = 2.0
BURST = 200
PASSWORD = "correct horse battery staple"
ENV = {"PARITY_SECRET_KEY": "live-server-session-secret-0123456789abcdef",
       "PARITY_AUDIT_KEY": "live-server-audit-key-0123456789abcdefghijkl", "PARITY_TODAY": "2026-06-30"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nhs_numbers(folder: Path) -> set[str]:
    with (folder / "patients.csv").open() as f:
        return {row["nhs_number"] for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    root = tmp_path_factory.mktemp("live")
    extracts = [root / "a", root / "b"]
    for seed, folder in enumerate(extracts, start=1):
        generate(folder, scale="practice", area=PRACTICE, patients=250, seed=seed, as_of=date(2026, 6, 30),
                 fmt="csv", structure="2022-23")
    old = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    try:
        with postgres_schema() as url:
            with open_database(url) as db:
                load_extract(db, extracts[0])
                add_user(db, "practice1", "practice", PRACTICE, PASSWORD)
                add_user(db, "victim1", "practice", PRACTICE, PASSWORD)
                token = issue_token(db, "practice1")
            port = _port()
            log = root / "server.log"
            with log.open("w") as out:
                server = subprocess.Popen(
                    [sys.executable, "-m", "parity.cli", "serve", "--database", url, "--port", str(port)],
                    stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **ENV})
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                server.kill()
                pytest.fail("server did not start: " + log.read_text()[-2000:])
            yield {"url": url, "base": base, "token": token, "extracts": extracts, "root": root, "log": log,
                   "server": server, "numbers": _nhs_numbers(extracts[0]) | _nhs_numbers(extracts[1])}
            if server.poll() is None:
                server.kill()
                server.wait(10)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _load(live, folder: Path, name: str, *extra: str) -> subprocess.Popen:
    with (live["root"] / f"{name}.log").open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "parity.cli", "load", str(folder), "--database", live["url"],
                                 *extra], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **ENV})


def test_server_stays_up_under_20_clients_while_loads_run(live):
    base, headers = live["base"], {"Authorization": f"Bearer {live['token']}"}
    paths = ["/api/v1/me", f"/api/v1/practices/{PRACTICE}/patients", "/api/v1/measures",
             f"/api/v1/organisations/practice/{PRACTICE}/trend", "/healthz"]
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    worst = [0.0]
    trials_ok = 0
    for trial in range(TRIALS):
        stop = threading.Event()

        def client(i: int, stop: threading.Event = stop) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                n = 0
                while not stop.is_set():
                    try:
                        statuses[c.get(paths[(i + n) % len(paths)]).status_code] += 1
                    except httpx.HTTPError as exc:
                        errors.append(type(exc).__name__)
                    n += 1

        def watchdog(stop: threading.Event = stop) -> None:
            with httpx.Client(base_url=base, timeout=HEALTH_LIMIT) as c:
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        assert c.get("/healthz").status_code == 200
                    except (httpx.HTTPError, AssertionError) as exc:
                        errors.append(f"healthz {type(exc).__name__}")
                    worst[0] = max(worst[0], time.monotonic() - started)
                    time.sleep(0.1)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        threads.append(threading.Thread(target=watchdog))
        for t in threads:
            t.start()
        # Without precomputing: the server itself recomputes when it sees the new data version, which is
        # when requests contended for the store's lock and the database's (the hang).
        load = _load(live, live["extracts"][(trial + 1) % 2], f"load{trial}", "--no-precompute")
        try:
            assert load.wait(180) == 0, (live["root"] / f"load{trial}.log").read_text()[-2000:]
        finally:
            time.sleep(1.0)  # keep the clients on while the server notices the new data
            stop.set()
            for t in threads:
                t.join(60)
        assert not any(t.is_alive() for t in threads), "a client is stuck: the server hangs"
        trials_ok += 1
    print(f"trials without a hang: {trials_ok} of {TRIALS}; requests {sum(statuses.values())}; "
          f"statuses {dict(statuses)}; slowest /healthz {worst[0]:.2f} s")
    assert not errors, Counter(errors)
    assert not [s for s in statuses if s >= 500], statuses
    assert worst[0] < HEALTH_LIMIT
    assert statuses[200] > 0


def test_parallel_wrong_passwords_check_at_most_the_limit(live):
    base = live["base"]
    with httpx.Client(base_url=base, timeout=60) as c:
        page = c.get("/login")
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        cookies = dict(c.cookies)

    def guess(i: int) -> int:
        with httpx.Client(base_url=base, cookies=cookies, timeout=120) as c:
            r = c.post("/login", data={"username": "victim1", "password": f"wrong guess {i:04d}",
                                       "csrf_token": token},
                       headers={"X-Forwarded-For": f"10.{i % 250}.{i // 250}.7"})  # not a trusted proxy
            return r.status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = Counter(pool.map(guess, range(BURST)))
    with open_database(live["url"], create=False) as db:
        checked = [e for e in audit.entries(db, limit=1000, username="victim1") if e.action == "login_failed"]
        refused = [e for e in audit.entries(db, limit=1000, username="victim1") if e.action == "login_refused"]
        assert audit.verify_chain(db) is None
    print(f"guesses checked under a parallel burst of {BURST}: {results[401]} (limit 5); refused {results[429]}")
    assert results[401] <= 5 and results[401] == len(checked)
    assert results[429] == BURST - results[401] == len(refused)


def test_no_nhs_number_in_any_log_or_error_output(live):
    """Runs after the others (file order): greps the server log and every load's output."""
    bad = live["root"] / "bad"
    bad.mkdir(exist_ok=True)
    for name in ("patients", "registrations", "events"):
        text = (live["extracts"][0] / f"{name}.csv").read_text().splitlines()
        if name == "patients":  # no header row: the first row's values would be "column names"
            text = text[1:]
        (bad / f"{name}.csv").write_text("\n".join(text) + "\n")
    assert _load(live, bad, "refused").wait(120) == 4
    with httpx.Client(base_url=live["base"], timeout=30) as c:  # errors that carry a number in the URL
        for number in sorted(live["numbers"])[:5]:
            c.get(f"/patients/{number}")
            c.get(f"/api/v1/patients/{number}", headers={"Authorization": f"Bearer {live['token']}"})
            c.get(f"/practices/{number}x/worklist")
    live["server"].send_signal(signal.SIGTERM)
    assert live["server"].wait(15) == 0 or live["server"].returncode is not None
    outputs = [live["log"], *sorted(live["root"].glob("*.log"))]
    searched = 0
    for path in dict.fromkeys(outputs):
        text = path.read_text(errors="replace")
        searched += 1
        found = [n for n in live["numbers"] if n in text]
        assert not found, f"{len(found)} NHS numbers in {path.name}"
    assert searched >= TRIALS + 2
