"""Patient passport (M9) and invitations (M5): content read back from the PDFs with pdftotext."""

from __future__ import annotations

import csv
import io
import logging
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import date
from html.parser import HTMLParser
from typing import Any

import nhs_number
import pytest

from conftest import need
from parity.care.documents import (
    SMS_MAX,
    Invitation,
    invitation_from_record,
    passport_context,
    render_invitation_html,
    render_invitation_pdf,
    render_passport_html,
    render_passport_pdf,
    sms_export_csv,
    sms_length,
    sms_text,
)
from parity.codes import load_codelist
from parity.db import Database
from parity.db.bulk import insert_rows
from parity.reports.timeline import PatientRecord, patient_timeline
from parity.rules import load_measure

AS_OF = date(2025, 3, 31)
CHECKED = date(2024, 11, 15)  # every result below was recorded on this day
PRACTICE = "Riverside Medical Centre"
PRACTICE_CODE = "H85001"


def _test_range_numbers(count: int) -> list[str]:
    """Fixed synthetic NHS numbers from the test range (9000000000-9999999999) with valid mod-11 check
    digits (nhs-number package), so runs are repeatable; a base whose check digit would be 10 is skipped."""
    out = []
    for base in range(900000100, 900001000):
        check = nhs_number.calculate_checksum(str(base))
        if check is not None and check < 10:
            out.append(f"{base}{check}")
        if len(out) == count:
            return out
    raise AssertionError("not enough test-range NHS numbers")


NHS = _test_range_numbers(3)
assert all(nhs_number.is_valid(n) for n in NHS)


def _code(cluster: str, term_word: str = "") -> int:
    """The first code of ``cluster`` (whose term contains ``term_word``, when given)."""
    return next(c.code for c in load_codelist(cluster).codes if term_word.lower() in c.term.lower())


def _event(code: int, value: float | None = None, unit: str | None = None, day: date = CHECKED) -> dict[str, Any]:
    return {"nhs_number": NHS[0], "date": day, "snomed_code": code, "value": value, "unit": unit,
            "recorded_by": PRACTICE_CODE}


def _load(db: Database, ethnicity: str | None = "A") -> PatientRecord:
    """On the SMI register at H85001; BMI 31, BP 150/85, HbA1c 44, never smoked; no alcohol or lipids."""
    insert_rows(db, "patients", [{"nhs_number": NHS[0], "date_of_birth": date(1979, 3, 7), "sex": "female",
                                  "ethnicity": ethnicity, "lsoa": None, "imd_decile": None, "date_of_death": None}])
    insert_rows(db, "registrations", [{"nhs_number": NHS[0], "practice_code": PRACTICE_CODE,
                                       "start_date": date(2010, 1, 1), "end_date": None}])
    insert_rows(db, "events", [
        _event(_code("MH_COD", "schizophrenia"), day=date(2015, 5, 1)),
        _event(_code("BMIVAL_COD", "body mass index"), 31.0, "kg/m2"),
        _event(_code("SYSBP_COD", "sitting systolic"), 150.0, "mm[Hg]"),
        _event(_code("DIABP_COD", "sitting diastolic"), 85.0, "mm[Hg]"),
        _event(_code("IFCCHBAM_COD"), 44.0, "mmol/mol"),
        _event(_code("NSMOK_COD", "never smoked tobacco")),
    ])
    return patient_timeline(db, load_measure("phsmi"), NHS[0], AS_OF, "2022-23")


def _flat(text: str) -> str:
    """Whitespace collapsed, so phrases wrapped over lines by the layout still match."""
    return " ".join(text.split())


def _pdftotext(pdf: bytes) -> str:
    if shutil.which("pdftotext") is None:
        need("pdftotext is not installed (apt-get install poppler-utils)")
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def _pages(pdf: bytes) -> int:
    if shutil.which("pdfinfo") is None:
        need("pdfinfo is not installed (apt-get install poppler-utils)")
    out = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    return int(re.search(r"^Pages:\s+(\d+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]


@pytest.fixture
def record(duckdb_db: Database) -> PatientRecord:
    return _load(duckdb_db)


# -- passport --------------------------------------------------------------------------------------


def test_context_interprets_each_check_against_its_target(record: PatientRecord) -> None:
    assert record.on_register is True
    ctx = passport_context(record, as_of=AS_OF, practice_name=PRACTICE)
    checks = {c["id"]: c for c in ctx["checks"]}
    assert list(checks) == ["bmi", "blood_pressure", "lipids", "glucose", "alcohol", "smoking"]
    assert checks["bmi"]["result"] == "Your BMI was 31."
    assert checks["bmi"]["meaning"] == "Your BMI is higher than the target of 18.5 to 24.9."
    assert checks["blood_pressure"]["result"] == "Your blood pressure was 150/85."
    assert checks["blood_pressure"]["meaning"] == "Your blood pressure is higher than the target of under 140/90."
    assert checks["blood_pressure"]["next"] == "Your GP practice will talk to you about this."
    assert checks["glucose"]["result"] == "Your HbA1c was 44 mmol/mol."
    assert checks["glucose"]["short"] == "Higher than target"
    assert checks["smoking"]["meaning"] == "This meets the target of not smoking."
    for missing in ("lipids", "alcohol"):
        assert checks[missing]["result"] == "Not done in the last 12 months"
        assert checks[missing]["due"] == "Now"
    assert checks["bmi"]["date"] == "15 November 2024"
    assert checks["bmi"]["due"] == "15 November 2025"  # CheckSummary.due: first day not covered
    assert (ctx["done_count"], ctx["total"]) == (4, 6)


def test_bmi_target_is_lower_for_south_asian_and_chinese_people(duckdb_db: Database) -> None:
    rec = _load(duckdb_db, ethnicity="J")  # Pakistani (NHS ethnic category J)
    bmi = passport_context(rec, as_of=AS_OF, practice_name=PRACTICE)["checks"][0]
    assert bmi["meaning"] == "Your BMI is higher than the target of 18.5 to 22.9."


def test_declined_check_is_said_plainly(duckdb_db: Database) -> None:
    insert_rows(duckdb_db, "events", [_event(_code("CHOLDEC_COD"))])
    rec = _load(duckdb_db)
    lipids = next(c for c in passport_context(rec, as_of=AS_OF, practice_name=PRACTICE)["checks"]
                   if c["id"] == "lipids")
    assert lipids["result"] == "You said no to this check"


@pytest.fixture
def passport_text(record: PatientRecord) -> str:
    pdf = render_passport_pdf(record, as_of=AS_OF, practice_name=PRACTICE)
    assert pdf.startswith(b"%PDF-")
    return _flat(_pdftotext(pdf))


def test_passport_pdf_explains_every_check(passport_text: str) -> None:
    for phrase in (
        "BMI means body mass index",
        "how hard your heart pumps blood round your body",
        "Cholesterol is a kind of fat in your blood",
        "average blood sugar over the last 2 to 3 months",
        "how much alcohol you drink",
        "whether you smoke",
    ):
        assert phrase in passport_text


def test_passport_pdf_results_meaning_and_next_steps(passport_text: str) -> None:
    assert "Your blood pressure was 150/85" in passport_text
    assert "higher than the target of under 140/90" in passport_text
    assert "Your BMI is higher than the target of 18.5 to 24.9" in passport_text
    assert "Your HbA1c is higher than the target of under 42" in passport_text
    assert "Not done in the last 12 months" in passport_text
    assert "You have never smoked" in passport_text
    assert "15 November 2025" in passport_text  # next due
    assert "Questions to ask" in passport_text
    assert f"contact your GP practice: {PRACTICE}" in passport_text
    assert "Page 1 of" in passport_text


class _Outline(HTMLParser):
    """Headings, tags and attributes of an HTML page, for structural checks."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_passport_html_is_accessible_and_standalone(record: PatientRecord) -> None:
    html = render_passport_html(record, as_of=AS_OF, practice_name=PRACTICE)
    page = _Outline()
    page.feed(html)
    tags = [t for t, _ in page.tags]
    assert page.tags[0] == ("html", {"lang": "en-GB"})
    headings = [int(t[1]) for t in tags if re.fullmatch(r"h[1-6]", t)]
    assert headings.count(1) == 1 and headings[0] == 1
    assert all(b - a <= 1 for a, b in zip(headings, headings[1:], strict=False))  # no level skipped
    assert "table" in tags and "caption" in tags
    assert tags.index("caption") == tags.index("table") + 1
    assert all(attrs.get("scope") in ("col", "row") for t, attrs in page.tags if t == "th")
    assert "script" not in tags and "link" not in tags and "img" not in tags
    assert "http://" not in html and "https://" not in html
    assert "user-scalable" not in html and "maximum-scale" not in html  # zoom never disabled


def test_free_text_is_escaped(record: PatientRecord) -> None:
    html = render_passport_html(record, as_of=AS_OF, practice_name="<script>x()</script> & Co",
                                patient_name="<b>Jane</b>")
    assert "<script>" not in html and "&lt;script&gt;x()&lt;/script&gt; &amp; Co" in html
    assert "<b>Jane</b>" not in html and "&lt;b&gt;Jane&lt;/b&gt;" in html
    letters = render_invitation_html([Invitation(NHS[0], ("<i>BMI</i>",), given_name="<img src=x>",
                                                 reply_instructions="Call <b>now</b>")],
                                     practice_name="A & B", practice_code="H85001", generated_on=AS_OF)
    assert "<img" not in letters and "<i>BMI</i>" not in letters and "<b>now</b>" not in letters
    assert "&lt;i&gt;BMI&lt;/i&gt;" in letters and "A &amp; B" in letters


def _weasyprint_messages(caplog: pytest.LogCaptureFixture, render: Callable[[], bytes]) -> list[str]:
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        render()
    return [r.getMessage() for r in caplog.records if r.name.startswith("weasyprint")]


def test_weasyprint_reports_nothing(record: PatientRecord, caplog: pytest.LogCaptureFixture) -> None:
    # weasyprint logs (not warns) ignored CSS and refused URLs: either means the page is not as designed.
    assert _weasyprint_messages(caplog, lambda: render_passport_pdf(record, as_of=AS_OF, practice_name=PRACTICE)) == []
    assert _weasyprint_messages(caplog, lambda: render_invitation_pdf(
        [Invitation(NHS[0], ("BMI",))], practice_name=PRACTICE, practice_code=PRACTICE_CODE, generated_on=AS_OF)) == []


# -- invitations -----------------------------------------------------------------------------------


def _batch(record: PatientRecord) -> list[Invitation]:
    return [
        invitation_from_record(record),
        Invitation(NHS[1], ("Weight (BMI)", "Blood pressure"), number=2, family_name="Okafor", given_name="Ada",
                   reply_instructions="Reply to this letter or call 01234 567890."),
        # The longest letter: all six checks, more options and long instructions still fit on one page.
        Invitation(NHS[2], ("Weight (BMI)", "Blood pressure", "Cholesterol", "Blood sugar", "Alcohol", "Smoking"),
                   options=("an appointment at home", "a longer appointment",
                            "the first or last appointment of the day", "a quiet room to wait in",
                            "the same nurse each time"),
                   reply_instructions="Phone 01234 567890 between 8am and 6pm, Monday to Friday. " * 3),
    ]


def test_invitation_pdf_has_one_page_per_patient(record: PatientRecord) -> None:
    invitations = _batch(record)
    pdf = render_invitation_pdf(invitations, practice_name=PRACTICE, practice_code=PRACTICE_CODE,
                                generated_on=date(2025, 4, 1))
    assert _pages(pdf) == 3
    pages = [_flat(p) for p in _pdftotext(pdf).split("\f") if p.strip()]
    assert len(pages) == 3
    first, second, third = pages
    assert "Dear patient" in first and "NHS number: " + f"{NHS[0][:3]} {NHS[0][3:6]} {NHS[0][6:]}" in first
    assert "Cholesterol" in first and "Alcohol" in first  # the two checks not done
    assert "Blood pressure" not in first
    assert "Dear Ada Okafor" in second and "Reminder: your yearly physical health check" in second
    assert "Weight (BMI)" in second and "Reply to this letter or call 01234 567890." in second
    assert "an appointment at home" in third and "later appointment times" not in third
    assert all(PRACTICE in p and "1 April 2025" in p and PRACTICE_CODE in p for p in pages)


def test_sms_texts_are_short_and_carry_nothing_identifying(record: PatientRecord) -> None:
    invitations = _batch(record)
    long_name = "The Very Long Named Health Centre and Surgery of St Mary’s – Upper Riverside Branch Practice"
    for inv in invitations:
        for name in (PRACTICE, long_name):
            text = sms_text(inv, practice_name=name)
            assert sms_length(text) <= SMS_MAX and len(text) <= SMS_MAX  # GSM characters only, 2 segments
            assert "yearly physical health check" in text
            assert inv.nhs_number not in text and "Okafor" not in text and "Ada" not in text
            assert not re.search(r"\d{3}\s?\d{3}\s?\d{4}", text)
            assert not any(word in text for word in ("BMI", "Blood pressure", "Smoking", "mental"))
    assert "later appointment times" in sms_text(invitations[0], practice_name=PRACTICE)
    assert "wrote to you" in sms_text(invitations[1], practice_name=PRACTICE)


def test_sms_export_csv(record: PatientRecord) -> None:
    invitations = _batch(record)
    rows = list(csv.DictReader(io.StringIO(sms_export_csv(invitations, PRACTICE))))
    assert [r["nhs_number"] for r in rows] == NHS
    assert all(r["message"] == sms_text(i, practice_name=PRACTICE) for r, i in zip(rows, invitations, strict=True))
    assert list(rows[0]) == ["nhs_number", "message"]


def test_invitation_number_is_first_or_second() -> None:
    with pytest.raises(ValueError, match="1 .*or 2"):
        Invitation(NHS[0], number=3)


def test_passport_names_the_patient_and_the_practice_phone_and_the_day_it_was_made(record: PatientRecord) -> None:
    from parity.care.people import practice_phone

    phone = practice_phone("K81075")  # Farnham Road Practice, Slough: ODS epraccur 2023-02
    assert phone == "01753 520917"
    assert practice_phone("ZZZ999") is None and practice_phone(None) is None
    html = render_passport_html(record, as_of=AS_OF, practice_name=PRACTICE, patient_name="Alex EXAMPLE",
                                made_on=date(2026, 11, 22), practice_phone=phone)
    assert "<strong>Name:</strong> Alex EXAMPLE" in html
    assert "phone <strong>01753 520917</strong>" in html
    assert f"Made on 22 November 2026. It shows results recorded up to {AS_OF.day} {AS_OF:%B %Y}" in html
    assert '<meta name="dcterms.created" content="2026-11-22">' in html
    # Without a number or a made-on day: no phone text, and made on the reporting date.
    plain = render_passport_html(record, as_of=AS_OF, practice_name=PRACTICE)
    assert "phone" not in plain.split("<h2>Who to contact</h2>")[1] and f"Made on {AS_OF.day} {AS_OF:%B %Y}" in plain
