"""The PDF letter from the trust to the patient's GP practice for one completed check.

The letter is the human-readable half of what a trust sends (the coded half is the FHIR Bundle built
from the same ``CheckRecord``). It is an HTML template rendered by Jinja2 and printed to A4 by
weasyprint (shared/docs/dependencies.md item 8). The summary table comes first so a busy GP sees
every check and the action each needs before any prose.

Identification follows the PDF conventions of GP Connect Send Document v1
(``nhsconnect/gpconnect-messaging`` ``senddocument_fedcon_busreq_pdf.md``, interop-and-peers.md §1.5):
name ``SURNAME, Forename(s)``, date of birth ``DD-Mmm-YYYY``, NHS number ``### ### ####``, and the
version number in the PDF, raised on every re-send.

Rendering never touches the network: the template has no external URLs and weasyprint is given a
URL fetcher that refuses every scheme, so even a stray URL cannot be fetched. Fonts come from the
system (Liberation Sans, metric-compatible with Arial, NHS.UK's fallback font; then DejaVu Sans).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jinja2 import Environment

from parity.interop.record import STATUS_WORDS, CheckRecord, display_date
from parity.pdf import html_to_pdf, template_environment
from parity.rules.template import CheckTemplate

# Fixed English month abbreviations: ``strftime("%b")`` follows the process locale, and the
# Send Document convention is ``DD-Mmm-YYYY`` in English whatever the server's locale.


def format_date(day: date) -> str:
    """A date as ``DD-Mmm-YYYY`` (e.g. ``07-Mar-1985``), the GP Connect Send Document PDF convention."""
    return display_date(day)


def format_nhs_number(nhs_number: str) -> str:
    """An NHS number grouped ``### ### ####`` as NHS documents print it; anything else is returned as given."""
    digits = nhs_number.replace(" ", "")
    if len(digits) == 10 and digits.isdigit():
        return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
    return nhs_number


def format_patient_name(family_name: str, given_name: str) -> str:
    """``SURNAME, Forename(s)`` (Send Document convention); ``Name not recorded`` when both are empty."""
    family, given = family_name.strip().upper(), given_name.strip()
    if family and given:
        return f"{family}, {given}"
    return family or given or "Name not recorded"


def _w3c_datetime(moment: datetime) -> str:
    """``moment`` as W3C-DTF for the PDF creation date (weasyprint's ``dcterms.created``): a time needs
    a zone there, so a naive datetime gives its date only rather than guess one."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _environment() -> Environment:
    # Autoescaped: names, reasons, the narrative and the follow-up are free text typed by staff.
    return template_environment("parity.interop.letters")


def _context(record: CheckRecord, template: CheckTemplate, *, practice_name: str | None, trust_name: str | None,
             generated_at: datetime) -> dict[str, Any]:
    rows = []
    for row in record.summary_rows(template):
        # A done check whose action is not "None" has an abnormal finding (summary_rows sets the
        # action from the template's findings); those rows carry a worded flag, not colour alone,
        # so they survive greyscale printing and faxing.
        flagged = row["status"] == "Done" and row["action"] != "None"
        rows.append({**row, "flagged": flagged, "open": row["status"] != "Done"})
    findings = [
        {"check": template.section(f.section_id).label, "finding": f.finding, "action": f.action}
        for f in record.findings(template)
    ]
    actions = list(dict.fromkeys(f["action"] for f in findings))
    # Core checks the trust could not complete are named in the follow-up too: the GP practice is
    # where they get done (clinical-spec.md §1.1: all six core elements make a complete check).
    incomplete = [f"{s.label} ({STATUS_WORDS[record.outcome(s.id).status].lower()})"
                  for s in template.sections if s.core and record.outcome(s.id).status != "done"]
    core_total = sum(1 for s in template.sections if s.core)
    return {
        "record": record,
        "template": template,
        "trust_name": trust_name,
        "trust_code": record.trust_code,
        "practice_name": practice_name,
        "practice_code": record.practice_code,
        "letter_date": format_date(generated_at.date()),
        "created_w3c": _w3c_datetime(generated_at),
        "check_date": format_date(record.performed_on),
        "patient_name": format_patient_name(record.family_name, record.given_name),
        "date_of_birth": format_date(record.date_of_birth),
        "nhs_number": format_nhs_number(record.nhs_number),
        "rows": rows,
        "core_done": record.core_done(template),
        "core_total": core_total,
        "findings": findings,
        "actions": actions,
        "incomplete": incomplete,
    }


def render_letter_html(record: CheckRecord, template: CheckTemplate, *, practice_name: str | None,
                       trust_name: str | None, generated_at: datetime) -> str:
    """The letter as a standalone HTML document (A4 print CSS inline, no external resources).

    ``practice_name`` and ``trust_name`` are the organisations' names (the ODS codes come from the
    record); ``generated_at`` dates the letter and the PDF metadata, so the same inputs give the same
    document. All free text is HTML-escaped.
    """
    ctx = _context(record, template, practice_name=practice_name, trust_name=trust_name,
                   generated_at=generated_at)
    return _environment().get_template("letter.html").render(**ctx)


def render_letter_pdf(record: CheckRecord, template: CheckTemplate, *, practice_name: str | None,
                      trust_name: str | None, generated_at: datetime) -> bytes:
    """The letter as A4 PDF bytes (weasyprint); same arguments as ``render_letter_html``."""
    return html_to_pdf(render_letter_html(record, template, practice_name=practice_name, trust_name=trust_name,
                                          generated_at=generated_at))
