"""``parity recall``, ``parity contact``, ``parity worklist``, ``parity followup``, ``parity referral`` and
``parity passport``: recall, outreach and follow-up from the command line (no web imports).

Lists of patients print NHS numbers: they are for the practice's own staff, like the web worklist.
Errors are one line naming the rule, never the patient.
"""

from __future__ import annotations

import os
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from parity.clikit import DatabaseOpt, Level, OutFormat, emit, today
from parity.errors import ConfigurationError
from parity.settings import Settings

recall_app = typer.Typer(help="Invitation schedules, who to invite this month, letters and SMS.",
                         no_args_is_help=True)
contact_app = typer.Typer(help="A patient's contact log (invited, booked, attended, did not attend…).",
                          no_args_is_help=True)
followup_app = typer.Typer(help="Red-zone findings, their interventions and whether they were followed up.",
                           no_args_is_help=True)
referral_app = typer.Typer(help="Referrals: offered, accepted or declined, completed.", no_args_is_help=True)

PracticeOpt = Annotated[str, typer.Option("--practice", help="The practice's ODS code")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Reporting date YYYY-MM-DD (default: today)")]
# Figures (the follow-up measure and findings) default as every figure does, CLI and web alike.
ReportingAsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Reporting date YYYY-MM-DD (default: "
                                                                      "latest quarter end)")]
MeasureOpt = Annotated[str, typer.Option("--measure", help="phsmi or qof-mh021")]
FormatOpt = Annotated[OutFormat, typer.Option("--format", help="csv, json or table")]




class WorklistKind(StrEnum):
    ranked = "ranked"
    quick = "quick"
    outreach = "outreach"




def _reporting(value: str | None) -> date:
    from parity.dates import as_of_or_default as default

    return default(value, "--as-of")


def _day(value: str | None, what: str = "--as-of") -> date:
    from parity.dates import parse_date

    return parse_date(value, what) if value else today()




def _open(database: str | None, create: bool = False):  # noqa: ANN202 - Database
    from parity.db import open_database

    return open_database(Settings.from_env(database=database).database_url, create=create)


# -- recall ---------------------------------------------------------------------------------------

@recall_app.command("schedule")
def schedule(practice: PracticeOpt, database: DatabaseOpt = None,
             mode: Annotated[str | None, typer.Option(help="birthday_month or medication_review")] = None) -> None:
    """Show a practice's invitation schedule, or set it with --mode."""
    from parity.care import recall

    with _open(database) as db:
        if mode:
            recall.set_mode(db, practice.upper(), mode, os.environ.get("USER"))
        current = recall.mode_of(db, practice.upper())
    typer.echo(f"{practice.upper()}: {recall.MODE_WORDS[current]} ({current})")


@recall_app.command("due")
def due(practice: PracticeOpt,
        month: Annotated[str, typer.Option(help="The month to invite for, YYYY-MM")],
        database: DatabaseOpt = None, as_of: AsOfOpt = None, measure: MeasureOpt = "phsmi",
        letters: Annotated[Path | None, typer.Option(help="Write the invitation letters (PDF) here")] = None,
        sms: Annotated[Path | None, typer.Option(help="Write the SMS texts (CSV) here")] = None,
        mark_invited: Annotated[bool, typer.Option(help="Record an 'invited' contact for each person")] = False,
        fmt: FormatOpt = OutFormat.table) -> None:
    """Who to invite in a month under the practice's schedule and the DNA protocol."""
    from parity.care.service import invitations_due, record_invitations, write_invitation_files

    day = _day(as_of)
    with _open(database) as db:
        batch = invitations_due(db, practice.upper(), month, day, measure)
        write_invitation_files(db, batch, letters=letters, sms=sms, generated_on=day)
        if mark_invited:
            record_invitations(db, batch, day, channel="sms" if sms and not letters else "letter",
                               username=os.environ.get("USER"))
    emit(batch.frame(), fmt, f"Invitations for {practice.upper()} in {month}")
    if mark_invited:
        typer.echo(f"recorded {len(batch.due)} invitation(s)", err=True)


# -- contacts -------------------------------------------------------------------------------------

@contact_app.command("add")
def contact_add(nhs_number: Annotated[str, typer.Argument(help="The patient's NHS number")], practice: PracticeOpt,
                kind: Annotated[str, typer.Option(help="invited, booked, attended, did_not_attend, declined, "
                                                       "unable_to_contact, outreach or preferences")],
                on: Annotated[str | None, typer.Option("--date", help="When, YYYY-MM-DD (default today)")] = None,
                channel: Annotated[str | None, typer.Option(help="letter, sms, phone, in_person, home_visit, "
                                                                 "community_venue, third_sector…")] = None,
                option: Annotated[list[str] | None, typer.Option(help="A patient-friendly option (repeatable)")]
                = None,
                note: Annotated[str, typer.Option(help="A short note")] = "",
                database: DatabaseOpt = None) -> None:
    """Record one contact (checked against the DNA protocol)."""
    from parity.care.contacts import history, record_contact
    from parity.care.protocol import state_on

    with _open(database) as db:
        record_contact(db, nhs_number, practice.upper(), kind, _day(on, "--date"), channel=channel,
                       options=tuple(option or ()), note=note, username=os.environ.get("USER"))
        state = state_on(history(db, nhs_number), today())
    typer.echo(f"recorded; now: {state.words} — next: {state.next_action}")


@contact_app.command("list")
def contact_list(nhs_number: Annotated[str, typer.Argument(help="The patient's NHS number")],
                 database: DatabaseOpt = None, fmt: FormatOpt = OutFormat.table) -> None:
    """A patient's contact log and where they are in the DNA protocol."""
    import pandas as pd

    from parity.care.contacts import history
    from parity.care.protocol import state_on

    with _open(database) as db:
        log = history(db, nhs_number)
    df = pd.DataFrame([{"date": c.occurred_on, "kind": c.kind, "channel": c.channel or "",
                        "options": ",".join(c.options), "note": c.note} for c in log],
                      columns=["date", "kind", "channel", "options", "note"])
    state = state_on(log, today())
    emit(df, fmt, f"Contacts — now: {state.words} ({state.reason or 'no reason'}); next: {state.next_action}")


# -- worklists ------------------------------------------------------------------------------------

def worklist(practice: PracticeOpt, database: DatabaseOpt = None, as_of: AsOfOpt = None,
             measure: MeasureOpt = "phsmi",
             kind: Annotated[WorklistKind, typer.Option("--list", help="ranked, quick (quick info gather) or "
                                                                       "outreach")] = WorklistKind.ranked,
             fmt: FormatOpt = OutFormat.table,
             limit: Annotated[int, typer.Option(help="At most this many rows (0: all)")] = 0) -> None:
    """A practice's worklist ranked by expected gain towards all six checks, each row with why."""
    from parity.care.service import care_worklist

    with _open(database) as db:
        df = care_worklist(db, practice.upper(), _day(as_of), measure, kind.value)
    cols = ["nhs_number", "checks_done", "expected_gain", "protocol_state", "next_action", "why"]
    df = df[cols]
    emit(df.head(limit) if limit else df, fmt, f"{kind.value} worklist for {practice.upper()}")


def passport(nhs_number: Annotated[str, typer.Argument(help="The patient's NHS number")],
             out: Annotated[Path, typer.Option(help="Write here: .pdf or .html")],
             database: DatabaseOpt = None, as_of: AsOfOpt = None) -> None:
    """The patient-held summary ("passport"): each check's result, what it means, what happens next."""
    from parity.care.service import passport_document

    if out.suffix.lower() not in (".pdf", ".html"):
        raise ConfigurationError("--out must end in .pdf or .html")
    with _open(database) as db:
        body = passport_document(db, nhs_number, _day(as_of), out.suffix.lower().lstrip("."), made_on=today())
    out.write_bytes(body)
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add these commands to the ``parity`` app."""
    app.add_typer(recall_app, name="recall")
    app.add_typer(contact_app, name="contact")
    app.add_typer(followup_app, name="followup")
    app.add_typer(referral_app, name="referral")
    app.command("worklist")(worklist)
    app.command("passport")(passport)


# -- follow-up and referrals -----------------------------------------------------------------------



@followup_app.command("findings")
def followup_findings(practice: PracticeOpt, database: DatabaseOpt = None, as_of: ReportingAsOfOpt = None,
                      overdue: Annotated[bool, typer.Option(help="Only findings with no follow-up in 3 months")]
                      = False,
                      fmt: FormatOpt = OutFormat.table) -> None:
    """Red-zone findings of a practice's SMI register, the intervention each needs, and its follow-up."""
    from parity.care.service import followup_findings as find

    with _open(database) as db:
        df = find(db, _reporting(as_of), practice_codes=[practice.upper()])
    if overdue:
        df = df[df["overdue"].astype(bool)]
    cols = ["nhs_number", "finding_label", "value_text", "finding_date", "intervention_label", "referral_state",
            "followed_up", "overdue"]
    emit(df[cols].reset_index(drop=True), fmt, f"Red-zone findings at {practice.upper()}")


@followup_app.command("measure")
def followup_measure(database: DatabaseOpt = None, as_of: ReportingAsOfOpt = None,
                     level: Annotated[Level, typer.Option(help="Organisation level of the rows")] = Level.icb,
                     parent: Annotated[str | None, typer.Option(help="Only organisations within this parent")]
                     = None,
                     disclosure: Annotated[bool, typer.Option(help="Apply disclosure control")] = False,
                     fmt: FormatOpt = OutFormat.table) -> None:
    """Red-zone findings without follow-up within 3 months, per organisation."""
    from parity.care.service import red_zone

    settings = Settings.from_env(database=database)
    with _open(database) as db:
        df = red_zone(db, _reporting(as_of), level.value, parent=parent, settings=settings if disclosure else None)
    emit(df.drop(columns="parent_code"), fmt, f"Red-zone follow-up by {level.value}")


@referral_app.command("add")
def referral_add(nhs_number: Annotated[str, typer.Argument(help="The patient's NHS number")], practice: PracticeOpt,
                 intervention: Annotated[str, typer.Option(help="stop_smoking, weight_management, bp_review, "
                                                                "diabetes_prevention, diabetes_review, lipid_review "
                                                                "or alcohol_brief_intervention")],
                 state: Annotated[str, typer.Option(help="offered, accepted, declined or completed")] = "offered",
                 referral: Annotated[str | None, typer.Option(help="The referral to move on (omit to open one)")]
                 = None,
                 note: Annotated[str, typer.Option(help="A short note")] = "",
                 on: Annotated[str | None, typer.Option("--date", help="When, YYYY-MM-DD (default now)")] = None,
                 database: DatabaseOpt = None) -> None:
    """Open a referral (offered) or move one on (accepted, declined, completed)."""
    from parity.care.referrals import record_referral

    with _open(database) as db:
        rid = record_referral(db, nhs_number, practice.upper(), intervention, state, os.environ.get("USER") or "cli",
                              note=note, referral_id=referral, at=_day(on, "--date") if on else None)
    typer.echo(f"referral {rid}: {state}")


@referral_app.command("list")
def referral_list(nhs_number: Annotated[str | None, typer.Argument(help="One patient's NHS number")] = None,
                  practice: Annotated[str | None, typer.Option(help="Referrals opened at this practice")] = None,
                  database: DatabaseOpt = None, fmt: FormatOpt = OutFormat.table) -> None:
    """Referrals with their current state."""
    import pandas as pd

    from parity.care.referrals import referrals

    with _open(database) as db:
        found = referrals(db, nhs_number, [practice.upper()] if practice else None)
    df = pd.DataFrame([{"referral_id": r.referral_id, "nhs_number": r.nhs_number, "intervention": r.intervention_id,
                        "state": r.state, "opened": r.opened_at, "updated": r.updated_at} for r in found],
                      columns=["referral_id", "nhs_number", "intervention", "state", "opened", "updated"])
    emit(df, fmt, "Referrals")
