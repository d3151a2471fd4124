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
    practice, pcn, icb = _busiest_practice(db, as_of)
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


def _busiest_practice(db: Database, as_of: date | None = None) -> tuple[str, str, str]:
    """The practice with the most current registrations, with its PCN and ICB codes in the structure in force
    on ``as_of`` (default: the newest)."""
    from parity.orgs import STRUCTURES, structure_in_force

    structure = structure_in_force(as_of) if as_of else STRUCTURES[-1]
    rows = db.execute(
        "SELECT r.practice_code, p.pcn_code, p.icb_code, COUNT(*) AS n FROM registrations r "
        "JOIN practices p ON p.practice_code = r.practice_code AND p.structure = ? "
        "WHERE r.end_date IS NULL AND p.pcn_code IS NOT NULL "
        "GROUP BY r.practice_code, p.pcn_code, p.icb_code ORDER BY n DESC, r.practice_code LIMIT 1", [structure])
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


def _demo_practices(db: Database, as_of: date) -> tuple[str, str | None, str | None]:
    """(the demo practice, another practice of its PCN that is not on Parity, the demo trust)."""
    practice, pcn, icb = _busiest_practice(db, as_of)
    # Another practice with patients: of the same PCN if there is one, else of the same ICB, else any.
    rows = db.execute(
        "SELECT p.practice_code FROM practices p WHERE p.practice_code <> ? AND EXISTS (SELECT 1 FROM registrations r "
        "WHERE r.practice_code = p.practice_code AND r.end_date IS NULL) GROUP BY p.practice_code "
        "ORDER BY MAX(CASE WHEN p.pcn_code = ? THEN 1 ELSE 0 END) DESC, "
        "MAX(CASE WHEN p.icb_code = ? THEN 1 ELSE 0 END) DESC, p.practice_code LIMIT 1", [practice, pcn, icb])
    return practice, (str(rows[0][0]) if rows else None), _busiest_trust(db, as_of)


def write_sandbox_mesh_config(db: Database, as_of: date, path: Path, url: str = SANDBOX_URL) -> Path | None:
    """Write a MESH file for trying trust-to-GP messaging against NHS Digital's mesh-sandbox.

    The demo trust gets the sandbox mailbox ``X26ABC1`` and the demo practice (on Parity) ``X26ABC2``;
    another practice of its PCN, marked "not on Parity", is reached at ``X26ABC3`` by GP Connect Send
    Document, where a stand-in GP system (scripts/demo_gp_system.py) acknowledges it. Returns None when
    the data has no trust.
    """
    practice, other, trust = _demo_practices(db, as_of)
    if trust is None:
        return None
    lines = [
        "# MESH for the demo: NHS Digital's mesh-sandbox on this machine (make demo starts it).",
        f'url = "{url}"', f'shared_key = "{SANDBOX_SHARED_KEY}"', "backoff_seconds = 10",
        '# The sandbox has no GPPROVIDER patient routing: Send Document goes to the directory mailbox.',
        'send_document_addressing = "directory"', "",
        "[[mailboxes]]", 'mailbox = "X26ABC1"', f'ods = "{trust}"', 'password = "password"', "",
        "[[mailboxes]]", 'mailbox = "X26ABC2"', f'ods = "{practice}"', 'password = "password"', "",
        "[directory]", f'{practice} = "X26ABC2"',
    ]
    if other:  # not a mailbox of this deployment: the practice's own GP system reads it
        lines.append(f'{other} = "X26ABC3"')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _demo_patient(db: Database, practice: str, as_of: date, skip: int = 0) -> tuple[str, date] | None:
    rows = db.execute(
        "SELECT p.nhs_number, p.date_of_birth FROM patients p JOIN registrations r ON r.nhs_number = p.nhs_number "
        "WHERE r.practice_code = ? AND r.start_date <= ? AND (r.end_date IS NULL OR r.end_date >= ?) "
        "AND p.date_of_death IS NULL ORDER BY p.nhs_number LIMIT 1 OFFSET ?", [practice, as_of, as_of, skip])
    if not rows:
        return None
    dob = rows[0][1]
    return str(rows[0][0]), dob.date() if hasattr(dob, "date") and callable(dob.date) else dob


def seed_demo_messages(db: Database, as_of: date) -> list[str]:
    """Queue two trust checks so ``make demo`` shows both routes once the MESH worker runs: one to the
    demo practice (on Parity: coded results filed) and one to a practice marked "not on Parity" (the
    letter by GP Connect Send Document, acknowledged by the stand-in GP system). Returns outbox ids."""
    from parity.interop.checks import set_route, submit_check
    from parity.interop.record import record_from_form
    from parity.rules.template import load_template

    practice, other, trust = _demo_practices(db, as_of)
    if trust is None:
        return []
    if other:
        set_route(db, other, "send_document", "demo")
    template = load_template()
    queued = []
    today = date.today()
    for code in (practice, other):
        found = _demo_patient(db, code, today) if code else None
        if found is None:
            continue
        nhs, dob = found
        form = {"nhs_number": nhs, "date_of_birth": dob.isoformat(), "practice_code": code,
                "performed_on": today.isoformat(), "performed_by": "Demo nurse, RMN", "family_name": "Example",
                "given_name": "Sam", "smoking.smoking_status": "77176002", "blood_pressure.systolic": "132",
                "blood_pressure.diastolic": "84", "narrative": "Seen at the depot clinic (demo)."}
        record = record_from_form(template, form, trust_code=trust, created_by="trust", today=today)
        queued.append(submit_check(db, record, template, source="form"))
    return queued


# -- reusing a built demo (issue 16 target 5) --------------------------------------------------------
MARKER = "demo.json"


def demo_recipe(seed: int, as_of: date, structure: str) -> dict[str, str]:
    """What a demo database is built from: a second ``parity demo`` with the same recipe reuses it. The
    fingerprint covers the generator and this module, so a change to either builds the data again."""
    import hashlib

    from parity import __version__
    from parity import synth as synth_package

    digest = hashlib.sha256()
    sources = sorted(Path(synth_package.__file__).parent.glob("*.py")) + [Path(__file__)]
    for source in sources:
        digest.update(source.read_bytes())
    return {"seed": str(seed), "as_of": as_of.isoformat(), "structure": structure, "scale": "region",
            "parity": __version__, "code": digest.hexdigest()[:16]}


def _extract_load(db: Database) -> str | None:
    """The id of the latest extract load (``parity load``/``parity demo``; not a check filed from MESH, which the
    demo itself makes while it serves)."""
    rows = db.execute("SELECT load_id FROM loads WHERE mode IN ('replace', 'append') "
                      "ORDER BY loaded_at DESC, load_id DESC LIMIT 1")
    return str(rows[0][0]) if rows else None


def reusable_demo(db: Database | None, marker: Path, recipe: dict[str, str]) -> dict[str, str] | None:
    """The marker of a finished demo build with this ``recipe`` whose extract is still the one in ``db`` (no
    load since the build), else None."""
    import json

    if db is None or not marker.is_file():
        return None
    try:
        saved = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("recipe") != recipe:
        return None
    if saved.get("load_id") is None or saved.get("load_id") != _extract_load(db):
        return None
    return saved


def write_demo_marker(db: Database, marker: Path, recipe: dict[str, str]) -> None:
    """Record a finished demo build (written last: an interrupted build is never reused)."""
    import json
    from datetime import UTC, datetime

    from parity.reports.results import data_version

    marker.write_text(json.dumps({"recipe": recipe, "load_id": _extract_load(db), "data_version": data_version(db),
                                  "built_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}, indent=1) + "\n")
