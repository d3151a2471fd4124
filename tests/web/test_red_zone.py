"""The red-zone follow-up measure on the dashboard: the figures each organisation page shows are the
measure's, computed independently here from the findings list, and a referral moves them."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from webkit import AS_OF, WebWorld, login

from parity.care.referrals import record_referral
from parity.care.service import followup_findings
from parity.db import open_database

Q = f"?as_of={AS_OF.isoformat()}"


def _card(html: str, testid: str) -> str:
    return re.search(rf'data-testid="{testid}">([^<]+)<', html).group(1).strip()


def test_practice_and_icb_pages_show_red_zone_follow_up(client: TestClient, world: WebWorld) -> None:
    login(client, "icb1")
    with open_database(world.url, create=False) as db:
        found = followup_findings(db, AS_OF)
        practices = db.execute("SELECT practice_code FROM practices WHERE icb_code = ? AND structure = '2022-23'",
                               [world.icb])
    in_icb = found[found["practice_code"].isin({p[0] for p in practices})]
    page = client.get(f"/orgs/icb/{world.icb}{Q}").text
    assert _card(page, "red-findings") == f"{len(in_icb):,}"
    assert _card(page, "red-overdue") == f"{int(in_icb['overdue'].sum()):,}"
    mine = found[found["practice_code"] == world.practice]
    practice_page = client.get(f"/orgs/practice/{world.practice}{Q}").text
    assert len(mine) > 0 and _card(practice_page, "red-findings") == f"{len(mine):,}"
    assert "Findings without follow-up" in page


def test_a_referral_within_three_months_counts_as_follow_up(client: TestClient, world: WebWorld) -> None:
    login(client, "practice1")
    with open_database(world.url, create=False) as db:
        found = followup_findings(db, AS_OF, practice_codes=[world.practice])
        overdue = found[found["overdue"]].iloc[0]
        before = int(found["overdue"].sum())
        record_referral(db, overdue["nhs_number"], world.practice, overdue["intervention_id"], "offered", "practice1",
                        at=overdue["finding_date"] + timedelta(days=10))
    page = client.get(f"/orgs/practice/{world.practice}{Q}").text
    assert _card(page, "red-overdue") == f"{before - 1:,}"
