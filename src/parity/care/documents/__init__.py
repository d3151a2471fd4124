"""Patient-facing documents: the patient passport (M9) and invitations to the yearly check (M5).

``render_passport_html`` / ``render_passport_pdf`` give a patient-held summary of the six checks in
plain English from a ``PatientRecord`` (``parity.reports.timeline``); ``render_invitation_pdf`` prints
a batch of invitation letters, one page per patient, and ``sms_text`` / ``sms_export_csv`` give the
matching text messages. Rendering is HTML (Jinja2, autoescaped) printed by weasyprint with no
network access, as the trust-to-GP letter (``parity.interop.letters``). No database, no I/O.
"""

from __future__ import annotations

from parity.care.documents.invitation import (
    DEFAULT_OPTIONS,
    SMS_MAX,
    Invitation,
    invitation_from_record,
    render_invitation_html,
    render_invitation_pdf,
    sms_export_csv,
    sms_length,
    sms_text,
)
from parity.care.documents.passport import passport_context, render_passport_html, render_passport_pdf

__all__ = [
    "DEFAULT_OPTIONS",
    "SMS_MAX",
    "Invitation",
    "invitation_from_record",
    "passport_context",
    "render_invitation_html",
    "render_invitation_pdf",
    "render_passport_html",
    "render_passport_pdf",
    "sms_export_csv",
    "sms_length",
    "sms_text",
]
