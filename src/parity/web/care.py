"""Recall and outreach as pages see them: priorities, invitations, the contact log (M5).

Access goes through the same checks as the worklist and the patient page (``parity.web.worklists``,
``parity.web.patients``), so a practice, PCN or ICB user sees exactly the patients they see there. The
care domain (``parity.care``) does the work; this module only scopes, audits and shapes it for templates.

The clinical data of the worklist are as at the reporting date (precomputed results), while where a
patient is in the DNA protocol is worked out for *today*: a contact recorded this morning must show on
the list this afternoon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import pandas as pd
from fastapi import Request

from parity.access import Actor, Role, record
from parity.care import recall
from parity.care.contacts import CHANNELS, KIND_WORDS, KINDS, OPTIONS, Contact, histories, history, record_contact
from parity.care.protocol import STATE_WORDS, ProtocolState, state_on
from parity.care.service import InvitationBatch, invitations_due, record_invitations
from parity.care.worklist import LABELS, outreach_list, quick_info_gather, ranked
from parity.errors import ConfigurationError, PermissionDenied
from parity.reports.worklist import WorklistFilter
from parity.web.deps import get_state, today
from parity.web.worklists import PracticeWorklist, practice_worklist

LISTS = {"ranked": "Ranked by expected gain", "quick": "Quick info gather (phone or text)", "outreach": "Outreach"}
STATE_COLOURS = {"due": "grey", "invited": "blue", "booked": "green", "dna_once": "orange",
                 "second_invited": "blue", "second_booked": "green", "outreach": "red", "attended": "green",
                 "declined": "grey"}
CHANNEL_WORDS = {"letter": "Letter", "sms": "Text message (SMS)", "phone": "Phone", "email": "Email",
                 "in_person": "In person", "home_visit": "Home visit", "community_venue": "Community venue",
                 "third_sector": "Third-sector partner"}
INVITE_CHANNELS = ("letter", "sms")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
CSV_COLUMNS = {"rank": "Rank", "nhs_number": "NHS number", "checks_done": "Checks done", "missing": "Missing",
               "state_words": "State", "next_action": "Next action", "action_from": "From",
               "expected_gain": "Expected gain", "why": "Why"}


# -- priorities -------------------------------------------------------------------------------------

@dataclass
class Priorities:
    practice_code: str
    practice_name: str
    kind: str
    rows: pd.DataFrame     # ranked, with ``rank`` and ``state_words``
    total: int             # patients on the practice worklist the user may see


def check_list(kind: str) -> str:
    if kind not in LISTS:
        raise ConfigurationError(f"list must be one of {', '.join(LISTS)}")
    return kind


def priorities(request: Request, actor: Actor, code: str, measure_id: str, as_of: date, kind: str,
               action: str) -> Priorities:
    """The practice's worklist ranked by expected gain (or its quick-info or outreach list).

    Same access as the worklist (``practice_worklist`` checks the scope and audits ``action``)."""
    check_list(kind)
    state = get_state(request)
    wl = practice_worklist(request, actor, code, measure_id, as_of, WorklistFilter(), action)
    with state.db.lock:
        contacts = histories(state.db, code)
    core = tuple(c.id for c in state.results.measure(measure_id).core)
    df = ranked(wl.rows, contacts, today(request), core)
    if kind == "quick":
        df = quick_info_gather(df)
    elif kind == "outreach":
        df = outreach_list(df)
    df = df.reset_index(drop=True)
    df["rank"] = range(1, len(df) + 1)
    df["state_words"] = [STATE_WORDS.get(s, s) for s in df["protocol_state"]] if len(df) else []
    return Priorities(code, wl.practice_name, kind, df, wl.total)


def priorities_export(p: Priorities) -> pd.DataFrame:
    """The list as shown, for a CSV download (readable headings, NHS numbers as text)."""
    out = p.rows.reindex(columns=list(CSV_COLUMNS)).rename(columns=CSV_COLUMNS)
    out["NHS number"] = out["NHS number"].astype(str)
    return out


# -- recall -----------------------------------------------------------------------------------------

def next_month(day: date) -> str:
    first = day.replace(day=1) + timedelta(days=32)
    return f"{first.year:04d}-{first.month:02d}"


def check_month(month: str | None, day: date) -> str:
    """``YYYY-MM`` (default: the month after ``day``)."""
    if not month:
        return next_month(day)
    if not MONTH.match(month):
        raise ConfigurationError("month must be written YYYY-MM, for example 2026-12")
    return month


def require_practice_user(request: Request, actor: Actor, code: str, action: str) -> None:
    """Changing a practice's recall is for that practice's own users (403, audited, otherwise)."""
    if actor.role != Role.practice or actor.org_code != code:
        record(get_state(request).db, actor, action, f"practice/{code}", "denied", "not a user of this practice")
        raise PermissionDenied("only the practice's own users can change its recall")


@dataclass
class Recall:
    wl: PracticeWorklist
    month: str
    mode: str
    batch: InvitationBatch
    rows: list[dict[str, Any]] = field(default_factory=list)


def recall_view(request: Request, actor: Actor, code: str, month: str, measure_id: str, as_of: date,
                action: str) -> Recall:
    """Who the practice invites in ``month``, cut to the patients ``actor`` may see (access checked and
    audited as for the worklist, as ``action``)."""
    state = get_state(request)
    wl = practice_worklist(request, actor, code, measure_id, as_of, WorklistFilter(), action)
    with state.db.lock:
        mode = recall.mode_of(state.db, code)
        batch = invitations_due(state.db, code, month, as_of, measure_id, results=state.results)
    visible = set(wl.rows["nhs_number"].astype(str))
    batch = replace(batch, due=[d for d in batch.due if d.nhs_number in visible])
    rows = [{"nhs_number": d.nhs_number, "invitation": "2nd" if d.invitation_number == 2 else "1st",
             "checks_due": ", ".join(LABELS.get(c, c) for c in d.checks_due),
             "options": ", ".join(OPTIONS.get(o, o) for o in d.options)} for d in batch.due]
    return Recall(wl, month, mode, batch, rows)


def set_schedule(request: Request, actor: Actor, code: str, mode: str) -> None:
    require_practice_user(request, actor, code, "set_recall_schedule")
    if mode not in recall.MODES:
        raise ConfigurationError(f"schedule must be one of {', '.join(recall.MODES)}")
    state = get_state(request)
    with state.db.lock:
        recall.set_mode(state.db, code, mode, actor.username)
    record(state.db, actor, "set_recall_schedule", f"practice/{code}", "allowed", mode)


def mark_invited(request: Request, actor: Actor, code: str, month: str, channel: str, measure_id: str,
                 as_of: date) -> int:
    """Record an ``invited`` contact, dated today, for everyone due in ``month`` (all or nothing).

    Raises ``ConfigurationError`` with the protocol's reason if any step is not allowed (nothing stored)."""
    require_practice_user(request, actor, code, "record_invitations")
    if channel not in INVITE_CHANNELS:
        raise ConfigurationError("channel must be letter or sms")
    state = get_state(request)
    view = recall_view(request, actor, code, month, measure_id, as_of, "view_recall")
    with state.db.lock:
        n = record_invitations(state.db, view.batch, today(request), channel=channel, username=actor.username)
    record(state.db, actor, "record_invitations", f"practice/{code}", "allowed", f"{n} invitations; {month}; {channel}")
    return n


# -- the contact log --------------------------------------------------------------------------------

@dataclass
class ContactsView:
    """What ``_contacts.html`` shows: the protocol state today, the log (newest first) and the form."""

    state: ProtocolState
    colour: str
    log: list[dict[str, Any]]
    today: date
    values: dict[str, Any]
    errors: list[dict[str, str]] = field(default_factory=list)
    kinds: list[tuple[str, str]] = field(default_factory=lambda: [(k, KIND_WORDS[k]) for k in KINDS])
    channels: list[tuple[str, str]] = field(default_factory=lambda: [(c, CHANNEL_WORDS.get(c, c)) for c in CHANNELS])
    options: list[tuple[str, str]] = field(default_factory=lambda: list(OPTIONS.items()))


def _log_row(c: Contact) -> dict[str, Any]:
    return {"date": c.occurred_on, "what": KIND_WORDS.get(c.kind, c.kind),
            "channel": CHANNEL_WORDS.get(c.channel, c.channel) if c.channel else "",
            "options": [OPTIONS.get(o, o) for o in c.options], "note": c.note, "by": c.username or ""}


def contacts_view(request: Request, nhs_number: str, values: dict[str, Any] | None = None,
                  errors: list[dict[str, str]] | None = None) -> ContactsView:
    """The contact section of a patient the caller has already been allowed to see."""
    state = get_state(request)
    day = today(request)
    with state.db.lock:
        log = history(state.db, nhs_number)
    now = state_on(log, day)
    defaults = {"kind": "", "occurred_on": day.isoformat(), "channel": "", "options": [], "note": ""}
    return ContactsView(now, STATE_COLOURS.get(now.state, "grey"), [_log_row(c) for c in reversed(log)], day,
                        {**defaults, **(values or {})}, errors or [])


def contact_form(form: Any) -> dict[str, Any]:
    """The posted contact form as plain values (each capped in length)."""
    return {"kind": str(form.get("kind") or "")[:30], "occurred_on": str(form.get("occurred_on") or "")[:20],
            "channel": str(form.get("channel") or "")[:30],
            "options": [str(o)[:40] for o in form.getlist("options")][:len(OPTIONS)],
            "note": str(form.get("note") or "")[:500]}


def check_contact(values: dict[str, Any], day: date) -> tuple[list[dict[str, str]], date | None]:
    """Form errors (NHS.UK error summary items linking to the field) and the parsed date."""
    errors = []
    if values["kind"] not in KINDS:
        errors.append({"text": "Choose what happened", "href": "#kind"})
    when = None
    try:
        when = date.fromisoformat(values["occurred_on"])
    except ValueError:
        errors.append({"text": "Enter the date as YYYY-MM-DD, for example " + day.isoformat(),
                       "href": "#occurred_on"})
    else:
        if when > day:
            errors.append({"text": "The date cannot be in the future", "href": "#occurred_on"})
    if values["channel"] and values["channel"] not in CHANNELS:
        errors.append({"text": "Choose how the contact was made", "href": "#channel"})
    if any(o not in OPTIONS for o in values["options"]):
        errors.append({"text": "Choose options from the list", "href": "#options"})
    return errors, when


def add_contact(request: Request, actor: Actor, nhs_number: str, practice_code: str | None,
                values: dict[str, Any]) -> list[dict[str, str]]:
    """Record the contact; returns form errors (empty when stored). Audited as ``record_contact``."""
    state = get_state(request)
    errors, when = check_contact(values, today(request))
    if not errors and not practice_code:
        errors.append({"text": "This patient is not registered at a practice on this date", "href": "#kind"})
    if errors or when is None or practice_code is None:
        return errors
    try:
        with state.db.lock:
            record_contact(state.db, nhs_number, practice_code, values["kind"], when,
                           channel=values["channel"] or None, options=tuple(values["options"]),
                           note=values["note"], username=actor.username)
    except ConfigurationError as exc:  # the DNA protocol's reason: names the rule, never the patient
        return [{"text": sentence(str(exc)), "href": "#kind"}]
    record(state.db, actor, "record_contact", f"patient/{nhs_number}", "allowed", values["kind"])
    return []


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text
