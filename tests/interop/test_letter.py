"""The trust-to-GP PDF letter: content, order and escaping, read back from the PDF with pdftotext."""

from __future__ import annotations

import logging
import shutil
import subprocess
from datetime import date, datetime

import pytest

from conftest import need
from parity.interop.letters import (
    format_date,
    format_nhs_number,
    format_patient_name,
    render_letter_html,
    render_letter_pdf,
)
from parity.interop.record import CheckRecord, record_from_form
from parity.rules.template import load_template

GENERATED = datetime(2026, 11, 27, 9, 30)
NARRATIVE = "Seen in clinic. <script>alert('x')</script> & keen to stop smoking."

# Synthetic patient: 9000000009 is in the NHS test range with a valid mod-11 check digit.
FORM = {
    "nhs_number": "9000000009",
    "date_of_birth": "1979-03-07",
    "family_name": "Smith",
    "given_name": "Jane",
    "practice_code": "H85001",
    "performed_on": "2026-11-24",
    "performed_by": "Alex Morgan, Physical Health Nurse",
    "bmi.weight": "70",
    "bmi.height": "175",
    "blood_pressure.systolic": "150",
    "blood_pressure.diastolic": "85",
    "lipids.total_cholesterol": "4.2",
    "glucose.hba1c": "38",
    "alcohol.status": "declined",
    "alcohol.reason": "did not want to discuss",
    "smoking.smoking_status": "77176002",
    "narrative": NARRATIVE,
    "follow_up": "Repeat BP in 4 weeks.",
}


def _record(**changes: str) -> CheckRecord:
    return record_from_form(load_template(), {**FORM, **changes}, trust_code="RX2", created_by="nurse",
                            today=date(2026, 11, 27))


def _render(record: CheckRecord, kind: str = "html") -> str | bytes:
    fn = render_letter_html if kind == "html" else render_letter_pdf
    return fn(record, load_template(), practice_name="Riverside Medical Centre",
              trust_name="Sussex Partnership NHS Foundation Trust", generated_at=GENERATED)


@pytest.fixture(scope="module")
def pdf_text() -> str:
    if shutil.which("pdftotext") is None:
        need("pdftotext is not installed (apt-get install poppler-utils)")
    pdf = _render(_record(), "pdf")
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF-")
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def test_summary_table_comes_first(pdf_text: str) -> None:
    summary = pdf_text.index("Summary of checks")
    header = next(line for line in pdf_text.splitlines() if "Check" in line and "Action needed" in line)
    for column in ("Check", "Result", "Date", "Status", "Action needed"):
        assert column in header
    assert summary < pdf_text.index(header) < pdf_text.index("Abnormal findings") < pdf_text.index("Narrative")
    assert pdf_text.index("Abnormal findings") < pdf_text.index("Recommended follow-up")
    assert pdf_text.index("Recommended follow-up") < pdf_text.index("Narrative") < pdf_text.index(
        "Check carried out by")


@pytest.mark.parametrize(("check", "result", "status"), [
    ("Weight and BMI", "Weight 70.0 kg", "Done"),
    ("Blood pressure", "150/85 mmHg", "Done"),
    ("Lipids", "Total cholesterol 4.2", "Done"),
    ("Glucose or HbA1c", "HbA1c 38", "Done"),
    ("Alcohol", "Declined", "Declined"),
    ("Smoking status", "Current smoker", "Done"),
])
def test_each_core_check_has_a_row(pdf_text: str, check: str, result: str, status: str) -> None:
    # A row's first line: the check's first word (a long label may wrap), its result, date and status.
    row = next(line for line in pdf_text.splitlines() if line.strip().startswith(check.split()[0]) and result in line)
    assert result in row
    assert status in row.split(result, 1)[1]
    assert "24-Nov-2026" in row


def test_identification_and_header(pdf_text: str) -> None:
    assert "SMITH, Jane" in pdf_text
    assert "900 000 0009" in pdf_text
    assert "07-Mar-1979" in pdf_text
    assert "Version 1" in pdf_text
    assert "27-Nov-2026" in pdf_text
    assert "Sussex Partnership NHS Foundation Trust" in pdf_text and "RX2" in pdf_text
    assert "Riverside Medical Centre" in pdf_text and "H85001" in pdf_text
    assert pdf_text.index("900 000 0009") < pdf_text.index("Summary of checks")


def test_core_count_findings_and_follow_up(pdf_text: str) -> None:
    assert "Core checks completed: 5 of 6" in pdf_text
    findings = pdf_text[pdf_text.index("Abnormal findings"):pdf_text.index("Recommended follow-up")]
    assert "Systolic blood pressure above 140 mmHg" in findings
    assert "Current smoker" in findings
    follow_up = " ".join(pdf_text[pdf_text.index("Recommended follow-up"):pdf_text.index("Narrative")].split())
    assert "refer to the NHS stop smoking service" in follow_up
    assert "Blood pressure review: repeat reading" in follow_up
    assert "Alcohol (declined)" in follow_up
    assert "Repeat BP in 4 weeks." in follow_up
    carried = pdf_text[pdf_text.index("Check carried out by"):]
    assert "Alex Morgan, Physical Health Nurse" in carried


def test_flagged_rows_say_action_needed_in_words(pdf_text: str) -> None:
    table = pdf_text[pdf_text.index("Summary of checks"):pdf_text.index("Core checks completed")]
    # The column heading once, then one worded flag per abnormal check (blood pressure, smoking):
    # the highlight must survive greyscale printing, so it cannot be colour alone.
    assert table.count("Action needed") == 3


def test_footer_pages_and_coded_note(pdf_text: str) -> None:
    assert "Page 1 of" in pdf_text
    assert "structured data (SNOMED CT)" in pdf_text
    assert "<script>alert('x')</script>" in pdf_text  # shown as text, not run or dropped


def test_weasyprint_reports_nothing(caplog: pytest.LogCaptureFixture) -> None:
    # weasyprint logs (not warns) ignored CSS, unfetchable URLs and bad metadata: any of these means
    # the letter is not printed as designed, e.g. a margin box falling back to a serif font.
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        _render(_record(), "pdf")
    assert [r.getMessage() for r in caplog.records if r.name.startswith("weasyprint")] == []


def test_free_text_is_escaped() -> None:
    html = _render(_record(given_name="<b>Jane</b>", follow_up="<img src=x onerror=alert(1)>"))
    assert isinstance(html, str)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; keen" in html
    assert "<b>Jane</b>" not in html and "&lt;b&gt;Jane&lt;/b&gt;" in html
    assert "<img" not in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch


def test_html_flags_only_abnormal_rows() -> None:
    html = _render(_record())
    assert isinstance(html, str)
    assert html.count('<span class="flag">Action needed</span>') == 2  # blood pressure, smoking


def test_nothing_abnormal_says_none() -> None:
    record = _record(**{"blood_pressure.systolic": "120", "blood_pressure.diastolic": "75",
                        "smoking.smoking_status": "266919005", "alcohol.status": "", "alcohol.reason": "",
                        "alcohol.auditc": "2", "follow_up": ""})
    html = _render(record)
    assert isinstance(html, str)
    assert "Core checks completed: 6 of 6" in html
    assert '<h2>Abnormal findings</h2>\n<p>None</p>' in html
    assert '<h2>Recommended follow-up</h2>\n<p>None</p>' in html


def test_formatters() -> None:
    assert format_date(date(2026, 1, 5)) == "05-Jan-2026"
    assert format_nhs_number("9000000009") == "900 000 0009"
    assert format_nhs_number("900 000 0009") == "900 000 0009"
    assert format_patient_name("Smith", "Jane Ann") == "SMITH, Jane Ann"
    assert format_patient_name("", "") == "Name not recorded"
