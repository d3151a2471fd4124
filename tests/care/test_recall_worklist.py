"""Recall schedules and the ranked worklists on a small practice (``world.py``; DNA has also missed an
appointment), on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from parity.care import recall
from parity.care.contacts import histories, record_contact
from parity.care.worklist import effort, outreach_list, quick_info_gather, ranked
from parity.db import Database
from parity.ingest import load_extract
from parity.reports.results import ResultStore

from .world import ALL, AS_OF, BLOODS, DNA, MOST, PRACTICE, QUICK, write_practice


@pytest.fixture
def practice(any_db: Database, tmp_path: Path) -> Database:
    load_extract(any_db, write_practice(tmp_path / "x"))
    now = datetime(2026, 9, 30, 12)
    record_contact(any_db, DNA, PRACTICE, "invited", date(2026, 9, 1), now=now)
    record_contact(any_db, DNA, PRACTICE, "booked", date(2026, 9, 3), now=now, options=("quiet_space",))
    record_contact(any_db, DNA, PRACTICE, "did_not_attend", date(2026, 9, 10), now=now)
    return any_db


def _ranked(db: Database):
    wl = ResultStore(db).practice_worklist("phsmi", AS_OF, PRACTICE)
    return ranked(wl, histories(db, PRACTICE), AS_OF)


def test_effort_counts_appointments_not_checks() -> None:
    assert effort(["smoking"]) == effort(["alcohol", "smoking"]) == 0.25
    assert effort(["lipids", "glucose"]) == 1.0
    assert effort(["blood_pressure", "lipids", "smoking"]) == 2.0
    assert effort([]) == 0.0


def test_ranked_by_expected_gain_near_misses_first_each_with_why(practice: Database) -> None:
    df = _ranked(practice)
    assert list(df["nhs_number"]) == [QUICK, BLOODS, DNA, MOST]  # ALL has all six: nothing to gain
    gain = dict(zip(df["nhs_number"], df["expected_gain"], strict=True))
    assert gain[QUICK] == pytest.approx(0.9 / 0.25)
    assert gain[BLOODS] == pytest.approx(0.9)
    assert gain[DNA] == pytest.approx(0.45)  # one missed appointment halves the chance
    assert gain[MOST] == pytest.approx(0.45) and ALL not in gain
    action = dict(zip(df["nhs_number"], df["next_action"], strict=True))
    assert action[QUICK] == "Ask by phone or text (quick info gather)"
    assert action[BLOODS] == "Send the first invitation" and action[DNA] == "Send a second invitation"
    why = dict(zip(df["nhs_number"], df["why"], strict=True))
    assert why[QUICK] == "5 of 6 done; only smoking status missing: ask by phone or text"
    assert why[DNA] == ("4 of 6 done; missing lipids, glucose or HbA1c; missed 1 appointment; did not attend once; "
                        "prefers a quiet space to wait")


def test_quick_info_gather_lists_only_checks_needing_no_procedure(practice: Database) -> None:
    assert list(quick_info_gather(_ranked(practice))["nhs_number"]) == [QUICK]


def test_outreach_list_after_a_second_dna(practice: Database) -> None:
    assert outreach_list(_ranked(practice)).empty
    now = datetime(2026, 9, 30, 12)
    record_contact(practice, DNA, PRACTICE, "invited", date(2026, 9, 17), now=now)
    record_contact(practice, DNA, PRACTICE, "booked", date(2026, 9, 18), now=now)
    record_contact(practice, DNA, PRACTICE, "did_not_attend", date(2026, 9, 25), now=now)
    out = outreach_list(_ranked(practice))
    assert list(out["nhs_number"]) == [DNA]
    assert "outreach: did not attend twice" in out.iloc[0]["why"]


def test_birthday_month_recall_invites_those_with_checks_due(practice: Database) -> None:
    wl = ResultStore(practice).practice_worklist("phsmi", AS_OF, PRACTICE)
    october = recall.due_invitations(practice, wl, PRACTICE, "2026-10", AS_OF, ("bmi", "blood_pressure", "lipids",
                                                                                "glucose", "alcohol", "smoking"))
    by = {d.nhs_number: d for d in october}
    # Born in October: ALL has nothing due by 31 October (done in May); DNA is waiting for the 7 days, which
    # have passed by October, so gets a second invitation; MOST was born in February.
    assert set(by) == {QUICK, BLOODS, DNA}
    assert by[QUICK].checks_due == ("smoking",) and by[QUICK].invitation_number == 1
    assert by[DNA].invitation_number == 2 and by[DNA].options == ("quiet_space",)


def test_medication_review_schedule_moves_recall_to_the_review_month(practice: Database) -> None:
    core = ("bmi", "blood_pressure", "lipids", "glucose", "alcohol", "smoking")
    wl = ResultStore(practice).practice_worklist("phsmi", AS_OF, PRACTICE)
    assert recall.mode_of(practice, PRACTICE) == "birthday_month"
    recall.set_mode(practice, PRACTICE, "medication_review", "p1")
    assert recall.mode_of(practice, PRACTICE) == "medication_review"
    feb = {d.nhs_number for d in recall.due_invitations(practice, wl, PRACTICE, "2027-02", AS_OF, core)}
    assert feb == {MOST}  # reviewed in February; the others have no review, so keep their birthday month
    with pytest.raises(Exception, match="unknown recall schedule"):
        recall.set_mode(practice, PRACTICE, "whenever")


def test_quick_gaps_are_asked_by_phone_and_a_declined_one_is_asked_again_never_an_invitation() -> None:
    import pandas as pd

    core = ("bmi", "blood_pressure", "lipids", "glucose", "alcohol", "smoking")

    def person(nhs: str, **status: str) -> dict[str, object]:
        row: dict[str, object] = {"nhs_number": nhs, "checks_done": 0}
        for c in core:
            row[f"{c}_status"] = status.get(c, "done")
        row["checks_done"] = sum(row[f"{c}_status"] == "done" for c in core)
        return row

    wl = pd.DataFrame([person("9000000009"), person("9000000017", smoking="missing"),
                       person("9000000025", alcohol="declined"), person("9000000033", lipids="missing")])
    df = ranked(wl, {}, AS_OF, core).set_index("nhs_number")
    assert "9000000009" not in df.index  # all six: nothing to gain, not on the list
    assert df.loc["9000000017", "next_action"] == "Ask by phone or text (quick info gather)"
    assert bool(df.loc["9000000017", "quick_info"]) and "ask by phone or text" in df.loc["9000000017", "why"]
    assert df.loc["9000000025", "next_action"] == "Ask again at the next contact (declined before)"
    assert not bool(df.loc["9000000025", "quick_info"]) and "ask by phone" not in df.loc["9000000025", "why"]
    assert df.loc["9000000033", "next_action"] == "Send the first invitation"
    assert list(quick_info_gather(ranked(wl, {}, AS_OF, core))["nhs_number"]) == ["9000000017"]
