"""Recall, contacts, worklists and the passport from the command line, in real subprocesses."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .world import DNA, PRACTICE, QUICK, write_practice


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parity.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("care-cli")
    env = {**os.environ, "PARITY_DATABASE_URL": str(tmp / "parity.duckdb"), "PARITY_TODAY": "2026-11-27"}
    loaded = _run(env, "load", str(write_practice(tmp / "extract")), "--no-precompute")
    assert loaded.returncode == 0, loaded.stderr
    return env


def test_worklist_ranked_and_quick_lists(env: dict[str, str]) -> None:
    out = _run(env, "worklist", "--practice", PRACTICE, "--as-of", "2026-09-30", "--format", "csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows[0]["nhs_number"] == QUICK and "ask by phone or text" in rows[0]["why"]
    quick = _run(env, "worklist", "--practice", PRACTICE, "--as-of", "2026-09-30", "--list", "quick", "--format",
                 "csv")
    assert [r["nhs_number"] for r in csv.DictReader(io.StringIO(quick.stdout))] == [QUICK]


def test_contacts_follow_the_protocol(env: dict[str, str]) -> None:
    first = _run(env, "contact", "add", DNA, "--practice", PRACTICE, "--kind", "invited", "--date", "2026-11-01",
                 "--channel", "letter")
    assert first.returncode == 0, first.stderr
    assert "now: Invited" in first.stdout
    refused = _run(env, "contact", "add", DNA, "--practice", PRACTICE, "--kind", "did_not_attend")
    assert refused.returncode == 2
    assert "does not allow 'did not attend'" in refused.stderr and DNA not in refused.stderr
    listed = _run(env, "contact", "list", DNA, "--format", "csv")
    assert listed.stdout.count("invited") == 1


def test_recall_schedule_letters_sms_and_marking_invited(env: dict[str, str], tmp_path: Path) -> None:
    assert "Birthday month" in _run(env, "recall", "schedule", "--practice", PRACTICE).stdout
    letters, sms = tmp_path / "letters.pdf", tmp_path / "sms.csv"
    out = _run(env, "recall", "due", "--practice", PRACTICE, "--month", "2026-10", "--as-of", "2026-09-30",
               "--letters", str(letters), "--sms", str(sms), "--format", "csv")
    assert out.returncode == 0, out.stderr
    due = [r["nhs_number"] for r in csv.DictReader(io.StringIO(out.stdout))]
    assert QUICK in due
    assert letters.read_bytes().startswith(b"%PDF")
    messages = list(csv.DictReader(io.StringIO(sms.read_text())))
    assert [m["nhs_number"] for m in messages] == due
    assert all(m["nhs_number"] not in m["message"] for m in messages)


def test_passport_pdf_and_html(env: dict[str, str], tmp_path: Path) -> None:
    pdf, html = tmp_path / "p.pdf", tmp_path / "p.html"
    assert _run(env, "passport", QUICK, "--out", str(pdf), "--as-of", "2026-09-30").returncode == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    assert _run(env, "passport", QUICK, "--out", str(html), "--as-of", "2026-09-30").returncode == 0
    assert 'lang="en-GB"' in html.read_text()
    bad = _run(env, "passport", QUICK, "--out", str(tmp_path / "p.doc"))
    assert bad.returncode == 2 and ".pdf or .html" in bad.stderr


def test_followup_findings_referrals_and_the_red_zone_measure(env: dict[str, str]) -> None:
    # Everyone at the practice had a BMI of 27 on 1 May 2026: a red-zone finding (weight management).
    def practice_row() -> dict[str, str]:
        out = _run(env, "followup", "measure", "--level", "practice", "--as-of", "2026-09-30", "--format", "csv")
        assert out.returncode == 0, out.stderr
        return next(r for r in csv.DictReader(io.StringIO(out.stdout)) if r["org_code"] == PRACTICE)

    before = practice_row()
    assert (before["findings"], before["findings_overdue"]) == ("5", "5")
    found = _run(env, "followup", "findings", "--practice", PRACTICE, "--as-of", "2026-09-30", "--overdue",
                 "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(found.stdout)))
    assert len(rows) == 5 and all("BMI" in r["finding_label"] for r in rows)
    opened = _run(env, "referral", "add", QUICK, "--practice", PRACTICE, "--intervention", "weight_management",
                  "--date", "2026-06-01")
    assert opened.returncode == 0, opened.stderr
    rid = opened.stdout.split()[1].rstrip(":")
    bad = _run(env, "referral", "add", QUICK, "--practice", PRACTICE, "--intervention", "weight_management",
               "--referral", rid, "--state", "offered", "--date", "2026-06-02")
    assert bad.returncode == 2 and QUICK not in bad.stderr
    after = practice_row()
    assert (after["findings_followed_up"], after["findings_overdue"]) == ("1", "4")
    assert "offered" in _run(env, "referral", "list", QUICK, "--format", "csv").stdout
