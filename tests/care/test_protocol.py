"""The DNA protocol, one timeline per rule: what the contact log says, and where the patient is.

Written as the practice would tell it: "invited on 1 March, booked, did not attend on 10 March…".
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from parity.care.contacts import Contact, history, record_contact
from parity.care.protocol import TRANSITIONS, next_state, state_on
from parity.db import Database
from parity.errors import ConfigurationError

NHS = "9000000009"
PRACTICE = "J82155"
D = date(2026, 3, 1)


def log(*steps: tuple[int, str]) -> list[Contact]:
    """Contacts from (days after 1 March 2026, kind)."""
    return [Contact(f"c{i}", NHS, PRACTICE, D + timedelta(days=day), kind, None, (), "", "t", datetime(2026, 1, 1))
            for i, (day, kind) in enumerate(steps)]


def at(day: int, *steps: tuple[int, str]):
    return state_on(log(*steps), D + timedelta(days=day))


def test_nobody_contacted_is_due_a_first_invitation() -> None:
    s = at(0)
    assert (s.state, s.next_action) == ("due", "Send the first invitation")


def test_invited_then_no_reply_for_28_days_makes_a_second_invitation_due() -> None:
    assert at(28, (0, "invited")).next_action == "Wait for a reply"
    s = at(29, (0, "invited"))
    assert (s.state, s.reason, s.next_action) == ("invited", "no response to the first invitation",
                                                  "Send a second invitation")


def test_after_a_dna_the_second_invitation_waits_seven_days() -> None:
    s = at(10, (0, "invited"), (5, "booked"), (10, "did_not_attend"))
    assert (s.state, s.dnas, s.action_from) == ("dna_once", 1, D + timedelta(days=17))
    too_soon = log((0, "invited"), (5, "booked"), (10, "did_not_attend"), (16, "invited"))
    with pytest.raises(ConfigurationError, match="at least 7 days"):
        next_state(too_soon[:-1], too_soon[-1])
    ok = log((0, "invited"), (5, "booked"), (10, "did_not_attend"), (17, "invited"))
    assert next_state(ok[:-1], ok[-1]) == "second_invited"


def test_a_second_dna_sends_the_patient_to_outreach_with_the_reason() -> None:
    s = at(40, (0, "invited"), (5, "booked"), (10, "did_not_attend"), (17, "invited"), (20, "booked"),
           (30, "did_not_attend"))
    assert (s.state, s.reason, s.dnas, s.invitations) == ("outreach", "did not attend twice", 2, 2)
    assert "home visit" in s.next_action


def test_no_reply_to_the_second_invitation_sends_the_patient_to_outreach() -> None:
    steps = ((0, "invited"), (29, "invited"))
    assert at(57, *steps).state == "second_invited"
    s = at(58, *steps)
    assert (s.state, s.reason) == ("outreach", "no response to two invitations")


def test_unable_to_contact_goes_straight_to_outreach() -> None:
    s = at(3, (0, "invited"), (2, "unable_to_contact"))
    assert (s.state, s.reason) == ("outreach", "unable to contact")


def test_outreach_visits_and_attendance_end_the_cycle() -> None:
    steps = ((0, "invited"), (2, "unable_to_contact"), (9, "outreach"), (12, "attended"))
    assert at(12, *steps).state == "attended"
    assert at(12 + 365, *steps).state == "attended"
    assert at(12 + 366, *steps).state == "due"  # a year on, due again


def test_declined_is_a_choice_not_a_reason_for_outreach() -> None:
    s = at(5, (0, "invited"), (3, "declined"))
    assert (s.state, s.next_action) == ("declined", "None until the next check is due")


def test_a_new_invitation_after_an_ended_cycle_starts_counting_again() -> None:
    s = at(400, (0, "invited"), (5, "booked"), (10, "did_not_attend"), (17, "invited"), (20, "attended"),
           (390, "invited"))
    assert (s.state, s.invitations, s.dnas) == ("invited", 1, 0)


@pytest.mark.parametrize(("steps", "kind"), [
    ((), "did_not_attend"),                                  # nothing booked to miss
    (((0, "invited"),), "did_not_attend"),
    (((0, "invited"), (5, "booked"), (10, "attended")), "did_not_attend"),
    (((0, "invited"), (3, "declined")), "outreach"),
])
def test_steps_the_protocol_does_not_allow_are_refused(steps: tuple, kind: str) -> None:
    contacts = log(*steps, (20, kind))
    with pytest.raises(ConfigurationError, match="does not allow"):
        next_state(contacts[:-1], contacts[-1])


def test_every_transition_leads_to_a_known_state() -> None:
    from parity.care.protocol import STATES

    assert {s for s, _ in TRANSITIONS} <= set(STATES) and set(TRANSITIONS.values()) <= set(STATES)


def test_the_log_is_append_only_and_checked_on_both_databases(any_db: Database) -> None:
    now = datetime(2026, 4, 1, 9, 0)
    record_contact(any_db, NHS, PRACTICE, "invited", D, channel="letter", username="p1", now=now)
    record_contact(any_db, NHS, PRACTICE, "booked", D + timedelta(days=5), channel="phone", now=now,
                   options=("later_appointment", "quiet_space"))
    record_contact(any_db, NHS, PRACTICE, "did_not_attend", D + timedelta(days=10), now=now)
    with pytest.raises(ConfigurationError, match="at least 7 days"):
        record_contact(any_db, NHS, PRACTICE, "invited", D + timedelta(days=12), now=now)
    with pytest.raises(ConfigurationError, match="future"):
        record_contact(any_db, NHS, PRACTICE, "invited", date(2026, 4, 2), now=now)
    with pytest.raises(ConfigurationError, match="unknown option"):
        record_contact(any_db, NHS, PRACTICE, "preferences", D, options=("tea",), now=now)
    kinds = [c.kind for c in history(any_db, NHS)]
    assert kinds == ["invited", "booked", "did_not_attend"]  # refused steps stored nothing
    assert state_on(history(any_db, NHS), date(2026, 3, 31)).state == "dna_once"
    assert history(any_db, NHS)[1].options == ("later_appointment", "quiet_space")
