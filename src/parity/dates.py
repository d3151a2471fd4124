"""Reporting dates: parsing, quarter ends (NHS financial quarters end Jun, Sep, Dec, Mar), and the one
place that decides "today" and the default reporting date for the CLI and the web app.

- ``today``: the pinned date (``Settings.today``, from ``PARITY_TODAY``, for demos and tests) or the
  real one. Nothing else calls ``date.today()``.
- ``default_as_of``: figures (measures, follow-up, reports, precomputed results) default to the latest
  quarter end strictly before today: the published statistic is quarterly, and a quarter that has not
  ended would show a part-year as if it were final. Worklists (who to contact now) are as at ``today``.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

from parity.errors import ConfigurationError


def parse_date(text: str, what: str = "date") -> date:
    """A ``YYYY-MM-DD`` date, or a ConfigurationError naming ``what``."""
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} must be a date written YYYY-MM-DD, got {text!r}") from None


def today(pinned: date | None = None) -> date:
    """``pinned`` (settings built once from ``PARITY_TODAY``) if given, else ``PARITY_TODAY``, else today."""
    if pinned is not None:
        return pinned
    override = os.environ.get("PARITY_TODAY")
    return parse_date(override, "PARITY_TODAY") if override else date.today()


def default_as_of(on: date | None = None) -> date:
    """The default reporting date of every figure: the latest quarter end before ``on`` (default ``today()``)."""
    return latest_quarter_end(on or today())


def as_of_or_default(value: str | None, what: str = "--as-of", on: date | None = None) -> date:
    """A reporting date given as text (``--as-of``), or ``default_as_of``."""
    return parse_date(value, what) if value else default_as_of(on)


def latest_quarter_end(today: date) -> date:
    """The last quarter end strictly before ``today`` (the default reporting date)."""
    for month in (12, 9, 6, 3):
        end = _month_end(today.year, month)
        if end < today:
            return end
    return date(today.year - 1, 12, 31)


def quarter_ends(last: date, count: int) -> list[date]:
    """``count`` quarter ends up to and including ``last`` (which must be a quarter end), oldest first."""
    out = [last]
    while len(out) < count:
        d = out[-1]
        month = d.month - 3
        year = d.year
        if month <= 0:
            month += 12
            year -= 1
        out.append(_month_end(year, month))
    return sorted(out)


def month_ends(last: date, count: int) -> list[date]:
    """``count`` month ends on or before ``last``, oldest first (``last`` itself if it is a month end).

    >>> month_ends(date(2024, 3, 15), 2)
    [datetime.date(2024, 1, 31), datetime.date(2024, 2, 29)]
    """
    end = _month_end(last.year, last.month)
    if end > last:
        end = date(last.year, last.month, 1) - timedelta(days=1)
    out = [end]
    while len(out) < count:
        first = date(out[-1].year, out[-1].month, 1)
        out.append(first - timedelta(days=1))
    return sorted(out)


def quarter_ends_until(last: date, count: int) -> list[date]:
    """``count`` quarter ends on or before ``last`` (any day), oldest first."""
    end = last if last == _month_end(last.year, last.month) and last.month % 3 == 0 else latest_quarter_end(last)
    return quarter_ends(end, count)


def _month_end(year: int, month: int) -> date:
    first_next = date(year + (month == 12), month % 12 + 1, 1)
    return first_next - timedelta(days=1)
