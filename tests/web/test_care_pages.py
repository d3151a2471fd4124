"""Recall and outreach pages: priorities ranked by expected gain, monthly invitations with letters and SMS,
the contact log on the patient page (the DNA protocol refuses steps it does not allow) and the passport.

Tests share one loaded database per backend, so each test that records contacts takes a patient with none
yet, born outside ``MONTH`` (the month whose invitations ``test_recall_...`` records), and never the patient
at the top of the priorities (the browser test's).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pandas as pd
from fastapi.testclient import TestClient
from webkit import AS_OF, TODAY, WebWorld, login

from parity.access import entries
from parity.care.contacts import histories, history

Q = f"?as_of={AS_OF.isoformat()}"
MONTH = "2026-12"  # the default month on the recall page: the one after TODAY
CORE_VISIT = ("bmi", "blood_pressure", "lipids", "glucose")


def csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def read_csv(body: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(body), dtype=str, encoding="utf-8-sig", keep_default_na=False)


def fresh_patient(client: TestClient, world: WebWorld) -> str:
    """A patient of the practice with no contacts, not born in MONTH, not first on the priorities."""
    state = client.app.state.parity
    wl = state.results.practice_worklist("phsmi", AS_OF, world.practice)
    with state.db.lock:
        taken = histories(state.db, world.practice)
        born = dict(state.db.execute("SELECT nhs_number, date_of_birth FROM patients WHERE nhs_number IN ("
                                     + ", ".join("?" for _ in wl.nhs_number) + ")", list(wl.nhs_number)))
    for nhs in list(wl.nhs_number)[1:]:
        if nhs not in taken and pd.Timestamp(born[nhs]).month != int(MONTH[5:]):
            return str(nhs)
    raise AssertionError("no patient without contacts left")


def post_contact(client: TestClient, nhs: str, kind: str, on: str = TODAY.isoformat(), **extra: object):  # noqa: ANN201
    token = csrf(client, f"/patients/{nhs}{Q}")
    return client.post(f"/patients/{nhs}/contacts{Q}",
                       data={"csrf_token": token, "kind": kind, "occurred_on": on, **extra})


def state_text(page: str) -> str:
    block = re.search(r'data-testid="protocol-state">(.*?)</p>', page, re.S).group(1)
    return re.search(r'<strong class="nhsuk-tag[^"]*">([^<]+)</strong>', block).group(1)


def test_priorities_are_ranked_with_why(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    r = client.get(f"/practices/{world.practice}/priorities{Q}")
    assert r.status_code == 200
    assert "How the ranking works" in r.text and "expected gain" in r.text
    assert 'aria-current="page">Ranked by expected gain<' in r.text
    ranks = [int(x) for x in re.findall(r'<td class="nhsuk-table__cell parity-num">(\d+)</td>\s*<td', r.text)]
    assert ranks[:5] == [1, 2, 3, 4, 5] and len(ranks) <= 100
    whys = re.findall(r'data-testid="why">([^<]*)<', r.text)
    assert whys and all(re.match(r"\d of 6 done", w) for w in whys)

    export = client.get(f"/practices/{world.practice}/priorities.csv{Q}")
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    frame = read_csv(export.content)
    assert list(frame.columns) == ["Rank", "NHS number", "Checks done", "Missing", "State", "Next action", "From",
                                   "Expected gain", "Why"]
    gains = frame["Expected gain"].astype(float).tolist()
    assert gains == sorted(gains, reverse=True) and gains[0] > 0
    assert frame["NHS number"].str.fullmatch(r"\d{10}").all()
    shown = int(re.search(r'data-testid="shown">Showing ([\d,]+) of', r.text).group(1).replace(",", ""))
    assert len(frame) == shown
    with client.app.state.parity.db.lock:
        last = entries(client.app.state.parity.db, limit=2, username="practice1")
    assert [e.action for e in last] == ["export_priorities_csv", "view_priorities"]
    for kind in ("quick", "outreach"):  # possibly empty lists
        assert client.get(f"/practices/{world.practice}/priorities{Q}&list={kind}").status_code == 200


def test_quick_list_only_lacks_alcohol_or_smoking(client: TestClient, world: WebWorld) -> None:
    # The practice user's practice may have nobody on it: an ICB user looks at the practice with most.
    results = client.app.state.parity.results
    status = results.worklist_of(results.status("phsmi", AS_OF), "phsmi", AS_OF)
    quick = (status[[f"{c}_status" for c in CORE_VISIT]] == "done").all(axis=1) & (
        (status["alcohol_status"] == "missing") | (status["smoking_status"] == "missing"))
    code = status[quick].groupby("practice_code").size().idxmax()
    login(client, "icb1")
    r = client.get(f"/practices/{code}/priorities{Q}&list=quick")
    assert r.status_code == 200 and 'aria-current="page">Quick info gather (phone or text)<' in r.text
    frame = read_csv(client.get(f"/practices/{code}/priorities.csv{Q}&list=quick").content)
    assert len(frame) > 0, "the test world should have patients missing only alcohol or smoking"
    wl = results.practice_worklist("phsmi", AS_OF, code).set_index("nhs_number")
    for nhs in frame["NHS number"]:
        row = wl.loc[nhs]
        assert all(row[f"{c}_status"] == "done" for c in CORE_VISIT), nhs
        assert row["alcohol_status"] != "done" or row["smoking_status"] != "done"
    assert frame["Why"].str.contains("ask by phone or text").all()
    assert client.get(f"/practices/{code}/priorities{Q}&list=outreach").status_code == 200
    assert client.get(f"/practices/{code}/priorities{Q}&list=nope").status_code == 400


def test_other_practices_are_refused(client: TestClient, world: WebWorld) -> None:
    login(client, "practice2")
    for path in ("priorities", "priorities.csv", "recall", f"recall/letters.pdf?month={MONTH}",
                 f"recall/sms.csv?month={MONTH}"):
        r = client.get(f"/practices/{world.practice}/{path}")
        assert r.status_code == 403, path
    token = csrf(client, f"/practices/{world.other_practice}/recall")
    r = client.post(f"/practices/{world.practice}/recall/invited", data={"csrf_token": token, "channel": "letter",
                                                                         "month": MONTH})
    assert r.status_code == 403
    # A PCN user sees the practice's priorities and recall, but cannot change its recall.
    client.cookies.clear()
    login(client, "pcn1")
    assert client.get(f"/practices/{world.practice}/priorities").status_code == 200
    page = client.get(f"/practices/{world.practice}/recall")
    assert page.status_code == 200 and "Change the schedule" not in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post(f"/practices/{world.practice}/recall/schedule", data={"csrf_token": token,
                                                                          "mode": "medication_review"})
    assert r.status_code == 403


def test_schedule_can_be_changed_by_the_practice(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    path = f"/practices/{world.practice}/recall?month={MONTH}"
    assert client.post(f"/practices/{world.practice}/recall/schedule",
                       data={"csrf_token": "forged", "mode": "medication_review"}).status_code == 403
    token = csrf(client, path)
    try:
        r = client.post(f"/practices/{world.practice}/recall/schedule",
                        data={"csrf_token": token, "mode": "medication_review", "month": MONTH})
        assert r.status_code == 303 and r.headers["location"].endswith("result=schedule")
        page = client.get(r.headers["location"])
        assert "With the annual medication review" in page.text and "has been changed" in page.text
    finally:
        client.post(f"/practices/{world.practice}/recall/schedule",
                    data={"csrf_token": token, "mode": "birthday_month", "month": MONTH})
    assert "Birthday month" in client.get(path).text


def test_recall_invitations_letters_sms_and_recording(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    page = client.get(f"/practices/{world.practice}/recall")
    assert page.status_code == 200 and f"due in {MONTH}" in page.text  # next month by default
    listed = re.findall(r'<tr class="nhsuk-table__row" data-nhs="(\d{10})">', page.text)
    assert listed, f"the test world should have invitations due in {MONTH}"
    assert set(re.findall(r'data-testid="invitation">([^<]+)<', page.text)) <= {"1st", "2nd"}

    letters = client.get(f"/practices/{world.practice}/recall/letters.pdf?month={MONTH}")
    assert letters.status_code == 200 and letters.content.startswith(b"%PDF")
    assert letters.headers["content-type"] == "application/pdf"
    sms = client.get(f"/practices/{world.practice}/recall/sms.csv?month={MONTH}")
    assert sms.status_code == 200 and sms.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(sms.content.decode("utf-8-sig"))))
    assert rows[0] == ["nhs_number", "message"]
    assert sorted(r[0] for r in rows[1:]) == sorted(listed)
    for _, message in rows[1:]:
        assert not re.search(r"\d{3}\s?\d{3}\s?\d{4}", message)
        assert not any(n in message.replace(" ", "") for n in listed)
    with client.app.state.parity.db.lock:
        actions = [e.action for e in entries(client.app.state.parity.db, limit=2, username="practice1")]
    assert actions == ["export_invitation_sms", "export_invitation_letters"]

    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post(f"/practices/{world.practice}/recall/invited",
                       data={"csrf_token": "forged", "channel": "letter", "month": MONTH}).status_code == 403
    refused = client.post(f"/practices/{world.practice}/recall/invited{Q}",
                          data={"csrf_token": token, "channel": "pigeon", "month": MONTH})
    assert refused.status_code == 422 and "Channel must be letter or sms" in refused.text
    r = client.post(f"/practices/{world.practice}/recall/invited{Q}",
                    data={"csrf_token": token, "channel": "letter", "month": MONTH})
    assert r.status_code == 303 and f"invited={len(listed)}" in r.headers["location"]
    done = client.get(r.headers["location"])
    assert f"Recorded {len(listed)} invitation" in done.text and "by letter" in done.text
    db = client.app.state.parity.db
    with db.lock:
        logs = {n: history(db, n) for n in listed}
    assert all(log and log[-1].kind == "invited" and log[-1].channel == "letter"
               and log[-1].occurred_on == TODAY for log in logs.values())
    # The same month again: only second invitations, and only where due (none of those just invited).
    again = re.findall(r'<tr class="nhsuk-table__row" data-nhs="(\d{10})">', done.text)
    assert not set(again) & set(listed)
    assert set(re.findall(r'data-testid="invitation">([^<]+)<', done.text)) <= {"2nd"}


def test_recording_contacts_moves_the_protocol_state(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    nhs = fresh_patient(client, world)
    page = client.get(f"/patients/{nhs}{Q}")
    assert state_text(page.text) == "Due an invitation" and "No contacts recorded yet." in page.text
    assert f'value="{TODAY.isoformat()}"' in page.text  # the date defaults to today
    r = post_contact(client, nhs, "invited", channel="letter")
    assert r.status_code == 303 and r.headers["location"] == f"/patients/{nhs}?measure=phsmi&as_of={AS_OF}#contacts"
    assert state_text(client.get(f"/patients/{nhs}{Q}").text) == "Invited"
    r = post_contact(client, nhs, "booked", channel="phone", options=["quiet_space", "later_appointment"],
                     note="prefers mornings")
    assert r.status_code == 303
    page = client.get(f"/patients/{nhs}{Q}").text
    assert state_text(page) == "Booked"
    log = re.search(r'id="contact-log">(.*?)</table>', page, re.S).group(1)
    assert "A quiet space to wait" in log and "prefers mornings" in log and "practice1" in log
    db = client.app.state.parity.db
    with db.lock:
        assert [c.kind for c in history(db, nhs)] == ["invited", "booked"]
        last = next(e for e in entries(db, limit=5, username="practice1") if e.action == "record_contact")
    assert (last.action, last.resource, last.outcome, last.detail) == ("record_contact", f"patient/{nhs}",
                                                                        "allowed", "booked")
    # The priorities show the new state for that patient.
    pr = client.get(f"/practices/{world.practice}/priorities.csv{Q}")
    frame = read_csv(pr.content).set_index("NHS number")
    assert frame.loc[nhs, "State"] == "Booked"


def test_a_second_invitation_straight_after_a_dna_is_refused(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    nhs = fresh_patient(client, world)
    assert post_contact(client, nhs, "booked", on=(TODAY - timedelta(days=10)).isoformat()).status_code == 303
    assert post_contact(client, nhs, "did_not_attend").status_code == 303
    r = post_contact(client, nhs, "invited", channel="letter")
    assert r.status_code == 422
    assert 'class="nhsuk-error-summary"' in r.text
    assert "A second invitation must be at least 7 days after the missed appointment" in r.text
    assert "<title>Error: Patient" in r.text
    assert nhs not in re.search(r'class="nhsuk-error-summary".*?</div>\s*</div>', r.text, re.S).group(0)
    db = client.app.state.parity.db
    with db.lock:
        assert [c.kind for c in history(db, nhs)] == ["booked", "did_not_attend"]
    assert state_text(r.text) == "Did not attend once"
    # A bad form is refused in place too, and nothing is stored.
    r = post_contact(client, nhs, "teleported")
    assert r.status_code == 422 and "Choose what happened" in r.text
    r = post_contact(client, nhs, "outreach", on="2099-01-01")
    assert r.status_code == 422 and "cannot be in the future" in r.text
    with db.lock:
        assert len(history(db, nhs)) == 2


def test_contacts_need_csrf_and_access(client: TestClient, world: WebWorld) -> None:
    login(client, "practice2")
    token = csrf(client, f"/practices/{world.other_practice}/worklist{Q}")
    r = client.post(f"/patients/{world.own_patient}/contacts{Q}",
                    data={"csrf_token": token, "kind": "invited", "occurred_on": TODAY.isoformat()})
    assert r.status_code == 403
    client.cookies.clear()
    login(client, "practice1")
    r = client.post(f"/patients/{world.own_patient}/contacts{Q}",
                    data={"csrf_token": "forged", "kind": "invited", "occurred_on": TODAY.isoformat()})
    assert r.status_code == 403


def test_patient_passport(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    page = client.get(f"/patients/{world.own_patient}{Q}")
    assert "Patient passport (web page)" in page.text and "Patient passport (PDF)" in page.text
    html = client.get(f"/patients/{world.own_patient}/passport.html{Q}")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert 'lang="en-GB"' in html.text and html.text.count("<h1") == 1
    pdf = client.get(f"/patients/{world.own_patient}/passport.pdf{Q}")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"].startswith("inline")
    with client.app.state.parity.db.lock:
        actions = [e.action for e in entries(client.app.state.parity.db, limit=2, username="practice1")]
    assert actions == ["view_passport_pdf", "view_passport_html"]
    client.cookies.clear()
    login(client, "programme1")
    for kind in ("html", "pdf"):
        assert client.get(f"/patients/{world.own_patient}/passport.{kind}{Q}").status_code == 403
