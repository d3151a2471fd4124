"""Follow-up of red-zone findings: the practice's follow-up list (and CSV) matches the findings computed here,
"Offer" records a referral, the patient page records and moves referrals on, and refused steps store nothing.

Tests share one loaded database per backend: each test records referrals only for patients it picks (ones
with no referral yet), and ``test_red_zone`` works its expectations out at run time.
"""

from __future__ import annotations

import io
import re

import pandas as pd
from fastapi.testclient import TestClient
from webkit import AS_OF, TODAY, WebWorld, login

from parity.access import entries
from parity.care.referrals import referrals
from parity.care.service import followup_findings

Q = f"?as_of={AS_OF.isoformat()}"
ROW = re.compile(r'<tr class="nhsuk-table__row" data-nhs="(\d{10})" data-finding="([^"]+)">(.*?)</tr>', re.S)


def csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:300]
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def findings(client: TestClient, practice: str, as_of=AS_OF) -> pd.DataFrame:  # noqa: ANN001
    state = client.app.state.parity
    return followup_findings(state.db, as_of, practice_codes=[practice], results=state.results)


def referral_count(client: TestClient, nhs: str) -> int:
    db = client.app.state.parity.db
    with db.lock:
        return len(referrals(db, nhs_number=nhs))


def rows(html: str) -> dict[tuple[str, str], str]:
    return {(nhs, fid): body for nhs, fid, body in ROW.findall(html)}


def state_of(body: str) -> str:
    cell = re.search(r'data-testid="referral-state">(.*?)</td>', body, re.S).group(1)
    return re.search(r'<strong class="nhsuk-tag[^"]*">([^<]+)</strong>', cell).group(1)


def unreferred(client: TestClient, found: pd.DataFrame) -> pd.DataFrame:
    """Findings of patients with no referral recorded at all (safe for a test to record one)."""
    db = client.app.state.parity.db
    with db.lock:
        taken = {r.nhs_number for r in referrals(db)}
    return found[~found["nhs_number"].isin(taken) & found["referral_state"].isna()]


def test_followup_page_lists_the_overdue_findings(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    found = findings(client, world.practice)
    r = client.get(f"/practices/{world.practice}/followup{Q}")
    assert r.status_code == 200
    assert "Lester tool and NICE thresholds" in r.text and 'aria-current="page">Overdue' in r.text
    assert f'href="/practices/{world.practice}/followup"' in r.text  # the practice nav entry
    overdue = found[found["overdue"]]
    assert len(overdue) > 0, "the test world should have overdue findings"
    listed = rows(r.text)
    assert set(listed) == set(zip(overdue["nhs_number"], overdue["finding_id"], strict=True))
    assert all("Overdue" in body for body in listed.values())
    assert f'href="/patients/{overdue["nhs_number"].iloc[0]}?as_of={AS_OF}#referrals"' in r.text

    every = client.get(f"/practices/{world.practice}/followup{Q}&show=all").text
    assert set(rows(every)) == set(zip(found["nhs_number"], found["finding_id"], strict=True))
    # Grouped by person: each person once, their findings together, people with an overdue finding first.
    people: dict[str, bool] = {}
    for (nhs, _), body in rows(every).items():
        people[nhs] = people.get(nhs, False) or "Overdue" in body
    order = list(people.values())
    assert order == sorted(order, reverse=True)
    seen = [nhs for nhs, _ in rows(every)]
    runs = [nhs for i, nhs in enumerate(seen) if i == 0 or seen[i - 1] != nhs]
    assert len(runs) == len(set(runs))  # a person's findings are next to each other
    assert every.count('data-person="') == len(people) == found["nhs_number"].nunique()
    open_ = client.get(f"/practices/{world.practice}/followup{Q}&show=open").text
    assert len(rows(open_)) == int((~found["followed_up"]).sum())

    export = client.get(f"/practices/{world.practice}/followup.csv{Q}")
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    frame = pd.read_csv(io.BytesIO(export.content), dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert list(frame.columns) == ["NHS number", "Finding", "Value", "Date", "Intervention", "Referral",
                                   "Followed up within 3 months", "Overdue"]
    assert len(frame) == len(overdue) and (frame["Overdue"] == "yes").all()
    assert frame["NHS number"].str.fullmatch(r"\d{10}").all()
    db = client.app.state.parity.db
    with db.lock:
        last = entries(db, limit=2, username="practice1")
    assert [e.action for e in last] == ["export_followup_csv", "view_followup"]
    assert client.get(f"/practices/{world.practice}/followup{Q}&show=nope").status_code == 400


def test_offer_records_a_referral_and_follows_the_finding_up(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    # On TODAY, a finding less than 3 months old and not followed up: an offer today follows it up.
    found = unreferred(client, findings(client, world.practice, TODAY))
    fresh = found[~found["followed_up"] & ~found["overdue"]]
    assert len(fresh) > 0, "the test world should have findings less than 3 months old on TODAY"
    pick, as_of = fresh.iloc[0], TODAY
    nhs, fid = str(pick["nhs_number"]), str(pick["finding_id"])
    path = f"/practices/{world.practice}/followup?show=all&as_of={as_of}"
    page = client.get(path).text
    body = rows(page)[(nhs, fid)]
    assert state_of(body) == "None" and ">Offer<" in body
    form = re.search(rf'<form method="post" action="(/patients/{nhs}/referrals[^"]*)"', body).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)
    next_ = re.search(r'name="next" value="([^"]+)"', body).group(1).replace("&amp;", "&")
    r = client.post(form.replace("&amp;", "&"), data={"csrf_token": token, "intervention_id": pick["intervention_id"],
                                                      "state": "offered", "referral_id": "new", "next": next_})
    assert r.status_code == 303 and r.headers["location"] == path
    after = rows(client.get(path).text)[(nhs, fid)]
    assert state_of(after) == "Offered" and ">Offer<" not in after
    db = client.app.state.parity.db
    with db.lock:
        made = referrals(db, nhs_number=nhs)
        last = next(e for e in entries(db, limit=5, username="practice1") if e.action == "record_referral")
    assert [(m.state, m.intervention_id, m.practice_code) for m in made] == [
        ("offered", pick["intervention_id"], world.practice)]
    assert made[0].opened_at.date() == TODAY
    assert (last.resource, last.outcome, last.detail) == (f"patient/{nhs}", "allowed",
                                                          f"{pick['intervention_id']} offered")
    now = findings(client, world.practice, as_of).set_index(["nhs_number", "finding_id"]).loc[(nhs, fid)]
    assert now["referral_state"] == "offered" and bool(now["followed_up"]) and not bool(now["overdue"])
    assert 'data-testid="followed-up">yes<' in after
    # A next that is not a follow-up page of this site is ignored.
    patient = f"/patients/{nhs}{Q}"
    r = client.post(f"/patients/{nhs}/referrals{Q}", data={
        "csrf_token": csrf(client, patient), "referral_id": made[0].referral_id, "state": "accepted",
        "next": "https://evil.example/practices/x"})
    assert r.status_code == 303 and r.headers["location"] == f"/patients/{nhs}?measure=phsmi&as_of={AS_OF}#referrals"


def test_patient_page_moves_a_referral_on_and_refuses_bad_steps(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    pick = unreferred(client, findings(client, world.practice)).iloc[-1]
    nhs, iid = str(pick["nhs_number"]), str(pick["intervention_id"])
    patient = f"/patients/{nhs}{Q}"
    page = client.get(patient).text
    section = page[page.index('id="referrals"'):]
    assert "Findings and referrals" in page and pick["finding_label"] in section
    assert "No referrals recorded yet." in section and 'id="referral-form"' in section
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    # Completed straight away is not a step the referral rules allow: 422, the reason, nothing stored.
    r = client.post(f"/patients/{nhs}/referrals{Q}", data={"csrf_token": token, "intervention_id": iid,
                                                           "state": "completed", "referral_id": "new"})
    assert r.status_code == 422 and 'class="nhsuk-error-summary"' in r.text
    assert "Invalid referral transition new -&gt; completed" in r.text and "<title>Error: Patient" in r.text
    summary = re.search(r'class="nhsuk-error-summary".*?</div>\s*</div>', r.text, re.S).group(0)
    assert nhs not in summary
    assert referral_count(client, nhs) == 0
    r = client.post(f"/patients/{nhs}/referrals{Q}", data={"csrf_token": token, "intervention_id": "",
                                                           "state": "offered"})
    assert r.status_code == 422 and "Choose an intervention" in r.text and referral_count(client, nhs) == 0

    r = client.post(f"/patients/{nhs}/referrals{Q}", data={"csrf_token": token, "intervention_id": iid,
                                                           "state": "offered", "referral_id": "new",
                                                           "note": "leaflet given"})
    assert r.status_code == 303 and r.headers["location"] == f"/patients/{nhs}?measure=phsmi&as_of={AS_OF}#referrals"
    page = client.get(patient).text
    rid = re.search(r'<option value="([0-9a-f]{32})"', page).group(1)
    r = client.post(f"/patients/{nhs}/referrals{Q}", data={"csrf_token": token, "intervention_id": iid,
                                                           "state": "accepted", "referral_id": rid})
    assert r.status_code == 303
    r = client.post(f"/patients/{nhs}/referrals{Q}", data={"csrf_token": token, "intervention_id": iid,
                                                           "state": "offered", "referral_id": rid})
    assert r.status_code == 422 and "allowed: completed, declined" in r.text
    r = client.post(f"/patients/{nhs}/referrals{Q}", data={"csrf_token": token, "intervention_id": iid,
                                                           "state": "completed", "referral_id": rid})
    assert r.status_code == 303
    db = client.app.state.parity.db
    with db.lock:
        (made,) = referrals(db, nhs_number=nhs)
    assert made.state == "completed" and [s.state for s in made.history] == ["offered", "accepted", "completed"]
    assert made.history[0].note == "leaflet given" and made.history[0].username == "practice1"
    section = client.get(patient).text
    section = section[section.index('id="referral-list"'):]
    assert "leaflet given" in section and "Completed" in section
    assert f'<option value="{rid}"' not in section  # a completed referral cannot move on


def test_followup_access_and_csrf(client: TestClient, world: WebWorld) -> None:
    login(client, "practice2")
    for path in ("followup", "followup.csv"):
        assert client.get(f"/practices/{world.practice}/{path}{Q}").status_code == 403, path
    token = csrf(client, f"/practices/{world.other_practice}/followup{Q}")
    r = client.post(f"/patients/{world.own_patient}/referrals{Q}",
                    data={"csrf_token": token, "intervention_id": "bp_review", "state": "offered"})
    assert r.status_code == 403
    client.cookies.clear()
    login(client, "programme1")
    home = client.get("/").headers["location"]
    token = csrf(client, home)
    assert client.get(f"/practices/{world.practice}/followup{Q}").status_code == 403
    before = referral_count(client, world.own_patient)
    r = client.post(f"/patients/{world.own_patient}/referrals{Q}",
                    data={"csrf_token": token, "intervention_id": "bp_review", "state": "offered"})
    assert r.status_code == 403
    client.cookies.clear()
    login(client, "practice1")
    r = client.post(f"/patients/{world.own_patient}/referrals{Q}",
                    data={"csrf_token": "forged", "intervention_id": "bp_review", "state": "offered"})
    assert r.status_code == 403
    assert referral_count(client, world.own_patient) == before
