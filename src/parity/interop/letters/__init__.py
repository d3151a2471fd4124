"""The PDF letter a trust sends to the patient's GP practice with each completed check (M4).

``render_letter_html`` gives the letter as HTML and ``render_letter_pdf`` prints it to A4 with
weasyprint, summary table first, identification in the GP Connect Send Document PDF conventions
(interop-and-peers.md §1.5). Both take a ``CheckRecord`` and the ``CheckTemplate`` it was recorded
against. No network, no database.
"""

from __future__ import annotations

from parity.interop.letters.letter import (
    format_date,
    format_nhs_number,
    format_patient_name,
    render_letter_html,
    render_letter_pdf,
)

__all__ = ["format_date", "format_nhs_number", "format_patient_name", "render_letter_html", "render_letter_pdf"]
