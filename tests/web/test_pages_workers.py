"""``parity serve --workers N`` on PostgreSQL (issue 16, target 3): N processes, each with its own database
connection, so no request waits for another process's lock. Behaviour only, never timings."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psutil
import pytest
from webkit import TODAY, WebWorld, bearer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_each_worker_serves_with_its_own_postgres_connection(postgres_world: WebWorld, tmp_path: Path) -> None:
    port = _free_port()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "PARITY_SECRET_KEY": secrets.token_urlsafe(48), "PARITY_TODAY": TODAY.isoformat()}
    env.pop("PARITY_DATABASE_URL", None)
    with log_path.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "parity.cli", "serve", "--database", postgres_world.url,
                                 "--port", str(port), "--workers", "2"], env=env, stdout=sink,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    pg_port = urlparse(postgres_world.url).port or 5432
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, "parity serve --workers 2 exited"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "parity serve --workers 2 did not answer"
            time.sleep(0.2)
        for _ in range(20):  # requests are answered whichever worker takes them
            r = httpx.get(f"{base}/api/v1/measures?level=icb", headers=bearer(postgres_world, "programme1"), timeout=30)
            assert r.status_code == 200
        deadline = time.monotonic() + 30
        while True:  # every worker opens its connection at start-up; wait until both have
            workers = psutil.Process(proc.pid).children(recursive=True)
            with_connection: dict[int, set[int]] = {}
            for w in workers:
                try:
                    conns = w.net_connections(kind="tcp")
                except psutil.Error:
                    continue
                ports = {c.laddr.port for c in conns if c.raddr and c.raddr.port == pg_port}
                if ports:
                    with_connection[w.pid] = ports
            if len(with_connection) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(with_connection) >= 2, (f"worker processes with a PostgreSQL connection: {len(with_connection)}; "
                                           + log_path.read_text(errors="replace")[-3000:])
        import psycopg

        client_ports = sorted({p for ports in with_connection.values() for p in ports})
        with psycopg.connect(postgres_world.url.split("?")[0], autocommit=True) as con:
            backends = con.execute("SELECT count(DISTINCT pid) FROM pg_stat_activity WHERE client_port = ANY(%s)",
                                   [client_ports]).fetchone()[0]
        assert backends >= 2  # separate server-side sessions: one per worker, not one shared connection
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("workers", [2])
def test_workers_refuse_a_duckdb_file_with_a_reason(duckdb_world: WebWorld, workers: int) -> None:
    out = subprocess.run([sys.executable, "-m", "parity.cli", "serve", "--database", duckdb_world.url,
                          "--port", str(_free_port()), "--workers", str(workers)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PARITY_SECRET_KEY": secrets.token_urlsafe(48)})
    assert out.returncode != 0
    assert "--workers needs PostgreSQL" in out.stderr
