"""Shared rendering for the patient-facing documents: Jinja environment, English dates, PDF printing.

Follows the trust-to-GP letter (``parity.interop.letters.letter``): templates are autoescaped HTML
rendered by Jinja2 and printed to A4 by weasyprint (shared/docs/dependencies.md item 8), with a URL
fetcher that refuses every scheme so nothing is ever fetched, and system fonts only.
"""

from __future__ import annotations

from datetime import date
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

# Full English month names, fixed rather than ``strftime("%B")``, which follows the process locale.
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def long_date(day: date) -> str:
    """A date written out for patients, e.g. ``7 March 2025`` (NHS.UK content style: dates in full,
    no leading zero), in English whatever the server's locale."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


@cache
def environment() -> Environment:
    """The documents' Jinja environment (built on first use). Autoescape is on for every template:
    names, practice names and reply instructions are free text."""
    return Environment(
        loader=PackageLoader("parity.care.documents", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html_to_pdf(html: str) -> bytes:
    """Print ``html`` to PDF bytes with weasyprint, never touching the network, as a tagged PDF (the
    document structure, headings and table, is kept for screen readers)."""
    # Imported here: weasyprint loads pango through cffi (~0.5 s); HTML-only callers should not pay for it.
    from weasyprint import HTML, URLFetcher

    # An empty allow-list refuses every URL scheme (file, http, data...): the documents need none.
    fetcher = URLFetcher(allowed_protocols=())
    pdf = HTML(string=html, url_fetcher=fetcher).write_pdf(pdf_tags=True)
    assert pdf is not None  # write_pdf returns the bytes when no target is given
    return pdf
