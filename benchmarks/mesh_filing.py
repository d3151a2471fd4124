"""Trust-to-GP messaging: what each step costs per check, on DuckDB and PostgreSQL, and through MESH.

Steps, each timed per check (medians of every check in the run):

- trust side: validate the form (``record_from_form``), render the letter (weasyprint), build and check
  the FHIR Bundle, and ``submit_check`` (all three plus storing and queuing);
- practice side: ``parse_bundle`` alone (the **baseline**: what reading a message costs before any
  database work) and ``receive`` (parse, check against the practice record, file, in one transaction),
  on DuckDB and PostgreSQL, then the same messages again (duplicates: nothing filed);
- through NHS Digital's mesh-sandbox (``.venv-mesh``), when installed: send every queued check, poll and
  file them all; messages per second each way.

The practice is a real one (J82155) with a synthetic register (``parity synth --scale practice``).
Writes the section between the ``mesh-filing`` markers of ``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/mesh_filing.py [--checks 200]
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from web_load import write_section  # noqa: E402

from parity.access.schema import utc_now  # noqa: E402
from parity.db import Database, open_database  # noqa: E402
from parity.ingest import load_extract  # noqa: E402
from parity.interop.checks import payload_source, submit_check  # noqa: E402
from parity.interop.fhir import build_bundle, parse_bundle  # noqa: E402
from parity.interop.letters import render_letter_pdf  # noqa: E402
from parity.interop.mesh import inbox, outbox, parse_mesh_config  # noqa: E402
from parity.interop.record import CheckRecord, record_from_form  # noqa: E402
from parity.rules.template import load_template  # noqa: E402
from parity.synth import generate  # noqa: E402

START, END = "<!-- mesh-filing:start -->", "<!-- mesh-filing:end -->"
PRACTICE, TRUST = "J82155", "RX2"
AS_OF, TODAY, CHECK_DAY = date(2026, 9, 30), date(2026, 11, 27), date(2026, 9, 15)
TEMPLATE = load_template()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def forms(db: Database, n: int) -> list[dict[str, str]]:
    rows = db.execute("SELECT p.nhs_number, p.date_of_birth FROM patients p JOIN registrations r ON r.nhs_number = "
                      "p.nhs_number WHERE r.practice_code = ? AND r.start_date <= ? AND (r.end_date IS NULL OR "
                      "r.end_date >= ?) ORDER BY p.nhs_number LIMIT ?", [PRACTICE, CHECK_DAY, CHECK_DAY, n])
    out = []
    for i, (nhs, dob) in enumerate(rows):
        out.append({"nhs_number": str(nhs), "date_of_birth": str(dob)[:10], "practice_code": PRACTICE,
                    "performed_on": CHECK_DAY.isoformat(), "performed_by": "Sam Jones, RMN",
                    "bmi.weight": str(60 + i % 50), "bmi.height": "170", "blood_pressure.systolic": str(110 + i % 50),
                    "blood_pressure.diastolic": "80", "lipids.total_cholesterol": "5.2", "glucose.hba1c": "41",
                    "alcohol.auditc": str(i % 8), "smoking.smoking_status": "8517006", "narrative": "Benchmark."})
    return out


def practice_side(db: Database, bodies: list[bytes]) -> dict[str, float]:
    first, again = [], []
    for i, body in enumerate(bodies):
        first.append(timed(lambda b=body, i=i: inbox.receive(db, PRACTICE, "X26ABC2", f"BENCH{i:06d}", b))[0])
    for i, body in enumerate(bodies):
        again.append(timed(lambda b=body, i=i: inbox.receive(db, PRACTICE, "X26ABC2", f"AGAIN{i:06d}", b))[0])
    filed = db.count("filed_checks")
    assert filed == len(bodies), (filed, len(bodies))  # every check filed once, no duplicate filed
    return {"receive_ms": median_ms(first), "duplicate_ms": median_ms(again), "filed": filed}


def sandbox_round_trip(db: Database, records: list[CheckRecord]) -> dict[str, float] | None:
    uvicorn = HERE.parent / ".venv-mesh" / "bin" / "uvicorn"
    if not uvicorn.exists():
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = secrets.token_hex(8)
    proc = subprocess.Popen([str(uvicorn), "mesh_sandbox.api:app", "--host", "127.0.0.1", "--port", str(port)],
                            env={**os.environ, "AUTH_MODE": "full", "STORE_MODE": "memory", "SHARED_KEY": key},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import requests

        url = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        config = parse_mesh_config({"url": url, "shared_key": key, "directory": {PRACTICE: "X26ABC2"},
                                    "mailboxes": [{"mailbox": "X26ABC1", "ods": TRUST, "password": "password"},
                                                  {"mailbox": "X26ABC2", "ods": PRACTICE, "password": "password"}]},
                                   env={})
        for r in records:
            submit_check(db, r, TEMPLATE, now=utc_now())
        send_s, sent = timed(lambda: outbox.send_due(db, config, payload_source(db)))
        poll_s, polled = timed(lambda: inbox.poll(db, config))
        assert sent.sent == len(records) and polled.filed == len(records), (sent.describe(), polled.describe())
        return {"messages": len(records), "send_per_s": len(records) / send_s, "poll_per_s": len(records) / poll_s}
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checks", type=int, default=200)
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="parity-bench-mesh-"))
    generate(work / "extract", scale="practice", area=PRACTICE, seed=11, as_of=AS_OF, fmt="parquet",
             structure="2022-23")
    dbs: dict[str, Database] = {"DuckDB": open_database(":memory:")}
    pg = os.environ.get("PARITY_TEST_POSTGRES_URL")
    schema = f"bench_{secrets.token_hex(4)}"
    if pg:
        dbs["PostgreSQL"] = open_database(f"{pg}?options=-csearch_path%3D{schema}")
    for db in dbs.values():
        load_extract(db, work / "extract")
    source = dbs["DuckDB"]
    entries = forms(source, args.checks)
    validate, letters, bundles, parses, submits = [], [], [], [], []
    records: list[CheckRecord] = []
    bodies: list[bytes] = []
    for form in entries:
        t, rec = timed(lambda f=form: record_from_form(TEMPLATE, f, trust_code=TRUST, created_by="bench", today=TODAY))
        validate.append(t)
        records.append(rec)
        t, pdf = timed(lambda r=rec: render_letter_pdf(r, TEMPLATE, practice_name=None, trust_name=None,
                                                       generated_at=utc_now()))
        letters.append(t)
        t, bundle = timed(lambda r=rec, p=pdf: build_bundle(r, TEMPLATE, letter_pdf=p))
        bundles.append(t)
        bodies.append(bundle.encode())
        parses.append(timed(lambda b=bundle: parse_bundle(b))[0])
    scratch = open_database(":memory:")
    load_extract(scratch, work / "extract")
    for rec in records[:50]:
        submits.append(timed(lambda r=rec: submit_check(scratch, r, TEMPLATE))[0])
    practice = {name: practice_side(db, bodies) for name, db in dbs.items()}
    trip_db = open_database(":memory:")
    load_extract(trip_db, work / "extract")
    trip = sandbox_round_trip(trip_db, records)
    base = median_ms(parses)
    size_kb = statistics.median(len(b) for b in bodies) / 1024
    lines = [START, "## Trust to GP (MESH filing)", "",
             f"`benchmarks/mesh_filing.py --checks {args.checks}`: {len(records)} checks (nine coded results and a "
             f"letter each; median message {size_kb:.0f} KiB) for patients of practice {PRACTICE}. Medians per check; "
             "the baseline is reading a message (`parse_bundle`: JSON, FHIR models, Parity's checks) in the same run.",
             "", "| step | median per check | vs baseline |", "|---|---|---|",
             f"| validate the form | {median_ms(validate):.2f} ms | — |",
             f"| render the letter (weasyprint) | {median_ms(letters):.0f} ms | — |",
             f"| build and check the Bundle | {median_ms(bundles):.1f} ms | — |",
             f"| `submit_check` (letter, Bundle, store, queue; DuckDB, {len(submits)} checks) | "
             f"{median_ms(submits):.0f} ms | — |",
             f"| **baseline**: `parse_bundle` | {base:.1f} ms | 1.0× |"]
    for name, r in practice.items():
        lines.append(f"| `receive` and file, {name} | {r['receive_ms']:.1f} ms | {r['receive_ms'] / base:.1f}× |")
        lines.append(f"| `receive` a duplicate (nothing filed), {name} | {r['duplicate_ms']:.1f} ms | "
                     f"{r['duplicate_ms'] / base:.1f}× |")
    if trip:
        lines += ["", f"Through mesh-sandbox on this machine ({trip['messages']:.0f} messages, full HMAC "
                      f"authentication): sent {trip['send_per_s']:.0f} messages/s; polled, filed and acknowledged "
                      f"{trip['poll_per_s']:.0f} messages/s (DuckDB)."]
    lines += ["", "The letter dominates the trust side; a bulk upload of 1,000 checks spends most of its time in "
                  "weasyprint. Filing costs a few milliseconds over reading the message.", END]
    section = "\n".join(lines)
    write_section(args.out, section, START, END)
    print(section)
    for db in (*dbs.values(), scratch, trip_db):
        db.close()
    if pg:
        import psycopg

        with psycopg.connect(pg, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
