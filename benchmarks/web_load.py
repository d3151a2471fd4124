"""Web latency under load: the real ``parity serve`` on the South East region, 20 concurrent clients.

Target (issue "Performance"): with the South East synthetic region loaded, p95 page and API latency
under 150 ms with 20 concurrent clients. Steps (see benchmarks/README.md, "Web latency"):

1. data: ``parity synth --scale region`` (South East, Parquet, a fixed reporting date; reused when
   a matching extract exists), then ``parity load`` into a new DuckDB file: the load also
   precomputes the dashboard's results (``ResultStore.refresh``), whose time is recorded;
2. users: a practice user (busiest practice), an ICB user (its ICB) and a programme user, with
   ``parity users add``, and an API token each (``parity users token``);
3. no-cache baseline, in this process before the server starts: what a request would cost if it
   asked the engine (``IbisEngine.aggregate_all``, ``patient_status``, ``trend_all``) instead of
   the precomputed results;
4. the server: ``parity serve`` as a subprocess (uvicorn, one process), ``PARITY_TODAY`` pinned;
5. warm-up: every URL of the mix once, one at a time; the first request of each URL type is
   reported as the cold-server latency;
6. load: ``--clients`` threads (default 20), each with its own keep-alive ``httpx.Client`` per
   identity, closed loop (no think time) for ``--seconds`` (default 60), URLs drawn from a weighted
   mix with a seeded RNG; every response must be 200;
7. report: count, median, p95, p99, max and requests/s per URL type, pages, API and overall; PASS or
   FAIL against p95 < 150 ms; server peak RSS (psutil, sampled) and CPU; machine load. The Markdown
   section replaces the one between the ``web-load`` markers in ``benchmarks/RESULTS.md``.

Usage: ``python benchmarks/web_load.py [--seconds 60] [--clients 20] [--quick]``.
Exit status: 2 when a request failed (a non-200 response or a transport error), 3 with ``--strict``
when a p95 target is missed, 1 on any other error, else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from run import cpu_snapshot, dir_size, jsonable, machine_facts, synth_version  # noqa: E402

DEFAULT_AS_OF = date(2026, 9, 30)  # fixed, so the extract is reused and figures compare across runs
TODAY = "2026-11-22"               # PARITY_TODAY: the latest quarter end before it is DEFAULT_AS_OF
STRUCTURE = "2022-23"
TARGET_P95_MS = 150.0
PASSWORD = "web-load-bench-password"  # synthetic data, throwaway database
USERS = {"practice": "bench-practice", "icb": "bench-icb", "programme": "bench-programme"}
START_MARK = "<!-- web-load:start -->"
END_MARK = "<!-- web-load:end -->"


@dataclass(frozen=True)
class UrlType:
    """One kind of request in the mix."""

    key: str
    label: str
    kind: str      # "page" or "api"
    weight: int    # relative frequency in the load phase


# The mix: what the dashboard's users do most (their own organisation's pages and worklists), with
# the API used by integrations. Weights are relative (they sum to 100, so they read as percentages).
MIX: tuple[UrlType, ...] = (
    UrlType("page_region", "region overview page", "page", 5),
    UrlType("page_icb", "ICB page", "page", 9),
    UrlType("page_sub_icb", "sub-ICB page", "page", 6),
    UrlType("page_pcn", "PCN page", "page", 6),
    UrlType("page_practice", "practice page", "page", 9),
    UrlType("page_variation", "variation page", "page", 6),
    UrlType("page_checks", "checks page", "page", 6),
    UrlType("page_worklist", "practice worklist page", "page", 10),
    UrlType("page_worklist_filtered", "worklist page, filtered", "page", 6),
    UrlType("page_patient", "patient page", "page", 10),
    UrlType("api_measures_icb", "API measures, level=icb", "api", 6),
    UrlType("api_measures_practice", "API measures, practices of a PCN", "api", 6),
    UrlType("api_practice_patients", "API practice worklist", "api", 8),
    UrlType("api_trend", "API ICB trend", "api", 7),
)
TYPES = {t.key: t for t in MIX}


def log(msg: str) -> None:
    """A progress line on stderr with the time."""
    print(f"[{datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


# -- subprocesses -------------------------------------------------------------------------------------

def parity_bin() -> str:
    """The ``parity`` command of this interpreter's environment (the project venv under ``make bench``)."""
    local = Path(sys.executable).parent / "parity"
    found = str(local) if local.exists() else shutil.which("parity")
    if not found:
        raise RuntimeError("the parity command is not installed (make bench installs it)")
    return found


def base_env() -> dict[str, str]:
    """The environment for every ``parity`` subprocess: today pinned, no database from the caller."""
    env = {k: v for k, v in os.environ.items() if k != "PARITY_DATABASE_URL"}
    env["PARITY_TODAY"] = TODAY
    env["PARITY_SYNTHETIC"] = "1"
    return env


def run_parity(args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``parity ARGS``; raise with its stderr if it fails."""
    proc = subprocess.run([parity_bin(), *args], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"parity {' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


# -- 1. data ---------------------------------------------------------------------------------------------

def prepare_extract(workdir: Path, seed: int, as_of: date, fresh: bool) -> tuple[Path, dict[str, Any], bool]:
    """The South East extract for (seed, as_of, generator version): reused if complete, else generated."""
    folder = workdir / "extract"
    meta_path = workdir / "extract.json"
    params = {"scale": "region", "area": None, "seed": seed, "as_of": as_of.isoformat(), "format": "parquet",
              "structure": STRUCTURE, "synth_version": synth_version()}
    if not fresh and folder.is_dir() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("params") == params:
            log(f"reusing extract {folder} (generated {meta.get('generated_at')})")
            return folder, meta, True
    if folder.exists():
        shutil.rmtree(folder)
    meta_path.unlink(missing_ok=True)
    log(f"generating the South East region as at {as_of} (seed {seed}) -> {folder}")
    t0 = time.perf_counter()
    proc = run_parity(["synth", "--out", str(folder), "--scale", "region", "--format", "parquet",
                       "--as-of", as_of.isoformat(), "--seed", str(seed), "--structure", STRUCTURE], base_env())
    meta = {"params": params, "seconds": time.perf_counter() - t0, "summary": proc.stdout.strip(),
            "generated_at": datetime.now().astimezone().isoformat(timespec="seconds")}
    meta_path.write_text(json.dumps(meta, indent=1))
    log(f"  {meta['summary']}")
    return folder, meta, False


def load_database(folder: Path, db_path: Path) -> dict[str, Any]:
    """``parity load`` into a new DuckDB file; returns its wall time and the precompute summary."""
    for p in (db_path, db_path.with_name(db_path.name + ".wal")):
        p.unlink(missing_ok=True)
    log(f"parity load {folder} -> {db_path} (validates, loads, then precomputes the results)")
    t0 = time.perf_counter()
    proc = run_parity(["load", str(folder), "--database", str(db_path)], base_env())
    seconds = time.perf_counter() - t0
    refresh = next((line.strip() for line in proc.stderr.splitlines() if line.startswith("precomputed")), "")
    match = re.search(r" in ([0-9.]+) s ", refresh)
    log(f"  {proc.stdout.strip()}")
    log(f"  {refresh}  (load + precompute: {seconds:.1f} s)")
    return {"seconds": seconds, "precompute_seconds": float(match.group(1)) if match else None,
            "refresh_summary": refresh, "load_summary": proc.stdout.strip(), "db_bytes": dir_size(db_path)}


@dataclass
class Orgs:
    """Organisation codes the mix uses (2022-23 structure), chosen with a seeded RNG."""

    practice: str                     # the busiest practice (the practice user's)
    pcn: str
    sub_icb: str
    icb: str                          # the practice's ICB (the ICB user's)
    region: str
    icb_practices: list[str]          # other practices, sub-ICBs and PCNs of that ICB, for variety
    icb_sub_icbs: list[str]
    icb_pcns: list[str]
    register: int = 0                 # patients currently registered at the busiest practice
    counts: dict[str, int] = field(default_factory=dict)


def pick_orgs(db_path: Path, rng: random.Random, sample: int = 5) -> Orgs:
    """Query the loaded database (read-only; closed before the server starts) for the codes the mix uses."""
    import duckdb

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        busiest = con.execute(
            "SELECT r.practice_code, p.pcn_code, p.sub_icb_code, p.icb_code, p.region_code, COUNT(*) AS n "
            "FROM registrations r JOIN practices p ON p.practice_code = r.practice_code AND p.structure = ? "
            "WHERE r.end_date IS NULL AND p.pcn_code IS NOT NULL "
            "GROUP BY ALL ORDER BY n DESC, r.practice_code LIMIT 1", [STRUCTURE]).fetchone()
        if busiest is None:
            raise RuntimeError("no registered patients at known practices in the loaded data")
        practice, pcn, sub_icb, icb, region, n = busiest
        in_icb = con.execute(
            "SELECT DISTINCT p.practice_code, p.pcn_code, p.sub_icb_code FROM registrations r "
            "JOIN practices p ON p.practice_code = r.practice_code AND p.structure = ? "
            "WHERE r.end_date IS NULL AND p.icb_code = ? ORDER BY 1", [STRUCTURE, icb]).fetchall()
        counts = {t: int(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])  # noqa: S608 - fixed names
                  for t in ("patients", "registrations", "events", "medications")}
    finally:
        con.close()

    def some(values: set[str], keep: str) -> list[str]:
        chosen = rng.sample(sorted(values - {keep}), min(sample - 1, len(values - {keep})))
        return [keep, *chosen]

    return Orgs(practice, pcn, sub_icb, icb, region,
                icb_practices=some({r[0] for r in in_icb}, practice),
                icb_pcns=some({r[1] for r in in_icb if r[1]}, pcn),
                icb_sub_icbs=some({r[2] for r in in_icb}, sub_icb), register=int(n), counts=counts)


def create_users(db_path: Path, orgs: Orgs) -> dict[str, str]:
    """Add the three users (``parity users add``) and issue a token each; returns role -> token."""
    env = {**base_env(), "PARITY_PASSWORD": PASSWORD}
    org_of = {"practice": orgs.practice, "icb": orgs.icb, "programme": None}
    tokens = {}
    for role, username in USERS.items():
        args = ["users", "add", "--username", username, "--role", role, "--database", str(db_path)]
        if org_of[role]:
            args += ["--org", org_of[role]]
        run_parity(args, env)
        out = run_parity(["users", "token", username, "--label", "web-load benchmark", "--database", str(db_path)],
                         env)
        tokens[role] = out.stdout.strip().splitlines()[0]
    log(f"users: {USERS['practice']} ({orgs.practice}), {USERS['icb']} ({orgs.icb}), {USERS['programme']}")
    return tokens


# -- 3. no-cache baseline --------------------------------------------------------------------------

def engine_baseline(db_path: Path, as_of: date, repeats: int) -> dict[str, Any]:
    """What each request would cost without the precomputed results: the engine, a new one per run.

    * ``aggregate_all``: one reporting date, every level (an aggregate page or the measures API);
    * ``patient_status``: every patient's status on the date (a worklist);
    * ``trend_all``: the organisation page's dates (8 quarter ends and 12 month ends), every level.
    """
    from parity.db import open_database
    from parity.engine.ibis_engine import IbisEngine
    from parity.reports.results import trend_dates
    from parity.rules import load_measure

    measure = load_measure("phsmi")
    quarters, months = trend_dates(as_of)
    page_dates = sorted({*quarters, *months})
    out: dict[str, Any] = {"page_dates": len(page_dates)}
    db = open_database(str(db_path), create=False)
    try:
        def timed(name: str, fn: Callable[[IbisEngine], Any], runs: int) -> None:
            times = []
            for _ in range(max(1, runs)):
                engine = IbisEngine(db)
                t0 = time.perf_counter()
                fn(engine)
                times.append(time.perf_counter() - t0)
                engine.clear_cache()
            out[name] = times
            log(f"  no cache: {name} {', '.join(f'{t:.2f}' for t in times)} s")

        log("no-cache baseline: the engine on a new IbisEngine per run (what a request would cost uncached)")
        timed("aggregate_all", lambda e: e.aggregate_all(measure, as_of, STRUCTURE), repeats)
        timed("patient_status", lambda e: e.patient_status(measure, as_of), repeats)
        timed("trend_all", lambda e: e.trend_all(measure, page_dates, STRUCTURE), 1)
    finally:
        db.close()
    return out


# -- 4. the server ---------------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(db_path: Path | str, log_path: Path, timeout: float = 120.0, *, workers: int = 1,
           env_extra: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``parity serve`` (``--workers``; a DuckDB file or a PostgreSQL URL) on a free port; yields (base URL,
    process) once ``/healthz`` answers 200."""
    port = free_port()
    env = {**base_env(), "PARITY_SECRET_KEY": secrets.token_urlsafe(48), **(env_extra or {})}
    with log_path.open("wb") as sink:
        proc = subprocess.Popen([parity_bin(), "serve", "--database", str(db_path), "--port", str(port),
                                 "--workers", str(workers)],
                                env=env, stdout=sink, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"parity serve exited ({proc.returncode}); see {log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"parity serve did not answer /healthz in {timeout:.0f} s; see {log_path}")
                time.sleep(0.2)
            log(f"server up: {base} (pid {proc.pid})")
            yield base, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class ProcessWatcher:
    """Samples a process's RSS (with its children) every ``interval`` s in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="server-rss", daemon=True)

    def sample(self) -> int:
        """Current RSS in bytes (0 once the process is gone); updates the peak."""
        try:
            rss = self.proc.memory_info().rss + sum(c.memory_info().rss for c in self.proc.children(recursive=True))
        except psutil.Error:
            return 0
        self.peak = max(self.peak, rss)
        return rss

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the process (and its worker processes) have used so far."""
        total = 0.0
        for p in (self.proc, *self._children()):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def _children(self) -> list[psutil.Process]:
        try:
            return self.proc.children(recursive=True)
        except psutil.Error:
            return []

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ProcessWatcher:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- sessions, URLs, requests ----------------------------------------------------------------------

def login(base: str, username: str) -> str:
    """Sign in through the form (GET /login for the CSRF token, then POST); returns the session cookie."""
    with httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        if page.status_code != 200 or not match:
            raise RuntimeError(f"GET /login: {page.status_code}, no csrf_token field")
        resp = client.post("/login", data={"username": username, "password": PASSWORD,
                                           "csrf_token": match.group(1), "next": "/"})
        if resp.status_code != 303:
            raise RuntimeError(f"POST /login as {username}: {resp.status_code}")
        cookie = client.cookies.get("parity_session")
    if not cookie:
        raise RuntimeError(f"no session cookie after signing in as {username}")
    return cookie


@dataclass(frozen=True)
class Target:
    """One URL and who asks for it: ``identity`` is ``session:<role>`` (page) or ``token:<role>`` (API)."""

    type: str
    identity: str
    path: str


def build_targets(orgs: Orgs, as_of: date) -> dict[str, list[Target]]:
    """The URLs of every type except patient pages (those come from a worklist: ``patient_targets``)."""
    o = orgs
    t: dict[str, list[Target]] = {key: [] for key in TYPES}

    def add(key: str, identity: str, path: str) -> None:
        t[key].append(Target(key, identity, path))

    add("page_region", "session:programme", f"/orgs/region/{o.region}")
    add("page_icb", "session:icb", f"/orgs/icb/{o.icb}")
    add("page_icb", "session:programme", f"/orgs/icb/{o.icb}")
    for code in o.icb_sub_icbs:
        add("page_sub_icb", "session:icb", f"/orgs/sub_icb/{code}")
    for code in o.icb_pcns:
        add("page_pcn", "session:icb", f"/orgs/pcn/{code}")
    add("page_practice", "session:practice", f"/orgs/practice/{o.practice}")
    for code in o.icb_practices:
        add("page_practice", "session:icb", f"/orgs/practice/{code}")
    for view in ("variation", "checks"):
        add(f"page_{view}", "session:programme", f"/orgs/region/{o.region}/{view}")
        add(f"page_{view}", "session:icb", f"/orgs/icb/{o.icb}/{view}")
        add(f"page_{view}", "session:icb", f"/orgs/sub_icb/{o.sub_icb}/{view}")
        add(f"page_{view}", "session:practice", f"/orgs/pcn/{o.pcn}/{view}")
    add("page_worklist", "session:practice", f"/practices/{o.practice}/worklist")
    add("page_worklist", "session:practice", f"/practices/{o.practice}/worklist?page=2")
    for query in ("category=near_miss", "missing=bmi", "due_status=overdue&sort=age", "declined=true"):
        add("page_worklist_filtered", "session:practice", f"/practices/{o.practice}/worklist?{query}")
    add("api_measures_icb", "token:programme", "/api/v1/measures?level=icb")
    add("api_measures_icb", "token:icb", f"/api/v1/measures?level=icb&as_of={as_of.isoformat()}")
    for code in o.icb_pcns:
        add("api_measures_practice", "token:icb", f"/api/v1/measures?level=practice&parent={code}")
    add("api_practice_patients", "token:practice", f"/api/v1/practices/{o.practice}/patients")
    for code in o.icb_practices[1:3]:
        add("api_practice_patients", "token:icb", f"/api/v1/practices/{code}/patients?limit=200")
    add("api_trend", "token:icb", f"/api/v1/organisations/icb/{o.icb}/trend")
    add("api_trend", "token:programme", f"/api/v1/organisations/icb/{o.icb}/trend?interval=month")
    return t


def patient_targets(worklist_json: dict[str, Any], rng: random.Random, n: int) -> list[Target]:
    """Patient pages for ``n`` patients drawn (seeded) from the practice user's worklist."""
    numbers = sorted(p["nhs_number"] for p in worklist_json.get("patients", []))
    if not numbers:
        raise RuntimeError("the practice worklist is empty: no patients for patient pages")
    return [Target("page_patient", "session:practice", f"/patients/{nhs}")
            for nhs in rng.sample(numbers, min(n, len(numbers)))]


_SSL_CONTEXT: list[ssl.SSLContext] = []


def ssl_context() -> ssl.SSLContext:
    """One SSL context for every client: httpx builds one per client otherwise (~30 ms of CPU each),
    although every request here is plain HTTP to 127.0.0.1."""
    if not _SSL_CONTEXT:
        _SSL_CONTEXT.append(ssl.create_default_context())
    return _SSL_CONTEXT[0]


class Identities:
    """Per-thread keep-alive clients, one per identity (a signed-in session or an API token)."""

    def __init__(self, base: str, cookies: dict[str, str], tokens: dict[str, str]) -> None:
        self.base = base
        self.cookies = cookies
        self.tokens = tokens
        self.clients: dict[str, httpx.Client] = {}

    def client(self, identity: str) -> httpx.Client:
        """The client for ``identity``, made on first use."""
        if identity not in self.clients:
            how, role = identity.split(":", 1)
            if how == "session":
                c = httpx.Client(base_url=self.base, timeout=60, verify=ssl_context(),
                                 cookies={"parity_session": self.cookies[role]})
            else:
                c = httpx.Client(base_url=self.base, timeout=60, verify=ssl_context(),
                                 headers={"Authorization": f"Bearer {self.tokens[role]}"})
            self.clients[identity] = c
        return self.clients[identity]

    def close(self) -> None:
        """Close every client (and its connections)."""
        for c in self.clients.values():
            c.close()


@dataclass
class Sample:
    """One request: its type, when it started (s after the phase began), latency (ms), status, bytes."""

    type: str
    start: float
    ms: float
    status: int
    size: int
    path: str = ""


def fetch(ids: Identities, target: Target, t_zero: float) -> tuple[Sample, httpx.Response | None]:
    """Send one GET and time it until the whole body is read; status 0 means a transport error."""
    t0 = time.perf_counter()
    try:
        resp = ids.client(target.identity).get(target.path)
        status, size = resp.status_code, len(resp.content)
    except httpx.HTTPError:
        resp, status, size = None, 0, 0
    ms = (time.perf_counter() - t0) * 1000
    return Sample(target.type, t0 - t_zero, ms, status, size, target.path), resp


# -- 5. warm-up, 6. load -------------------------------------------------------------------------------

def warm_up(ids: Identities, targets: dict[str, list[Target]], rng: random.Random,
            patients: int) -> list[Sample]:
    """Every URL once, in order, one at a time; patient pages last (drawn from the practice worklist)."""
    t_zero = time.perf_counter()
    samples: list[Sample] = []
    order = [t.key for t in MIX if t.key != "page_patient"]
    worklist: dict[str, Any] = {}
    for key in order:
        for target in targets[key]:
            sample, resp = fetch(ids, target, t_zero)
            samples.append(sample)
            # A page whose figures are being worked out says so (parity.web.computing): ask again, as the
            # page's script does, until they are there, so the load phase measures the pages themselves.
            for _ in range(600):
                if resp is None or resp.status_code != 200 or "data-parity-computing" not in resp.text:
                    break
                time.sleep(0.5)
                resp = fetch(ids, target, t_zero)[1]
            if key == "api_practice_patients" and target.identity == "token:practice" and resp is not None \
                    and resp.status_code == 200:
                worklist = resp.json()
    targets["page_patient"] = patient_targets(worklist, rng, patients)
    for target in targets["page_patient"]:
        samples.append(fetch(ids, target, t_zero)[0])
    return samples


def solo_passes(ids: Identities, targets: dict[str, list[Target]], passes: int) -> list[Sample]:
    """Every URL ``passes`` more times, one request at a time: each type's warm, uncontended latency
    (roughly the server's time per request, which 20 clients then queue for)."""
    t_zero = time.perf_counter()
    return [fetch(ids, target, t_zero)[0] for _ in range(passes) for t in MIX for target in targets[t.key]]


def load_phase(base: str, cookies: dict[str, str], tokens: dict[str, str], targets: dict[str, list[Target]],
               clients: int, seconds: float, seed: int, on_start: Callable[[], None],
               on_end: Callable[[], None]) -> tuple[list[Sample], float]:
    """``clients`` threads in a closed loop for ``seconds``; returns the samples and the phase's wall time.
    ``on_start`` runs when every client is connected and ready, ``on_end`` when the last one stops."""
    keys = [t.key for t in MIX if targets[t.key]]
    weights = [TYPES[k].weight for k in keys]
    results: list[list[Sample]] = [[] for _ in range(clients)]
    start: dict[str, float] = {}

    def release() -> None:  # runs once, when every client is connected and waiting
        on_start()
        start["t"] = time.perf_counter()

    ready = threading.Barrier(clients + 1, action=release)
    failures: list[BaseException] = []

    def worker(i: int) -> None:
        rng = random.Random(seed * 1_000 + i)
        ids = Identities(base, cookies, tokens)
        try:
            for identity in {t.identity for ts in targets.values() for t in ts}:
                ids.client(identity).get("/healthz")  # open the keep-alive connections before timing
            ready.wait()
            t_zero, deadline = start["t"], start["t"] + seconds
            out = results[i]
            while time.perf_counter() < deadline:
                key = rng.choices(keys, weights)[0]
                out.append(fetch(ids, rng.choice(targets[key]), t_zero)[0])
        except BaseException as exc:  # noqa: BLE001 - reported after the join
            failures.append(exc)
            ready.abort()
        finally:
            ids.close()

    threads = [threading.Thread(target=worker, args=(i,), name=f"client-{i}") for i in range(clients)]
    for th in threads:
        th.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a client failed: reported below
        ready.wait()
    for th in threads:
        th.join()
    on_end()
    if failures:
        raise RuntimeError(f"a client thread failed: {failures[0]!r}") from failures[0]
    samples = [s for r in results for s in r]
    wall = max((s.start + s.ms / 1000 for s in samples), default=seconds)
    return samples, wall


# -- 6b. the targets on both backends (issue 16, target 3) -----------------------------------------------

def postgres_url_for(base: str, schema: str) -> str:
    """``base`` with ``search_path`` set to ``schema`` (as the tests do)."""
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def postgres_database(base: str, folder: Path, orgs: Orgs, workdir: Path, reuse: bool) -> tuple[str, dict[str, str]]:
    """The same extract loaded into a PostgreSQL schema of its own (``bench_web``), with the same users."""
    import psycopg

    schema = "bench_web"
    url = postgres_url_for(base, schema)
    saved = workdir / "identities-postgres.json"
    with psycopg.connect(base, autocommit=True) as con:
        exists = con.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                             [schema]).fetchone() is not None
        if reuse and exists and saved.exists():
            log(f"reusing PostgreSQL schema {schema} (--reuse-db)")
            return url, json.loads(saved.read_text())["tokens"]
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        con.execute(f'CREATE SCHEMA "{schema}"')
    log(f"parity load {folder} -> PostgreSQL schema {schema}")
    t0 = time.perf_counter()
    run_parity(["load", str(folder), "--database", url], base_env())
    log(f"  loaded in {time.perf_counter() - t0:.1f} s")
    tokens = create_users(url, orgs)  # type: ignore[arg-type]
    saved.write_text(json.dumps({"tokens": tokens}))
    return url, tokens


def short_run(label: str, db: Path | str, tokens: dict[str, str], orgs: Orgs, args: argparse.Namespace,
              *, workers: int = 1, env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    """One server configuration: warm-up pass over every URL, then the closed-loop load phase."""
    targets = build_targets(orgs, args.as_of)
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    log(f"target run: {label}")
    with server(db, args.workdir / f"server-{slug}.log", workers=workers, env_extra=env_extra) as (base, proc), \
            ProcessWatcher(proc.pid) as watcher:
        cookies = {role: login(base, username) for role, username in USERS.items()}
        ids = Identities(base, cookies, tokens)
        try:
            warm = warm_up(ids, targets, random.Random(args.seed), args.patients)
        finally:
            ids.close()
        cpu0 = watcher.cpu_seconds()
        samples, wall = load_phase(base, cookies, tokens, targets, args.clients, args.seconds, args.seed,
                                   lambda: None, lambda: None)
        cpu = watcher.cpu_seconds() - cpu0
    groups = {"page": stats([s for s in samples if TYPES[s.type].kind == "page"], wall),
              "api": stats([s for s in samples if TYPES[s.type].kind == "api"], wall), "all": stats(samples, wall)}
    errors = sum(1 for s in (*warm, *samples) if s.status != 200)
    log(f"  {label}: {groups['all']['count']} requests, median {groups['all']['median']:.0f} ms, "
        f"p95 {groups['all']['p95']:.0f} ms, {errors} errors")
    return {"label": label, "groups": groups, "errors": errors, "wall": wall, "workers": workers,
            "cpu_per_request_ms": 1000 * cpu / max(1, groups["all"]["count"])}


def render_targets(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The target lines: p95 of all requests with 20 clients, against the baseline measured in the same run."""
    by = {r["label"]: r for r in runs}
    lines = ["### Targets (issue 16, target 3): 20 closed-loop clients, p95 < 150 ms", "",
             f"Each configuration in this run: its own `parity serve`, a warm-up pass over every URL, then "
             f"{args.clients} clients for {args.seconds:.0f} s with the mix above. The **baseline** of the embedded "
             "default is the same server with the page cache off (`PARITY_PAGE_CACHE=0`, every page rendered "
             "per request); of PostgreSQL, one server process (one connection) against several (`parity serve "
             "--workers`, a connection each).", "",
             "| backend and server | requests | median | p95 | server CPU a request | baseline p95 (same run) | "
             "target | result |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        g = r["groups"]["all"]
        base = by.get(r.get("baseline_of") or "")
        base_text = f"{fmt_ms(base['groups']['all']['p95'])} ({base['label']})" if base else "—"
        if r.get("baseline_of") is None and any(x.get("baseline_of") == r["label"] for x in runs):
            result = "baseline"
        else:
            result = verdict(g.get("p95"))
        if r["errors"]:
            result += f" ({r['errors']} non-200)"
        lines.append(f"| {r['label']} | {g['count']:,} | {fmt_ms(g.get('median'))} | {fmt_ms(g.get('p95'))} | "
                     f"{r['cpu_per_request_ms']:.1f} ms | {base_text} | < 150 ms | {result} |")
    return "\n".join(lines)


# -- 7. report -------------------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def stats(samples: Sequence[Sample], wall: float) -> dict[str, Any]:
    """Count, errors, median, p95, p99, max (ms) and requests/s of a group of samples."""
    ms = [s.ms for s in samples]
    if not ms:
        return {"count": 0, "errors": 0}
    return {"count": len(ms), "errors": sum(s.status != 200 for s in samples), "median": statistics.median(ms),
            "p95": percentile(ms, 95), "p99": percentile(ms, 99), "max": max(ms), "rps": len(ms) / wall,
            "bytes_median": statistics.median(s.size for s in samples)}


def fmt_ms(x: float | None) -> str:
    """Milliseconds for the report (one decimal under 10 ms)."""
    if x is None or x != x:
        return "–"
    return f"{x:.1f} ms" if x < 10 else f"{x:.0f} ms"


def fmt_s(x: float | None) -> str:
    """Seconds for the report."""
    return "–" if x is None else f"{x:.2f} s"


def fmt_ratio(baseline: float | None, figure: float | None) -> str:
    """``baseline ÷ figure`` as ``N×`` (one decimal below 10)."""
    if not baseline or not figure:
        return "–"
    x = baseline / figure
    return f"{x:.1f}×" if x < 10 else f"{x:,.0f}×"


def verdict(p95: float | None) -> str:
    """PASS or **FAIL** against the 150 ms target, with the margin."""
    if p95 is None or p95 != p95:
        return "no data"
    if p95 < TARGET_P95_MS:
        return f"PASS ({p95 / TARGET_P95_MS:.0%} of target)"
    return f"**MISS**: {p95 - TARGET_P95_MS:.0f} ms over ({p95 / TARGET_P95_MS:.1f}× the target)"


def render(r: dict[str, Any]) -> str:
    """The Markdown section (between the web-load markers)."""
    lines: list[str] = []
    add = lines.append
    a, m, d = r["args"], r["machine"], r["data"]
    groups, per_type, cold = r["groups"], r["per_type"], r["cold"]
    add(START_MARK)
    add("## Web latency")
    add("")
    add(f"Generated by `python benchmarks/web_load.py{' ' + a['argv'] if a['argv'] else ''}` on {m['date']}, "
        f"git commit `{m['git_commit'][:12]}`{' (with uncommitted changes)' if m.get('git_dirty') else ''}. "
        f"South East region (synthetic, seed {a['seed']}, structure {STRUCTURE}), reporting date {a['as_of']} "
        f"(`PARITY_TODAY={TODAY}`), served by `parity serve` (uvicorn, one process, DuckDB file). "
        f"**{a['clients']} concurrent clients, closed loop** (each sends its next request as soon as the last "
        f"one is answered, no think time) for {a['seconds']:.0f} s after a warm-up pass over every URL. "
        "Latency is measured in the client, from sending the request to reading the whole body. "
        "See `benchmarks/README.md`, \"Web latency\".")
    add("")
    add("| what | requests | median | p95 | target (p95) | result |")
    add("|---|---|---|---|---|---|")
    for key, label in (("page", "pages (HTML)"), ("api", "API (`/api/v1`, JSON)"), ("all", "all requests")):
        g = groups[key]
        add(f"| {label} | {g['count']:,} | {fmt_ms(g.get('median'))} | {fmt_ms(g.get('p95'))} | "
            f"< {TARGET_P95_MS:.0f} ms | {verdict(g.get('p95'))} |")
    add("")
    errors = groups["all"]["errors"]
    add(f"Errors: **{errors}** non-200 responses (or transport errors) of {groups['all']['count']:,} requests "
        f"in the load phase, {r['warmup_errors']} in the warm-up"
        f"{'' if errors + r['warmup_errors'] == 0 else ': **the run failed**'}. "
        f"Throughput {groups['all']['rps']:.0f} requests/s over {r['wall']:.1f} s.")
    add("")
    add("### Per URL type (load phase)")
    add("")
    add(f"\"1 client\" is the median of {r['solo_passes']} warm passes over every URL of the type, one request at "
        "a time, before the load phase: roughly the server's time per request, which concurrent clients queue for.")
    add("")
    add("| URL type | share | example | 1 client | requests | median | p95 | p99 | max | req/s | body |")
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for t in MIX:
        s = per_type.get(t.key)
        if not s or not s["count"]:
            continue
        add(f"| {t.label} | {t.weight}% | `{r['examples'][t.key]}` | {fmt_ms(r['solo'].get(t.key))} | "
            f"{s['count']:,} | {fmt_ms(s['median'])} | {fmt_ms(s['p95'])} | {fmt_ms(s['p99'])} | {fmt_ms(s['max'])} | "
            f"{s['rps']:.1f} | {s['bytes_median'] / 1000:.0f} kB |")
    for key, label in (("page", "**all pages**"), ("api", "**all API**"), ("all", "**all**")):
        g = groups[key]
        add(f"| {label} | | | | {g['count']:,} | {fmt_ms(g['median'])} | {fmt_ms(g['p95'])} | "
            f"{fmt_ms(g['p99'])} | {fmt_ms(g['max'])} | {g['rps']:.1f} | |")
    add("")
    srv = r["server"]
    per_request = 1000 * srv["cpu_load"] / max(1, groups["all"]["count"])
    add(f"Server CPU per request in the load phase: **{per_request:.0f} ms** ({srv['cpu_load']:.0f} s of CPU for "
        f"{groups['all']['count']:,} requests, {srv['cpu_load'] / r['wall']:.2f} cores on average). One uvicorn "
        "process runs Python on one core at a time, so with a closed loop the median latency is about "
        f"clients × CPU per request: {a['clients']} × {per_request:.0f} ms = {a['clients'] * per_request:.0f} ms "
        f"(measured {fmt_ms(groups['all']['median'])}).")
    add("")
    add("### Against the baseline (same run)")
    add("")
    b = r["baseline"]
    add("Without the precomputed results each request would have to ask the engine. The no-cache figures are the "
        "engine in one process on the same DuckDB file, a new `IbisEngine` per run (median of "
        f"{len(b['aggregate_all'])}), before the server starts. \"First request\" is the cold server: the first "
        "request of that type in the warm-up (it reads the precomputed results from the `result_cache` table and "
        "builds the in-memory indexes; the first request of all also pays for everything shared). Warm figures are "
        "from the load phase, with 20 clients.")
    add("")
    add(f"| request | no cache (engine) | first request, cold server | 1 client | {a['clients']} clients: median | "
        f"p95 | no cache ÷ 1 client | no cache ÷ p95 with {a['clients']} clients |")
    add("|---|---|---|---|---|---|---|---|")
    rows = [
        ("ICB page (an organisation page: 8 quarterly and 12 monthly trend points)",
         "trend_all", f"`trend_all`, {b['page_dates']} dates, all levels", "page_icb"),
        ("region overview page", "trend_all", "`trend_all`, as above", "page_region"),
        ("variation page", "aggregate_all", "`aggregate_all`, one date", "page_variation"),
        ("API measures, level=icb", "aggregate_all", "`aggregate_all`, one date", "api_measures_icb"),
        ("API measures, practices of a PCN", "aggregate_all", "`aggregate_all`, one date", "api_measures_practice"),
        ("practice worklist page", "patient_status", "`patient_status`, one date", "page_worklist"),
        ("API practice worklist", "patient_status", "`patient_status`, one date", "api_practice_patients"),
    ]
    for label, key, how, tkey in rows:
        base = statistics.median(b[key]) * 1000
        s = per_type.get(tkey, {})
        solo = r["solo"].get(tkey)
        add(f"| {label} | {fmt_s(base / 1000)} ({how}) | {fmt_ms(cold.get(tkey))} | {fmt_ms(solo)} | "
            f"{fmt_ms(s.get('median'))} | {fmt_ms(s.get('p95'))} | {fmt_ratio(base, solo)} | "
            f"{fmt_ratio(base, s.get('p95'))} |")
    add("")
    add("First request of each URL type in the warm-up (in the order sent): "
        + ", ".join(f"{TYPES[k].label} {fmt_ms(v)}" for k, v in cold.items()) + ".")
    add("")
    add("### Data, cache refresh and server")
    add("")
    counts = d["counts"]
    add(f"- Data: {counts['patients']:,} patients, {counts['registrations']:,} registrations, "
        f"{counts['events']:,} events, {counts['medications']:,} medications "
        f"({d['extract_summary'].split('; wrote')[0]}; extract "
        f"{'reused, generated' if d['extract_reused'] else 'generated'} in {fmt_s(d['extract_seconds'])}).")
    add(f"- `parity load`: {fmt_s(d['load']['seconds'])} in all (validate, load, then precompute); "
        f"precompute (`ResultStore.refresh`): **{fmt_s(d['load']['precompute_seconds'])}** — "
        f"\"{d['load']['refresh_summary']}\". DuckDB file {d['load']['db_bytes'] / 1e9:.2f} GB.")
    add("- Cache refresh: `parity load` (and `parity refresh`) calls `ResultStore.refresh`, which recomputes the "
        "default reporting dates (latest quarter end, the 8 quarter ends and 12 month ends before it, for `phsmi` "
        "and `qof-mh021`, plus patient status on the latest date) into the `result_cache` table under the new "
        "data version (a fingerprint of the `loads` table) and deletes older versions. A server re-reads the data "
        "version at most every 2 s and drops its in-memory copies when it changes (on PostgreSQL a load by another "
        "process is picked up without a restart; a DuckDB file takes one writer, so there the server is stopped "
        "for the load and starts warm from `result_cache`); other dates are computed on first request and stored.")
    o = r["orgs"]
    add(f"- Organisations: region {o['region']}, ICB {o['icb']}, busiest practice {o['practice']} "
        f"({o['register']:,} registered) in PCN {o['pcn']}; the mix also uses {len(o['icb_practices']) - 1} other "
        f"practices, {len(o['icb_pcns']) - 1} PCNs and {len(o['icb_sub_icbs']) - 1} sub-ICB(s) of that ICB and "
        f"{r['patient_pages']} patients of the busiest practice's worklist.")
    add(f"- Server peak RSS (psutil, sampled every 0.1 s, whole run): **{srv['peak_rss'] / 1e9:.2f} GB** "
        f"(after warm-up {srv['rss_after_warmup'] / 1e9:.2f} GB). Server CPU in the load phase "
        f"{srv['cpu_load']:.0f} s of {r['wall']:.0f} s wall ({srv['cpu_load'] / r['wall']:.2f} cores); "
        f"the load generator (this process, {a['clients']} threads) {r['client_cpu']:.1f} s "
        f"({r['client_cpu'] / r['wall']:.2f} cores). Both share the machine's {m['cpu_count']} cores, so the "
        "client's own CPU time is part of the latencies above.")
    la0, la1 = m.get("load_average"), m.get("load_average_end")
    la = (f"load average {' / '.join(f'{x:.2f}' for x in la0)} at start, "
          f"{' / '.join(f'{x:.2f}' for x in la1)} at end (1/5/15 min)") if la0 and la1 else ""
    busy = " (**the machine was busy**: rerun on an idle machine for figures to quote)" \
        if r["other_cpu_share"] > 0.1 else ""
    add(f"- Machine: {m['cpu_count']} cores ({m.get('cpu_model') or 'unknown CPU'}), "
        f"{m['ram_bytes'] / 1e9:.1f} GB RAM, Python {m['python']}, DuckDB {m['duckdb']}; {la}; other processes "
        f"used {r['other_cpu_share']:.0%} of all cores' CPU time during the load phase"
        f"{busy}.")
    add(END_MARK)
    return "\n".join(lines)


def write_section(path: Path, section: str, start: str = START_MARK, end: str = END_MARK) -> None:
    """Replace the section of ``path`` between the ``start`` and ``end`` markers, or append it; keep the rest."""
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section + "\n"
    path.write_text(text)


# -- main ------------------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description="Web latency under load (writes a section of benchmarks/RESULTS.md).")
    p.add_argument("--seconds", type=float, default=60.0, help="length of the load phase (default 60)")
    p.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    p.add_argument("--quick", action="store_true", help="a 10 s smoke run (overrides --seconds)")
    p.add_argument("--seed", type=int, default=42, help="synthetic data and URL mix seed")
    p.add_argument("--as-of", type=date.fromisoformat, default=DEFAULT_AS_OF,
                   help=f"reporting date of the extract (default {DEFAULT_AS_OF}; today is pinned to {TODAY})")
    p.add_argument("--workdir", type=Path, default=HERE / "work" / "se-web")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="Markdown file to update")
    p.add_argument("--fresh", action="store_true", help="regenerate the extract even if a matching one exists")
    p.add_argument("--reuse-db", action="store_true",
                   help="skip the load if the database exists (for investigation; the precompute time is then unknown)")
    p.add_argument("--baseline-repeats", type=int, default=3, help="runs of each no-cache engine step (default 3)")
    p.add_argument("--solo-passes", type=int, default=3,
                   help="one-client passes over every URL after the warm-up (default 3)")
    p.add_argument("--strict", action="store_true", help="exit 3 when a p95 target is missed")
    p.add_argument("--patients", type=int, default=30, help="patients of the practice worklist used for patient pages")
    p.add_argument("--backends", default="duckdb,postgres",
                   help="target runs: duckdb (page cache off as the baseline, then on), postgres (one worker as "
                        "the baseline, then --workers); comma-separated, or 'none'")
    p.add_argument("--workers", type=int, default=2, help="server processes on PostgreSQL (default 2)")
    p.add_argument("--postgres-url", default=os.environ.get("PARITY_BENCH_POSTGRES_URL")
                   or os.environ.get("PARITY_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test",
                   help="PostgreSQL server for the postgres runs (a schema bench_web is made in it)")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds = 10.0
    if args.clients < 1 or args.seconds <= 0:
        p.error("--clients and --seconds must be positive")
    args.workdir = args.workdir.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (see the module docstring)."""
    args = parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    report: dict[str, Any] = {
        "args": {"seconds": args.seconds, "clients": args.clients, "seed": args.seed, "as_of": str(args.as_of),
                 "argv": " ".join(sys.argv[1:] if argv is None else argv)},
        "machine": machine_facts(),
    }
    db_path = args.workdir / "parity.duckdb"

    # 1-2. Data and users.
    folder, meta, reused = prepare_extract(args.workdir, args.seed, args.as_of, args.fresh)
    if args.reuse_db and db_path.exists():
        log(f"reusing {db_path} (--reuse-db): no load, users and tokens from the last run")
        saved = json.loads((args.workdir / "identities.json").read_text())
        load, tokens = {"seconds": None, "precompute_seconds": None, "refresh_summary": "(reused database)",
                        "load_summary": "", "db_bytes": dir_size(db_path)}, saved["tokens"]
        orgs = pick_orgs(db_path, rng)
    else:
        load = load_database(folder, db_path)
        orgs = pick_orgs(db_path, rng)
        tokens = create_users(db_path, orgs)
        (args.workdir / "identities.json").write_text(json.dumps({"tokens": tokens}))
    report["data"] = {"counts": orgs.counts, "extract_reused": reused, "extract_summary": meta.get("summary", ""),
                      "extract_seconds": meta.get("seconds"), "load": load}
    report["orgs"] = jsonable(orgs.__dict__)

    # 3. No-cache baseline (in this process; the database is closed again before the server opens it).
    report["baseline"] = engine_baseline(db_path, args.as_of, args.baseline_repeats)

    # 4-6. Server, warm-up, load.
    targets = build_targets(orgs, args.as_of)
    with server(db_path, args.workdir / "server.log") as (base, proc), ProcessWatcher(proc.pid) as watcher:
        cookies = {role: login(base, username) for role, username in USERS.items()}
        ids = Identities(base, cookies, tokens)
        log("warm-up: every URL once, one at a time")
        try:
            warm = warm_up(ids, targets, rng, args.patients)
            log(f"one client: every URL {args.solo_passes} more time(s), one at a time")
            solo = solo_passes(ids, targets, args.solo_passes)
        finally:
            ids.close()
        rss_after_warmup = watcher.sample()
        cold: dict[str, float] = {}
        for s in warm:
            cold.setdefault(s.type, s.ms)
        bad = [s for s in (*warm, *solo) if s.status != 200]
        for s in bad[:10]:
            log(f"  warm-up: {s.status} for {s.path}")
        log(f"  {len(warm)} URLs, {len(bad)} not 200; first request: "
            + ", ".join(f"{k} {v:.0f} ms" for k, v in cold.items()))

        log(f"load: {args.clients} clients, closed loop, {args.seconds:.0f} s")
        snap: dict[str, tuple[tuple[float, float, float], float, float]] = {}

        def snapshot(name: str) -> Callable[[], None]:
            return lambda: snap.__setitem__(name, (cpu_snapshot(), watcher.cpu_seconds(), time.process_time()))

        load_avg_before = os.getloadavg()
        samples, wall = load_phase(base, cookies, tokens, targets, args.clients, args.seconds, args.seed,
                                   snapshot("start"), snapshot("end"))
        (cpu0, srv_cpu0, own_cpu0), (cpu1, srv_cpu1, own_cpu1) = snap["start"], snap["end"]
        watcher.sample()
    report["machine"]["load_average"] = load_avg_before
    report["machine"]["load_average_end"] = os.getloadavg()
    cores = os.cpu_count() or 1
    span, busy = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    ours = (own_cpu1 - own_cpu0) + (srv_cpu1 - srv_cpu0)
    report["other_cpu_share"] = max(0.0, busy - ours) / (span * cores) if span > 0 else 0.0
    report["client_cpu"] = own_cpu1 - own_cpu0
    report["server"] = {"peak_rss": watcher.peak, "rss_after_warmup": rss_after_warmup,
                        "cpu_load": srv_cpu1 - srv_cpu0}
    report["wall"] = wall
    report["cold"] = cold
    report["warmup_errors"] = len(bad)
    report["patient_pages"] = len(targets["page_patient"])
    report["examples"] = {k: (v[0].path if v else "") for k, v in targets.items()}
    report["per_type"] = {t.key: stats([s for s in samples if s.type == t.key], wall) for t in MIX}
    report["solo"] = {t.key: statistics.median(x) for t in MIX if (x := [s.ms for s in solo if s.type == t.key])}
    report["solo_passes"] = args.solo_passes
    report["groups"] = {
        "page": stats([s for s in samples if TYPES[s.type].kind == "page"], wall),
        "api": stats([s for s in samples if TYPES[s.type].kind == "api"], wall),
        "all": stats(samples, wall),
    }
    failed = [s for s in samples if s.status != 200]
    for s in failed[:10]:
        log(f"  load: {s.status} for {s.path}")

    (args.workdir / "web_results.json").write_text(json.dumps(jsonable({
        **report, "warmup": [s.__dict__ for s in warm], "solo_samples": [s.__dict__ for s in solo],
        "samples": [[s.type, round(s.start, 4), round(s.ms, 3), s.status] for s in samples]}), indent=1))
    # 6b. The target runs on both backends, each with its baseline from this run.
    runs: list[dict[str, Any]] = []
    backends = {b.strip() for b in args.backends.split(",") if b.strip() and b.strip() != "none"}
    if "duckdb" in backends:
        runs.append(short_run("DuckDB file, 1 process, page cache off", db_path, tokens, orgs, args,
                              env_extra={"PARITY_PAGE_CACHE": "0"}))
        # The page-cached server is the run above (its full figures are the tables before this one).
        runs.append({"label": "DuckDB file, 1 process", "groups": report["groups"], "errors": len(failed) + len(bad),
                     "wall": wall, "workers": 1, "baseline_of": "DuckDB file, 1 process, page cache off",
                     "cpu_per_request_ms": 1000 * report["server"]["cpu_load"]
                     / max(1, report["groups"]["all"]["count"])})
    if "postgres" in backends:
        pg_url, pg_tokens = postgres_database(args.postgres_url, folder, orgs, args.workdir, args.reuse_db)
        runs.append(short_run("PostgreSQL, 1 process", pg_url, pg_tokens, orgs, args))
        runs.append({**short_run(f"PostgreSQL, {args.workers} processes", pg_url, pg_tokens, orgs, args,
                                 workers=args.workers), "baseline_of": "PostgreSQL, 1 process"})
    report["target_runs"] = runs
    section = render(report)
    if runs:
        section = section.replace(END_MARK, render_targets(runs, args) + "\n" + END_MARK)
    write_section(args.out, section)
    log(f"wrote the web latency section of {args.out} and {args.workdir / 'web_results.json'}")
    print(section)

    if failed or bad:
        return 2
    missed = any(not (report["groups"][k].get("p95", 1e9) < TARGET_P95_MS) for k in ("page", "api", "all"))
    return 3 if (args.strict and missed) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(1)
