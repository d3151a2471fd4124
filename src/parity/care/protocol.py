"""The did-not-attend (DNA) protocol as an explicit state machine over the contact log (M5).

NHS England's guidance for SMI physical health checks asks practices not to stop at one invitation
(product.md M5, regional roadmap): after a missed appointment a second invitation goes out **at least
7 days later**; after a second missed appointment, or no response to the second invitation, the
patient goes to the **outreach list** (home visit, community venue, third-sector partner) with the
reason. Parity's choices where the guidance is silent (documented here and in the README):

- *No response* means no booking, attendance, decline or missed appointment within
  ``NO_RESPONSE_DAYS`` (28) of an invitation. No response to the first invitation makes a second
  invitation due; no response to the second sends the patient to outreach.
- *Unable to contact* (no working number or address) goes straight to outreach.
- *Declined* is the patient's informed choice and ends the cycle; it is not a reason for outreach.
- A cycle ends with ``attended`` or ``declined``; an invitation after that starts a new cycle, and an
  ended cycle older than ``CYCLE_DAYS`` (a year) counts as ``due`` again.

``TRANSITIONS`` is the whole protocol: (state, contact kind) -> next state. Anything not in it is
refused with the reason, so the log can only record steps the protocol allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from parity.care.contacts import Contact
from parity.errors import ConfigurationError

SECOND_INVITATION_DAYS = 7     # after a DNA, the second invitation is at least this many days later
NO_RESPONSE_DAYS = 28          # an invitation with no reply for this long counts as no response
CYCLE_DAYS = 365               # an ended cycle older than this is due again

STATES = ("due", "invited", "booked", "dna_once", "second_invited", "second_booked", "outreach", "attended",
          "declined")
ENDED = ("attended", "declined")
STATE_WORDS = {
    "due": "Due an invitation", "invited": "Invited", "booked": "Booked", "dna_once": "Did not attend once",
    "second_invited": "Second invitation sent", "second_booked": "Booked (second invitation)",
    "outreach": "Outreach", "attended": "Attended", "declined": "Declined",
}

TRANSITIONS: dict[tuple[str, str], str] = {
    ("due", "invited"): "invited",
    ("due", "booked"): "booked",                      # booked without a letter (opportunistic, phone)
    ("due", "unable_to_contact"): "outreach",
    ("invited", "booked"): "booked",
    ("invited", "invited"): "second_invited",         # no response to the first: second invitation
    ("invited", "unable_to_contact"): "outreach",
    ("booked", "did_not_attend"): "dna_once",
    ("booked", "booked"): "booked",                   # rebooked
    ("dna_once", "invited"): "second_invited",        # at least 7 days after the DNA (checked below)
    ("dna_once", "booked"): "second_booked",
    ("dna_once", "unable_to_contact"): "outreach",
    ("second_invited", "booked"): "second_booked",
    ("second_invited", "unable_to_contact"): "outreach",
    ("second_booked", "did_not_attend"): "outreach",  # a second DNA
    ("second_booked", "booked"): "second_booked",
    ("outreach", "outreach"): "outreach",             # an outreach attempt (visit, venue, partner)
    ("outreach", "booked"): "second_booked",
    ("outreach", "unable_to_contact"): "outreach",
}
# From any open state the patient may attend (walk-in, or seen by the outreach team) or decline.
for _state in STATES:
    if _state not in ENDED:
        TRANSITIONS[(_state, "attended")] = "attended"
        TRANSITIONS[(_state, "declined")] = "declined"
for _ended in ENDED:  # a new cycle
    TRANSITIONS[(_ended, "invited")] = "invited"
    TRANSITIONS[(_ended, "booked")] = "booked"

OUTREACH_REASONS = {
    ("second_booked", "did_not_attend"): "did not attend twice",
    ("due", "unable_to_contact"): "unable to contact",
    ("invited", "unable_to_contact"): "unable to contact",
    ("dna_once", "unable_to_contact"): "unable to contact",
    ("second_invited", "unable_to_contact"): "unable to contact",
}


@dataclass(frozen=True)
class ProtocolState:
    """Where a patient is in the protocol on a day, why, and what to do next (and from when)."""

    state: str
    since: date | None
    reason: str
    next_action: str
    action_from: date | None = None
    invitations: int = 0
    dnas: int = 0

    @property
    def words(self) -> str:
        return STATE_WORDS[self.state]


def next_state(contacts: Iterable[Contact], new: Contact) -> str:
    """The state after ``new``, or ``ConfigurationError`` if the protocol does not allow it."""
    current = state_on(contacts, new.occurred_on)
    key = (current.state, new.kind)
    if key not in TRANSITIONS:
        raise ConfigurationError(f"the DNA protocol does not allow '{new.kind.replace('_', ' ')}' when the patient "
                                 f"is '{STATE_WORDS[current.state].lower()}'")
    if key == ("dna_once", "invited") and current.action_from and new.occurred_on < current.action_from:
        raise ConfigurationError(f"a second invitation must be at least {SECOND_INVITATION_DAYS} days after the "
                                 "missed appointment")
    if key == ("invited", "invited") and current.action_from and new.occurred_on < current.action_from:
        raise ConfigurationError(f"a second invitation follows no reply for {NO_RESPONSE_DAYS} days after the first")
    return TRANSITIONS[key]


def state_on(contacts: Iterable[Contact], day: date) -> ProtocolState:
    """Fold the contacts up to ``day`` (oldest first) into the protocol state on ``day``."""
    state, since, reason = "due", None, ""
    invitations = dnas = 0
    for c in contacts:
        if c.occurred_on > day or c.kind == "preferences":
            continue
        key = (state, c.kind)
        if key not in TRANSITIONS:
            continue  # history imported without checks: keep the last valid state
        new = TRANSITIONS[key]
        if state in ENDED and new not in ENDED:
            invitations = dnas = 0  # a new cycle
        if c.kind == "invited":
            invitations += 1
        if c.kind == "did_not_attend":
            dnas += 1
        if new == "outreach" and state != "outreach":
            reason = OUTREACH_REASONS.get(key, "no response to two invitations")
        elif new != "outreach":
            reason = ""
        state, since = new, c.occurred_on
    return _with_time(state, since, reason, day, invitations, dnas)


def _with_time(state: str, since: date | None, reason: str, day: date, invitations: int,
               dnas: int) -> ProtocolState:
    """Apply the time rules (no response, the 7-day wait, cycle expiry) and say what to do next."""
    waited = (day - since).days if since else 0
    if state in ENDED and since is not None and waited > CYCLE_DAYS:
        state, reason = "due", ""
    if state == "second_invited" and waited > NO_RESPONSE_DAYS:
        state, reason = "outreach", "no response to two invitations"
    if state == "due":
        return ProtocolState("due", since, reason, "Send the first invitation", day, invitations, dnas)
    if state == "invited":
        if waited > NO_RESPONSE_DAYS:
            return ProtocolState("invited", since, "no response to the first invitation",
                                 "Send a second invitation", day, invitations, dnas)
        return ProtocolState("invited", since, "", "Wait for a reply",
                             since + timedelta(days=NO_RESPONSE_DAYS + 1) if since else None, invitations, dnas)
    if state == "dna_once":
        ready = since + timedelta(days=SECOND_INVITATION_DAYS) if since else day
        return ProtocolState("dna_once", since, "did not attend", "Send a second invitation", ready, invitations,
                             dnas)
    if state == "second_invited":
        return ProtocolState(state, since, "", "Wait for a reply",
                             since + timedelta(days=NO_RESPONSE_DAYS + 1) if since else None, invitations, dnas)
    if state in ("booked", "second_booked"):
        return ProtocolState(state, since, "", "Record whether they attended", since, invitations, dnas)
    if state == "outreach":
        return ProtocolState("outreach", since, reason or "no response to two invitations",
                             "Offer a home visit, a community venue or a third-sector partner", day, invitations, dnas)
    return ProtocolState(state, since, "", "None until the next check is due", None, invitations, dnas)
