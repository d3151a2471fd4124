"""Shared rendering for the patient-facing documents: Jinja environment, English dates, PDF printing.

Follows the trust-to-GP letter (``parity.interop.letters.letter``): templates are autoescaped HTML
rendered by Jinja2 and printed to A4 by weasyprint (shared/docs/dependencies.md item 8), with a URL
fetcher that refuses every scheme so nothing is ever fetched, and system fonts only.
"""

from __future__ import annotations

from datetime import date

from jinja2 import Environment

from parity.pdf import html_to_pdf, template_environment

# Full English month names, fixed rather than ``strftime("%B")``, which follows the process locale.
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def long_date(day: date) -> str:
    """A date written out for patients, e.g. ``7 March 2025`` (NHS.UK content style: dates in full,
    no leading zero), in English whatever the server's locale."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def environment() -> Environment:
    """The documents' Jinja environment (autoescaped: names, practice names and reply instructions are
    free text)."""
    return template_environment("parity.care.documents")


__all__ = ["environment", "html_to_pdf", "long_date"]
