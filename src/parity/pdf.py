"""HTML documents printed to PDF: the letter to the GP, the patient passport, invitation letters.

One way for all of them (shared/docs/dependencies.md item 8): Jinja2 templates shipped in a package,
autoescaped (names, notes and narratives are free text), printed to A4 by weasyprint with a URL
fetcher that refuses every scheme, so rendering never touches the network or the file system, and
as a tagged PDF, so headings and tables reach screen readers.
"""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@cache
def template_environment(package: str) -> Environment:
    """The Jinja environment of the ``templates`` folder of ``package`` (built on first use)."""
    return Environment(
        loader=PackageLoader(package, "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html_to_pdf(html: str) -> bytes:
    """Print ``html`` to tagged PDF bytes with weasyprint, fetching nothing."""
    # Imported here: weasyprint loads pango through cffi (~0.5 s); HTML-only callers should not pay for it.
    from weasyprint import HTML, URLFetcher

    # An empty allow-list refuses every URL scheme (file, http, data...): the documents need none.
    fetcher = URLFetcher(allowed_protocols=())
    pdf = HTML(string=html, url_fetcher=fetcher).write_pdf(pdf_tags=True)
    assert pdf is not None  # write_pdf returns the bytes when no target is given
    return pdf
