"""Demo sign-ins for ``parity demo``: one user per role on the synthetic region, with known passwords.

Only for synthetic data: ``parity demo`` is the only caller. Real deployments add users with
``parity users add``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from parity.access import add_user, get_user
from parity.access.scope import CASELOAD_MONTHS
from parity.db import Database
from parity.errors import NotFound
from parity.rules.model import Window

DEMO_PASSWORD = "parity-demo-2026"  # noqa: S105 - printed on purpose, synthetic data only


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    description: str


def create_demo_users(db: Database, as_of: date) -> list[DemoLogin]:
    """Create (once) an admin, a programme lead, and an ICB, PCN, practice and trust user on the
    busiest organisations of the loaded data; return their sign-ins."""
    practice, pcn, icb = _busiest_practice(db)
    trust = _busiest_trust(db, as_of)
    wanted = [
        ("admin", "admin", None, "administrator: users and audit log, aggregates only"),
        ("programme", "programme", None, "regional programme lead: aggregates only"),
        ("icb", "icb", icb, f"ICB {icb}: patients in every practice of the ICB"),
        ("pcn", "pcn", pcn, f"PCN {pcn}: patients in its practices"),
        ("practice", "practice", practice, f"GP practice {practice}: its own patients"),
    ]
    if trust:
        wanted.append(("trust", "trust", trust, f"mental-health trust {trust}: its caseload"))
    logins = []
    for username, role, org, description in wanted:
        try:
            get_user(db, username)
        except NotFound:
            add_user(db, username, role, org, DEMO_PASSWORD)
        logins.append(DemoLogin(username, DEMO_PASSWORD, description))
    return logins


def _busiest_practice(db: Database) -> tuple[str, str, str]:
    """The practice with the most current registrations, with its PCN and ICB codes."""
    rows = db.execute(
        "SELECT r.practice_code, p.pcn_code, p.icb_code, COUNT(*) AS n FROM registrations r "
        "JOIN practices p ON p.practice_code = r.practice_code WHERE r.end_date IS NULL AND p.pcn_code IS NOT NULL "
        "GROUP BY r.practice_code, p.pcn_code, p.icb_code ORDER BY n DESC, r.practice_code LIMIT 1")
    if not rows:
        raise NotFound("no registered patients at known practices; load data first")
    return str(rows[0][0]), str(rows[0][1]), str(rows[0][2])


def _busiest_trust(db: Database, as_of: date) -> str | None:
    """The non-practice recorder with the most patients in the caseload window (a trust)."""
    start = Window(CASELOAD_MONTHS).start(as_of)
    rows = db.execute(
        "SELECT recorded_by, COUNT(DISTINCT nhs_number) AS n FROM events WHERE recorded_by IS NOT NULL "
        "AND date >= ? AND date <= ? AND recorded_by NOT IN (SELECT practice_code FROM practices) "
        "GROUP BY recorded_by ORDER BY n DESC, recorded_by LIMIT 1", [start, as_of])
    return str(rows[0][0]) if rows else None


SANDBOX_URL = "http://127.0.0.1:8700"
SANDBOX_SHARED_KEY = "parity-demo"  # mesh-sandbox only; a real MESH key comes from the environment


def write_sandbox_mesh_config(db: Database, as_of: date, path: Path, url: str = SANDBOX_URL) -> Path | None:
    """Write a MESH file for trying trust-to-GP messaging against NHS Digital's mesh-sandbox.

    The demo trust gets the sandbox mailbox ``X26ABC1``; the demo practice ``X26ABC2`` and another
    practice of its PCN ``X26ABC3`` (the sandbox's three built-in mailboxes, password ``password``).
    Returns None when the data has no trust.
    """
    practice, pcn, _ = _busiest_practice(db)
    trust = _busiest_trust(db, as_of)
    if trust is None:
        return None
    rows = db.execute("SELECT DISTINCT practice_code FROM practices WHERE pcn_code = ? AND practice_code <> ? "
                      "ORDER BY practice_code LIMIT 1", [pcn, practice])
    practices = {practice: "X26ABC2", **({str(rows[0][0]): "X26ABC3"} if rows else {})}
    lines = [
        "# MESH for the demo: NHS Digital's mesh-sandbox on this machine (make demo-mesh starts it).",
        f'url = "{url}"', f'shared_key = "{SANDBOX_SHARED_KEY}"', "backoff_seconds = 10", "",
        "[[mailboxes]]", 'mailbox = "X26ABC1"', f'ods = "{trust}"', 'password = "password"', "",
    ]
    for code, mailbox in practices.items():
        lines += ["[[mailboxes]]", f'mailbox = "{mailbox}"', f'ods = "{code}"', 'password = "password"', ""]
    lines += ["[directory]", *(f'{code} = "{mailbox}"' for code, mailbox in practices.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
