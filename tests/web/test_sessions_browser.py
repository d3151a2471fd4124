"""A working session for each user, in Debian's Chromium at the laptop and desktop widths people use.

Every page is opened as each role it is for, at 1366x768 and 1920x1080: the page must not be wider than the
window (``document.documentElement.scrollWidth <= innerWidth``), charts must draw, the basic accessibility
audit of ``test_browser`` must pass, and there must be no console error, no failed request and no request
leaving the server. Then what each user came to do:

- practice recall: Priorities holds exactly the people with a check missing (never someone with all six,
  worked out here from the engine's per-patient status, not from the Priorities code), people missing only
  alcohol or smoking are asked by phone, the worklist finds a patient by NHS number, follow-up is grouped
  by person and by intervention;
- trust nurse: lands on the caseload, starts a check from a caseload row (the form opens with the record's
  details), fills it in, checks the answers and sends it (confirmation panel, stored once);
- ICB analyst: the league table of every practice in the ICB matches the practices in the data.

One live server (``live_server``, session-wide) and one Chromium for the module; a browser context per role
and width. ``PARITY_SCREENSHOTS=1`` also saves the README pictures (``docs/*.png``) from these runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import AUDIT_JS, TIMEOUT, Watch, chromium, watched_page  # noqa: F401 - chromium is a fixture
from test_programme_browser import published_world  # noqa: F401 - a fixture: the published series imported
from webkit import AS_OF, PASSWORD, WebWorld

from parity.db import open_database
from parity.reports.results import ResultStore

DOCS = Path(__file__).resolve().parents[2] / "docs"
WIDTHS = {"1366": {"width": 1366, "height": 768}, "1920": {"width": 1920, "height": 1080}}
Q = f"?as_of={AS_OF.isoformat()}"
CORE = ("bmi", "blood_pressure", "lipids", "glucose", "alcohol", "smoking")


def pages_for(role: str, w: WebWorld) -> list[str]:
    """Every page the role works with (the pages its navigation and its tables lead to)."""
    p, pcn = w.practice, w.pcn
    common = ["/published", "/assessments"]
    return {
        "practice1": [f"/orgs/practice/{p}{Q}", f"/orgs/practice/{p}/inequalities{Q}", f"/practices/{p}/worklist{Q}",
                      f"/practices/{p}/priorities{Q}", f"/practices/{p}/priorities{Q}&list=quick",
                      f"/practices/{p}/priorities{Q}&list=outreach", f"/practices/{p}/recall{Q}",
                      f"/practices/{p}/followup{Q}&show=all", f"/practices/{p}/followup{Q}&show=all&group=intervention",
                      f"/practices/{p}/messages", f"/patients/{w.own_patient}{Q}",
                      f"/patients/{w.own_patient}/passport.html{Q}", *common],
        "pcn1": [f"/orgs/pcn/{pcn}{Q}", f"/orgs/pcn/{pcn}/variation{Q}", f"/orgs/pcn/{pcn}/checks{Q}",
                 f"/orgs/pcn/{pcn}/practices{Q}", f"/practices/{p}/worklist{Q}", f"/practices/{p}/followup{Q}"],
        "icb1": [f"/orgs/icb/{w.icb}{Q}", f"/orgs/icb/{w.icb}/variation{Q}", f"/orgs/icb/{w.icb}/checks{Q}",
                 f"/orgs/icb/{w.icb}/practices{Q}", f"/orgs/icb/{w.icb}/inequalities{Q}",
                 f"/practices/{w.other_practice}/worklist{Q}", "/programme/trajectory", "/programme/initiatives",
                 "/programme/highlight", *common],
        "trust1": ["/caseload", "/trust/checks/new", f"/trust/checks/new?nhs_number={w.caseload_patient}",
                   "/trust/checks", "/trust/upload", f"/patients/{w.caseload_patient}{Q}"],
        "programme1": [f"/orgs/region/Y59{Q}", f"/orgs/region/Y59/checks{Q}", f"/orgs/region/Y59/practices{Q}",
                       f"/orgs/region/Y59/variation{Q}", "/programme/trajectory", "/programme/initiatives",
                       "/programme/highlight", *common],
        "admin1": ["/admin/users", "/admin/audit"],
    }[role]


@pytest.fixture
def session(chromium: Any, live_server: str) -> Iterator[Any]:  # noqa: F811
    """``session(username, width)`` -> (page, watch): a fresh context of that size, signed in through the form."""
    contexts = []

    def open_session(username: str, width: str) -> tuple[Any, Watch]:
        page, watch = watched_page(chromium, live_server, WIDTHS[width], contexts)
        page.goto(f"{live_server}/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/orgs/|/caseload"))
        return page, watch

    yield open_session
    for context in contexts:
        context.close()


def settle(page: Any) -> None:
    """Wait for the page's requests and for every chart on it to be drawn."""
    page.wait_for_load_state("networkidle")
    for chart in page.locator(".parity-chart").all():
        chart_id = chart.get_attribute("id")
        page.wait_for_selector(f'#{chart_id}[data-rendered="true"]', timeout=TIMEOUT)


def overflow(page: Any) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def shot(page: Any, name: str, height: int = 1400) -> None:
    """With ``PARITY_SCREENSHOTS=1``, the top ``height`` pixels of the page as ``docs/<name>`` (README)."""
    if os.environ.get("PARITY_SCREENSHOTS") == "1":
        width, full = page.evaluate("[window.innerWidth, document.documentElement.scrollHeight]")
        page.screenshot(path=str(DOCS / name), full_page=True,
                        clip={"x": 0, "y": 0, "width": width, "height": min(height, full)})


# ------------------------------------------------------------------------------------- every page, every width

@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("role", ["practice1", "pcn1", "icb1", "trust1", "programme1", "admin1"])
def test_every_page_fits_the_window(session: Any, live_server: str, published_world: WebWorld,  # noqa: F811
                                    role: str, width: str) -> None:
    page, watch = session(role, width)
    wide: list[str] = []
    problems: list[str] = []
    for path in pages_for(role, published_world):
        response = page.goto(live_server + path)
        assert response is not None and response.status == 200, (path, response and response.status)
        settle(page)
        scroll, inner = overflow(page)
        if scroll > inner:
            wide.append(f"{path}: {scroll}px in a {inner}px window")
        if "/passport.html" not in path:  # the standalone passport is en-GB and tested in tests/care
            problems += [f"{path}: {p}" for p in page.evaluate(AUDIT_JS)]
    assert wide == [], wide
    assert problems == [], problems  # one h1, headings in order, labels, captions, named charts
    watch.assert_clean()


# -------------------------------------------------------------------------------------------- practice recall

def _status(world: WebWorld):  # noqa: ANN202 - the engine's per-patient status frame for the practice
    with open_database(world.url) as db:
        status = ResultStore(db).status("phsmi", AS_OF)
    mine = status[(status["practice_code"] == world.practice) & status["in_denominator"].fillna(False).astype(bool)]
    return mine.assign(nhs_number=mine["nhs_number"].astype(str))


def _listed(page: Any, base: str, path: str) -> list[dict[str, str]]:
    """Every row of a paged Priorities list: NHS number, next action and missing checks."""
    rows: list[dict[str, str]] = []
    page.goto(base + path)
    while True:
        settle(page)
        for tr in page.locator("#priorities tbody tr[data-nhs]").all():
            cells = tr.locator("td").all_inner_texts()
            rows.append({"nhs": tr.get_attribute("data-nhs"), "missing": cells[3], "state": cells[4].strip(),
                         "action": cells[5], "why": cells[6]})
        following = page.locator("a.nhsuk-pagination__link--next")
        if following.count() == 0:
            return rows
        following.click()


@pytest.mark.parametrize("width", ["1366"])
def test_practice_recall_session(session: Any, live_server: str, duckdb_world: WebWorld, width: str) -> None:
    page, watch = session("practice1", width)
    status = _status(duckdb_world)
    done = (status[[f"{c}_status" for c in CORE]] == "done")
    all_six = set(status.loc[done.all(axis=1), "nhs_number"])
    missing = {r.nhs_number: [c for c in CORE if getattr(r, f"{c}_status") != "done"]
               for r in status.itertuples() if r.nhs_number not in all_six}
    assert all_six and missing, "the test world should have people with and without all six"

    # Priorities: everyone with a check missing, nobody with all six.
    rows = _listed(page, live_server, f"/practices/{duckdb_world.practice}/priorities{Q}")
    listed = [r["nhs"] for r in rows]
    assert len(listed) == len(set(listed))
    assert set(listed) & all_six == set()
    assert set(listed) == set(missing)
    # Missing only alcohol or smoking (none declined): ask by phone, not an invitation.
    quick = {n for n, cs in missing.items() if set(cs) <= {"alcohol", "smoking"}
             and not (status.set_index("nhs_number").loc[n, [f"{c}_status" for c in cs]] == "declined").any()}
    quick_only = {n for n, cs in missing.items() if set(cs) <= {"alcohol", "smoking"}}
    assert quick_only, "the test world should have people missing only alcohol or smoking"
    # Other tests share the database and may have booked someone: the quick actions replace an invitation,
    # so they apply while the protocol would otherwise invite (not once the person is booked or in outreach).
    inviting = {"Due an invitation", "Invited", "Did not attend once", "Second invitation sent"}
    for r in rows:
        if r["state"] not in inviting:
            assert not r["action"].startswith("Send"), r
            continue
        if r["nhs"] in quick:
            assert r["action"].startswith("Ask by phone or text"), r
        elif r["nhs"] in quick_only:  # declined before: asked again, still no invitation
            assert r["action"].startswith("Ask again at the next contact"), r
        else:
            assert not r["action"].startswith("Ask"), r
        # The "why" never contradicts the action: it advises a phone call only where the action is one.
        assert ("ask by phone" in r["why"]) == r["action"].startswith("Ask by phone"), r
    quick_list = _listed(page, live_server, f"/practices/{duckdb_world.practice}/priorities{Q}&list=quick")
    assert {r["nhs"] for r in quick_list} == quick
    page.goto(f"{live_server}/practices/{duckdb_world.practice}/priorities{Q}")
    settle(page)
    shot(page, "priorities.png")

    # The worklist finds one patient by NHS number (typed with spaces, as read out on the phone).
    target = sorted(missing)[0]
    page.goto(f"{live_server}/practices/{duckdb_world.practice}/worklist{Q}")
    settle(page)
    page.get_by_label("NHS number").fill(f"{target[:3]} {target[3:6]} {target[6:]}")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"search="))
    settle(page)
    assert page.locator("#worklist tbody tr[data-nhs]").evaluate_all("rs => rs.map(r => r.dataset.nhs)") == [target]
    due = page.locator(f'#worklist tr[data-nhs="{target}"] [data-testid="due"]').inner_text()
    assert due.startswith("Overdue") and ("since" in due or "never recorded" in due), due

    # Follow-up: a person once, with all their findings; the same findings counted by intervention.
    page.goto(f"{live_server}/practices/{duckdb_world.practice}/followup{Q}&show=all")
    settle(page)
    people = page.locator("tbody.parity-person").evaluate_all("bs => bs.map(b => b.dataset.person)")
    findings = page.locator("#followup tr[data-finding]").count()
    assert len(people) == len(set(people)) > 0 and findings >= len(people)
    page.get_by_role("link", name="By intervention").click()
    page.wait_for_url(re.compile(r"group=intervention"))
    settle(page)
    counts = [int(t.replace(",", "")) for t in page.locator("#by-intervention tbody tr td:nth-child(3)")
              .all_inner_texts()]
    assert sum(counts) == findings
    page.wait_for_load_state("networkidle")
    watch.assert_clean()


# ---------------------------------------------------------------------------------------------- trust nurse

@pytest.mark.parametrize("width", ["1366"])
def test_trust_check_from_the_caseload_is_prefilled_reviewed_and_sent(session: Any, live_server: str,
                                                                     duckdb_world: WebWorld, width: str) -> None:
    page, watch = session("trust1", width)
    assert page.url.endswith("/caseload")  # the trust lands on its caseload
    settle(page)
    row = page.locator("#worklist tbody tr[data-nhs]").first
    nhs = row.get_attribute("data-nhs")
    practice = row.get_by_test_id("practice").inner_text()
    assert re.search(r"[A-Z]\d{5}", practice), practice  # the practice column
    with open_database(duckdb_world.url) as db:
        born = db.execute("SELECT date_of_birth FROM patients WHERE nhs_number = ?", [nhs])[0][0]
        registered = db.execute("SELECT practice_code FROM registrations WHERE nhs_number = ? AND end_date IS NULL",
                                [nhs])[0][0]
        from parity.interop import checks as trust_checks

        before = len(trust_checks.checks(db))
    row.get_by_role("link", name=re.compile("Record a check")).click()
    page.wait_for_url(re.compile(rf"/trust/checks/new\?nhs_number={nhs}"))
    card = page.locator("#patient-card").inner_text()
    assert f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}" in card and f"{born.day} {born:%b %Y}" in card and registered in card
    assert page.locator('input[name="date_of_birth"]').input_value() == born.isoformat()
    assert "SNOMED" not in page.content()
    shot(page, "trust-check-form.png", 1600)

    page.get_by_label("Performed by").fill("Sam Jones, RMN")
    page.locator('[id="blood_pressure.systolic"]').fill("150")
    page.locator('[id="blood_pressure.diastolic"]').fill("85")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Check your answers before sending").wait_for()
    assert "150/85 mmHg" in page.locator("#review-summary").inner_text()
    with open_database(duckdb_world.url) as db:
        assert len(trust_checks.checks(db)) == before  # reviewing sends nothing
    page.get_by_role("button", name="Send to the GP practice").click()
    page.wait_for_url(re.compile(r"/trust/checks/[0-9a-f-]{36}/v1\?sent=1"))
    panel = page.locator("#sent-panel").inner_text()
    assert "Check recorded" in panel and registered in panel
    with open_database(duckdb_world.url) as db:
        made = trust_checks.checks(db)
    assert len(made) == before + 1 and made[0].nhs_number == nhs and made[0].practice_code == registered
    page.wait_for_load_state("networkidle")
    watch.assert_clean()


# ------------------------------------------------------------------------------------------------ ICB analyst

@pytest.mark.parametrize("width", ["1920"])
def test_icb_league_table_has_every_practice(session: Any, live_server: str, duckdb_world: WebWorld,
                                             width: str) -> None:
    page, watch = session("icb1", width)
    with open_database(duckdb_world.url) as db:
        frames = ResultStore(db, structure="2022-23").aggregates("phsmi", AS_OF)  # as settings_for
    # Walk each practice up its parents (practice -> PCN -> sub-ICB -> ICB) in the aggregate frames.
    parent = {(level, str(r["org_code"])): str(r["parent_code"]) for level, f in frames.items()
              for r in f.to_dict("records") if r.get("parent_code")}
    in_data = set()
    for code in frames["practice"]["org_code"].astype(str):
        up = code
        for level in ("practice", "pcn", "sub_icb"):
            up = parent.get((level, up), "")
        if up == duckdb_world.icb:
            in_data.add(code)
    assert in_data
    page.goto(f"{live_server}/orgs/icb/{duckdb_world.icb}{Q}")
    settle(page)
    compared = page.locator("#comparison-table tbody th").all_inner_texts()
    assert any("(Region)" in c for c in compared) and any("(England)" in c for c in compared), compared
    page.get_by_role("link", name="Practices", exact=True).click()
    page.wait_for_url(re.compile(r"/practices\?"))
    settle(page)
    codes = page.locator("#league-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.practice)")
    assert set(codes) == in_data and len(codes) == len(in_data)
    rates = [float(t.rstrip("%")) for t in page.get_by_test_id("rate").all_inner_texts() if t != "–"]
    assert rates == sorted(rates, reverse=True)
    assert page.locator("#chart-practices-funnel svg").count() >= 1
    shot(page, "league-table.png", 1700)
    page.wait_for_load_state("networkidle")
    watch.assert_clean()
