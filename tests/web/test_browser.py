"""The dashboard in a real browser: Debian's Chromium against the app served by uvicorn (``live_server``).

People sign in through the form, drill down region → ICB → sub-ICB → PCN → practice by the links in each page's
table, filter and export a worklist, open a patient, and see the charts drawn. Every request that does not go to
the live server is aborted and recorded: there must be none, and no console errors. The accessibility checks
are the basics a screen-reader or keyboard user relies on: one h1 and no skipped heading levels, labelled form
controls, captioned tables, named charts, ``lang``, a working skip link and a visible focus style.

Chromium is Debian's (``/usr/bin/chromium``), never a Playwright download, launched as in
``tests/test_static_assets.py``. ``PARITY_SCREENSHOTS=1`` also saves the region page to
``docs/dashboard-region.png`` (the README screenshot).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from webkit import PASSWORD, WebWorld, need

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard-region.png"
TIMEOUT = 20_000  # ms: the first chart waits for the Vega bundle (880 KiB) to load and compile
CHARTS = ("chart-checks", "chart-quarterly", "chart-monthly")


@pytest.fixture(scope="module")
def chromium(playwright: Any) -> Iterator[Any]:
    """Debian's Chromium, headless, shared by this module (pytest-playwright's session-wide Playwright)."""
    if not CHROMIUM.exists():
        need(f"{CHROMIUM} is not installed (apt-get install chromium)")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Watch:
    """What the pages of one browser context did."""

    base: str
    requested: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def assert_clean(self, allow_status: tuple[int, ...] = ()) -> None:
        assert self.blocked == [], f"requests left {self.base}: {self.blocked}"
        outside = [u for u in self.requested if not u.startswith((self.base + "/", "data:", "blob:"))]
        assert outside == [], outside
        # Chromium logs every 4xx/5xx response as a console error; an expected status is not an error.
        expected = tuple(f"status of {status} " for status in allow_status)
        errors = [e for e in self.errors
                  if not (e.startswith("Failed to load resource") and any(x in e for x in expected))]
        assert errors == [], errors
        failed = [f for f in self.failed if int(f.split()[0]) not in allow_status]
        assert failed == [], failed


def watched_page(chromium: Any, live_server: str, viewport: dict[str, int], contexts: list[Any]) -> tuple[Any, Watch]:
    """A fresh context (no cookies) of ``viewport`` that only reaches the server, and its ``Watch`` (requests,
    console errors, failed responses, blocked outside URLs); the context is added to ``contexts`` to close."""
    watch = Watch(live_server)
    context = chromium.new_context(viewport=viewport, accept_downloads=True)
    context.set_default_timeout(TIMEOUT)
    contexts.append(context)

    def route(r: Any) -> None:
        if r.request.url.startswith(live_server + "/"):
            r.continue_()
        else:
            watch.blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("request", lambda req: watch.requested.append(req.url))
    page.on("console", lambda msg: watch.errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc}"))
    page.on("response", lambda resp: watch.failed.append(f"{resp.status} {resp.url}")
            if resp.status >= 400 else None)
    return page, watch


@pytest.fixture
def browse(chromium: Any, live_server: str) -> Iterator[Any]:
    """``browse()`` → (page, watch): a fresh context (no cookies), 1280 px wide, that only reaches the server."""
    contexts = []

    def open_page() -> tuple[Any, Watch]:
        return watched_page(chromium, live_server, {"width": 1280, "height": 900}, contexts)

    yield open_page
    for context in contexts:
        context.close()


def sign_in(page: Any, base: str, username: str) -> None:
    """Through the form, by its labels, as a person would."""
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/orgs/|/caseload"))


def h1(page: Any) -> str:
    return page.locator("main h1").inner_text().strip()


def crumbs(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("nav.nhsuk-breadcrumb li").all_inner_texts()]


def charts_drawn(page: Any, ids: tuple[str, ...] = CHARTS) -> None:
    for chart_id in ids:
        page.wait_for_selector(f'#{chart_id}[data-rendered="true"]', timeout=TIMEOUT)
        assert page.locator(f"#{chart_id} svg").count() >= 1, chart_id


def child_link(page: Any, code: str | None = None) -> str:
    """The name of the link to the area ``code`` (default the first) in the "…s in …" table."""
    rows = page.locator("#children-table tbody tr")
    row = rows.filter(has_text=code).first if code else rows.first
    return row.get_by_role("link").inner_text().strip()


def test_drill_down_region_to_practice(browse: Any, live_server: str, duckdb_world: WebWorld) -> None:
    page, watch = browse()
    sign_in(page, live_server, "programme1")
    assert page.url.endswith("/orgs/region/Y59")
    assert h1(page) == "South East"
    register = page.get_by_test_id("register").inner_text()
    assert re.fullmatch(r"[1-9][\d,]*", register), register
    charts_drawn(page)
    if os.environ.get("PARITY_SCREENSHOTS") == "1":
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    trail = crumbs(page)
    # The test data covers one region, so the top of the trail is never called England (issue 11).
    assert trail == ["Loaded data: South East (not all of England)"]
    steps = [("icb", "ICB", None), ("sub_icb", "Sub-ICB", None), ("pcn", "PCN", duckdb_world.pcn),
             ("practice", "Practice", duckdb_world.practice)]
    parent = "South East"
    for level, label, code in steps:
        page.get_by_role("heading", name=f"{label}s in {parent}").wait_for()
        name = child_link(page, code)
        page.get_by_role("link", name=name, exact=True).click()
        page.wait_for_url(re.compile(rf"/orgs/{level}/{code or '[^/?]+'}\?"))
        assert h1(page) == name, level
        grown = crumbs(page)
        assert grown == [*trail, parent], (level, grown)
        assert int(page.get_by_test_id("register").inner_text().replace(",", "")) > 0
        trail, parent = grown, name
    # The practice page, as the programme team sees it: aggregates only, no worklist.
    assert page.get_by_role("link", name="Open the patient worklist").count() == 0
    charts_drawn(page)
    page.wait_for_load_state("networkidle")
    watch.assert_clean()
    assert any(u.endswith("/static/vendor/vega/vega-bundle.js") for u in watch.requested)


def test_worklist_filter_export_and_patient(browse: Any, live_server: str, duckdb_world: WebWorld,
                                            tmp_path: Path) -> None:
    page, watch = browse()
    sign_in(page, live_server, "practice1")
    assert page.url.endswith(f"/orgs/practice/{duckdb_world.practice}")
    charts_drawn(page)
    page.get_by_role("link", name="Open the patient worklist").click()
    page.wait_for_url(re.compile(rf"/practices/{duckdb_world.practice}/worklist"))
    assert h1(page).startswith("Patient worklist: ")

    near_miss = int(page.get_by_test_id("summary-near_miss").inner_text().replace(",", ""))
    assert near_miss > 0, "the test world should have near-misses"
    page.get_by_label("Checks done").select_option(label="Near-miss (4 or 5 of 6)")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"category=near_miss"))
    assert page.get_by_label("Checks done").input_value() == "near_miss"

    shown = re.search(r"Showing ([\d,]+) of ([\d,]+) patients", page.get_by_test_id("shown").inner_text())
    assert shown, page.get_by_test_id("shown").inner_text()
    n, total = (int(g.replace(",", "")) for g in shown.groups())
    assert n == near_miss and 0 < n < total
    checks = [c.strip() for c in page.locator("#worklist tbody tr td:nth-child(3)").all_inner_texts()]
    assert len(checks) == min(n, 100)
    assert set(checks) <= {"4/6", "5/6"}, checks

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV", exact=True).click()
    target = tmp_path / download.value.suggested_filename
    download.value.save_as(target)
    assert target.name == f"worklist-{duckdb_world.practice}-2026-09-30.csv"
    with target.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n
    assert {r["Checks done"] for r in rows} <= {"4", "5"}

    first = page.locator("#worklist tbody tr").first.get_by_role("link").inner_text().strip()
    page.get_by_role("link", name=first, exact=True).click()
    page.wait_for_url(re.compile(r"/patients/\d{10}\?"))
    assert h1(page).endswith(first)  # "Given FAMILY 943 476 5919" (the extract has names) or "Patient 943 …"
    assert page.get_by_role("heading", name=re.compile(r"^Checks as at \d+ \w+ \d{4}$")).is_visible()
    assert page.get_by_role("heading", name="Timeline", exact=True).is_visible()
    assert page.locator("#patient-checks tbody tr").count() == 6
    assert page.locator("#timeline tbody tr").count() >= 1
    page.wait_for_load_state("networkidle")
    watch.assert_clean()


# ------------------------------------------------------------------------------------------ accessibility

# Runs in the page: every basic failure as a message (an empty list passes).
AUDIT_JS = """() => {
  const problems = [];
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const named = (el) => {
    const label = el.getAttribute('aria-label');
    if (label && label.trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    return !!by && by.split(/\\s+/).every((id) => {
      const ref = document.getElementById(id);
      return ref && ref.textContent.trim();
    });
  };
  if (document.documentElement.lang !== 'en') problems.push('html lang is ' + document.documentElement.lang);
  if (!document.title.trim()) problems.push('no <title>');
  const h1s = document.querySelectorAll('h1');
  if (h1s.length !== 1) problems.push(h1s.length + ' h1 elements');
  let previous = 0;
  for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    const level = Number(h.tagName[1]);
    if (!h.textContent.trim()) problems.push('empty ' + h.tagName);
    if (level > previous + 1) {
      problems.push(`heading level skipped: h${previous} then h${level} "${h.textContent.trim()}"`);
    }
    previous = level;
  }
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    if (!(el.labels && el.labels.length) && !named(el)) problems.push('no label for ' + el.outerHTML.slice(0, 80));
  }
  for (const t of document.querySelectorAll('table')) {
    const caption = t.querySelector(':scope > caption');
    if (!(caption && caption.textContent.trim()) && !named(t)) problems.push('table without caption: #' + t.id);
  }
  for (const f of document.querySelectorAll('figure')) {
    const caption = f.querySelector(':scope > figcaption');
    if (!(caption && caption.textContent.trim()) && !named(f)) problems.push('figure without caption or name');
    const described = f.getAttribute('aria-describedby');
    if (f.querySelector('.parity-chart') && !(described && document.getElementById(described)
        && document.getElementById(described).textContent.trim())) problems.push('chart without description');
  }
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt')) problems.push('img without alt: ' + img.src);
  }
  for (const svg of document.querySelectorAll('svg')) {
    if (svg.closest('[aria-hidden="true"]') || ['presentation', 'none'].includes(svg.getAttribute('role'))) continue;
    if (svg.ownerSVGElement) continue;  // a nested svg belongs to its outer one
    const title = svg.querySelector(':scope > title');
    const figure = svg.closest('figure');
    const captioned = figure && (named(figure) || (figure.querySelector('figcaption') || {}).textContent);
    if (!named(svg) && !(title && title.textContent.trim()) && !captioned) {
      problems.push('svg without a name: ' + svg.outerHTML.slice(0, 80));
    }
  }
  for (const a of document.querySelectorAll('a[href], button')) {
    if (visible(a) && !a.textContent.trim() && !named(a)) problems.push('unnamed control: ' + a.outerHTML.slice(0, 80));
  }
  return problems;
}"""

FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  let shown = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== 'none';
  // NHS.UK checkboxes hide the input and draw the box (and its focus ring) on the label's ::before.
  if (!shown && el.labels && el.labels.length && ['checkbox', 'radio'].includes(el.type)) {
    const box = getComputedStyle(el.labels[0], '::before');
    shown = box.boxShadow !== 'none' || (box.outlineStyle !== 'none' && parseFloat(box.outlineWidth) > 0);
  }
  return {tag: el.tagName, id: el.id, text: (el.textContent || el.value || '').trim().slice(0, 60), shown};
}"""


def audit(page: Any) -> list[str]:
    return page.evaluate(AUDIT_JS)


def skip_link_works(page: Any) -> None:
    """From a freshly loaded page: Tab reaches the skip link first, Enter moves to the main content."""
    page.locator("body").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate(FOCUS_JS)
    assert focused and "Skip to main content" in focused["text"], focused
    assert focused["shown"], "the skip link has no visible focus style"
    page.keyboard.press("Enter")
    page.wait_for_function("location.hash === '#maincontent'")
    assert page.evaluate("document.activeElement.id") == "maincontent"
    assert page.evaluate("document.getElementById('maincontent').getBoundingClientRect().top") < 100


def test_accessibility_basics(browse: Any, live_server: str, duckdb_world: WebWorld) -> None:
    page, watch = browse()
    sign_in(page, live_server, "programme1")
    region = page.url
    charts_drawn(page)
    assert audit(page) == []
    skip_link_works(page)
    for view in ("variation", "checks"):
        page.goto(f"{live_server}/orgs/icb/{duckdb_world.icb}/{view}")
        page.wait_for_selector('.parity-chart[data-rendered="true"]')
        assert audit(page) == [], view

    page, watch2 = browse()
    sign_in(page, live_server, "practice1")
    page.goto(f"{live_server}/practices/{duckdb_world.practice}/worklist")
    assert audit(page) == []
    skip_link_works(page)
    # Keyboard only: Tab from the top of the page reaches the filter button, every stop visibly focused.
    page.goto(page.url)
    page.locator("body").focus()
    stops = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_JS)
        assert focused is not None, f"focus left the page after {stops}"
        stops.append(focused)
        assert focused["shown"], f"no visible focus style on {focused}"
        if focused["tag"] == "BUTTON" and focused["text"] == "Apply filters":
            break
    else:
        pytest.fail(f"40 Tab presses did not reach 'Apply filters': {[s['text'] for s in stops]}")
    assert [s["id"] for s in stops if s["tag"] == "SELECT"] == ["category", "due_status", "missing", "sort"]
    # The focused select is operable from the keyboard too.
    page.focus("#due_status")
    page.keyboard.press("ArrowDown")
    assert page.input_value("#due_status") == "overdue"

    page.goto(f"{live_server}/patients/{duckdb_world.own_patient}")
    assert audit(page) == []
    skip_link_works(page)
    page.wait_for_load_state("networkidle")
    for w in (watch, watch2):
        w.assert_clean()
    assert region.endswith("/orgs/region/Y59")


# ------------------------------------------------------------------------------------------ refused


# Trust users may open any practice's worklist (cut to their caseload), so theirs is refused at a patient outside it.
REFUSED = {
    "trust1": ("/patients/{w.other_patient}", "you can only see patients of your own organisation or caseload"),
    "practice2": ("/practices/{w.practice}/worklist", "you can only see patients of your own organisation"),
}


@pytest.mark.parametrize("username", sorted(REFUSED))
def test_refused_pages_are_a_helpful_403(browse: Any, live_server: str, duckdb_world: WebWorld,
                                         username: str) -> None:
    path, message = REFUSED[username]
    page, watch = browse()
    sign_in(page, live_server, username)
    response = page.goto(live_server + path.format(w=duckdb_world))
    assert response.status == 403
    assert h1(page) == "Forbidden"
    assert page.title() == "Forbidden – Parity"
    assert page.get_by_test_id("error-detail").inner_text() == message
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and 'File "' not in body and "Error" not in body
    assert audit(page) == []
    page.get_by_role("link", name="Go to your overview").click()
    page.wait_for_url(re.compile(r"/orgs/|/caseload"))
    watch.assert_clean(allow_status=(403,))


def test_trust_records_a_check_for_the_gp(browse: Any, live_server: str, duckdb_world: WebWorld) -> None:
    """A trust nurse finds the patient (NHS number and date of birth must match the record), fills in the one
    check template by its labels; a slip is refused in place, then the answers are checked and the check is
    queued for the practice with its letter."""
    from parity.db import open_database

    with open_database(duckdb_world.url) as db:
        born = db.execute("SELECT date_of_birth FROM patients WHERE nhs_number = ?", [duckdb_world.own_patient])[0][0]
    page, watch = browse()
    sign_in(page, live_server, "trust1")
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Record a check").click()
    assert h1(page) == "Record a physical health check"
    page.get_by_label("NHS number").fill(duckdb_world.own_patient)
    page.get_by_label("Date of birth").fill("1980-05-17" if born.isoformat() != "1980-05-17" else "1981-05-17")
    page.get_by_role("button", name="Find the patient").click()
    assert "does not match the record" in page.locator(".nhsuk-error-summary").inner_text()
    page.get_by_label("Date of birth").fill(born.isoformat())
    page.get_by_role("button", name="Find the patient").click()
    assert duckdb_world.practice in page.locator("#patient-card").inner_text()
    page.get_by_label("Date of the check").fill("2026-09-01")
    page.get_by_label("Performed by").fill("Sam Jones, RMN")
    page.locator('[id="blood_pressure.systolic"]').fill("400")  # a slip: out of the plausible range
    page.locator('[id="blood_pressure.diastolic"]').fill("85")
    page.get_by_label("Current smoker").check()
    page.get_by_role("button", name="Continue").click()

    summary = page.locator(".nhsuk-error-summary")
    assert "between 60 and 260" in summary.inner_text()
    summary.get_by_role("link").first.click()  # the error links to its field
    assert page.evaluate("document.activeElement.id") == "blood_pressure.systolic"
    page.locator('[id="blood_pressure.systolic"]').fill("150")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Check your answers before sending").wait_for()
    page.get_by_role("button", name="Send to the GP practice").click()

    page.wait_for_url(re.compile(r"/trust/checks/[0-9a-f-]+/v1\?sent=1$"))
    body = page.locator("main").inner_text()
    assert "Check recorded" in body and "150/85 mmHg" in body and "Current smoker" in body
    assert re.search(r"queued", body, re.IGNORECASE)
    href = page.get_by_role("link", name="Open the letter (PDF)").get_attribute("href")
    letter = page.request.get(live_server + href)  # same signed-in session as the page
    assert letter.ok and letter.body().startswith(b"%PDF")
    watch.assert_clean(allow_status=(422,))


# ------------------------------------------------------------------------------------------ recall and outreach


def test_practice_works_through_its_priorities(browse: Any, live_server: str, duckdb_world: WebWorld) -> None:
    """A practice user opens Priorities, takes the first patient due an invitation, records the invitation
    (letter) and then a booking with a patient-friendly option, and sees the state change on the patient page
    and back on the list."""
    page, watch = browse()
    sign_in(page, live_server, "practice1")
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Priorities", exact=True).click()
    page.wait_for_url(re.compile(rf"/practices/{duckdb_world.practice}/priorities$"))
    assert h1(page).startswith("Priorities: ")
    assert page.locator("#priorities tbody tr").count() >= 1
    assert audit(page) == []
    # Tests share the database: take the first patient nobody has contacted yet.
    row = page.locator("#priorities tbody tr").filter(has_text="Due an invitation").first
    first = row.get_by_role("link").inner_text().strip()
    assert re.fullmatch(r"\d{3} \d{3} \d{4}", first), first
    row.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/patients/\d{10}\?"))
    assert h1(page).endswith(first)  # "Given FAMILY 943 476 5919" (the extract has names) or "Patient 943 …"
    state = page.get_by_test_id("protocol-state").locator(".nhsuk-tag")
    assert state.inner_text().strip() == "Due an invitation"
    assert audit(page) == []

    page.get_by_label("Invited", exact=True).check()
    page.get_by_label("Channel").select_option(label="Letter")
    with page.expect_navigation():
        page.get_by_role("button", name="Record contact").click()
    assert page.url.endswith("#contacts")
    assert state.inner_text().strip() == "Invited"

    page.get_by_label("Booked", exact=True).check()
    page.get_by_label("Channel").select_option(label="Phone")
    page.get_by_label("A quiet space to wait").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Record contact").click()
    assert state.inner_text().strip() == "Booked"
    latest = page.locator("#contact-log tbody tr").first.inner_text()
    assert "Booked" in latest and "A quiet space to wait" in latest and "practice1" in latest
    assert page.locator("#contact-log tbody tr").count() == 2

    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Priorities", exact=True).click()
    page.wait_for_url(re.compile(r"/priorities$"))
    mine = page.locator("#priorities tbody tr").filter(has_text=first)
    assert mine.get_by_test_id("state").inner_text().strip() == "Booked"
    assert "prefers a quiet space to wait" in mine.get_by_test_id("why").inner_text()
    page.wait_for_load_state("networkidle")
    watch.assert_clean()
