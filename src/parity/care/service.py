"""Care operations shared by the CLI and the web app: worklists, invitations, the passport.

Each function takes an open ``Database`` and plain values; results come from the precomputed
``ResultStore`` (``parity.engine.results``), so a practice's worklist is built once per data version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from parity.care import recall
from parity.care.contacts import histories, record_contact
from parity.care.worklist import LABELS, outreach_list, quick_info_gather, ranked
from parity.db import Database
from parity.db.transactions import atomic
from parity.engine.results import ResultStore


@dataclass
class InvitationBatch:
    """The invitations a practice sends for one month."""

    practice_code: str
    practice_name: str
    month: str
    due: list[recall.Due]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"nhs_number": d.nhs_number, "invitation": d.invitation_number,
                              "checks_due": ", ".join(LABELS.get(c, c) for c in d.checks_due),
                              "options": ", ".join(d.options)} for d in self.due],
                            columns=["nhs_number", "invitation", "checks_due", "options"])


def store_for(db: Database, results: ResultStore | None = None) -> ResultStore:
    return results if results is not None else ResultStore(db)


def practice_name(db: Database, practice_code: str) -> str:
    rows = db.execute("SELECT practice_name FROM practices WHERE practice_code = ? LIMIT 1", [practice_code])
    return str(rows[0][0]) if rows else practice_code


def care_worklist(db: Database, practice_code: str, as_of: date, measure_id: str = "phsmi", kind: str = "ranked",
                  results: ResultStore | None = None) -> pd.DataFrame:
    """The practice's worklist ranked by expected gain (``kind`` ranked), or its quick-info-gather or
    outreach list."""
    store = store_for(db, results)
    wl = store.practice_worklist(measure_id, as_of, practice_code)
    with db.lock:
        contacts = histories(db, practice_code)
    df = ranked(wl, contacts, as_of, tuple(c.id for c in store.measure(measure_id).core))
    if kind == "quick":
        return quick_info_gather(df)
    if kind == "outreach":
        return outreach_list(df)
    return df


def invitations_due(db: Database, practice_code: str, month: str, as_of: date, measure_id: str = "phsmi",
                    results: ResultStore | None = None) -> InvitationBatch:
    """Who the practice invites in ``month`` (``YYYY-MM``)."""
    store = store_for(db, results)
    wl = store.practice_worklist(measure_id, as_of, practice_code)
    core = tuple(c.id for c in store.measure(measure_id).core)
    with db.lock:
        due = recall.due_invitations(db, wl, practice_code, month, as_of, core)
    return InvitationBatch(practice_code, practice_name(db, practice_code), month, due)


def record_invitations(db: Database, batch: InvitationBatch, on: date, *, channel: str, username: str | None) -> int:
    """Record an ``invited`` contact for every invitation of ``batch`` (all or nothing)."""
    with atomic(db):
        for d in batch.due:
            record_contact(db, d.nhs_number, d.practice_code, "invited", on, channel=channel, username=username)
    return len(batch.due)


def invitation_letters(batch: InvitationBatch, generated_on: date) -> bytes:
    """One printable PDF, a page per invitation."""
    from parity.care.documents import render_invitation_pdf

    return render_invitation_pdf(_invitations(batch), practice_name=batch.practice_name,
                                 practice_code=batch.practice_code, generated_on=generated_on)


def invitation_sms(batch: InvitationBatch) -> str:
    """CSV of ``nhs_number, message`` for the practice's own messaging system."""
    from parity.care.documents import sms_export_csv

    return sms_export_csv(_invitations(batch), batch.practice_name)


def write_invitation_files(db: Database, batch: InvitationBatch, *, letters: Path | None, sms: Path | None,
                           generated_on: date) -> None:
    if letters is not None:
        letters.write_bytes(invitation_letters(batch, generated_on))
    if sms is not None:
        sms.write_text(invitation_sms(batch), encoding="utf-8")


def _invitations(batch: InvitationBatch) -> list:  # list[Invitation]
    from parity.care.contacts import OPTIONS
    from parity.care.documents import Invitation

    return [Invitation(nhs_number=d.nhs_number, checks_due=tuple(LABELS.get(c, c) for c in d.checks_due),
                       number=d.invitation_number,
                       options=tuple(OPTIONS[o] for o in d.options if o in OPTIONS)) for d in batch.due]


def passport_document(db: Database, nhs_number: str, as_of: date, kind: str, measure_id: str = "phsmi",
                      results: ResultStore | None = None, made_on: date | None = None) -> bytes:
    """The patient passport as ``pdf`` or ``html`` bytes: results as at ``as_of``, made on ``made_on`` (today;
    default ``as_of``), with the patient's name when the extract has one and the practice's phone number."""
    from parity.care.documents import render_passport_html, render_passport_pdf
    from parity.care.people import contact_details, practice_phone
    from parity.reports.timeline import patient_timeline

    store = store_for(db, results)
    with db.lock:
        record = patient_timeline(db, store.measure(measure_id), nhs_number, as_of, store.structure_for(as_of))
        person = contact_details(db, [nhs_number], store).get(str(nhs_number), {})
    name = practice_name(db, record.practice_code) if record.practice_code else None
    args = {"as_of": as_of, "practice_name": name, "patient_name": person.get("name") or None, "made_on": made_on,
            "practice_phone": practice_phone(record.practice_code)}
    if kind == "html":
        return render_passport_html(record, **args).encode("utf-8")
    return render_passport_pdf(record, **args)


def register_of(store: ResultStore, as_of: date, measure_id: str = "phsmi") -> frozenset[str]:
    """NHS numbers in the measure's denominator on ``as_of``: follow-up is about the SMI register.

    Kept until the data changes (``ResultStore.derived``): building it walks every patient's status, which a
    page about one patient must not pay for on every request (issue 16 target 3)."""

    def build() -> frozenset[str]:
        status = store.status(measure_id, as_of)
        keep = status["in_denominator"].fillna(False).astype(bool)
        return frozenset(status.loc[keep, "nhs_number"].astype(str))

    return store.derived(("register_of", measure_id, as_of), build)


def followup_findings(db: Database, as_of: date, *, practice_codes: list[str] | None = None,
                      nhs_numbers: list[str] | None = None, measure_id: str = "phsmi",
                      results: ResultStore | None = None) -> pd.DataFrame:
    """Red-zone findings of the register's patients with their intervention and follow-up state."""
    from parity.care.followup import findings

    store = store_for(db, results)
    register = register_of(store, as_of, measure_id)
    if nhs_numbers is not None:  # a few patients: pass on only their membership, not the whole register
        register = frozenset(n for n in nhs_numbers if n in register)
    with db.lock:
        return findings(db, as_of, practice_codes=practice_codes, nhs_numbers=nhs_numbers, register=register)


def red_zone(db: Database, as_of: date, level: str, *, parent: str | None = None, settings: object = None,
             measure_id: str = "phsmi", results: ResultStore | None = None) -> pd.DataFrame:
    """Red-zone findings without follow-up within 3 months, per organisation at ``level``."""
    from parity.care.followup import red_zone_measure

    store = store_for(db, results)
    register = register_of(store, as_of, measure_id)
    with db.lock:
        return red_zone_measure(db, as_of, level, structure=store.structure_for(as_of), parent=parent,
                                settings=settings, register=register)


def red_zone_levels(results: ResultStore, as_of: date, measure_id: str = "phsmi") -> dict[str, pd.DataFrame]:
    """The red-zone measure at every level, from one evaluation, kept until the data or a referral changes
    (the dashboard's organisation pages read it)."""
    from parity.care import followup
    from parity.engine.base import LEVELS

    db = results.db
    with db.lock:
        key_version = followup.version(db)

    def build() -> dict[str, pd.DataFrame]:
        register = register_of(results, as_of, measure_id)
        # Not under the database lock as a whole: each statement takes it (Database.execute), and the
        # seconds of pandas work between them (a region's findings) leave it free for other requests, so
        # a page can say "Computing figures …" meanwhile (parity.web.computing).
        evaluated = followup.evaluate(db, as_of, register=register)
        return {level: followup.red_zone_measure(db, as_of, level, structure=results.structure_for(as_of),
                                                 evaluated=evaluated) for level in LEVELS}

    return results.derived(("red_zone", measure_id, as_of, key_version), build)
