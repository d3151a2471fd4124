"""Jinja2 templates and the filters pages use to show numbers and dates the NHS way."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pandas as pd
from fastapi.templating import Jinja2Templates

from parity.rules.standards import RAG_LABELS, RAG_TAG_COLOURS, STANDARDS, rag
from parity.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"
# The national standards and the one RAG rule live in parity.rules.standards (issue 11).


def make_templates(settings: Settings) -> Jinja2Templates:
    """Templates with Parity's filters and globals (autoescaping on, as Jinja2Templates sets)."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.filters["num"] = fmt_number
    env.filters["pct"] = fmt_percent
    env.filters["day"] = fmt_date
    env.filters["rag"] = rag_colour
    env.filters["rag_status"] = rag
    env.globals["rag_labels"] = RAG_LABELS
    env.globals["rag_tags"] = RAG_TAG_COLOURS
    env.globals["synthetic"] = settings.synthetic
    env.globals["standards"] = STANDARDS
    return templates


def fmt_number(value: object) -> str:
    """1234567 → '1,234,567'; missing → '–'."""
    if _missing(value):
        return "–"
    return f"{int(value):,}"  # type: ignore[call-overload]


def fmt_percent(value: object) -> str:
    """54.43 → '54.4%'; missing → '–'."""
    if _missing(value):
        return "–"
    return f"{float(value):.1f}%"  # type: ignore[arg-type]


def fmt_date(value: object) -> str:
    """2026-09-30 → '30 Sep 2026' (NHS.UK style guide: day month year); missing → '–'."""
    if _missing(value):
        return "–"
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        return value.strftime("%-d %b %Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%-d %b %Y")
    return str(value)


def rag_colour(percent: float | None) -> str:
    """NHS.UK tag colour of an all-six rate by the one RAG rule (``parity.rules.standards.rag``): green
    from 75%, yellow (NHS.UK's amber) from 60%, red below, grey without a rate."""
    return RAG_TAG_COLOURS[rag(None if _missing(percent) else percent)]


def _missing(value: object) -> bool:
    """None, NaN or pandas NA."""
    return value is None or bool(pd.isna(value)) if not isinstance(value, (list, tuple)) else False
